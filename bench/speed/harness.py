"""The speed harness: runs a matrix of cells, one subprocess each, into a run folder.

    results/runs/<run id>/run.json          the matrix, settings and environment
    results/runs/<run id>/cells/<cell>.r<k>.json  repeat k of a cell (bench.speed.measure.SCHEMA)
    results/runs/<run id>/logs/<cell>.r<k>.log    that process's stdout and stderr

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

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import adapters, environment, results
from bench.speed import measure
from bench.speed.cells import Cell, MatrixError
from bench.speed.measure import Budget
from bench.threads import device_env, thread_env

RUN_SCHEMA = "fwbench.run/1"
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
LOG_TAIL_LINES = 20


def runs_dir() -> Path:
    return results.RESULTS_DIR / "runs"


def affinity(threads: int) -> list[int]:
    """The first `threads` CPUs this process may run on: every cell gets the same ones."""
    allowed = sorted(os.sched_getaffinity(0))
    if threads > len(allowed):
        raise MatrixError(f"--threads {threads}: only {len(allowed)} CPUs are available to this "
                          f"process ({allowed})")
    return allowed[:threads]


def process_env(threads: int, device: str) -> dict[str, str]:
    """Environment of a measured process: the same thread caps for every framework."""
    return {**os.environ, **thread_env(threads), **device_env(device),
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
            "PYTHONUNBUFFERED": "1"}


def cell_env(cell: Cell) -> dict[str, str]:
    return process_env(cell.threads, cell.device)


def run_process(cmd: list[str], env: dict[str, str], log: Path, timeout_s: float) -> int | None:
    """Run `cmd` with its output in `log`; its exit status, or None if it ran past
    `timeout_s` and was killed."""
    with open(log, "w") as log_file:
        # A session of its own, so a timeout kills the process's helpers too
        # (torch.compile's compile workers).
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        except BaseException:  # Ctrl-C: stop the process, record nothing for it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def new_run(cells: Sequence[Cell], budget: Budget, timeout_s: float, tf32: bool,
            name: str | None = None, repeats: int = 1,
            sweep: Sequence[tuple[str, Cell]] = ()) -> Path:
    """Create a run folder holding the matrix and settings; returns its path.

    `sweep`: (axis, cell) points of scaling curves (bench.speed.cells.scaling_cells), measured
    once each after the matrix's repeats; a point that is a matrix cell already is dropped.
    """
    if not cells:
        raise MatrixError("the matrix is empty: nothing to run")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise MatrixError(f"repeats={repeats!r} must be a whole number >= 1")
    run_id = name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir() / run_id
    if (run_dir / "run.json").exists():
        raise MatrixError(f"run {run_id!r} exists already ({run_dir}); resume it or pick a name")
    matrix_ids = [c.id for c in cells]
    results.write_json(run_dir / "run.json", {
        "schema": RUN_SCHEMA, "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment.describe(), "budget": asdict(budget),
        "timeout_s": timeout_s, "tf32": tf32, "repeats": repeats, "cells": [c.to_dict() for c in cells],
        "cell_ids": matrix_ids,
        "sweep": [{"axis": axis, "cell": c.to_dict(), "cell_id": c.id} for axis, c in sweep
                  if c.id not in matrix_ids],
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


def _failure(cell: Cell, run_id: str, repeat: int, status: str, error: str,
             wall_s: float) -> dict[str, Any]:
    return {**measure.skeleton(cell, run_id, repeat, status, error), "wall_s": wall_s}


def log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


def run_cell(run_dir: Path, run: dict[str, Any], cell: Cell, repeat: int = 1) -> dict[str, Any]:
    """Measure `cell` in its own process and return its record (also written to disk)."""
    out = cell_path(run_dir, cell, repeat)
    if not adapters.installed(cell.framework):
        _, framework, _, extra = adapters.REGISTRY[cell.framework]
        record = _failure(cell, run["run_id"], repeat, "skipped",
                          f"{framework} is not installed; install it with: "
                          f"pip install 'fwbench[{extra}]'", 0.0)
        results.write_json(out, record)
        return record
    log = Path(run_dir) / "logs" / f"{cell.id}.r{repeat}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    job = {"run_id": run["run_id"], "repeat": repeat, "cell": cell.to_dict(), "budget": run["budget"],
           "tf32": run["tf32"], "affinity": affinity(cell.threads)}
    cmd = [sys.executable, "-m", "bench.speed.measure", json.dumps(job), str(out)]
    started = time.perf_counter()
    returncode = run_process(cmd, cell_env(cell), log, run["timeout_s"])
    wall_s = time.perf_counter() - started
    if returncode is None:
        record = _failure(cell, run["run_id"], repeat, "timeout",
                          f"no result after the {run['timeout_s']:.0f} s timeout; "
                          f"log tail:\n{log_tail(log)}", wall_s)
    elif out.exists():
        return results.read_json(out)
    elif returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (SIGKILL: often the kernel's OOM killer)" if name == "SIGKILL" else ""
        record = _failure(cell, run["run_id"], repeat, "killed",
                          f"killed by {name}{hint}; log tail:\n{log_tail(log)}", wall_s)
    else:
        record = _failure(cell, run["run_id"], repeat, "crash",
                          f"exited with status {returncode} and no record; "
                          f"log tail:\n{log_tail(log)}", wall_s)
    results.write_json(out, record)
    return record


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
        elif retry_failed and results.read_json(path).get("status") != OK:
            todo.append((cell, repeat))
    return todo


def process_count(run: dict[str, Any]) -> int:
    """Cell processes the whole run takes: the matrix's repeats plus the sweep's points."""
    return len(run["cells"]) * run.get("repeats", 1) + len(run.get("sweep", []))


def execute(run_dir: Path, retry_failed: bool = False,
            on_cell: Callable[[int, int, Cell, int, dict[str, Any] | None], None] | None = None,
            ) -> list[dict[str, Any]]:
    """Run every pending (cell, repeat) of `run_dir` in order; returns their records.

    `on_cell(done, total, cell, repeat, record)` is called before each process (record
    None) and after it, for progress display.
    """
    run = load_run(run_dir)
    todo = pending(run_dir, run, retry_failed)
    records = []
    for i, (cell, repeat) in enumerate(todo):
        if on_cell:
            on_cell(i, len(todo), cell, repeat, None)
        record = run_cell(run_dir, run, cell, repeat)
        records.append(record)
        if on_cell:
            on_cell(i + 1, len(todo), cell, repeat, record)
    return records

