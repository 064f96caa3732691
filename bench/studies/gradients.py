"""Vanishing and exploding gradients: why a vanilla RNN forgets what an LSTM can keep.

For one-layer RNNs and LSTMs over `seq_len` steps, with the head on the last step, the
norm of the loss's gradient with respect to each step's input x_t (by the framework's own
backpropagation through time, Adapter.input_grads), against the distance from the output
d = T - 1 - t:

    weights    canonical Glorot init (seeded), then each H x H block of the recurrent
               kernel (the LSTM's four gate blocks one by one) scaled to spectral radius
               `radius`: below 1 the linearised recurrence shrinks a gradient at every
               step, above 1 it can grow it
    LSTM       its forget-gate bias set to each of `forget_biases`: the gradient along
               the cell state is multiplied by the forget gate (about sigmoid(bias)) at
               every step, so a bias of 0 (f ~ 0.5) forgets as fast as the RNN and a
               large one (f ~ 1, Jozefowicz et al. 2015 recommend 1) keeps it
    inputs     standard normal times `input_scale`, random labels; small inputs keep
               tanh in its linear range, where the radius decides
    arbiter    the same gradient in float64 by hand (bench.studies.bptt): each
               framework's float32 norm per step is compared with it, so the three
               frameworks' backpropagation through time is checked step by step
    fit        log10(norm) against d, least squares over the steps above NORM_FLOOR:
               the decay per step is 10^slope (below 1: vanishing; above 1: exploding)

No training: one gradient per item, from the same weights and batch in every framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import LSTMSpec, RNNSpec
from bench.studies import bptt
from bench.studies.fit import Snapshots

if TYPE_CHECKING:
    import pandas as pd

NAME = "gradients"
FULL = {"models": ["rnn", "lstm"], "seq_len": 128, "hidden_size": 64, "in_features": 8,
        "out_features": 10, "batch_size": 16, "input_scale": 0.1, "radii": [0.5, 1.0, 1.5],
        "forget_biases": [0.0, 1.0, 3.0], "seeds": [0, 1, 2]}
QUICK = {**FULL, "seeds": [0]}
SPECS = {"rnn": RNNSpec, "lstm": LSTMSpec}
GATES = {"rnn": 1, "lstm": 4}
# Norms below this are left out of the fit and of the comparison with the reference:
# float32's smallest normal number is 1.2e-38, and a gradient that small has passed
# through subnormals, losing relative precision (or reached 0).
NORM_FLOOR = 1e-30
# Largest relative difference, per step, between a framework's float32 norm and the
# float64 reference: parity's float32 gradient tolerance (bench.tolerances), or, where
# the recurrence amplifies rounding more than that, ROUNDING_MARGIN times what float32
# rounding alone does to this item: the distance of the same hand-written BPTT run in
# float32 NumPy from its float64 run. Where the norm grows (RNN, radius 1.5) that
# distance reached 3.0e-4 on 128 steps, and the frameworks' 2.2e-4.
TOLERANCE = 1e-4
ROUNDING_MARGIN = 10.0
SPAN = 100  # steps over which the "orders of magnitude" are counted


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = [m for m in config["models"] if m not in SPECS]
    if unknown or not config["models"]:
        raise ValueError(f"gradients: models={config['models']!r}: allowed rnn, lstm")
    for key in ("seq_len", "hidden_size", "in_features", "out_features", "batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"gradients: {key}={config[key]!r} is not valid: allowed a whole number >= 1")
    if not config["radii"] or any(not r > 0 for r in config["radii"]):
        raise ValueError(f"gradients: radii={config['radii']!r}: allowed numbers > 0")
    out = []
    for model in config["models"]:
        biases = config["forget_biases"] if model == "lstm" else [None]
        out += [{"model": model, "radius": float(r), "forget_bias": b, "seed": s}
                for r in config["radii"] for b in biases for s in config["seeds"]]
    return out


def item_id(item: dict[str, Any]) -> str:
    bias = "" if item["forget_bias"] is None else f"-fb{item['forget_bias']:g}"
    return f"{item['model']}-r{item['radius']:g}{bias}-s{item['seed']}"


def spec_of(item: dict[str, Any], config: dict[str, Any]) -> RNNSpec | LSTMSpec:
    return SPECS[item["model"]](in_features=config["in_features"],
                                hidden_size=config["hidden_size"], num_layers=1,
                                seq_len=config["seq_len"], out_features=config["out_features"])


def weights(item: dict[str, Any], config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Canonical init of the item's seed, the recurrent blocks scaled to the item's
    spectral radius, the LSTM's forget-gate bias set."""
    model, h = item["model"], config["hidden_size"]
    params = init_params(spec_of(item, config), seed=item["seed"])
    recurrent = params[f"{model}.0.recurrent_kernel"]
    for gate in range(GATES[model]):
        block = recurrent[:, gate * h:(gate + 1) * h]
        recurrent[:, gate * h:(gate + 1) * h] = block * (
            item["radius"] / np.abs(np.linalg.eigvals(block)).max())
    if model == "lstm":
        params["lstm.0.bias"][h:2 * h] = item["forget_bias"]  # gate blocks i, f, g, o
    return params


def batch(item: dict[str, Any], config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([item["seed"], 17])
    x = config["input_scale"] * rng.standard_normal(
        (config["batch_size"], config["seq_len"], config["in_features"]))
    return x, rng.integers(0, config["out_features"], size=config["batch_size"])


def by_distance(norms: np.ndarray) -> np.ndarray:
    """Per-step norms reordered by distance from the output: [d = 0, 1, ..., T-1]."""
    return np.asarray(norms)[::-1]


def fit_decay(norms_by_distance: np.ndarray) -> tuple[float, float]:
    """(decay per step, r^2) of the least-squares line through log10(norm) against the
    distance, over the distances whose norm is above NORM_FLOOR."""
    d = np.arange(len(norms_by_distance))
    keep = norms_by_distance > NORM_FLOOR
    if keep.sum() < 2:
        return float("nan"), float("nan")
    y = np.log10(norms_by_distance[keep])
    slope, intercept = np.polyfit(d[keep], y, 1)
    residual = y - (slope * d[keep] + intercept)
    spread = ((y - y.mean()) ** 2).sum()
    return float(10.0 ** slope), float(1.0 - (residual ** 2).sum() / spread) if spread > 0 else 1.0


def orders(norms_by_distance: np.ndarray, span: int = SPAN) -> float:
    """log10(norm at d=0 / norm at d=span): how many orders of magnitude the gradient
    loses over `span` steps (negative: it grows); nan if the sequence is shorter."""
    if len(norms_by_distance) <= span or norms_by_distance[span] <= 0:
        return float("nan") if len(norms_by_distance) <= span else float("inf")
    return float(np.log10(norms_by_distance[0] / norms_by_distance[span]))


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    """One input gradient (nothing is trained, so `snapshots` has nothing to take)."""
    spec, params = spec_of(item, config), weights(item, config)
    x, labels = batch(item, config)
    model = adapter.build(spec, params, dtype="float32")
    loss, dx = adapter.input_grads(model, x, labels, "cross_entropy", mode=mode)
    ref_loss, ref_dx = bptt.input_grads(spec, params, x, labels)
    mine, ref = by_distance(bptt.step_norms(dx)), by_distance(bptt.step_norms(ref_dx))
    rounded = by_distance(bptt.step_norms(bptt.input_grads(spec, params, x, labels, "float32")[1]))
    compared = ref > NORM_FLOOR
    errors = np.abs(mine[compared] - ref[compared]) / ref[compared]
    rounding = float((np.abs(rounded[compared] - ref[compared]) / ref[compared]).max())
    tolerance = max(TOLERANCE, ROUNDING_MARGIN * rounding)
    # exactly 0 where the reference is not: the value went below float32's subnormals, or
    # was flushed to zero once subnormal (TensorFlow and JAX did on this CPU, torch not)
    zeros = np.flatnonzero((mine == 0) & (ref > 0))
    decay, r2 = fit_decay(mine)
    ref_decay, _ = fit_decay(ref)
    metrics = {"loss": loss, "loss_error": abs(loss - ref_loss) / abs(ref_loss),
               "norm_d0": float(mine[0]), f"norm_d{SPAN}": float(mine[SPAN]) if len(mine) > SPAN else None,
               "norm_far": float(mine[-1]), f"orders_{SPAN}": orders(mine),
               f"reference_orders_{SPAN}": orders(ref), "decay_per_step": decay, "fit_r2": r2,
               "reference_decay_per_step": ref_decay,
               "max_rel_error": float(errors.max()) if errors.size else float("nan"),
               "steps_compared": int(compared.sum()), "float32_rounding": rounding,
               "zero_steps": int(zeros.size),
               "first_zero_distance": int(zeros[0]) if zeros.size else None,
               "reference_at_first_zero": float(ref[zeros[0]]) if zeros.size else None,
               "tolerance": tolerance, "agrees": bool(errors.size and errors.max() <= tolerance)}
    return {"metrics": metrics, "curves": {"grad_norm_by_distance": mine.tolist()},
            "outputs": {"norms": mine.tolist(), "reference": ref.tolist()}}


def table(frame: "pd.DataFrame") -> "pd.DataFrame":
    """One row per (model, radius, forget bias, framework): mean over seeds of the orders
    of magnitude lost over SPAN steps, the fitted decay per step, and the largest
    relative error against the float64 reference (max over seeds)."""
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")].copy()
    if ok.empty:
        return ok
    ok["forget_bias"] = ok["forget_bias"].astype(object).where(ok["forget_bias"].notna(), "-")
    return (ok.groupby(["model", "radius", "forget_bias", "framework"], sort=False)
              .agg(seeds=("seed", "size"), orders=(f"orders_{SPAN}", "mean"),
                   reference_orders=(f"reference_orders_{SPAN}", "mean"),
                   decay_per_step=("decay_per_step", "mean"), fit_r2=("fit_r2", "min"),
                   max_rel_error=("max_rel_error", "max"),
                   float32_rounding=("float32_rounding", "max"), tolerance=("tolerance", "max"),
                   agrees=("agrees", "all"))
              .reset_index())


def finding_lines(frame: "pd.DataFrame") -> list[str]:
    """The study's answers as sentences: the RNN against the LSTM below radius 1, and
    whether the frameworks agree with the reference step by step."""
    t = table(frame)
    if t.empty:
        return []
    lines = []
    per = t.groupby(["model", "radius", "forget_bias"], sort=False)["reference_orders"].first()
    below = sorted(r for r in t["radius"].unique() if r < 1)
    for radius in below:
        parts = []
        if ("rnn", radius, "-") in per:
            parts.append(f"the RNN's gradient norm falls by {per[('rnn', radius, '-')]:.1f} "
                         f"orders of magnitude over {SPAN} steps")
        for (model, r, bias), value in per.items():
            if model == "lstm" and r == radius:
                parts.append(f"the LSTM's with forget-gate bias {bias:g} by {value:.1f}")
        lines.append(f"At spectral radius {radius:g}, " + "; ".join(parts)
                     + " (float64 reference, mean over seeds; negative: it grows).")
    for radius in below:
        lstm = {bias: v for (m, r, bias), v in per.items() if m == "lstm" and r == radius}
        kept = [b for b, v in lstm.items() if v < 1]
        lost = [b for b, v in lstm.items() if v >= 1]
        if lstm:
            lines.append(
                f"So at radius {radius:g} the LSTM kept its gradient (it lost less than one order "
                f"of magnitude over {SPAN} steps, or grew) with forget-gate bias "
                f"{', '.join(f'{b:g}' for b in kept) or 'none of those tried'}"
                + (f", and not with {', '.join(f'{b:g}' for b in lost)}" if lost else "")
                + ": at initialisation it is the forget gate (about sigmoid(bias) per step "
                "along the cell state) that keeps a gradient, not the cell alone.")
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    if "zero_steps" in ok:
        zeroed = ok[ok["zero_steps"] > 0]
        for fw, part in zeroed.groupby("framework", sort=False):
            first = part.loc[part["first_zero_distance"].idxmin()]
            lines.append(
                f"{fw}'s float32 gradient is exactly 0 at {int(part['zero_steps'].sum())} steps of "
                f"{len(part)} items where the reference is not, from distance "
                f"{int(first['first_zero_distance'])} on in {first['item_id']}, where the "
                f"reference norm is still {first['reference_at_first_zero']:.1e}, near float32's "
                f"smallest normal number (1.2e-38) and far above its smallest subnormal "
                f"(1.4e-45): {fw} flushed subnormal values to zero.")
        kept = sorted(set(ok["framework"]) - set(zeroed["framework"]))
        if len(zeroed) and kept:
            lines.append(f"{', '.join(kept)} kept the subnormal values (no exact zeros). Those "
                         f"steps lie below the comparison's floor of {NORM_FLOOR:g}.")
    bad = t[~t["agrees"].astype(bool)]
    lines.append(
        f"Per step, the framework's float32 norm is within float32 tolerance of the float64 "
        f"backpropagation by hand ({TOLERANCE:g} relative, or {ROUNDING_MARGIN:g} times what "
        f"float32 rounding alone does to the row, up to {t['tolerance'].max():.1e}) in "
        f"{len(t) - len(bad)} of {len(t)} (model, radius, bias, framework) rows; largest "
        f"error {t['max_rel_error'].max():.1e}"
        + (f"; outside it: {', '.join(f'{r.framework} {r.model} r{r.radius:g}' for r in bad.itertuples())}"
           if len(bad) else "") + ".")
    return lines


def summary(frame: "pd.DataFrame") -> str:
    t = table(frame)
    if t.empty:
        return "gradients: no item computed"
    return (f"orders of magnitude the input gradient loses over {SPAN} steps (mean over seeds), "
            f"fitted decay per step, largest relative error against float64 BPTT\n"
            + t.to_string(index=False, float_format=lambda v: f"{v:.3g}")
            + "\n\n" + "\n".join(finding_lines(frame)))
