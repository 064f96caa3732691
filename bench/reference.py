"""Float64 NumPy forward pass and losses: the arbiter of parity.

Written from the canonical layout in docs/design.md, with no framework and no
shared code with the adapters beyond the positional encoding table, which is itself
the design's formula. Each kind's forward pass is in its bench/models module, built from
bench/models/numerics.py; this module checks and casts the inputs and adds the losses
and finite differences.
"""

from __future__ import annotations

import numpy as np

from bench import models
from bench.canonical import Params, check_params
from bench.models.kind import ModelSpec
from bench.models.numerics import ACTIVATION_FUNCTIONS, activation, positional_encoding  # noqa: F401  (public)


def forward(spec: ModelSpec, params: Params, x: np.ndarray) -> np.ndarray:
    """Model output (logits or regression values), float64."""
    check_params(spec, params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    return models.of(spec).forward(spec, p, x)


def loss_value(loss: str, output: np.ndarray, target: np.ndarray) -> float:
    """Mean cross entropy on integer labels (softmax over the output's last axis, a label
    per output row: per step for a head on every step), or mean squared error."""
    output = np.asarray(output, dtype=np.float64)
    if loss == "cross_entropy":
        shifted = output - output.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        # labels (batch,), or (batch, T) for a head on every step: the mean over all
        labels = np.asarray(target, dtype=np.int64)
        return float(-np.take_along_axis(log_probs, labels[..., None], axis=-1).mean())
    if loss == "mse":
        return float(((output - np.asarray(target, dtype=np.float64)) ** 2).mean())
    raise ValueError(f"loss={loss!r} is not valid: allowed one of cross_entropy, mse")


def loss(spec: ModelSpec, params: Params, x: np.ndarray, target: np.ndarray,
         loss: str = "cross_entropy") -> float:
    return loss_value(loss, forward(spec, params, x), target)


def finite_difference_grads(spec: ModelSpec, params: Params, x: np.ndarray, target: np.ndarray,
                            loss_name: str, step: float) -> tuple[Params, Params]:
    """Central differences of the reference loss, with steps h and 2h, per element.

    Returns (grads with step h, grads with step 2h); their difference estimates the
    truncation error (see bench.tolerances.finite_difference_bound).
    """
    p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    out_h: Params = {}
    out_2h: Params = {}
    for name, value in p.items():
        g_h = np.zeros_like(value)
        g_2h = np.zeros_like(value)
        flat, gh, g2h = value.reshape(-1), g_h.reshape(-1), g_2h.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            vals = {}
            for mult in (-2, -1, 1, 2):
                flat[i] = original + mult * step
                vals[mult] = loss(spec, p, x, target, loss_name)
            flat[i] = original
            gh[i] = (vals[1] - vals[-1]) / (2 * step)
            g2h[i] = (vals[2] - vals[-2]) / (4 * step)
        out_h[name], out_2h[name] = g_h, g_2h
    return out_h, out_2h
