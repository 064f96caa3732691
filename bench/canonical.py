"""Canonical parameters: the interchange format every adapter loads and exports.

Names and layouts follow docs/design.md. Dense kernels are (in, out) with
y = x @ kernel + bias; LSTM gate blocks are i, f, g, o along the last axis.
Parameters are initialised here, in NumPy, once, and loaded into every framework.
"""

from __future__ import annotations

import numpy as np

from bench import models
from bench.models.kind import ModelSpec

Params = dict[str, np.ndarray]


def param_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in a fixed order (the order parameters are drawn in)."""
    return dict(models.of(spec).param_shapes(spec))


def inert_params(spec: ModelSpec) -> tuple[str, ...]:
    """Parameters that no output depends on, in exact arithmetic.

    The attention key bias adds q_i . b_k to every score of query i alike, and softmax
    ignores a shift shared by a row, so its gradient is exactly zero. Rounding makes it
    ~1e-10 instead; adaptive optimizers (Adam, RMSprop, Adagrad) normalise that noise
    into full +-lr steps, different in every framework and mode, with no effect on any
    output. Trajectory checks therefore leave these parameters out. Each kind names its
    own (`inert_params` in its bench/models module).
    """
    return models.of(spec).inert_params(spec)


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


def check_bound(spec: ModelSpec, bound: dict[str, tuple[int, ...]], framework: str) -> None:
    """Raise ValueError unless a framework's binding (canonical name -> the shape its
    storage holds, in canonical layout) covers exactly the canonical parameters, each with
    its canonical shape. Every adapter checks its binding with this before loading, so a
    wrong rename or transform fails at build, not as a silent broadcast or a parity row."""
    expected = param_shapes(spec)
    problems = [f"{n} is not bound" for n in expected if n not in bound]
    problems += [f"{n} is bound but not canonical" for n in bound if n not in expected]
    problems += [f"{n} is stored as {tuple(bound[n])}, canonical {s}"
                 for n, s in expected.items() if n in bound and tuple(bound[n]) != s]
    if problems:
        raise ValueError(f"{framework}'s binding of {type(spec).__name__} does not fit the "
                         f"canonical layout: " + "; ".join(problems))


def params_equal(a: Params, b: Params) -> bool:
    """Same names, shapes and values, exactly."""
    return a.keys() == b.keys() and all(
        np.shape(a[k]) == np.shape(b[k]) and np.array_equal(a[k], b[k]) for k in a)


def cast(params: Params, dtype: str) -> Params:
    """The same parameters as contiguous arrays of `dtype`."""
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}
