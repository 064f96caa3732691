"""The parent side of parity: compares the workers' raw results with the float64
reference, with finite differences and with each other, one row per check, and derives
the bounds where two frameworks' optimizers differ in math that no argument aligns."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import canonical, data, optim, reference, tolerances
from bench.canonical import Params
from bench.parity.cases import (
    COMPILED_OPTIMIZER,
    DATA_SEED,
    MODE_STEPS,
    STEPS,
    Case,
    case_params,
    cases,
    optimizer_spec,
)
from bench.spec import LOSSES, OPTIMIZERS, OptimizerSpec


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


