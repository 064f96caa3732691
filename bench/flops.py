"""Analytic floating-point operation counts of one training step.

Counted: the matrix products only (a multiply-add is 2 FLOPs), which dominate every
model here; elementwise work (activations, LayerNorm, softmax, the optimizer) is left
out, as nanoGPT and most MFU figures do. A training step is taken as 3x the forward
pass: the backward pass computes two products (gradient of the input and of the weight)
for every one of the forward pass. The same count is used for every framework, so
achieved FLOP/s compare like with like. Each model kind counts its own forward pass
(`forward_flops` in its bench/models module).
"""

from __future__ import annotations

from bench import models
from bench.models.kind import ModelSpec
from bench.models.numerics import matmul_flops as matmul  # noqa: F401  (public name)

BACKWARD_FACTOR = 3  # forward + backward = 3 x forward, for matrix products


def forward_flops(spec: ModelSpec, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one forward pass over a batch (sequence models at `seq_len`, default the spec's)."""
    return models.of(spec).forward_flops(spec, batch_size, seq_len)


def train_step_flops(spec: ModelSpec, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one training step (forward and backward)."""
    return BACKWARD_FACTOR * forward_flops(spec, batch_size, seq_len)
