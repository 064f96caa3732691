"""Backpropagation through time by hand, in float64 NumPy: the arbiter of the gradients
study (bench.studies.gradients).

For a one-layer vanilla RNN or LSTM with its head on the last step (the canonical layout,
docs/design.md) and the mean cross entropy over the batch, it returns the gradient of
the loss with respect to every step's input, d loss / d x_t, from the chain rule
written out step by step. The frameworks compute the same quantity by their own
autodiff (Adapter.input_grads); this module shares no code with them, and the tests
check it against central finite differences of bench.reference.
"""

from __future__ import annotations

import numpy as np

from bench.models.numerics import Params, sigmoid, softmax
from bench.models.recurrent import RecurrentSpec


def input_grads(spec: RecurrentSpec, params: Params, x: np.ndarray, labels: np.ndarray,
                dtype: str = "float64") -> tuple[float, np.ndarray]:
    """(loss, d loss / d x) for a one-layer `rnn` or `lstm` spec with its head on the last
    step; x (batch, T, in), labels (batch,) integers. `dtype` "float32" runs the same
    arithmetic in float32: its distance from float64 is what rounding alone does."""
    kind = type(spec).kind
    if spec.num_layers != 1 or spec.every_step or kind not in ("rnn", "lstm"):
        raise ValueError(f"bptt: a one-layer rnn or lstm with its head on the last step, "
                         f"not {spec}")
    p = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    x = np.asarray(x, dtype=dtype)
    step, back = (_rnn_step, _rnn_back) if kind == "rnn" else (_lstm_step, _lstm_back)
    kernel, recurrent, bias = (p[f"{kind}.0.{n}"] for n in ("kernel", "recurrent_kernel", "bias"))
    batch, steps, _ = x.shape
    state = {"h": np.zeros((batch, spec.hidden_size), dtype), "c": np.zeros((batch, spec.hidden_size), dtype)}
    saved = []
    for t in range(steps):
        state, keep = step(x[:, t] @ kernel + state["h"] @ recurrent + bias, state)
        saved.append(keep)
    logits = state["h"] @ p["head.kernel"] + p["head.bias"]
    probs = softmax(logits)
    rows = np.arange(batch)
    loss = float(-np.log(probs[rows, labels]).mean())
    d_logits = probs.copy()
    d_logits[rows, labels] -= 1.0
    d_logits /= batch  # the loss is the batch mean
    d_state = {"h": d_logits @ p["head.kernel"].T, "c": np.zeros((batch, spec.hidden_size), dtype)}
    dx = np.zeros_like(x)
    for t in reversed(range(steps)):
        d_pre, d_state = back(d_state, saved[t])
        dx[:, t] = d_pre @ kernel.T
        d_state["h"] = d_pre @ recurrent.T
    return loss, dx


def _rnn_step(pre: np.ndarray, state: dict) -> tuple[dict, dict]:
    h = np.tanh(pre)
    return {"h": h, "c": state["c"]}, {"h": h}


def _rnn_back(d_state: dict, keep: dict) -> tuple[np.ndarray, dict]:
    """d pre-activation from d h (h = tanh(pre))."""
    return d_state["h"] * (1.0 - keep["h"] ** 2), d_state


def _lstm_step(pre: np.ndarray, state: dict) -> tuple[dict, dict]:
    hs = state["h"].shape[1]
    i, f, g, o = (pre[:, k * hs:(k + 1) * hs] for k in range(4))
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c = f * state["c"] + i * g
    tanh_c = np.tanh(c)
    return ({"h": o * tanh_c, "c": c},
            {"i": i, "f": f, "g": g, "o": o, "c_prev": state["c"], "tanh_c": tanh_c})


def _lstm_back(d_state: dict, k: dict) -> tuple[np.ndarray, dict]:
    """d pre-activations (i, f, g, o blocks) from d h and d c of this step; d c of the
    step before (through the forget gate)."""
    d_o = d_state["h"] * k["tanh_c"]
    d_c = d_state["c"] + d_state["h"] * k["o"] * (1.0 - k["tanh_c"] ** 2)
    d_pre = np.concatenate([d_c * k["g"] * k["i"] * (1.0 - k["i"]),
                            d_c * k["c_prev"] * k["f"] * (1.0 - k["f"]),
                            d_c * k["i"] * (1.0 - k["g"] ** 2),
                            d_o * k["o"] * (1.0 - k["o"])], axis=1)
    return d_pre, {"h": None, "c": d_c * k["f"]}


def step_norms(dx: np.ndarray) -> np.ndarray:
    """Per time step, the norm of the batch's input gradient at that step (the square
    root of the sum of squares over the batch and the features): (T,)."""
    return np.sqrt((np.asarray(dx, dtype=np.float64) ** 2).sum(axis=(0, 2)))
