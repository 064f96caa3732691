"""Canonical parameters: the interchange format every adapter loads and exports.

Names and layouts follow docs/design.md. Dense kernels are (in, out) with
y = x @ kernel + bias; LSTM gate blocks are i, f, g, o along the last axis.
Parameters are initialised here, in NumPy, once, and loaded into every framework.
"""

from __future__ import annotations

import numpy as np

from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec

Params = dict[str, np.ndarray]


def _dense(name: str, n_in: int, n_out: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{name}.kernel", (n_in, n_out)), (f"{name}.bias", (n_out,))]


def param_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in a fixed order (the order parameters are drawn in)."""
    entries: list[tuple[str, tuple[int, ...]]] = []
    if isinstance(spec, MLPSpec):
        widths = [spec.in_features, *spec.hidden, spec.out_features]
        for i in range(len(widths) - 1):
            entries += _dense(f"layers.{i}", widths[i], widths[i + 1])
    elif isinstance(spec, LSTMSpec):
        h = spec.hidden_size
        for layer in range(spec.num_layers):
            n_in = spec.in_features if layer == 0 else h
            entries += [(f"lstm.{layer}.kernel", (n_in, 4 * h)),
                        (f"lstm.{layer}.recurrent_kernel", (h, 4 * h)),
                        (f"lstm.{layer}.bias", (4 * h,))]
        entries += _dense("head", h, spec.out_features)
    elif isinstance(spec, AttentionSpec):
        d = spec.d_model
        entries += _dense("embed", spec.in_features, d)
        for b in range(spec.num_blocks):
            for proj in ("q", "k", "v", "o"):
                entries += _dense(f"blocks.{b}.attn.{proj}", d, d)
            for norm in ("ln1", "ln2"):
                entries += [(f"blocks.{b}.{norm}.scale", (d,)), (f"blocks.{b}.{norm}.bias", (d,))]
            entries += _dense(f"blocks.{b}.ffn.0", d, spec.ff_dim)
            entries += _dense(f"blocks.{b}.ffn.1", spec.ff_dim, d)
        entries += _dense("head", d, spec.out_features)
    else:
        raise TypeError(f"not a model spec: {spec!r}")
    return dict(entries)


def inert_params(spec: ModelSpec) -> tuple[str, ...]:
    """Parameters that no output depends on, in exact arithmetic.

    The attention key bias adds q_i . b_k to every score of query i alike, and softmax
    ignores a shift shared by a row, so its gradient is exactly zero. Rounding makes it
    ~1e-10 instead; adaptive optimizers (Adam, RMSprop, Adagrad) normalise that noise
    into full +-lr steps, different in every framework and mode, with no effect on any
    output. Trajectory checks therefore leave these parameters out.
    """
    if isinstance(spec, AttentionSpec):
        return tuple(f"blocks.{b}.attn.k.bias" for b in range(spec.num_blocks))
    return ()


def param_count(spec: ModelSpec) -> int:
    """Number of trainable scalars."""
    return int(sum(np.prod(shape) for shape in param_shapes(spec).values()))


def init_params(spec: ModelSpec, seed: int = 0) -> Params:
    """Glorot-uniform kernels, zero biases, unit LayerNorm scales; float64, seeded."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    for name, shape in param_shapes(spec).items():
        if name.endswith("kernel"):  # kernel and recurrent_kernel, both (fan_in, fan_out)
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            params[name] = rng.uniform(-limit, limit, size=shape)
        elif name.endswith(".scale"):
            params[name] = np.ones(shape)
        else:
            params[name] = np.zeros(shape)
    return params


def check_params(spec: ModelSpec, params: Params) -> None:
    """Raise ValueError naming every missing, unexpected or mis-shaped parameter."""
    expected = param_shapes(spec)
    problems = [f"missing {n}" for n in expected if n not in params]
    problems += [f"unexpected {n}" for n in params if n not in expected]
    problems += [f"{n} has shape {tuple(np.shape(params[n]))}, expected {s}"
                 for n, s in expected.items() if n in params and tuple(np.shape(params[n])) != s]
    if problems:
        raise ValueError(f"parameters do not fit {type(spec).__name__}: " + "; ".join(problems))


def params_equal(a: Params, b: Params) -> bool:
    """Same names, shapes and values, exactly."""
    return a.keys() == b.keys() and all(
        np.shape(a[k]) == np.shape(b[k]) and np.array_equal(a[k], b[k]) for k in a)


def cast(params: Params, dtype: str) -> Params:
    """The same parameters as contiguous arrays of `dtype`."""
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}
