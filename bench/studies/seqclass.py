"""Sequence classification: scikit-learn's digits read as sequences by the vanilla RNN and
the LSTM ("program a simple RNN and use it for classification").

    rows     each 8x8 image as 8 steps of 8 pixels (a row per step)
    pixels   the harder order: 64 steps of one pixel each, row by row, so the label
             depends on inputs up to 64 steps before the last, where the RNN's gradient
             has faded (bench.studies.gradients)

The images, their standardisation and the stratified 80/20 split are the sweep study's
(bench.studies.sweep.digits: the same 1,438 training and 359 test images for every
framework, model, order and seed). One recurrent layer, the head on the last step, Adam,
the same learning rate, epochs and batch order everywhere; test accuracy over seeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import LSTMSpec, OptimizerSpec, RNNSpec
from bench.studies import spread
from bench.studies.fit import Snapshots, batch_order, fit, predict
from bench.studies.sweep import digits

if TYPE_CHECKING:
    import pandas as pd

NAME = "seqclass"
SPECS = {"rnn": RNNSpec, "lstm": LSTMSpec}
ORDERS = {"rows": (8, 8), "pixels": (64, 1)}  # order -> (steps, features per step)
FULL = {"models": ["rnn", "lstm"], "orders": ["rows", "pixels"], "hidden_size": 64,
        "epochs": 30, "batch_size": 32, "learning_rate": 3e-3, "seeds": [0, 1, 2]}
QUICK = {**FULL, "epochs": 10, "seeds": [0]}


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    bad = [m for m in config["models"] if m not in SPECS] + [
        o for o in config["orders"] if o not in ORDERS]
    if bad or not config["models"] or not config["orders"]:
        raise ValueError(f"seqclass: models={config['models']!r}, orders={config['orders']!r}: "
                         f"allowed models {', '.join(SPECS)} and orders {', '.join(ORDERS)}")
    for key in ("hidden_size", "epochs", "batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"seqclass: {key}={config[key]!r} is not valid: allowed a whole number >= 1")
    return [{"model": m, "order": o, "seed": s}
            for o in config["orders"] for m in config["models"] for s in config["seeds"]]


def item_id(item: dict[str, Any]) -> str:
    return f"{item['model']}-{item['order']}-s{item['seed']}"


def as_sequences(x: np.ndarray, order: str) -> np.ndarray:
    """(images, 64) standardised pixels -> (images, steps, features) in `order`."""
    steps, width = ORDERS[order]
    return np.asarray(x).reshape(len(x), steps, width)


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    data = digits()
    steps, width = ORDERS[item["order"]]
    spec = SPECS[item["model"]](in_features=width, hidden_size=config["hidden_size"], num_layers=1,
                                seq_len=steps, out_features=10)
    x_train = as_sequences(data["x_train"], item["order"])
    run = fit(adapter, spec, init_params(spec, seed=item["seed"]), x_train, data["y_train"],
              OptimizerSpec("adam", config["learning_rate"]), "cross_entropy",
              batch_order(len(x_train), config["batch_size"], config["epochs"], item["seed"]),
              mode=mode, snapshots=snapshots)
    accuracy = {}
    for part in ("train", "test"):
        logits = predict(adapter, run.model, as_sequences(data[f"x_{part}"], item["order"]), mode=mode)
        accuracy[part] = float(np.mean(logits.argmax(axis=1) == data[f"y_{part}"]))
    return {"metrics": {"test_accuracy": accuracy["test"], "train_accuracy": accuracy["train"],
                        "steps": len(run.losses), "final_train_loss": run.losses[-1],
                        "train_s": run.train_s, "first_step_s": run.first_step_s,
                        "median_step_ms": float(np.median(run.step_ms))},
            "curves": {"loss": run.losses, "step_ms": run.step_ms}}


def accuracy_table(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Per (order, model, framework): test accuracy (%) over seeds."""
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    table = spread.over_seeds(ok.assign(test_accuracy=100 * ok["test_accuracy"]),
                              ["order", "model"], "test_accuracy")
    return table


def finding_lines(frame: "pd.DataFrame") -> list[str]:
    table = accuracy_table(frame)
    if table.empty:
        return []
    lines = []
    means = table.groupby(["order", "model"], sort=False)["mean"]
    for order in dict.fromkeys(table["order"]):
        parts = [f"the {model.upper() if model == 'rnn' else 'LSTM'} "
                 f"{means.min()[(order, model)]:.1f}-{means.max()[(order, model)]:.1f}%"
                 for model in dict.fromkeys(table[table["order"] == order]["model"])]
        lines.append(f"Read {'row by row (8 steps)' if order == 'rows' else 'pixel by pixel (64 steps)'}: "
                     + ", ".join(parts) + " test accuracy (range of the frameworks' means over seeds).")
    agree = spread.agreement(table, ["order", "model"])
    decided = agree.dropna(subset=["agree"])
    if len(decided):
        lines.append(f"The frameworks' mean accuracies lie within the pooled seed-to-seed sd of "
                     f"each other in {int(decided['agree'].sum())} of {len(decided)} (order, model) "
                     f"cases; largest gap {agree['largest_gap'].max():.1f} points.")
    return lines


def summary(frame: "pd.DataFrame") -> str:
    table = accuracy_table(frame)
    if table.empty:
        return "seqclass: no item trained"
    return ("digits test accuracy (%), mean and sd over seeds\n"
            + table.to_string(index=False, float_format=lambda v: f"{v:.2f}")
            + "\n\n" + "\n".join(finding_lines(frame)))
