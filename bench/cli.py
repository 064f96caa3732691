"""The `fwbench` command line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from bench import adapters, environment, results
from bench.spec import DTYPES

PARITY_SCHEMA = "fwbench.parity/1"


class UsageError(Exception):
    """A flag value that cannot work; reported before anything runs."""


def _list(value: str, allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise UsageError(f"{flag}: {', '.join(unknown) or 'nothing given'} not known; "
                         f"allowed: {', '.join(allowed)}")
    return items


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    cells = [[str(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _fmt(x: float) -> str:
    return "n/a" if x != x else ("0" if x == 0 else f"{x:.1e}")


def cmd_parity(args: argparse.Namespace) -> int:
    from bench import parity

    frameworks = _list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    dtypes = _list(args.dtypes, DTYPES, "--dtypes")
    case_names = _list(args.cases, [c.name for c in parity.cases()], "--cases") if args.cases else None
    started = time.perf_counter()
    rows, meta = parity.run(frameworks, dtypes, case_names, jobs=args.jobs)
    seconds = time.perf_counter() - started

    table = [{"check": r.check, "framework": r.framework, "model": r.model, "dtype": r.dtype,
              "max error": _fmt(r.error), "tolerance": _fmt(r.tolerance),
              "pass": "yes" if r.passed else "NO", "note": r.note} for r in rows]
    shown = [t for t in table if t["pass"] == "NO"] if args.failures_only else table
    print(format_table(shown, ["check", "framework", "model", "dtype", "max error", "tolerance",
                               "pass", "note"]))
    print("\nSummary: the row closest to its tolerance, per check, framework and dtype")
    summary = [dict(r, **{"max error": _fmt(r["max error"]), "tolerance": _fmt(r["tolerance"])})
               for r in parity.summarize(rows)]
    print(format_table(summary, ["check", "framework", "dtype", "rows", "failed", "worst model",
                                 "max error", "tolerance"]))
    print()
    for fw, m in meta.items():
        if m.get("alignments"):
            print(f"Aligned against {fw}'s defaults (installed {m.get('versions')}):")
            print(format_table(m["alignments"], ["thing", "default", "fwbench"]))
            print()
    failed = [r for r in rows if not r.passed]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = args.output or results.RESULTS_DIR / f"parity-{stamp}.json"
    results.write_json(path, {
        "schema": PARITY_SCHEMA, "created": stamp, "seconds": seconds,
        "environment": environment.describe(), "frameworks": meta,
        "tolerances": {f"{c}/{d}": {"value": t.value, "why": t.why}
                       for (c, d), t in parity.tolerances.TOLERANCES.items()},
        "records": [dataclasses.asdict(r) for r in rows]})
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"({seconds:.0f} s); results in {path}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fwbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="check that the frameworks compute the same thing")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: float32, float64")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--jobs", type=int, default=3, help="framework workers run at once")
    p.add_argument("--failures-only", action="store_true", help="print only failed checks")
    p.add_argument("--output", type=lambda s: results.Path(s), default=None,
                   help="JSON file to write (default: results/parity-<time>.json)")
    p.set_defaults(func=cmd_parity)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits with status 2 and the usage line
    return 2


if __name__ == "__main__":
    sys.exit(main())
