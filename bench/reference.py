"""Float64 NumPy forward pass and losses: the arbiter of parity.

Written from the canonical layout in docs/design.md, with no framework and no
shared code with the adapters beyond the positional encoding table, which is itself
the design's formula.
"""

from __future__ import annotations

import numpy as np

from bench.canonical import Params, check_params
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec


def _sigmoid(x: np.ndarray) -> np.ndarray:
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
    "sigmoid": _sigmoid,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * _sigmoid(x),
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


def _dense(p: Params, name: str, x: np.ndarray) -> np.ndarray:
    return x @ p[f"{name}.kernel"] + p[f"{name}.bias"]


def _layer_norm(p: Params, name: str, x: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p[f"{name}.scale"] + p[f"{name}.bias"]


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def mlp_forward(spec: MLPSpec, p: Params, x: np.ndarray) -> np.ndarray:
    n_layers = len(spec.hidden) + 1
    h = x
    for i in range(n_layers):
        h = _dense(p, f"layers.{i}", h)
        if i < n_layers - 1:
            h = activation(spec.activation, h)
    return h


def lstm_forward(spec: LSTMSpec, p: Params, x: np.ndarray) -> np.ndarray:
    batch, steps, _ = x.shape
    hs = spec.hidden_size
    seq = x
    for layer in range(spec.num_layers):
        kernel = p[f"lstm.{layer}.kernel"]
        recurrent = p[f"lstm.{layer}.recurrent_kernel"]
        bias = p[f"lstm.{layer}.bias"]
        h = np.zeros((batch, hs))
        c = np.zeros((batch, hs))
        outputs = []
        for t in range(steps):
            z = seq[:, t, :] @ kernel + h @ recurrent + bias
            i, f, g, o = (z[:, k * hs:(k + 1) * hs] for k in range(4))
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            outputs.append(h)
        seq = np.stack(outputs, axis=1)
    return _dense(p, "head", seq[:, -1, :])


def _attention(spec: AttentionSpec, p: Params, name: str, h: np.ndarray) -> np.ndarray:
    batch, steps, d = h.shape
    heads, hd = spec.num_heads, spec.head_dim

    def split(y: np.ndarray) -> np.ndarray:  # (B, T, d) -> (B, heads, T, hd), contiguous slices
        return y.reshape(batch, steps, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = (split(_dense(p, f"{name}.{w}", h)) for w in ("q", "k", "v"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    if spec.causal:
        future = np.triu(np.ones((steps, steps), dtype=bool), k=1)
        scores = np.where(future, -np.inf, scores)
    out = _softmax(scores) @ v
    out = out.transpose(0, 2, 1, 3).reshape(batch, steps, d)
    return _dense(p, f"{name}.o", out)


def attention_forward(spec: AttentionSpec, p: Params, x: np.ndarray) -> np.ndarray:
    h = _dense(p, "embed", x) + positional_encoding(x.shape[1], spec.d_model)
    eps = spec.layer_norm_eps
    for b in range(spec.num_blocks):
        blk = f"blocks.{b}"

        def ffn(y: np.ndarray) -> np.ndarray:
            return _dense(p, f"{blk}.ffn.1", activation(spec.activation, _dense(p, f"{blk}.ffn.0", y)))

        if spec.norm == "post":
            h = _layer_norm(p, f"{blk}.ln1", h + _attention(spec, p, f"{blk}.attn", h), eps)
            h = _layer_norm(p, f"{blk}.ln2", h + ffn(h), eps)
        else:
            h = h + _attention(spec, p, f"{blk}.attn", _layer_norm(p, f"{blk}.ln1", h, eps))
            h = h + ffn(_layer_norm(p, f"{blk}.ln2", h, eps))
    return _dense(p, "head", h.mean(axis=1))


def forward(spec: ModelSpec, params: Params, x: np.ndarray) -> np.ndarray:
    """Model output (logits or regression values), float64."""
    check_params(spec, params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    if isinstance(spec, MLPSpec):
        return mlp_forward(spec, p, x)
    if isinstance(spec, LSTMSpec):
        return lstm_forward(spec, p, x)
    if isinstance(spec, AttentionSpec):
        return attention_forward(spec, p, x)
    raise TypeError(f"not a model spec: {spec!r}")


def loss_value(loss: str, output: np.ndarray, target: np.ndarray) -> float:
    """Mean cross entropy on integer labels (softmax of the output), or mean squared error."""
    output = np.asarray(output, dtype=np.float64)
    if loss == "cross_entropy":
        shifted = output - output.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        labels = np.asarray(target, dtype=np.int64)
        return float(-log_probs[np.arange(len(labels)), labels].mean())
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
