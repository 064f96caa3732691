"""Architecture and optimizer sweep of the MLP on scikit-learn's digits data set (1,797
8x8 images of handwritten digits, shipped inside the scikit-learn wheel).

Two grids, each item trained with every seed:

    activation x optimizer   relu, tanh, sigmoid, swish x the six optimizers, at 2 hidden
                             layers of 64 ("which optimizer/activation works best")
    depth x width            1-3 hidden layers x 32, 64, 128 units, relu and Adam

The split (80% train, 20% test, stratified by class) is fixed by SPLIT_SEED, so every seed
and framework is scored on the same 359 images; features are standardised with the
training part's statistics. Each optimizer has one learning rate, chosen once for this
data set and given to every framework alike (not tuned per framework): LEARNING_RATES.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import ACTIVATIONS, OPTIMIZERS, MLPSpec, OptimizerSpec
from bench.studies.fit import Snapshots, batch_order, fit, predict

if TYPE_CHECKING:
    import pandas as pd

NAME = "sweep"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.05,
                  "rmsprop": 1e-3, "adam": 1e-3}
BASE = {"layers": 2, "width": 64, "activation": "relu", "optimizer": "adam"}
FULL = {"activations": ["relu", "tanh", "sigmoid", "swish"], "optimizers": list(OPTIMIZERS),
        "depths": [1, 2, 3], "widths": [32, 64, 128], "epochs": 30, "batch_size": 64,
        "seeds": [0, 1, 2]}
QUICK = {**FULL, "epochs": 15, "seeds": [0]}


def digits() -> dict[str, np.ndarray]:
    """The fixed split: standardised features (float64) and integer labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the sweep study reads scikit-learn's digits data set: "
                          "pip install 'fwbench[studies]'") from exc
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):  # stratified: the same share of every class in the test part
        rows = rng.permutation(np.flatnonzero(y == label))
        test[rows[:int(round(len(rows) * TEST_FRACTION))]] = True
    mean, std = x[~test].mean(axis=0), x[~test].std(axis=0)
    std[std == 0] = 1.0  # pixels that are blank in every training image
    x = (x - mean) / std
    return {"x_train": x[~test], "y_train": y[~test], "x_test": x[test], "y_test": y[test]}


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Activation x optimizer at the base depth and width, then depth x width at the base
    activation and optimizer (the base point once), each with every seed."""
    for name in config["activations"]:
        if name not in ACTIVATIONS:
            raise ValueError(f"sweep: activation {name!r} is not valid: allowed {', '.join(ACTIVATIONS)}")
    for name in config["optimizers"]:
        if name not in OPTIMIZERS:
            raise ValueError(f"sweep: optimizer {name!r} is not valid: allowed {', '.join(OPTIMIZERS)}")
    for key in ("depths", "widths"):
        if any(not isinstance(v, int) or v < 1 for v in config[key]):
            raise ValueError(f"sweep: {key}={config[key]!r} is not valid: allowed whole numbers >= 1")
    points = [{**BASE, "activation": a, "optimizer": o, "grid": "activation_optimizer"}
              for a in config["activations"] for o in config["optimizers"]]
    points += [{**BASE, "layers": n, "width": w, "grid": "depth_width"}
               for n in config["depths"] for w in config["widths"]]
    unique: dict[str, dict[str, Any]] = {}
    for point in points:
        unique.setdefault(_point_id(point), point)
    return [{**p, "seed": s} for s in config["seeds"] for p in unique.values()]


def _point_id(point: dict[str, Any]) -> str:
    return f"{point['layers']}x{point['width']}-{point['activation']}-{point['optimizer']}"


def item_id(item: dict[str, Any]) -> str:
    return f"{_point_id(item)}-s{item['seed']}"


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    data = digits()
    spec = MLPSpec(in_features=data["x_train"].shape[1], hidden=(item["width"],) * item["layers"],
                   out_features=10, activation=item["activation"])
    params = init_params(spec, seed=item["seed"])
    optimizer = OptimizerSpec(item["optimizer"], LEARNING_RATES[item["optimizer"]])
    run = fit(adapter, spec, params, data["x_train"], data["y_train"], optimizer, "cross_entropy",
              batch_order(len(data["y_train"]), config["batch_size"], config["epochs"], item["seed"]),
              mode=mode, snapshots=snapshots)
    accuracy = {}
    for part in ("train", "test"):
        logits = predict(adapter, run.model, data[f"x_{part}"], mode=mode)
        accuracy[part] = float(np.mean(logits.argmax(axis=1) == data[f"y_{part}"]))
    return {"metrics": {"test_accuracy": accuracy["test"], "train_accuracy": accuracy["train"],
                        "learning_rate": optimizer.learning_rate, "steps": len(run.losses),
                        "final_train_loss": run.losses[-1], "train_s": run.train_s,
                        "first_step_s": run.first_step_s,
                        "median_step_ms": float(np.median(run.step_ms))},
            "curves": {"loss": run.losses, "step_ms": run.step_ms}}


def grid_table(frame: "pd.DataFrame", grid: str, rows: str, columns: str,
               value: str = "test_accuracy") -> "pd.DataFrame":
    """Mean over seeds of `value`, `rows` x (framework, `columns`), for one grid (the base
    point belongs to both grids)."""
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    if grid == "activation_optimizer":
        ok = ok[(ok["layers"] == BASE["layers"]) & (ok["width"] == BASE["width"])]
    else:
        ok = ok[(ok["activation"] == BASE["activation"]) & (ok["optimizer"] == BASE["optimizer"])]
    return ok.pivot_table(index=rows, columns=["framework", columns], values=value, aggfunc="mean")


def summary(frame: "pd.DataFrame") -> str:
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return "sweep: no item trained"
    acc = grid_table(frame, "activation_optimizer", "optimizer", "activation")
    depth = grid_table(frame, "depth_width", "layers", "width")
    times = ok.groupby("framework", sort=False)["median_step_ms"].median()
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    return ("test accuracy (%), mean over seeds: optimizer x (framework, activation), "
            f"{BASE['layers']} layers of {BASE['width']}\n" + acc.to_string(float_format=pct)
            + f"\n\ntest accuracy (%): layers x (framework, width), {BASE['activation']} + "
            f"{BASE['optimizer']}\n" + depth.to_string(float_format=pct)
            + "\n\nmedian step time over all items (ms): "
            + ", ".join(f"{fw} {v:.2f}" for fw, v in times.items()))
