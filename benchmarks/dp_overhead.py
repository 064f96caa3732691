"""The two sides of benchmarks/harness_overhead.py for a data-parallel cell
(`harness_overhead.py --devices N`): is the step time `fwbench run --devices N`
reports the framework's data-parallel step, not the harness's?

- harness: the cell through the harness's own path (bench.speed.harness.run_cell: a
  group of bench.workers jobs running bench.distributed.replica:measure_task, with the
  group's launch variables, pinning, step plan agreed across the group, loss read back
  and checked every step, the load counters);
- hand loop: a group started the same way (the launch is the framework's, not the
  harness's measurement), each process running the framework's minimal hand-written
  data-parallel loop (impls/<framework>/distributed.py hand_step) for the same numbers
  of warm-up and timed steps as the harness's last process of that cell took, timing
  each step with the loss read back, and nothing else.

Process 0's median is each side's figure; the other processes' CPU time is the group's
own, not a neighbour's, when the machine's load is judged.
"""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import adapters
from bench.distributed import World, group, launch, scaling
from bench.speed.cells import Cell

HAND_TASK = "benchmarks.dp_overhead:hand_task"
_steps_taken: dict[str, tuple[int, int]] = {}  # cell id -> (warm-up, timed) of its last harness run


def _iqr(samples: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return q3 - q1


def run_harness(cell: Cell, results_dir: Path, name: str, budget: Any) -> dict[str, Any]:
    from bench import results
    from bench.speed import harness

    kept, results.RESULTS_DIR = results.RESULTS_DIR, Path(results_dir)  # the run's folder there
    try:
        run_dir = harness.new_run([cell], budget, 600.0, False, name, 1, (), limits=False,
                                  data_parallel={"devices": cell.replicas, "form": scaling.FORM,
                                                 "points": []})
        record = harness.run_cell(run_dir, harness.load_run(run_dir), cell)
    finally:
        results.RESULTS_DIR = kept
    if record["status"] != "ok":
        raise RuntimeError(f"the harness's cell {cell.id} failed: {record['error']}")
    m = record["metrics"]
    _steps_taken[cell.id] = (m["warmup_steps"], m["samples"])
    return {"median_ms": m["median_ms"], "iqr_ms": m["iqr_ms"], "samples": m["samples"],
            "loaded": bool(m["loaded"]), "other_cpu_share": m["load_other_cpu_share"],
            "pipelined_ms": None}


def run_hand(cell: Cell) -> dict[str, Any]:
    if cell.id not in _steps_taken:
        raise RuntimeError(f"{cell.id}: the hand loop takes the harness's step counts; "
                           f"measure the harness side first")
    warm, timed = _steps_taken[cell.id]
    cores, threads = scaling.member_cores(cell)
    args = {"cell": cell.to_dict(), "warmup_steps": warm, "timed_steps": timed}
    with tempfile.TemporaryDirectory() as tmp:
        outcome = group.run_group(
            lambda port: launch.group_jobs(cell.framework, scaling.FORM, cell.replicas, port,
                                           args, device=cell.device, threads=threads,
                                           timeout_s=600.0, cores=cores, task=HAND_TASK),
            Path(tmp), "hand", ports=cell.replicas)
    if not outcome.ok:
        raise RuntimeError(f"hand loop for {cell.id} failed: {outcome.describe()}")
    lead, peers = outcome.values[0], outcome.values[1:]
    other = lead["other_cpu_share"]
    if other is not None:  # the peers' CPU time is the group's own
        other = max(0.0, other - sum(p["own_cpu_share"] or 0.0 for p in peers))
    from bench.speed import machineload

    return {**lead, "other_cpu_share": other,
            "loaded": machineload.is_loaded(other, lead["steal_share"])}


def hand_task(args: dict[str, Any], fault: Any = None) -> dict[str, Any]:
    """Worker: the hand-written loop of one process of the group."""
    from bench import canonical, cpus, data
    from bench.speed import machineload

    world, cell = World(**args["world"]), Cell.from_dict(args["cell"])
    model_spec, train_spec = cell.specs()
    adapter = adapters.get(cell.framework)
    adapter.configure(cell.device, len(cpus.allowed()), False)  # the cells' process settings
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    x, y = data.batch(model_spec, train_spec.batch_size, "cross_entropy", train_spec.seed, 0)
    hand_step = importlib.import_module(f"impls.{cell.framework}.distributed").hand_step
    step, read = hand_step(world, lambda: adapter.build(model_spec, params, "float32", cell.device),
                           x, y, cell.mode)
    read(step())  # compiles
    for _ in range(args["warmup_steps"]):
        read(step())
    load_before = machineload.read()
    samples_ms = []
    for _ in range(args["timed_steps"]):
        t = time.perf_counter()
        read(step())
        samples_ms.append((time.perf_counter() - t) * 1e3)
    load = machineload.summary([load_before, machineload.read()])
    return {"median_ms": statistics.median(samples_ms), "iqr_ms": _iqr(samples_ms),
            "samples": len(samples_ms), "other_cpu_share": load["other_cpu_share"],
            "own_cpu_share": load["own_cpu_share"], "steal_share": load["steal_share"],
            "pipelined_ms": None, "pid": os.getpid()}
