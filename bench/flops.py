"""Analytic floating-point operation counts of one training step.

Counted: the matrix products only (a multiply-add is 2 FLOPs), which dominate every
model here; elementwise work (activations, LayerNorm, softmax, the optimizer) is left
out, as nanoGPT and most MFU figures do. A training step is taken as 3x the forward
pass: the backward pass computes two products (gradient of the input and of the weight)
for every one of the forward pass. The same count is used for every framework, so
achieved FLOP/s compare like with like.
"""

from __future__ import annotations

from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec

BACKWARD_FACTOR = 3  # forward + backward = 3 x forward, for matrix products


def matmul(rows: int, inner: int, cols: int) -> int:
    """FLOPs of a (rows x inner) @ (inner x cols) product."""
    return 2 * rows * inner * cols


def forward_flops(spec: ModelSpec, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one forward pass over a batch (sequence models at `seq_len`, default the spec's)."""
    if not isinstance(spec, (MLPSpec, LSTMSpec, AttentionSpec)):
        raise TypeError(f"not a model spec: {spec!r}")
    b = batch_size
    if isinstance(spec, MLPSpec):
        widths = [spec.in_features, *spec.hidden, spec.out_features]
        return sum(matmul(b, w_in, w_out) for w_in, w_out in zip(widths, widths[1:]))
    t = seq_len or spec.seq_len
    if isinstance(spec, LSTMSpec):
        h = spec.hidden_size
        total = 0
        for layer in range(spec.num_layers):
            width_in = spec.in_features if layer == 0 else h
            # every time step: x_t @ kernel and h @ recurrent_kernel, 4 gates wide
            total += t * (matmul(b, width_in, 4 * h) + matmul(b, h, 4 * h))
        return total + matmul(b, h, spec.out_features)
    if isinstance(spec, AttentionSpec):
        d, ff = spec.d_model, spec.ff_dim
        total = matmul(b * t, spec.in_features, d)  # embed
        per_block = (4 * matmul(b * t, d, d)    # q, k, v, o projections
                     + b * matmul(t, d, t)      # scores q k^T per example, all heads together
                     + b * matmul(t, t, d)      # attention weights @ v
                     + matmul(b * t, d, ff) + matmul(b * t, ff, d))  # feed-forward
        return total + spec.num_blocks * per_block + matmul(b, d, spec.out_features)
    raise AssertionError("unreachable")


def train_step_flops(spec: ModelSpec, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one training step (forward and backward)."""
    return BACKWARD_FACTOR * forward_flops(spec, batch_size, seq_len)
