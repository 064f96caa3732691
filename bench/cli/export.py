"""`fwbench export`: a run's cells as pytest-benchmark JSON, github-action-benchmark JSON
or a numeric CSV (bench/export.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.cli.common import run_dir

EXAMPLES = {"export": """\
  fwbench export latest --format pytest-benchmark --output results/run.json
  pytest-benchmark compare results/run.json
  fwbench export latest --format csv --output cells.csv"""}


def add_parser(sub: Any) -> None:
    from bench.export import FORMATS

    p = sub.add_parser("export", help="write a run's cells for other tools: pytest-benchmark "
                       "JSON (pytest-benchmark compare), github-action-benchmark's "
                       "customSmallerIsBetter JSON, or a CSV with numeric columns")
    p.add_argument("run", nargs="?", default="latest",
                   help="run folder or id (default: %(default)s)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", type=Path, default=None,
                   help="file to write (default: RUN/export/<format>.json or .csv)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    from bench import export

    folder = run_dir(args.run)
    path, skipped = export.export(folder, args.format, args.output
                                  or export.default_output(folder, args.format))
    if skipped:
        print(f"not exported (nothing measured): {', '.join(skipped)}", file=sys.stderr)
    print(path)
    return 0
