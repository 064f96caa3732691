"""The `fwbench` command line: one module per subcommand (parity, run, graphs, report,
compare and baseline, study, show), the main job's phases in pipeline.py, and what they
share in common.py. Each subcommand module has `add_parser(subparsers)`, which sets the
function that runs it."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import textwrap
from collections.abc import Sequence

from bench import results, workers
from bench.cli import ab, compare, export, graphs, parity, report, run, show, study
from bench.cli.common import HelpFormatter, UsageError, format_table  # noqa: F401  (used by callers)
from bench.speed.cells import MatrixError
from bench.workers import WorkerError

# Errors of a disk that cannot take more (full, over quota, read-only, not ours).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)

# In the order `fwbench --help` lists them.
SUBCOMMANDS = (parity, run, graphs, report, compare, ab, export, study, show)


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser
                 ) -> argparse.ArgumentParser:
    """The command line; `parser_class` is the class of it and every subcommand's parser
    (the notebook API's raises instead of exiting)."""
    parser = parser_class(
        prog="fwbench", description="Compare TensorFlow, PyTorch and JAX on identical models.\n"
        "Each subcommand's --help has its flags, their defaults and examples.",
        formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    helps = {action.dest: action.help for action in sub._choices_actions}
    for module in SUBCOMMANDS:
        for name, examples in module.EXAMPLES.items():
            p = sub.choices[name]
            p.formatter_class = HelpFormatter
            # the one-line help, then what the subcommand module says more
            p.description = textwrap.fill(helps[name][0].upper() + helps[name][1:] + "."
                                          + (" " + p.description if p.description else ""), 79)
            p.epilog = "examples:\n" + examples
    return parser


def version() -> str:
    """fwbench's version as installed (the package metadata), else the source's."""
    from importlib import metadata

    from bench import __version__

    try:
        return metadata.version("fwbench")
    except metadata.PackageNotFoundError:
        return __version__


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
        subcommand_parser(parser, args.command).error(str(exc))  # exit 2, its usage line
    except results.ResultFileError as exc:  # a bad input or a full disk: one line, no traceback
        _error_json(args, str(exc))
        print(f"fwbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): nothing more to say to it
        sys.stdout = open(os.devnull, "w")
        return 0
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


def subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand `name`, whose usage line an error shows."""
    for action in parser._subparsers._group_actions:
        if name in action.choices:
            return action.choices[name]
    return parser


def _error_json(args: argparse.Namespace, message: str) -> None:
    """With --json FILE, a command that gives no verdict still writes why (exit status 2)."""
    path = getattr(args, "json", None)
    if path:
        from bench.cli.common import error_verdict, write_verdict

        try:
            write_verdict(path, error_verdict(args.command, message))
        except OSError:
            pass  # the error itself is said on stderr
