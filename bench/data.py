"""Deterministic synthetic batches: the same seed gives every framework the same data."""

from __future__ import annotations

import numpy as np

from bench.spec import LOSSES, ModelSpec


def batch(spec: ModelSpec, batch_size: int, loss: str = "cross_entropy", seed: int = 0,
          index: int = 0, seq_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Batch number `index` of the stream `seed`: standard normal inputs (float64) and
    integer labels in [0, out_features) for cross entropy or standard normal targets for mse
    (one per time step for a recurrent spec whose head reads every step).

    `seq_len` overrides the spec's sequence length for sequence models.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not valid: allowed one of {', '.join(LOSSES)}")
    rng = np.random.default_rng([seed, index])
    shape = spec.input_shape
    if seq_len is not None and len(shape) == 2:
        shape = (seq_len, shape[1])
    x = rng.standard_normal((batch_size, *shape))
    # a recurrent head on every step predicts at each of the T steps
    rows = (batch_size, shape[0]) if getattr(spec, "every_step", False) else (batch_size,)
    if loss == "cross_entropy":
        target = rng.integers(0, spec.out_features, size=rows)
    else:
        target = rng.standard_normal((*rows, spec.out_features))
    return x, target
