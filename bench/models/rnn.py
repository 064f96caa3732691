"""The vanilla (Elman) RNN: layer l has `rnn.{l}.kernel` (in, H), `recurrent_kernel` (H, H)
and `bias` (H,), h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias) from a zero
state; a dense `head` on the last step's h (docs/design.md). Its scaling sweep varies
the sequence length.

Beside the LSTM it isolates the cost of the recurrence itself: one H-wide product per
step instead of four gate blocks, so a framework's per-step overhead weighs more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.models.fields import positive_int
from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import Params, dense, dense_shapes, matmul_flops


@dataclass(frozen=True)
class RNNSpec:
    """Stacked vanilla RNN (tanh) over a sequence; dense head on the last step's hidden state."""

    kind: ClassVar[str] = "rnn"
    in_features: int = 16          # width of the input at each time step (features)
    hidden_size: int = 128         # H, width of the hidden state (units)
    num_layers: int = 1            # stacked RNN layers (each feeds the next its h sequence)
    seq_len: int = 32              # T, time steps per example used for data and FLOP counts
    out_features: int = 10         # width of the head's output (classes, or targets)

    def __post_init__(self) -> None:
        for name in ("in_features", "hidden_size", "num_layers", "seq_len", "out_features"):
            positive_int(self, name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)


def param_shapes(spec: RNNSpec) -> Shapes:
    h = spec.hidden_size
    entries: Shapes = []
    for layer in range(spec.num_layers):
        n_in = spec.in_features if layer == 0 else h
        entries += [(f"rnn.{layer}.kernel", (n_in, h)),
                    (f"rnn.{layer}.recurrent_kernel", (h, h)),
                    (f"rnn.{layer}.bias", (h,))]
    return entries + dense_shapes("head", h, spec.out_features)


def forward(spec: RNNSpec, p: Params, x: np.ndarray) -> np.ndarray:
    batch, steps, _ = x.shape
    seq = x
    for layer in range(spec.num_layers):
        kernel = p[f"rnn.{layer}.kernel"]
        recurrent = p[f"rnn.{layer}.recurrent_kernel"]
        bias = p[f"rnn.{layer}.bias"]
        h = np.zeros((batch, spec.hidden_size))
        outputs = []
        for t in range(steps):
            h = np.tanh(seq[:, t, :] @ kernel + h @ recurrent + bias)
            outputs.append(h)
        seq = np.stack(outputs, axis=1)
    return dense(p, "head", seq[:, -1, :])


def forward_flops(spec: RNNSpec, batch_size: int, seq_len: int | None = None) -> int:
    t, h, b = seq_len or spec.seq_len, spec.hidden_size, batch_size
    total = 0
    for layer in range(spec.num_layers):
        width_in = spec.in_features if layer == 0 else h
        # every time step: x_t @ kernel and h @ recurrent_kernel, H wide
        total += t * (matmul_flops(b, width_in, h) + matmul_flops(b, h, h))
    return total + matmul_flops(b, h, spec.out_features)


KIND = ModelKind(
    name="rnn", title="vanilla RNN", spec=RNNSpec, param_shapes=param_shapes, forward=forward,
    forward_flops=forward_flops, scaling_axis="seq_len",
    presets={
        "tiny": (RNNSpec(in_features=3, hidden_size=5, num_layers=2, seq_len=6,
                         out_features=3), 4),
        # the LSTM's sizes, so the two recurrent models compare step for step
        "small": (RNNSpec(in_features=16, hidden_size=128, num_layers=1, seq_len=32,
                          out_features=10), 32),
        "large": (RNNSpec(in_features=64, hidden_size=512, num_layers=2, seq_len=128,
                          out_features=10), 128),
    })
