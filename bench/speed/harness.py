"""The speed harness: runs a matrix of cells, one process each (bench.workers), into a
run folder.

    results/runs/<run id>/run.json          the matrix, settings and environment
    results/runs/<run id>/cells/<cell>.r<k>.json  repeat k of a cell (bench.speed.measure.SCHEMA)
    results/runs/<run id>/logs/<cell>.r<k>.log    that process's stdout and stderr
    results/runs/<run id>/logs/<cell>.r<k>.job.json  the job it ran (rerun by hand with
                                                      python -m bench.workers JOB OUT)

Cells run one after another, never side by side: two cells sharing the cores would
measure each other. Every cell gets the same CPU affinity and thread variables, its own
timeout, and a result file written atomically, so a crash, a kill or an interrupt loses
at most the cell that was running; `resume` runs whatever has no record yet.

Repeats: with `repeats` > 1 every cell is measured that many times, each in a fresh
process, round-robin (the whole matrix once, then again): a small VM's speed drifts by
10-20% over minutes, and spreading each cell's repeats over the run lets that drift hit
every cell alike instead of whichever cell ran in a slow minute. bench.speed.records combines
the repeats of a cell into one row and reports the spread between them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import adapters, environment, forkserver, frameworks, results, workers
from bench.speed import limits, measure
from bench.speed.cells import Cell, MatrixError
from bench.speed.measure import Budget

RUN_SCHEMA = results.RUN_SCHEMA
DEFAULT_TIMEOUT_S = 300.0  # per cell; torch.compile of one small model takes ~30 s on 2 cores
OK = "ok"
# Every status a cell record can have, and what it means.
STATUSES = {
    "ok": "measured",
    "nan": "the loss became NaN or infinite",
    "oom": "out of memory",
    "crash": "the cell raised or exited without a record",
    "killed": "the cell process was killed by a signal (often the OOM killer)",
    "timeout": "the cell ran past its timeout and was killed",
    "skipped": "the framework is not installed",
    "unavailable": "the framework cannot see the requested device",
}


def runs_dir() -> Path:
    return results.RESULTS_DIR / "runs"


def cell_env(cell: Cell) -> dict[str, str]:
    """Environment of a cell's process: the same thread caps for every framework."""
    return workers.process_env(cell.threads, cell.device)


def new_run(cells: Sequence[Cell], budget: Budget, timeout_s: float, tf32: bool,
            name: str | None = None, repeats: int = 1,
            sweep: Sequence[tuple[str, Cell]] = (), limits: bool = False,
            data_parallel: dict[str, Any] | None = None) -> Path:
    """Create a run folder holding the matrix and settings; returns its path.

    `sweep`: (axis, cell) points of scaling curves (bench.speed.cells.scaling_cells), measured
    once each after the matrix's repeats; a point that is a matrix cell already is dropped.
    `limits`: measure the machine's limits (bench.speed.limits) before the first cell.
    `data_parallel`: for a run of data-parallel cells (`--devices N`), the study's
    settings and each cell's roles (bench.distributed.scaling), kept in run.json.
    """
    if not cells:
        raise MatrixError("the matrix is empty: nothing to run")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise MatrixError(f"repeats={repeats!r} must be a whole number >= 1")
    run_dir = results.new_folder(runs_dir(), name,
                                 datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"),
                                 "run.json", "run", MatrixError)
    run_id = run_dir.name
    matrix_ids = [c.id for c in cells]
    results.write_json(run_dir / "run.json", {
        "schema": RUN_SCHEMA, "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment.describe(), "budget": asdict(budget),
        "timeout_s": timeout_s, "tf32": tf32, "repeats": repeats, "limits": limits,
        "cells": [c.to_dict() for c in cells],
        "cell_ids": matrix_ids,
        "sweep": [{"axis": axis, "cell": c.to_dict(), "cell_id": c.id} for axis, c in sweep
                  if c.id not in matrix_ids],
        **({"data_parallel": data_parallel} if data_parallel else {}),
    })
    return run_dir


def load_run(run_dir: Path) -> dict[str, Any]:
    return results.read_folder_file(run_dir, "run.json", RUN_SCHEMA, MatrixError, "run")


def latest_run() -> Path:
    found = sorted(p.parent for p in runs_dir().glob("*/run.json"))
    if not found:
        raise MatrixError(f"no runs under {runs_dir()}: start one with `fwbench run`")
    return max(found, key=lambda p: (p / "run.json").stat().st_mtime)


def cell_path(run_dir: Path, cell: Cell, repeat: int = 1) -> Path:
    return Path(run_dir) / "cells" / f"{cell.id}.r{repeat}.json"


def ran_under() -> dict[str, Any]:
    """What a cell's record says it ran under: the parent's environment now, in the keys
    a resume must keep (the cell's thread and device variables are set on top)."""
    now = environment.describe()
    return {k: now.get(k) for k in environment.RESUME_KEYS}


def run_cell(run_dir: Path, run: dict[str, Any], cell: Cell, repeat: int = 1,
             fault: workers.Fault | None = None,
             under: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure `cell` in its own process (bench.workers) and return its record, also
    written to disk with `under` (ran_under(), by default now) as "ran_under". `fault`: a
    failure to inject (tests and calibration only)."""
    out = cell_path(run_dir, cell, repeat)
    under = under if under is not None else ran_under()
    if not adapters.installed(cell.framework):
        _, framework, _, extra = adapters.REGISTRY[cell.framework]
        record = {**measure.skeleton(cell, run["run_id"], repeat, "skipped",
                                     f"{framework} is not installed; install it with: "
                                     f"pip install 'fwbench[{extra}]'"), "wall_s": 0.0,
                  "ran_under": under}
        results.write_json(out, record)
        return record
    out.unlink(missing_ok=True)
    if cell.replicas:  # a data-parallel cell: a group of processes (bench.distributed)
        from bench.distributed import scaling

        record = scaling.run_cell(run_dir, run, cell, repeat, fault)
        record["ran_under"] = under
        results.write_json(out, record)
        return results.read_json(out)
    # the matrix's compile times are reported: cold caches; a sweep point's are not
    cold = cell.id in run.get("cell_ids", [])
    # made and removed here, so that a worker killed at its timeout leaves no cache behind
    cache_dir = (tempfile.mkdtemp(prefix="fwbench-compile-cache-")
                 if cold and frameworks.get(cell.framework).compile_cache_env else None)
    job = workers.Job(
        "bench.speed.measure:cell_task",
        {"run_id": run["run_id"], "repeat": repeat, "cell": cell.to_dict(),
         "budget": run["budget"], "tf32": run["tf32"], "compile_cache_dir": cache_dir},
        threads=cell.threads, device=cell.device, cores=tuple(workers.affinity(cell.threads)),
        timeout_s=run["timeout_s"], fault=fault, preload=cell.framework,
        compiles=cell.mode != "eager")
    try:
        outcome = workers.run(job, Path(run_dir) / "logs" / f"{cell.id}.r{repeat}.log")
    finally:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if outcome.ok:
        record = outcome.value
    else:
        # The task itself records every exception, so anything else ended the process.
        status = {"timeout": "timeout", "killed": "killed"}.get(outcome.status, "crash")
        record = {**measure.skeleton(cell, run["run_id"], repeat, status, outcome.describe()),
                  "wall_s": outcome.wall_s}
    record["ran_under"] = under
    results.write_json(out, record)
    return results.read_json(out)


def pending(run_dir: Path, run: dict[str, Any],
            retry_failed: bool = False) -> list[tuple[Cell, int]]:
    """(cell, repeat) pairs of the run with no record yet (or, with retry_failed, a failed
    one), in run order: repeat 1 of every cell, then repeat 2, ..., then the scaling sweep's
    points (one process each)."""
    planned = [(Cell.from_dict(data), repeat) for repeat in range(1, run.get("repeats", 1) + 1)
               for data in run["cells"]]
    planned += [(Cell.from_dict(point["cell"]), 1) for point in run.get("sweep", [])]
    todo = []
    for cell, repeat in planned:
        path = cell_path(run_dir, cell, repeat)
        if not path.exists():
            todo.append((cell, repeat))
            continue
        try:
            status = results.read_cell_record(path).get("status")
        except results.ResultFileError:  # truncated, corrupt: measured again
            todo.append((cell, repeat))
            continue
        if retry_failed and status != OK:
            todo.append((cell, repeat))
    return todo


def process_count(run: dict[str, Any]) -> int:
    """Cell processes the whole run takes: the matrix's repeats plus the sweep's points."""
    return len(run["cells"]) * run.get("repeats", 1) + len(run.get("sweep", []))


def execute(run_dir: Path, retry_failed: bool = False,
            on_cell: Callable[[int, int, Cell, int, dict[str, Any] | None], None] | None = None,
            fault: workers.Fault | None = None) -> list[dict[str, Any]]:
    """Run every pending (cell, repeat) of `run_dir` in order; returns their records.

    `on_cell(done, total, cell, repeat, record)` is called before each process (record
    None) and after it, for progress display. `fault` is given to every cell's job (it
    hits the cells whose id contains its target).
    """
    run = load_run(run_dir)
    with results.exclusive(Path(run_dir), "run", MatrixError):
        todo = pending(run_dir, run, retry_failed)
        under = ran_under()
        records = []
        try:
            if run.get("limits") and limits.read(run_dir) is None:
                limits.measure(run_dir, run, list(dict.fromkeys(c["framework"] for c in run["cells"])))
            for i, (cell, repeat) in enumerate(todo):
                if on_cell:
                    on_cell(i, len(todo), cell, repeat, None)
                record = run_cell(run_dir, run, cell, repeat, fault, under)
                records.append(record)
                if on_cell:
                    on_cell(i + 1, len(todo), cell, repeat, record)
        finally:
            forkserver.close_all()  # their memory back before the next phase
    return records

