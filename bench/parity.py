"""Parity: do the frameworks compute the same outputs, gradients and trajectories?

Each framework runs in its own subprocess (`python -m bench.parity FRAMEWORK OUT`),
which computes raw results on fixed weights and data and pickles them. The parent
process, which imports no framework, compares them with the float64 reference, with
finite differences and with each other, and returns one row per check. A framework
that is missing or crashes yields error rows; the other frameworks' checks stand.
"""

from __future__ import annotations

import itertools
import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import canonical, data, models, optim, reference, tolerances
from bench.adapters import DEVICES
from bench.canonical import Params
from bench.spec import DTYPES, LOSSES, OPTIMIZERS, ModelSpec, OptimizerSpec
from bench.threads import device_env, thread_env

STEPS = 20          # training steps per trajectory
DATA_SEED = 7       # seeds the batches; parameters use PARAM_SEED
PARAM_SEED = 3
# Hyperparameters for the trajectories. Learning rates are large enough that 20 steps
# move the tiny models visibly. Every value is exact in float32 (a short binary
# fraction): Keras casts Python floats such as momentum and beta_1 through float32 even
# for float64 variables (keras.ops.cast -> tf.cast), so 0.9 would be 0.8999999762 in
# Keras and 0.9 elsewhere, a 3e-8 difference that is Keras', not the math's.
LEARNING_RATES = {"sgd": 2.0**-3, "momentum": 2.0**-4, "nesterov": 2.0**-4, "adagrad": 2.0**-4,
                  "rmsprop": 2.0**-7, "adam": 2.0**-7}
HYPERPARAMETERS = {"momentum": 0.875, "beta1": 0.875, "beta2": 1 - 2.0**-9, "rho": 0.875,
                   "epsilon": 2.0**-27, "initial_accumulator": 0.125}
COMPILED_OPTIMIZER = "adam"  # the optimizer whose trajectory is compared across modes
MODE_STEPS = 5  # steps compared across modes (op-by-op JAX takes ~1 s a step)
# What a parity run computes: "all" checks, or "modes": only the eager-vs-compiled ones
# (outputs, gradients and a 5-step trajectory in every mode; `fwbench graphs` uses it).
SCOPES = ("all", "modes")
MODE_CHECKS = ("mode_forward", "mode_grads", "compiled")
WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Case:
    name: str               # row label in the parity table
    spec: ModelSpec
    batch_size: int
    trajectories: bool      # also run 20-step trajectories for every optimizer


def cases() -> list[Case]:
    """Every model kind at its tiny preset (with trajectories), then each kind's variants
    (other activations, attention options; forward and gradients only), from bench/models."""
    out, variants = [], []
    for name, kind in models.KINDS.items():
        spec, batch_size = kind.presets["tiny"]
        out.append(Case(name, spec, batch_size, True))
        variants += [Case(f"{name}-{label}", variant, batch_size, False)
                     for label, variant in kind.parity_variants(spec)]
    return out + variants


def case_params(case: Case) -> Params:
    """Initial parameters, with biases and LayerNorm parameters moved off 0 and 1.

    Zero biases and unit scales would let a swapped or misplaced bias pass the forward
    check unnoticed.
    """
    params = canonical.init_params(case.spec, seed=PARAM_SEED)
    rng = np.random.default_rng(PARAM_SEED + 1)
    for name, value in params.items():
        if not name.endswith("kernel"):
            params[name] = value + 0.1 * rng.standard_normal(value.shape)
    return params


def optimizer_spec(name: str) -> OptimizerSpec:
    return OptimizerSpec(name=name, learning_rate=LEARNING_RATES[name], **HYPERPARAMETERS)


# ---------------------------------------------------------------------------------
# Worker side: runs inside the framework's own process.

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


# ---------------------------------------------------------------------------------
# Parent side: run the workers, then compare.

def run_worker(framework: str, dtypes: tuple[str, ...], case_names: tuple[str, ...] | None,
               threads: int = 1, scope: str = "all", device: str = "cpu") -> dict[str, Any]:
    """Run `compute` for one framework in a subprocess; never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "raw.pkl")
        env = {**os.environ, **thread_env(threads), **device_env(device),
               "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONWARNINGS": "ignore"}
        cmd = [sys.executable, "-m", "bench.parity", framework, path, ",".join(dtypes),
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


@dataclass
class Row:
    check: str        # forward, loss, grads, grads_fd, param_count, roundtrip, optimizer,
                      # trajectory, compiled, mode_forward, mode_grads
    framework: str    # one framework, "a vs b", or "a: mode vs eager"
    model: str        # the case
    dtype: str
    error: float      # max relative error (see bench.tolerances)
    tolerance: float
    passed: bool
    note: str = ""


def _row(check: str, fw: str, model: str, dtype: str, error: float, tol: float,
         note: str = "") -> Row:
    return Row(check, fw, model, dtype, float(error), float(tol), bool(error <= tol), note)


def _error_row(check: str, fw: str, model: str, dtype: str, message: str) -> Row:
    return Row(check, fw, model, dtype, float("nan"), float("nan"), False,
               "error: " + message.strip().splitlines()[0][:300])


def _scalar_rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def _form_drift(opt: OptimizerSpec, form_a: str, form_b: str, params: Params,
                grads: list[Params], losses: np.ndarray) -> tuple[float, float]:
    """First-order drift between two optimizer forms fed the same gradients.

    Returns (relative drift of the final parameters, relative drift of the loss curve).
    The loss drift uses |dL_t| <= sum |g_t| |dtheta_t| (first order in dtheta).
    """
    if form_a == form_b:
        return 0.0, 0.0
    run_a = optim.trajectory(opt, form_a, params, grads)
    run_b = optim.trajectory(opt, form_b, params, grads)
    param_drift = tolerances.relative_error(run_a[-1], run_b[-1])
    loss_drift = 0.0
    for t in range(1, len(grads)):  # the loss at step t is taken at the params after t steps
        d_loss = sum(float(np.sum(np.abs(grads[t][k]) * np.abs(run_a[t - 1][k] - run_b[t - 1][k])))
                     for k in params)
        loss_drift = max(loss_drift, d_loss / abs(losses[t]))
    return param_drift, loss_drift


def compare(raws: dict[str, dict[str, Any]], dtypes: tuple[str, ...],
            case_names: tuple[str, ...] | None = None, scope: str = "all") -> list[Row]:
    """Every check, as rows, from the workers' raw results (computed with `scope`)."""
    if scope == "modes":
        return _mode_scope_rows(raws, dtypes, case_names)
    rows: list[Row] = []
    frameworks = list(raws)
    ok = {fw: raw for fw, raw in raws.items() if "fatal" not in raw}
    for fw, raw in raws.items():
        if "fatal" in raw:
            rows.append(_error_row("all", fw, "-", "-", raw["fatal"]))

    def get(fw: str, key: tuple) -> Any:
        return ok[fw]["results"].get(key) if fw in ok else None

    for dtype in dtypes:
        for case in cases():
            if case_names and case.name not in case_names:
                continue
            params = case_params(case)
            loaded = canonical.cast(params, dtype)
            x, _ = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, 1000)
            ref_out = reference.forward(case.spec, params, x)
            static = {}
            for fw in ok:
                key = (dtype, case.name, "static")
                if key in ok[fw]["errors"]:
                    rows.append(_error_row("static", fw, case.name, dtype, ok[fw]["errors"][key]))
                    continue
                res = static[fw] = get(fw, key)
                rows.append(_row("forward", fw, case.name, dtype,
                                 tolerances.relative_error(res["forward"], ref_out),
                                 tolerances.get("forward", dtype).value))
                for loss in LOSSES:
                    xl, target = data.batch(case.spec, case.batch_size, loss, DATA_SEED, 1000)
                    rows.append(_row("loss", fw, case.name, dtype,
                                     _scalar_rel(res[f"loss:{loss}"],
                                                 reference.loss(case.spec, params, xl, target, loss)),
                                     tolerances.get("loss", dtype).value, loss))
                count = canonical.param_count(case.spec)
                rows.append(_row("param_count", fw, case.name, dtype,
                                 abs(res["param_count"] - count), 0, f"{res['param_count']} vs {count}"))
                exact = canonical.params_equal(res["params"], loaded)
                rows.append(_row("roundtrip", fw, case.name, dtype, 0.0 if exact else
                                 tolerances.relative_error(res["params"], loaded), 0, "exact"))
            for a, b in itertools.combinations([fw for fw in frameworks if fw in static], 2):
                inert = canonical.inert_params(case.spec)
                note = f"; {', '.join(inert)}: zero in exact math, vs the largest" if inert else ""
                for loss in LOSSES:
                    rows.append(_row("grads", f"{a} vs {b}", case.name, dtype,
                                     tolerances.relative_error(static[a][f"grads:{loss}"],
                                                               static[b][f"grads:{loss}"],
                                                               exactly_zero=inert),
                                     tolerances.get("grads", dtype).value, loss + note))
            if dtype == "float64" and static:
                rows += _fd_rows(case, params, static)
            if case.trajectories:
                rows += _trajectory_rows(case, dtype, loaded, frameworks, ok)
                rows += _mode_rows(case, dtype, ok)
    return rows


def _mode_scope_rows(raws: dict[str, dict[str, Any]], dtypes: tuple[str, ...],
                     case_names: tuple[str, ...] | None) -> list[Row]:
    rows = [_error_row("all", fw, "-", "-", raw["fatal"]) for fw, raw in raws.items()
            if "fatal" in raw]
    ok = {fw: raw for fw, raw in raws.items() if "fatal" not in raw}
    for dtype in dtypes:
        for case in cases():
            if case.trajectories and (not case_names or case.name in case_names):
                rows += _mode_rows(case, dtype, ok)
    return rows


def _fd_rows(case: Case, params: Params, static: dict[str, Any]) -> list[Row]:
    x, target = data.batch(case.spec, case.batch_size, "cross_entropy", DATA_SEED, 1000)
    fd_h, fd_2h = reference.finite_difference_grads(case.spec, params, x, target,
                                                    "cross_entropy", tolerances.FD_STEP)
    loss = reference.loss(case.spec, params, x, target)
    bound = tolerances.finite_difference_bound(fd_h, fd_2h, loss)
    scale = max(float(np.abs(v).max()) for v in fd_h.values())
    rows = []
    for fw, res in static.items():
        grads = res["grads:cross_entropy"]
        err = max(float(np.abs(grads[k] - fd_h[k]).max()) for k in fd_h) / scale
        rows.append(_row("grads_fd", fw, case.name, "float64", err, bound,
                         f"central differences, h={tolerances.FD_STEP:g}"))
    return rows


def _without(params: Params, names: tuple[str, ...]) -> Params:
    return {k: v for k, v in params.items() if k not in names}


def _trajectory_rows(case: Case, dtype: str, loaded: Params, frameworks: list[str],
                     ok: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    tol = tolerances.get("trajectory", dtype).value
    inert = canonical.inert_params(case.spec)
    skip_note = f"; {', '.join(inert)} left out (inert, see canonical.inert_params)" if inert else ""
    live = [f for f in frameworks if f in ok]
    for opt_name in OPTIMIZERS:
        opt = optimizer_spec(opt_name)
        runs = {}
        for fw in live:
            key = (dtype, case.name, opt_name, "default")
            if key in ok[fw]["errors"]:
                rows.append(_error_row("trajectory", fw, case.name, dtype, ok[fw]["errors"][key]))
                continue
            run = runs[fw] = ok[fw]["results"][key]
            form = ok[fw]["optimizer_forms"].get(opt_name, "plain")
            expected = optim.trajectory(opt, form, loaded, run["grads"])[-1]
            rows.append(_row("optimizer", fw, case.name, dtype,
                             tolerances.relative_error(_without(run["final"], inert),
                                                       _without(expected, inert)),
                             tolerances.get("optimizer", dtype).value,
                             f"{opt_name} ({form}) on the framework's own gradients, "
                             f"{ok[fw]['default_mode']} mode" + skip_note))
        for a, b in itertools.combinations(list(runs), 2):
            form_a = ok[a]["optimizer_forms"].get(opt_name, "plain")
            form_b = ok[b]["optimizer_forms"].get(opt_name, "plain")
            grads = [_without(g, inert) for g in runs[a]["grads"]]
            p_drift, l_drift = _form_drift(opt, form_a, form_b, _without(loaded, inert), grads,
                                           runs[a]["losses"])
            err_p = tolerances.relative_error(_without(runs[a]["final"], inert),
                                              _without(runs[b]["final"], inert))
            err_l = tolerances.relative_error(runs[a]["losses"], runs[b]["losses"])
            bound_p = tol + tolerances.FORM_DRIFT_FACTOR * p_drift
            bound_l = tol + tolerances.FORM_DRIFT_FACTOR * l_drift
            # One row: the worse of parameters and losses, each against its own bound.
            err, bound = (err_p, bound_p) if err_p / bound_p >= err_l / bound_l else (err_l, bound_l)
            note = f"{opt_name}, {STEPS} steps"
            if form_a != form_b:
                note += (f"; {a} uses {form_a}, {b} {form_b}: bound = {tol:g} + "
                         f"{tolerances.FORM_DRIFT_FACTOR:g} x drift of the two forms simulated "
                         f"on {a}'s gradients")
            rows.append(_row("trajectory", f"{a} vs {b}", case.name, dtype, err, bound,
                             note + skip_note))
    return rows


def _mode_rows(case: Case, dtype: str, ok: dict[str, dict[str, Any]]) -> list[Row]:
    """Each mode against the framework's default mode: outputs, gradients, and the
    parameters and losses of a short Adam trajectory."""
    rows: list[Row] = []
    inert = canonical.inert_params(case.spec)
    skip_note = f"; {', '.join(inert)} left out (inert, see canonical.inert_params)" if inert else ""
    for fw, raw in ok.items():
        base_mode = raw["default_mode"]
        static = raw["results"].get((dtype, case.name, "static"))
        base = raw["results"].get((dtype, case.name, COMPILED_OPTIMIZER, "default"))
        for mode in [m for m in raw["modes"] if m != base_mode]:
            label = f"{fw}: {mode} vs {base_mode}"
            key = (dtype, case.name, "static", mode)
            if key in raw["errors"] or static is None:
                rows.append(_error_row("mode_forward", f"{fw}: {mode}", case.name, dtype,
                                       raw["errors"].get(key, f"no {base_mode} result to compare with")))
            else:
                res = raw["results"][key]
                rows.append(_row("mode_forward", label, case.name, dtype,
                                 tolerances.relative_error(res["forward"], static["forward"]),
                                 tolerances.get("forward", dtype).value))
                rows.append(_row("mode_grads", label, case.name, dtype,
                                 tolerances.relative_error(res["grads"],
                                                           static["grads:cross_entropy"],
                                                           exactly_zero=inert),
                                 tolerances.get("grads", dtype).value, "cross_entropy"))
            key = (dtype, case.name, COMPILED_OPTIMIZER, mode)
            if key in raw["errors"] or base is None:
                rows.append(_error_row("compiled", f"{fw}: {mode}", case.name, dtype,
                                       raw["errors"].get(key, f"no {base_mode} run to compare with")))
                continue
            run = raw["results"][key]
            err = max(tolerances.relative_error(_without(run["final"], inert),
                                                _without(base["states"][MODE_STEPS - 1], inert)),
                      tolerances.relative_error(run["losses"], base["losses"][:MODE_STEPS]))
            rows.append(_row("compiled", label, case.name, dtype, err,
                             tolerances.get("compiled", dtype).value,
                             f"{COMPILED_OPTIMIZER}, {MODE_STEPS} steps" + skip_note))
    return rows


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """One line per (check, framework, dtype): how many rows, how many failed, and the
    row closest to its tolerance (largest error / tolerance)."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        # "tf: xla vs eager" and "tf: compiled vs eager" stay apart; pairs stay pairs.
        groups.setdefault((r.check, r.framework, r.dtype), []).append(r)

    def closeness(r: Row) -> float:
        if not r.passed or r.error != r.error:
            return float("inf")
        return r.error / r.tolerance if r.tolerance > 0 else (0.0 if r.error == 0 else float("inf"))

    out = []
    for (check, fw, dtype), members in groups.items():
        worst = max(members, key=closeness)
        out.append({"check": check, "framework": fw, "dtype": dtype, "rows": len(members),
                    "failed": sum(not r.passed for r in members), "worst model": worst.model,
                    "max error": worst.error, "tolerance": worst.tolerance})
    return out


def run_workers(frameworks: tuple[str, ...], dtypes: tuple[str, ...] = DTYPES,
                case_names: tuple[str, ...] | None = None, jobs: int = 3,
                scope: str = "all", device: str = "cpu") -> dict[str, dict]:
    """Every framework's raw results, from its own worker (up to `jobs` at once); a
    framework that is not installed gets a `fatal` entry naming the extra to install."""
    from bench import adapters

    missing = {fw: {"framework": fw, "fatal": f"{adapters.REGISTRY[fw][1]} is not installed; "
                    f"install it with: pip install 'fwbench[{adapters.REGISTRY[fw][3]}]'"}
               for fw in frameworks if not adapters.installed(fw)}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {fw: pool.submit(run_worker, fw, dtypes, case_names, 1, scope, device)
                   for fw in frameworks if fw not in missing}
        return {fw: missing[fw] if fw in missing else futures[fw].result() for fw in frameworks}


def run(frameworks: tuple[str, ...], dtypes: tuple[str, ...] = DTYPES,
        case_names: tuple[str, ...] | None = None, jobs: int = 3,
        scope: str = "all", device: str = "cpu") -> tuple[list[Row], dict]:
    """Run the workers on `device`, then compare (always against the float64 NumPy
    reference, on the host): the rows, and per framework what it reported.
    `scope` "modes" computes and checks only eager vs compiled (MODE_CHECKS)."""
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r} is not valid: allowed one of {', '.join(SCOPES)}")
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not valid: allowed one of {', '.join(DEVICES)}")
    raws = run_workers(frameworks, dtypes, case_names, jobs, scope, device)
    rows = compare(raws, dtypes, case_names, scope)
    meta = {fw: {k: raw.get(k) for k in ("versions", "device", "settings", "modes", "default_mode",
                                         "optimizer_forms", "alignments", "seconds", "fatal")
                 if k in raw}
            for fw, raw in raws.items()}
    return rows, meta


def _worker_main(argv: list[str]) -> None:
    framework, path, dtypes, names, scope, device = argv
    case_names = tuple(n for n in names.split(",") if n) or None
    raw = compute(framework, tuple(dtypes.split(",")), case_names, scope, device)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        pickle.dump(raw, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
