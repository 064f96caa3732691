"""`fwbench show`: the speed table (and scaling curves) of one or more runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.cli.common import format_table, run_dir, write_verdict
from bench.speed import show

EXAMPLES = {"show": """\
  fwbench show                        the latest run's speed table
  fwbench show RUN_A RUN_B --json cells.json"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="print the speed table of one or more runs")
    p.add_argument("runs", nargs="*", help="run folders or ids (default: the latest run)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every cell's numbers as JSON to FILE, with the exit "
                   "status: 1 when a cell failed (skipped ones do not count), 2 on bad input")
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
    frame = results.load(run_dirs)
    status = print_runs(frame, run_dirs)
    failed = frame[~frame["status"].isin(["ok", "skipped"])] if not frame.empty else frame
    status = status or (1 if len(failed) else 0)
    if args.json:
        from bench import export
        from bench.compare import EXIT_MEANINGS, VERDICT_SCHEMA

        write_verdict(args.json, {
            "schema": VERDICT_SCHEMA, "command": "show", "exit_status": status,
            "meaning": ("no cell records" if status and frame.empty else EXIT_MEANINGS[status]),
            "runs": [str(d) for d in run_dirs],
            "failed": [f"{export.cell_name(r)} ({r['status']})" for _, r in failed.iterrows()],
            "cells": [r for d in run_dirs for r in export.csv_rows(d)]})
    return status
