"""The tasks each process of a data-parallel group runs (bench.workers jobs), after
starting the framework's distributed runtime for its World:

- train_task (parity): train each item's model for its steps on the global batches,
  returning the losses and final parameters. The process of rank 0 also trains the same
  model on one device on the same global batches (the baseline parity compares with),
  recording that run's gradients for the optimizer-form bounds.
- measure_task (speed): time a speed cell's data-parallel steps the way
  bench.speed.measure times a single-device cell, every process taking the same number
  of steps (a collective waits for all of them).

Nothing is caught: a replica that stopped would leave its peers waiting in a
collective, so any failure ends the process and the group stops it all."""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any

import numpy as np

from bench import data, progress
from bench.distributed import World
from bench.faults import Fault, strike
from bench.parity.cases import DATA_SEED


def start(world: World, timeout_s: float, threads: int | None = None, tf32: bool = False) -> Any:
    """The framework's DataParallel runtime for `world` (impls/<name>/distributed.py);
    with `threads`, the framework's process settings too (the speed cells'), made where
    the framework needs them made (before its runtime starts, or after)."""
    module = importlib.import_module(f"impls.{world.framework}.distributed")
    return module.DataParallel(world, timeout_s, threads, tf32)


def trajectory(dp: Any, spec: Any, params: Any, dtype: str, optimizer: Any, mode: str,
               batch_size: int, steps: int, fault: Fault | None, item_id: str
               ) -> dict[str, Any]:
    """Losses and final parameters of `steps` data-parallel steps on global batches,
    the batches of parity's single-device trajectories (DATA_SEED)."""
    model = dp.build(spec, params, dtype)
    trainer = dp.trainer(model, optimizer, "cross_entropy", mode)
    losses = []
    for t in range(steps):
        strike(fault, f"{item_id}/step{t}")
        x, target = data.batch(spec, batch_size, "cross_entropy", DATA_SEED, index=t)
        losses.append(dp.global_loss(trainer, trainer.step(trainer.put(x, target))))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"non-finite loss {losses[-1]} at step {t} of {item_id}")
    return {"losses": np.array(losses), "final": dp.get_params(model)}


def train_task(args: dict[str, Any], fault: Fault | None = None) -> dict[str, Any]:
    """args: world (World as a dict), items (dicts: case, dtype, optimizer, mode),
    steps, batch_size, timeout_s, baseline (True: rank 0 also trains on one device;
    "every": every process does, as bench.distributed.member's do)."""
    from bench.parity.cases import case_params, cases, optimizer_spec
    from bench.parity.worker import _trajectory

    world = World(**args["world"])
    dp = start(world, args["timeout_s"])
    by_name = {c.name: c for c in cases()}
    out: dict[str, Any] = {"world": world.to_dict(), "runtime": dp.describe(),
                           "versions": dp.adapter.versions(),
                           "optimizer_forms": dp.adapter.optimizer_forms, "results": {}, "baseline": {},
                           "baseline_errors": {}}
    items = args["items"]
    for done, item in enumerate(items, 1):
        case = by_name[item["case"]]
        key = (item["dtype"], item["case"], item["optimizer"], item["mode"])
        item_id = f"{world.form}/{'/'.join(key)}/p{world.rank}"
        params, opt = case_params(case), optimizer_spec(item["optimizer"])
        out["results"][key] = trajectory(dp, case.spec, params, item["dtype"], opt, item["mode"],
                                         args["batch_size"], args["steps"], fault, item_id)
        if args.get("baseline") == "every" or (args.get("baseline") and world.rank == 0):
            single = dataclasses.replace(case, batch_size=args["batch_size"])
            try:  # one device, no collective: its failure is this item's alone
                out["baseline"][key] = _trajectory(dp.adapter, single, params, item["dtype"], opt,
                                                   item["mode"], args["steps"], True,
                                                   world.device)
            except Exception as exc:  # noqa: BLE001 - an error row for this item
                out["baseline_errors"][key] = f"{type(exc).__name__}: {exc}"
        progress.say(done, len(items), item_id)
    dp.close()
    return out


# Steps after the first whose median sizes a speed cell's warm-up and sampling: the
# first steps after a compile can still be slower (torch's DDP under torch.compile took
# 10x its steady time on the second step), and the median of three ignores one of them.
PLAN_STEPS = 3


def step_counts(step_s: float, budget: Any) -> tuple[int, int]:
    """(untimed warm-up steps, timed steps) for steps of about `step_s` seconds, by the
    rules bench.speed.measure applies step by step (warm_enough, sampled_enough), decided
    once here because every process of a group must take the same number of steps."""
    step_s = max(step_s, 1e-9)
    warm = max(math.ceil(budget.warmup_s / step_s),
               min(budget.warmup_steps, max(2, math.ceil(budget.warmup_max_s / step_s))))
    slow = min(budget.slow_min_samples, budget.min_samples)
    timed = max(math.ceil(budget.sample_s / step_s),
                min(budget.min_samples, max(slow, math.ceil(budget.sample_max_s / step_s))))
    return warm, min(timed, budget.max_samples)


def measure_task(args: dict[str, Any], fault: Fault | None = None) -> dict[str, Any]:
    """args: world, cell (a data-parallel bench.speed.cells.Cell), budget, tf32,
    timeout_s, run_id, repeat. Returns this process's cell record (bench.speed.measure
    SCHEMA) with `member`: its rank, pid, runtime and median. What is timed is what
    measure times: each step alone, ending with this process's loss read back (which
    waits for the device), after the first step and a warm-up; the step count is agreed
    across the group once, outside the timed steps (DataParallel.agree_max)."""
    import os
    import time
    from dataclasses import asdict

    from bench import canonical, cpus, flops
    from bench.speed import machineload, measure, stats
    from bench.speed.cells import Cell

    world, cell = World(**args["world"]), Cell.from_dict(args["cell"])
    budget = measure.Budget(**args["budget"])
    out = measure.skeleton(cell, args.get("run_id"), args.get("repeat", 1))
    out.update({"budget": asdict(budget), "tf32": bool(args.get("tf32")),
                "affinity": cpus.allowed(), "pid": os.getpid()})
    metrics: dict[str, Any] = {}
    started = t = time.perf_counter()
    dp = start(world, args["timeout_s"], threads=len(cpus.allowed()), tf32=out["tf32"])
    metrics["start_s"] = time.perf_counter() - t  # import, runtime and rendezvous

    model_spec, train_spec = cell.specs()
    t = time.perf_counter()
    model = dp.build(model_spec, canonical.init_params(model_spec, seed=train_spec.seed), cell.dtype)
    trainer = dp.trainer(model, train_spec.optimizer, train_spec.loss, cell.mode)
    batches = [trainer.put(*data.batch(model_spec, train_spec.batch_size, train_spec.loss,
                                       train_spec.seed, i))
               for i in range(measure.DISTINCT_BATCHES)]
    metrics["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    compile_api = trainer.compile(batches[0])
    metrics["compile_s"] = time.perf_counter() - t if compile_api else None
    struck = strike(fault, f"{cell.id}/p{world.rank}")
    t = time.perf_counter()
    first = measure.checked_loss(trainer.value(trainer.step(batches[0])), 0, struck)
    metrics["first_step_s"] = time.perf_counter() - t

    step, probe_s = 1, []
    for _ in range(PLAN_STEPS):  # the steps the plan is sized from (warm-up steps too)
        t = time.perf_counter()
        measure.checked_loss(trainer.value(trainer.step(batches[step % len(batches)])), step, None)
        probe_s.append(time.perf_counter() - t)
        step += 1
    warm, timed = step_counts(dp.agree_max(float(np.median(probe_s))), budget)
    t = time.perf_counter()
    for _ in range(max(warm - PLAN_STEPS, 0)):
        measure.checked_loss(trainer.value(trainer.step(batches[step % len(batches)])), step, None)
        step += 1
    metrics["warmup_steps"] = max(warm, PLAN_STEPS)
    metrics["warmup_s"] = time.perf_counter() - t + sum(probe_s)

    load_before = machineload.read()
    samples_ms = []
    sample_start = time.perf_counter()
    for _ in range(timed):
        batch = batches[step % len(batches)]
        t = time.perf_counter()
        loss = trainer.value(trainer.step(batch))  # returns once the device has finished
        samples_ms.append((time.perf_counter() - t) * 1e3)
        last = measure.checked_loss(loss, step, None)
        step += 1
    metrics["sampling_s"] = time.perf_counter() - sample_start
    load = machineload.summary([load_before, machineload.read()])
    metrics["first_loss"], metrics["last_loss"] = first, last
    metrics["flops_per_step"] = flops.train_step_flops(model_spec, train_spec.batch_size)
    metrics.update(stats.steady_state(samples_ms, train_spec.batch_size, metrics["flops_per_step"]))
    metrics["per_replica_batch"] = train_spec.batch_size // world.replicas
    metrics["peak_rss_mib"] = measure.peak_rss_mib()
    metrics["param_count"] = dp.adapter.param_count(model)
    metrics.update({f"load_{k}" if k != "loaded" else k: v for k, v in load.items()})
    runtime = dp.describe()
    out.update(metrics=metrics, samples_ms=samples_ms, wall_s=time.perf_counter() - started,
               framework={"runtime": runtime, "versions": dp.adapter.versions(),
                          "compile_api": compile_api, "process": "fresh interpreter",
                          "compile_cache": "shared: the user's, warm or not",
                          "threadpools": measure.helper_threadpools()},
               member={"rank": world.rank, "pid": os.getpid(), "runtime": runtime,
                       "median_ms": metrics["median_ms"]})
    dp.close()
    return out
