"""Float64 NumPy building blocks of the reference forward passes, and the FLOP unit.

Written from the canonical layout in docs/design.md (dense y = x @ kernel + bias,
LayerNorm with `.scale` and `.bias`), with no framework. Each model kind's module
composes its reference forward pass from these.
"""

from __future__ import annotations

import numpy as np

Params = dict[str, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    # Imported here: scipy.special takes 0.2 s to import, paid by every measured process.
    from scipy.special import erf

    return erf(x)


ACTIVATION_FUNCTIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * sigmoid(x),
    "identity": lambda x: x,
}


def activation(name: str, x: np.ndarray) -> np.ndarray:
    return ACTIVATION_FUNCTIONS[name](x)


def positional_encoding(seq_len: int, d_model: int) -> np.ndarray:
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(same); shape (T, d), float64."""
    t = np.arange(seq_len, dtype=np.float64)[:, None]
    two_i = np.arange(0, d_model, 2, dtype=np.float64)[None, :]
    angle = t / np.power(10000.0, two_i / d_model)
    pe = np.zeros((seq_len, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe


def dense(p: Params, name: str, x: np.ndarray) -> np.ndarray:
    return x @ p[f"{name}.kernel"] + p[f"{name}.bias"]


def layer_norm(p: Params, name: str, x: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p[f"{name}.scale"] + p[f"{name}.bias"]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def dense_shapes(name: str, n_in: int, n_out: int) -> list[tuple[str, tuple[int, ...]]]:
    """Canonical entries of a dense layer: kernel (in, out), bias (out,)."""
    return [(f"{name}.kernel", (n_in, n_out)), (f"{name}.bias", (n_out,))]


def matmul_flops(rows: int, inner: int, cols: int) -> int:
    """FLOPs of a (rows x inner) @ (inner x cols) product (a multiply-add is 2)."""
    return 2 * rows * inner * cols
