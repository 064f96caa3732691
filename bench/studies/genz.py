"""Genz (1987) test functions, learnt by the MLP spec from n uniform points in [0, 1]^d.

The six families, with coefficients c (difficulty) and w (shift) drawn uniformly from
[0, 1] and normalised as the study asks: sum(c) = b_j with
b = (1.5, d, 1.85, 7.03, 20.4, 4.3) for families 1..6, and sum(w) = 1.

    oscillatory    cos(2 pi w_1 + sum c_i x_i)
    product_peak   prod (c_i^-2 + (x_i - w_i)^2)^-1
    corner_peak    (1 + sum c_i x_i)^-(d + 1)
    gaussian       exp(-sum c_i^2 (x_i - w_i)^2)
    continuous     exp(-sum c_i |x_i - w_i|)
    discontinuous  0 where x_1 > w_1 or x_2 > w_2 (x_1 alone when d = 1), else exp(sum c_i x_i)

Data come from NumPy streams keyed by (seed, family, d), so every framework gets the same
points; the training sets are nested (the first n of one draw of 500), which makes the
error-vs-n curve a property of n rather than of which points were drawn. The targets are
standardised with the training set's mean and standard deviation and the errors are
reported in the function's own units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import MLPSpec, OptimizerSpec
from bench.studies.fit import Snapshots, batch_order, fit, predict

if TYPE_CHECKING:
    import pandas as pd

FAMILIES = ("oscillatory", "product_peak", "corner_peak", "gaussian", "continuous",
            "discontinuous")
NAME = "genz"
TEST_POINTS = 1000
MAX_TRAIN = 500  # the largest n: every smaller training set is a prefix of this draw

FULL = {"families": list(FAMILIES), "dims": [2, 5, 10], "sizes": [10, 50, 100, 500],
        "seeds": [0], "steps": 2000}
# --quick: every family, the two extreme dimensions, three sizes, fewer steps (~3 min
# for three frameworks on 2 cores).
QUICK = {"families": list(FAMILIES), "dims": [2, 10], "sizes": [10, 100, 500],
         "seeds": [0], "steps": 1000}
# The learner: the MLP spec with two tanh layers of 64 (smooth targets, smooth
# activation), full-batch Adam. Every framework gets these same numbers.
HIDDEN = (64, 64)
ACTIVATION = "tanh"
LEARNING_RATE = 3e-3


def difficulty_sum(family: str, d: int) -> float:
    """b_j: what the coefficients c of family j sum to in d dimensions."""
    return {"oscillatory": 1.5, "product_peak": float(d), "corner_peak": 1.85,
            "gaussian": 7.03, "continuous": 20.4, "discontinuous": 4.3}[family]


def coefficients(family: str, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(c, w) for one family and dimension: uniform draws, sum(c) = b_j, sum(w) = 1."""
    _check(family, d)
    rng = np.random.default_rng([seed, FAMILIES.index(family), d, 2])
    c = rng.uniform(0.0, 1.0, d)
    w = rng.uniform(0.0, 1.0, d)
    return c * difficulty_sum(family, d) / c.sum(), w / w.sum()


def evaluate(family: str, x: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The family's function at the rows of `x` (shape (n, d)), float64, shape (n,)."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[1]
    _check(family, d)
    if family == "oscillatory":
        return np.cos(2 * np.pi * w[0] + x @ c)
    if family == "product_peak":
        return np.prod(1.0 / (c ** -2 + (x - w) ** 2), axis=1)
    if family == "corner_peak":
        return (1.0 + x @ c) ** (-(d + 1))
    if family == "gaussian":
        return np.exp(-np.sum(c ** 2 * (x - w) ** 2, axis=1))
    if family == "continuous":
        return np.exp(-np.sum(c * np.abs(x - w), axis=1))
    outside = x[:, 0] > w[0]
    if d > 1:
        outside |= x[:, 1] > w[1]
    return np.where(outside, 0.0, np.exp(x @ c))


def dataset(family: str, d: int, n: int, seed: int) -> dict[str, np.ndarray]:
    """Training points (the first n of the stream), test points, and their values."""
    if not 1 <= n <= MAX_TRAIN:
        raise ValueError(f"genz: n={n} is not valid: allowed 1..{MAX_TRAIN}")
    c, w = coefficients(family, d, seed)
    x_train = np.random.default_rng([seed, FAMILIES.index(family), d, 0]).random((MAX_TRAIN, d))[:n]
    x_test = np.random.default_rng([seed, FAMILIES.index(family), d, 1]).random((TEST_POINTS, d))
    return {"x_train": x_train, "y_train": evaluate(family, x_train, c, w),
            "x_test": x_test, "y_test": evaluate(family, x_test, c, w)}


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One item per (family, d, n, seed); a malformed configuration is refused here,
    before anything runs."""
    for family in config["families"]:
        _check(family, 1)
    for d in config["dims"]:
        _check(FAMILIES[0], d)
    for n in config["sizes"]:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TRAIN:
            raise ValueError(f"genz: n={n!r} is not valid: allowed a whole number in 1..{MAX_TRAIN}")
    if not isinstance(config["steps"], int) or config["steps"] < 1:
        raise ValueError(f"genz: steps={config['steps']!r} is not valid: allowed a whole number >= 1")
    return [{"family": f, "d": d, "n": n, "seed": s}
            for f in config["families"] for d in config["dims"]
            for n in config["sizes"] for s in config["seeds"]]


def item_id(item: dict[str, Any]) -> str:
    return f"{item['family']}-d{item['d']}-n{item['n']}-s{item['seed']}"


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    """Train the MLP on one data set; errors on the test points, in the function's units."""
    data = dataset(item["family"], item["d"], item["n"], item["seed"])
    mean, std = data["y_train"].mean(), data["y_train"].std()
    std = std if std > 0 else 1.0  # a constant training set (possible for n tiny)
    spec = MLPSpec(in_features=item["d"], hidden=HIDDEN, out_features=1, activation=ACTIVATION)
    params = init_params(spec, seed=item["seed"])
    target = ((data["y_train"] - mean) / std)[:, None]
    run = fit(adapter, spec, params, data["x_train"], target,
              OptimizerSpec("adam", LEARNING_RATE), "mse",
              batch_order(item["n"], item["n"], config["steps"], item["seed"]), mode=mode,
              snapshots=snapshots)
    y_hat = predict(adapter, run.model, data["x_test"], mode=mode)[:, 0] * std + mean
    error = np.abs(y_hat - data["y_test"])
    return {"metrics": {"mean_abs_error": float(error.mean()), "max_abs_error": float(error.max()),
                        "test_std": float(data["y_test"].std()),
                        "final_train_loss": run.losses[-1], "train_s": run.train_s,
                        "first_step_s": run.first_step_s,
                        "median_step_ms": float(np.median(run.step_ms))},
            "curves": {"loss": run.losses, "step_ms": run.step_ms}}


def _check(family: str, d: int) -> None:
    if family not in FAMILIES:
        raise ValueError(f"genz: family={family!r} is not valid: allowed one of {', '.join(FAMILIES)}")
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"genz: d={d!r} is not valid: allowed a whole number >= 1")


def summary(frame: "pd.DataFrame") -> str:
    """Mean absolute error (relative to the test values' standard deviation) by family and
    dimension (rows) and n (columns), one block per framework."""
    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        return "genz: no item trained"
    ok["relative_error"] = ok["mean_abs_error"] / ok["test_std"].where(ok["test_std"] > 0)
    blocks = []
    for framework, part in ok.groupby("framework", sort=False):
        table = part.pivot_table(index=["family", "d"], columns="n", values="relative_error",
                                 aggfunc="mean")
        blocks.append(f"{framework}: mean |error| / std(f) on {TEST_POINTS} test points\n"
                      + table.to_string(float_format=lambda v: f"{v:.3f}"))
    return "\n\n".join(blocks)
