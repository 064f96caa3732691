"""`fwbench parity`: do the frameworks compute the same thing (bench/parity/)?"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import adapters, results
from bench.cli.common import UsageError, fmt, format_table, write_verdict
from bench.spec import DTYPES
from bench.speed import cells

EXAMPLES = {"parity": """\
  fwbench parity                      every framework, float32 and float64, on the CPU
  fwbench parity --frameworks torch,jax --dtypes float32 --failures-only
  fwbench parity --json parity.json   also the verdict as JSON (exit 1: a check failed)
  fwbench parity --devices 2          data-parallel rows: 2 replicas vs one device, one host
                                      and one process per stand-in host"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("parity", help="check that the frameworks compute the same thing")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: float32, float64")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--jobs", type=int, default=3, help="framework workers run at once")
    p.add_argument("--device", default="cpu", choices=adapters.DEVICES,
                   help="cpu or gpu: where the frameworks compute (the float64 NumPy reference "
                        "is always on the host; on gpu, TF32 is off)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="run the data-parallel checks instead: N replicas on each framework's "
                        "own distributed runtime against single-device training, as one host "
                        "and as one process per host (bench/distributed/); N <= the machine's "
                        "devices (on a CPU, its cores)")
    p.add_argument("--failures-only", action="store_true", help="print only failed checks")
    p.add_argument("--output", type=Path, default=None,
                   help="JSON file to write (default: results/parity-<time>.json)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the verdict as JSON to FILE: every check's error and "
                   "tolerance and the exit status (1: a check failed, 2: bad input)")
    p.set_defaults(func=command)


def run_checks(frameworks: Sequence[str], dtypes: Sequence[str],
               case_names: Sequence[str] | None, jobs: int, output: Path | None,
               device: str = "cpu", replicas: int | None = None
               ) -> tuple[list[Any], dict[str, Any], float, Path]:
    """Run the parity checks on `device` (with `replicas`: the data-parallel ones) and
    write their results file; returns (rows, meta, seconds, path)."""
    from bench import parity

    started = time.perf_counter()
    if replicas is not None:
        from bench.distributed import parity as dp_parity

        rows, meta = dp_parity.run(tuple(frameworks), tuple(dtypes),
                                   case_names and tuple(case_names), replicas, device)
    else:
        rows, meta = parity.run(tuple(frameworks), tuple(dtypes), case_names and tuple(case_names),
                                jobs=jobs, device=device)
    seconds = time.perf_counter() - started
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    # two parity runs ending in the same second write two files, not one over the other
    path = output or results.new_file(results.RESULTS_DIR, f"parity-{stamp}")
    parity.write(path, rows, meta, seconds, device)
    return rows, meta, seconds, path


def summary(rows: list[Any]) -> str:
    """The row closest to its tolerance, per check, framework and dtype, as a table."""
    from bench import parity

    lines = [dict(r, **{"max error": fmt(r["max error"]), "tolerance": fmt(r["tolerance"])})
             for r in parity.summarize(rows)]
    return format_table(lines, ["check", "framework", "dtype", "rows", "failed",
                                "worst model", "max error", "tolerance"])


def command(args: argparse.Namespace) -> int:
    return execute(args)[0]


def execute(args: argparse.Namespace) -> tuple[int, list[Any], Path]:
    """Run the checks the flags ask for and print them; (exit status, rows, results file)."""
    from bench import parity

    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    dtypes = cells.parse_list(args.dtypes, DTYPES, "--dtypes")
    case_names = (cells.parse_list(args.cases, [c.name for c in parity.cases()], "--cases")
                  if args.cases else None)
    if args.devices is not None:
        from bench.distributed import DevicesUnavailable, check_devices

        try:  # refused before anything runs: one line, exit 2
            check_devices(args.devices, args.device)
        except DevicesUnavailable as exc:
            raise UsageError(str(exc)) from None
        from bench.distributed.parity import BATCH

        if BATCH % args.devices:
            raise UsageError(f"--devices {args.devices}: parity's global batch of {BATCH} "
                             f"does not split evenly {args.devices} ways")
    rows, meta, seconds, path = run_checks(frameworks, dtypes, case_names, args.jobs,
                                           args.output, args.device, args.devices)
    table = [{"check": r.check, "framework": r.framework, "model": r.model, "dtype": r.dtype,
              "max error": fmt(r.error), "tolerance": fmt(r.tolerance),
              "pass": "yes" if r.passed else "NO", "note": r.note} for r in rows]
    shown = [t for t in table if t["pass"] == "NO"] if args.failures_only else table
    print(format_table(shown, ["check", "framework", "model", "dtype", "max error", "tolerance",
                               "pass", "note"]))
    print("\nSummary: the row closest to its tolerance, per check, framework and dtype")
    print(summary(rows))
    print()
    for fw, m in meta.items():
        if m.get("alignments"):
            print(f"Aligned against {fw}'s defaults (installed {m.get('versions')}):")
            print(format_table(m["alignments"], ["thing", "default", "fwbench"]))
            print()
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"({seconds:.0f} s); results in {path}")
    status = 1 if failed else 0
    if args.json:
        from bench.compare import EXIT_MEANINGS, VERDICT_SCHEMA

        def check(r: Any) -> dict[str, Any]:
            return {"check": r.check, "framework": r.framework, "model": r.model,
                    "dtype": r.dtype, "error": None if r.error != r.error else r.error,
                    "tolerance": r.tolerance, "passed": bool(r.passed), "note": r.note}

        write_verdict(args.json, {
            "schema": VERDICT_SCHEMA, "command": "parity", "exit_status": status,
            "meaning": EXIT_MEANINGS[status], "passed": len(rows) - len(failed),
            "failed": len(failed), "results_file": str(path), "seconds": seconds,
            "failing": [check(r) for r in failed], "checks": [check(r) for r in rows]})
    return status, rows, path
