"""The worker side of parity: runs inside one framework's own process
(`python -m bench.parity.worker FRAMEWORK OUT ...`), computes raw results on fixed weights
and data, and pickles them for the parent, which imports no framework."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

import numpy as np

from bench import data
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
from bench.threads import device_env, thread_env


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
            device: str = "cpu") -> dict[str, Any]:
    """All raw results of one framework on `device`. Errors are caught per item and
    recorded.

    scope "modes": only what the eager-vs-compiled checks need (SCOPES)."""
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
            out["results"][key] = fn()
        except Exception as exc:  # recorded as an error row; the other items go on
            out["errors"][key] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"

    for dtype in dtypes:
        for case in cases():
            if case_names and case.name not in case_names:
                continue
            params = case_params(case)

            def static(case: Case = case, params: Params = params) -> dict[str, Any]:
                model = adapter.build(case.spec, params, dtype, device)
                x, _ = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, 1000)
                res = {"forward": adapter.forward(model, x), "param_count": adapter.param_count(model),
                       "params": adapter.get_params(model)}
                for loss in LOSSES:
                    xl, target = data.batch(case.spec, case.batch_size, loss, DATA_SEED, 1000)
                    res[f"loss:{loss}"], res[f"grads:{loss}"] = adapter.loss_and_grads(
                        model, xl, target, loss)
                return res

            attempt((dtype, case.name, "static"), static)
            if not case.trajectories:
                continue
            other_modes = [m for m in adapter.modes if m != adapter.default_mode]
            for mode in other_modes:
                attempt((dtype, case.name, "static", mode),
                        lambda c=case, p=params, m=mode: _in_mode(adapter, c, p, dtype, m, device))
            for opt_name in OPTIMIZERS if scope == "all" else (COMPILED_OPTIMIZER,):
                steps = STEPS if scope == "all" else MODE_STEPS
                attempt((dtype, case.name, opt_name, "default"),
                        lambda c=case, p=params, o=opt_name, n=steps: _trajectory(
                            adapter, c, p, dtype, optimizer_spec(o), adapter.default_mode, n,
                            scope == "all", device))
            for mode in other_modes:
                attempt((dtype, case.name, COMPILED_OPTIMIZER, mode),
                        lambda c=case, p=params, m=mode: _trajectory(
                            adapter, c, p, dtype, optimizer_spec(COMPILED_OPTIMIZER), m,
                            MODE_STEPS, False, device))
    return out


def run_worker(framework: str, dtypes: tuple[str, ...], case_names: tuple[str, ...] | None,
               threads: int = 1, scope: str = "all", device: str = "cpu") -> dict[str, Any]:
    """Run `compute` for one framework in a subprocess; never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "raw.pkl")
        env = {**os.environ, **thread_env(threads), **device_env(device),
               "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONWARNINGS": "ignore"}
        cmd = [sys.executable, "-m", "bench.parity.worker", framework, path, ",".join(dtypes),
               ",".join(case_names or ()), scope, device]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"framework": framework, "fatal": f"timed out after {WORKER_TIMEOUT_S} s"}
        if proc.returncode != 0 or not os.path.exists(path):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            return {"framework": framework,
                    "fatal": f"worker exited with status {proc.returncode}: " + "\n".join(tail)}
        with open(path, "rb") as f:
            raw = pickle.load(f)
        raw["seconds"] = time.perf_counter() - started
        return raw


def main(argv: list[str]) -> None:
    framework, path, dtypes, names, scope, device = argv
    case_names = tuple(n for n in names.split(",") if n) or None
    raw = compute(framework, tuple(dtypes.split(",")), case_names, scope, device)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        pickle.dump(raw, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1:])
