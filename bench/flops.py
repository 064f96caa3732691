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


# Tensors of a parameter's size that the optimizer keeps and updates every step.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}
ITEM_BYTES = {"float32": 4, "float64": 8}


def train_step_bytes(spec: ModelSpec, batch_size: int, optimizer: str, dtype: str = "float32",
                     seq_len: int | None = None) -> int:
    """The fewest bytes one training step must move to and from memory: every tensor it
    needs once, none twice. The batch is read; the parameters are read by the forward
    pass; the activations kept for the backward pass (the kind's saved_elements) are
    written and read back; the gradients are written and read by the optimizer, which
    also reads and writes the parameters and its state (OPTIMIZER_STATE tensors of their
    size). A lower bound: real steps read weights again in the backward pass and
    spill temporaries; where everything fits in a cache they move less to memory."""
    kind = models.of(spec)
    params = sum(_count(shape) for _, shape in kind.param_shapes(spec))
    seq = seq_len or getattr(spec, "seq_len", None)
    batch_elements = batch_size * (_count(spec.input_shape) if seq is None else seq * spec.in_features)
    per_param = 1 + 2 + 2 + 2 * OPTIMIZER_STATE.get(optimizer, 0)  # read; grads w+r; params r+w
    elements = (batch_elements + 2 * kind.saved_elements(spec, batch_size, seq_len)
                + per_param * params)
    return elements * ITEM_BYTES[dtype]


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total
