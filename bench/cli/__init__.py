"""The `fwbench` command line: one module per subcommand (parity, run, graphs, report,
compare and baseline, study, show), the main job's phases in pipeline.py, and what they
share in common.py. Each subcommand module has `add_parser(subparsers)`, which sets the
function that runs it."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

from bench import results, workers
from bench.cli import ab, compare, export, graphs, parity, report, run, show, study
from bench.cli.common import UsageError, format_table  # noqa: F401  (used by callers)
from bench.speed.cells import MatrixError
from bench.workers import WorkerError

# Errors of a disk that cannot take more (full, over quota, read-only, not ours).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)

# In the order `fwbench --help` lists them.
SUBCOMMANDS = (parity, run, graphs, report, compare, ab, export, study, show)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fwbench", description="Compare TensorFlow, PyTorch and JAX on identical models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.platform == "win32":  # the workers' lifecycle is POSIX process groups
        print("fwbench: native Windows is not supported (its worker processes need POSIX "
              "process groups); run it under WSL2", file=sys.stderr)
        return 2
    try:
        with workers.stop_on_signals():
            return args.func(args)
    except (UsageError, MatrixError, WorkerError) as exc:
        _error_json(args, str(exc))
        parser.error(str(exc))  # exits with status 2 and the usage line
    except results.ResultFileError as exc:  # a bad input or a full disk: one line, no traceback
        _error_json(args, str(exc))
        print(f"fwbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        # what was written before stays: every record is its own file, written atomically
        print(f"fwbench {args.command}: cannot write {exc.filename or 'a file'}: "
              f"{exc.strerror}; what was written before is kept", file=sys.stderr)
        return 2
    except workers.Stopped as exc:  # the subcommands that can resume say how themselves
        print(f"\nfwbench {args.command}: {exc}; its worker processes are stopped",
              file=sys.stderr)
        return exc.exit_status
    return 2


def _error_json(args: argparse.Namespace, message: str) -> None:
    """With --json FILE, a command that gives no verdict still writes why (exit status 2)."""
    path = getattr(args, "json", None)
    if path:
        from bench.cli.common import error_verdict, write_verdict

        try:
            write_verdict(path, error_verdict(args.command, message))
        except OSError:
            pass  # the error itself is said on stderr
