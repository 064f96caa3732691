"""The worker side of parity: runs inside one framework's own process (a bench.workers job
whose task is bench.parity.worker:compute_task), computes raw results on fixed weights and
data, and returns them to the parent, which imports no framework."""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import data, progress, workers
from bench.canonical import Params
from bench.parity.cases import (
    COMPILED_OPTIMIZER,
    DATA_SEED,
    MODE_STEPS,
    STEPS,
    WORKER_TIMEOUT_S,
    Case,
    case_params,
    cases,
    optimizer_spec,
)
from bench.spec import DTYPES, LOSSES, OPTIMIZERS, OptimizerSpec


def _trajectory(adapter: Any, case: Case, params: Params, dtype: str, opt: OptimizerSpec,
                mode: str, steps: int, record_grads: bool, device: str = "cpu") -> dict[str, Any]:
    """Losses and parameters after each of `steps` steps; with the gradients each step
    started from when `record_grads`."""
    model = adapter.build(case.spec, params, dtype, device)
    trainer = adapter.trainer(model, opt, "cross_entropy", mode)
    losses, grads, states = [], [], []
    for t in range(steps):
        x, target = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, index=t)
        if record_grads:
            grads.append(adapter.loss_and_grads(model, x, target, "cross_entropy")[1])
        losses.append(trainer.value(trainer.step(trainer.put(x, target))))
        states.append(adapter.get_params(model))
    return {"losses": np.array(losses), "grads": grads, "states": states, "final": states[-1]}


def _in_mode(adapter: Any, case: Case, params: Params, dtype: str, mode: str,
             device: str = "cpu") -> dict[str, Any]:
    """Outputs and cross-entropy gradients of a fresh model, computed in `mode`."""
    model = adapter.build(case.spec, params, dtype, device)
    # The batch `static` uses for forward and for the cross-entropy gradients.
    x, target = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, 1000)
    return {"forward": adapter.forward(model, x, mode=mode),
            "grads": adapter.loss_and_grads(model, x, target, "cross_entropy", mode=mode)[1]}


def compute(framework: str, dtypes: tuple[str, ...] = DTYPES,
            case_names: tuple[str, ...] | None = None, scope: str = "all",
            device: str = "cpu", fault: workers.Fault | None = None) -> dict[str, Any]:
    """All raw results of one framework on `device`. Errors are caught per item and
    recorded.

    scope "modes": only what the eager-vs-compiled checks need (SCOPES). `fault` (tests
    only) strikes each item whose key, joined by "/" (float32/lstm/adam/default), contains
    its target."""
    from bench import adapters

    adapter = adapters.get(framework)
    settings = None
    if device == "gpu":
        # On the GPU the framework's float32 matmuls must be true float32 (TF32 off), as in
        # a speed cell. On CPU the worker's thread environment already sets what configure
        # would.
        try:
            settings = adapter.configure("gpu", threads=1, tf32=False)
        except adapters.DeviceUnavailable as exc:  # one error row for this framework
            return {"framework": framework, "fatal": f"DeviceUnavailable: {exc}"}
    out: dict[str, Any] = {"framework": framework, "device": device, "settings": settings,
                           "versions": adapter.versions(),
                           "modes": adapter.modes, "default_mode": adapter.default_mode,
                           "optimizer_forms": adapter.optimizer_forms,
                           "alignments": adapter.alignments(), "results": {}, "errors": {}}

    def attempt(key: tuple, fn: Any) -> None:
        try:
            left = workers.strike(fault, "/".join(key))
            if left:  # nan and slow are the speed cells' and studies' faults
                raise ValueError(f"fault {left!r} does not apply to parity")
            out["results"][key] = fn()
        except Exception as exc:  # recorded as an error row; the other items go on
            out["errors"][key] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"

    # Every item first, so that progress can say how many are left (bench.progress).
    items: list[tuple[tuple, Any]] = []
    for dtype in dtypes:
        for case in cases():
            if case_names and case.name not in case_names:
                continue
            params = case_params(case)

            def static(case: Case = case, params: Params = params, dtype: str = dtype
                       ) -> dict[str, Any]:
                model = adapter.build(case.spec, params, dtype, device)
                x, _ = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, 1000)
                res = {"forward": adapter.forward(model, x), "param_count": adapter.param_count(model),
                       "params": adapter.get_params(model)}
                for loss in LOSSES:
                    xl, target = data.batch(case.spec, case.batch_size, loss, DATA_SEED, 1000)
                    res[f"loss:{loss}"], res[f"grads:{loss}"] = adapter.loss_and_grads(
                        model, xl, target, loss)
                return res

            items.append(((dtype, case.name, "static"), static))
            if not case.trajectories:
                continue
            other_modes = [m for m in adapter.modes if m != adapter.default_mode]
            for mode in other_modes:
                items.append(((dtype, case.name, "static", mode),
                              lambda c=case, p=params, d=dtype, m=mode: _in_mode(
                                  adapter, c, p, d, m, device)))
            for opt_name in OPTIMIZERS if scope == "all" else (COMPILED_OPTIMIZER,):
                steps = STEPS if scope == "all" else MODE_STEPS
                items.append(((dtype, case.name, opt_name, "default"),
                              lambda c=case, p=params, d=dtype, o=opt_name, n=steps: _trajectory(
                                  adapter, c, p, d, optimizer_spec(o), adapter.default_mode, n,
                                  scope == "all", device)))
            for mode in other_modes:
                items.append(((dtype, case.name, COMPILED_OPTIMIZER, mode),
                              lambda c=case, p=params, d=dtype, m=mode: _trajectory(
                                  adapter, c, p, d, optimizer_spec(COMPILED_OPTIMIZER), m,
                                  MODE_STEPS, False, device)))
    for done, (key, fn) in enumerate(items, 1):
        attempt(key, fn)
        progress.say(done, len(items), "/".join(map(str, key)))
    return out


def compute_task(args: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """`compute` as a bench.workers task: args framework, dtypes, case_names, scope, device."""
    return compute(args["framework"], tuple(args["dtypes"]),
                   tuple(args["case_names"]) if args.get("case_names") else None,
                   args["scope"], args["device"], fault)


def run_worker(framework: str, dtypes: tuple[str, ...], case_names: tuple[str, ...] | None,
               threads: int = 1, scope: str = "all", device: str = "cpu",
               fault: workers.Fault | None = None, log: Path | None = None) -> dict[str, Any]:
    """Run `compute` for one framework in a process of its own; never raises. A worker
    that fails as a whole gives {"framework", "fatal": why}. Its log (`log`, else a
    temporary file) carries its progress lines (bench.progress)."""
    job = workers.Job("bench.parity.worker:compute_task",
                      {"framework": framework, "dtypes": list(dtypes),
                       "case_names": list(case_names or ()), "scope": scope, "device": device},
                      threads=threads, device=device, timeout_s=WORKER_TIMEOUT_S, fault=fault,
                      # float sums in a fixed order (oneDNN reorders them in TensorFlow)
                      env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    with tempfile.TemporaryDirectory() as tmp:
        outcome = workers.run(job, log or Path(tmp) / f"parity-{framework}.log")
    if not outcome.ok:
        return {"framework": framework, "fatal": f"worker {outcome.status}: {outcome.describe()}"}
    return {**outcome.value, "seconds": outcome.wall_s}
