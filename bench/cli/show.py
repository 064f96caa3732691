"""`fwbench show`: the speed table (and scaling curves) of one or more runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.cli.common import UsageError, format_table, run_dir, write_verdict
from bench.speed import show

EXAMPLES = {"show": """\
  fwbench show                        the latest run's speed table
  fwbench show RUN_A RUN_B --json cells.json
  fwbench show --code lstm            each framework's LSTM and training step, as run"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="print the speed table of one or more runs, or (--code) "
                       "each framework's code for a model")
    p.add_argument("runs", nargs="*", help="run folders or ids (default: the latest run)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every cell's numbers as JSON to FILE, with the exit "
                   "status: 1 when a cell failed (skipped ones do not count), 2 on bad input")
    p.add_argument("--code", default=None, metavar="MODEL",
                   help="print each framework's definition of MODEL and its training step, "
                   "from the code that runs, with lines of code and the concepts each uses")
    p.set_defaults(func=command)


def print_code(kind: str) -> int:
    """Each framework's model definition for `kind`, then each training step, then the
    concepts and the lines of code."""
    from bench import adapters, code, models
    from bench.report import code as code_section

    if kind not in models.KINDS:
        raise UsageError(f"--code {kind!r}: known models are {', '.join(models.KINDS)}")
    names = list(adapters.FRAMEWORKS)
    for excerpts in ([code.model_excerpt(fw, kind) for fw in names],
                     [code.training_excerpt(fw) for fw in names]):
        for title, source in code_section.panels(excerpts):
            print(f"--- {title}\n{source}\n")
    table = code_section.concepts_table(names)
    for row in table.to_dict(orient="records"):
        print(row.pop("aspect"))
        for title, how in row.items():
            print(f"  {title}: {how}")
    print()
    print("lines of code (no blank lines, comments or docstrings)")
    print(code_section.lines_table(names, [kind]).to_string(index=False))
    return 0


def _data_parallel(run_dirs: Sequence[Path], run_id: str) -> dict[str, Any] | None:
    """The data-parallel study settings of the run called `run_id`, if it is one."""
    for folder in run_dirs:
        path = Path(folder) / "run.json"
        if Path(folder).name == run_id and path.exists():
            return results.read_json(path).get("data_parallel")
    return None


def print_runs(frame: Any, run_dirs: Sequence[Path]) -> int:
    """Print the speed table of each run in `frame` (results.load of `run_dirs`)."""
    if frame.empty:
        print(f"no cell records in {', '.join(map(str, run_dirs))}")
        return 1
    from bench.speed import scaling

    matrix = scaling.split(frame)[0]
    curves = scaling.points(frame)
    for run_id, part in matrix.groupby("run_id", sort=False):
        study = _data_parallel(run_dirs, run_id)
        print(f"run {run_id}: {show.describe_cells(part)}")
        print(format_table(show.speed_rows(part), show.DP_COLUMNS if study else show.COLUMNS))
        note = show.loaded_note(part)
        if note:
            print(f"warning: {note}")
        print()
        if study:
            from bench.distributed import efficiency

            print(f"data-parallel scaling of run {run_id} (median ms per step; "
                  f"{study['form']}, --devices {study['devices']})")
            print(format_table(efficiency.formatted(efficiency.rows(part, study["points"])),
                               efficiency.COLUMNS))
            print()
        points = curves[curves["run_id"] == run_id]
        if not points.empty:
            print(f"scaling curves of run {run_id} (median ms per step at each size)")
            print(format_table(show.scaling_rows(points), show.SCALING_COLUMNS))
            print()
    return 0


def command(args: argparse.Namespace) -> int:
    if args.code:
        if args.runs or args.json:
            raise UsageError("--code shows code, not runs: give it alone")
        return print_code(args.code)
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
