"""`fwbench show`: the speed table (and scaling curves) of one or more runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.cli.common import format_table, run_dir
from bench.speed import show


def add_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="print the speed table of one or more runs")
    p.add_argument("runs", nargs="*", help="run folders or ids (default: the latest run)")
    p.set_defaults(func=command)


def print_runs(frame: Any, run_dirs: Sequence[Path]) -> int:
    """Print the speed table of each run in `frame` (results.load of `run_dirs`)."""
    if frame.empty:
        print(f"no cell records in {', '.join(map(str, run_dirs))}")
        return 1
    from bench.speed import scaling

    matrix = scaling.split(frame)[0]
    curves = scaling.points(frame)
    for run_id, part in matrix.groupby("run_id", sort=False):
        print(f"run {run_id}: {show.describe_cells(part)}")
        print(format_table(show.speed_rows(part), show.COLUMNS))
        note = show.loaded_note(part)
        if note:
            print(f"warning: {note}")
        print()
        points = curves[curves["run_id"] == run_id]
        if not points.empty:
            print(f"scaling curves of run {run_id} (median ms per step at each size)")
            print(format_table(show.scaling_rows(points), show.SCALING_COLUMNS))
            print()
    return 0


def command(args: argparse.Namespace) -> int:
    run_dirs = [run_dir(r) for r in (args.runs or ["latest"])]
    return print_runs(results.load(run_dirs), run_dirs)
