"""The idiom audit: is each adapter's model written the fastest way its framework offers?

A framework comparison is only as fair as its slowest adapter. For every framework x
model kind, impls/<framework>/idioms.py lists the idioms an expert would try (the
attention kernel, the LSTM cell or loop, the optimizer's update, where batches live),
each as a `Variant` that builds a training step on the adapter's model from the same
canonical weights. One worker process per framework and kind (`audit_task`, run by
benchmarks/idioms.py through bench.workers) then:

1. checks each variant's parity against the adapter's own idiom, whose parity against
   the float64 NumPy reference `fwbench parity` checks: the losses of `PARITY_STEPS` Adam
   steps and the parameters after them, in float64 and float32, compiled, judged by the
   trajectory tolerance of bench/tolerances.py. A variant that fails is timed but never
   chosen;
2. times every variant in float32, compiled, on one resident batch, the variants taking
   turns (`ROUNDS` rounds, each the median of `steps` steps, every step's loss read back,
   as a cell's are), so that the machine's drift falls on all of them alike; a variant's
   figure is the median of its rounds, and its ratio to the adapter's idiom the geometric
   mean of the per-round ratios.

Written by hand because no library times alternative implementations of one model
against each other under a parity check; the timing rule is bench.speed.measure's.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from bench import adapters, canonical, data, tolerances
from bench.adapters import Trainer
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec, preset

PARITY_STEPS = 5     # Adam steps whose losses and end parameters are compared
ROUNDS = 7           # turns each variant gets in the timing
ROUND_S = 0.4        # target length of one variant's turn (s)
WARMUP_S = 1.0       # untimed steps per variant after its first (compiling) step (s)
ADAM = OptimizerSpec(name="adam", learning_rate=1e-3)


@dataclass(frozen=True)
class Candidate:
    """A variant built on a model: its training step and its parameters read back in
    canonical names and layouts."""

    trainer: Trainer
    params: Callable[[], Params]


@dataclass(frozen=True)
class Variant:
    kind: str        # model kind (bench/models)
    name: str        # short name, unique within the kind
    idiom: str       # what an expert would write, in words
    # (adapter, spec, params, dtype) -> Candidate: the training step, compiled mode, Adam
    make: Callable[[Any, ModelSpec, Params, str], Candidate]
    chosen: bool = False  # the adapter's own idiom (exactly one per kind)


def adapter_candidate(adapter: Any, spec: ModelSpec, params: Params, dtype: str,
                      change: Callable[[Any], None] | None = None) -> Candidate:
    """The adapter's model and compiled trainer; `change(model)` may first swap a part of
    the model for another idiom holding the same parameters."""
    model = adapter.build(spec, params, dtype=dtype)
    if change is not None:
        change(model)
    trainer = adapter.trainer(model, ADAM, "cross_entropy", "compiled")
    return Candidate(trainer, lambda: adapter.get_params(model))


def variant(kind: str, name: str, idiom: str, change: Callable[[Any], None] | None = None,
            chosen: bool = False) -> Variant:
    """A Variant that is the adapter's model and trainer, with `change` applied to the
    model first (None: the adapter's idiom itself)."""
    return Variant(kind, name, idiom, partial(adapter_candidate, change=change), chosen)


def host_batches(label_dtype: str) -> Callable[[Any, ModelSpec, Params, str], Candidate]:
    """The adapter's step fed NumPy batches (inputs in the run's dtype, labels in
    `label_dtype`), which the framework converts every step, instead of batches already
    on the device."""
    def make(adapter: Any, spec: ModelSpec, params: Params, dtype: str) -> Candidate:
        candidate = adapter_candidate(adapter, spec, params, dtype)
        candidate.trainer.put = lambda x, y: (np.asarray(x, dtype=dtype),
                                              np.asarray(y, dtype=label_dtype))
        return candidate
    return make


def _trajectory(candidate: Candidate, spec: ModelSpec, batch_size: int) -> dict[str, Any]:
    losses = []
    for index in range(PARITY_STEPS):
        x, y = data.batch(spec, batch_size, "cross_entropy", 0, index)
        trainer = candidate.trainer
        losses.append(trainer.value(trainer.step(trainer.put(x, y))))
    return {"losses": losses, "params": candidate.params()}


def parity(chosen: dict[str, Any], other: dict[str, Any], dtype: str,
           inert: tuple[str, ...] = ()) -> dict[str, Any]:
    """`other`'s trajectory against `chosen`'s: the larger of the losses' and the end
    parameters' relative errors, and whether it is within the trajectory tolerance.
    `inert` parameters are left out, as parity leaves them out of trajectories: their
    exact gradient is zero, so Adam moves them by +-lr at the sign of rounding noise."""
    def kept(params: Params) -> Params:
        return {k: v for k, v in params.items() if k not in inert}

    error = max(tolerances.relative_error(np.asarray(other["losses"]), np.asarray(chosen["losses"])),
                tolerances.relative_error(kept(other["params"]), kept(chosen["params"])))
    bound = tolerances.get("trajectory", dtype).value
    return {"error": error, "tolerance": bound, "passed": bool(error <= bound)}


def _time_steps(trainer: Trainer, batch: Any, steps: int) -> float:
    """Median time of `steps` steps (ms), each step's loss read back."""
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.value(trainer.step(batch))
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def time_variants(trainers: dict[str, Trainer], batches: dict[str, Any],
                  rounds: int = ROUNDS) -> dict[str, dict[str, Any]]:
    """Warm each trainer up, then give them `rounds` turns each, in rotating order."""
    steps: dict[str, int] = {}
    for name, trainer in trainers.items():
        count, t = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - t < WARMUP_S:
            trainer.value(trainer.step(batches[name]))
            count += 1
        per_step_s = (time.perf_counter() - t) / count
        steps[name] = max(3, min(200, round(ROUND_S / per_step_s)))
    medians: dict[str, list[float]] = {name: [] for name in trainers}
    names = list(trainers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            medians[name].append(_time_steps(trainers[name], batches[name], steps[name]))
    return {name: {"round_ms": medians[name], "median_ms": statistics.median(medians[name]),
                   "steps_per_round": steps[name]} for name in names}


def geometric_ratio(a: list[float], b: list[float]) -> float:
    """Geometric mean of the per-round ratios a / b."""
    return math.exp(statistics.fmean(math.log(x / y) for x, y in zip(a, b)))


def audit_kind(adapter: Any, variants: list[Variant], spec: ModelSpec, batch_size: int,
               rounds: int = ROUNDS, dtypes: tuple[str, ...] = ("float64", "float32")) -> dict[str, Any]:
    """Parity and timing of one model kind's variants at `spec` (see module docstring)."""
    chosen = [v for v in variants if v.chosen]
    if len(chosen) != 1:
        raise ValueError(f"{spec.kind}: {len(chosen)} variants are marked chosen, not 1")
    params = canonical.init_params(spec, seed=0)
    rows: dict[str, dict[str, Any]] = {v.name: {"idiom": v.idiom, "chosen": v.chosen,
                                                "parity": {}} for v in variants}
    trainers: dict[str, Trainer] = {}
    for dtype in dtypes:
        built = {v.name: v.make(adapter, spec, params, dtype) for v in variants}
        runs = {name: _trajectory(c, spec, batch_size) for name, c in built.items()}
        for name in built:
            rows[name]["parity"][dtype] = parity(runs[chosen[0].name], runs[name], dtype,
                                                 canonical.inert_params(spec))
        if dtype == "float32":  # timed after the parity steps compiled them
            trainers = {name: c.trainer for name, c in built.items()}
    x, y = data.batch(spec, batch_size, "cross_entropy", 0, 0)
    batches = {name: trainer.put(x, y) for name, trainer in trainers.items()}
    timing = time_variants(trainers, batches, rounds)
    base = timing[chosen[0].name]["round_ms"]
    for name, row in rows.items():
        row.update(timing[name])
        row["ratio_to_chosen"] = geometric_ratio(timing[name]["round_ms"], base)
        row["parity_passed"] = all(p["passed"] for p in row["parity"].values())
    return {"kind": spec.kind, "seq_len": getattr(spec, "seq_len", None),
            "batch_size": batch_size, "variants": rows,
            "fastest_passing": min((n for n in rows if rows[n]["parity_passed"]),
                                   key=lambda n: rows[n]["median_ms"])}


def audit_task(args: dict[str, Any], fault: Any = None) -> dict[str, Any]:
    """Worker (bench.workers): audit `args["kinds"]` of `args["framework"]` at
    `args["preset"]`, attention also at each of `args["seq_lens"]`."""
    framework = args["framework"]
    adapter = adapters.get(framework)
    settings = adapter.configure("cpu", int(args["threads"]), False)
    variants: list[Variant] = importlib.import_module(f"impls.{framework}.idioms").VARIANTS
    out = []
    for kind in args["kinds"]:
        spec, train = preset(args["preset"], kind)
        specs = [spec]
        if hasattr(spec, "seq_len") and kind == "attention":
            specs = [dataclasses.replace(spec, seq_len=n) for n in args.get("seq_lens") or [spec.seq_len]]
        for each in specs:
            of_kind = [v for v in variants if v.kind == kind]
            out.append(audit_kind(adapter, of_kind, each, train.batch_size,
                                  int(args.get("rounds", ROUNDS))))
    return {"framework": framework, "versions": adapter.versions(), "settings": settings,
            "audits": out}
