"""The stacked LSTM: layer l has `lstm.{l}.kernel` (in, 4H), `recurrent_kernel` (H, 4H) and
`bias` (4H,), gate blocks i, f, g, o; a dense `head` on the last step's h
(docs/design.md). Its scaling sweep varies the sequence length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.models.fields import positive_int
from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import Params, dense, dense_shapes, matmul_flops, sigmoid


@dataclass(frozen=True)
class LSTMSpec:
    """Stacked LSTM over a sequence; dense head on the last time step's hidden state."""

    kind: ClassVar[str] = "lstm"
    in_features: int = 16          # width of the input at each time step (features)
    hidden_size: int = 128         # H, width of the hidden and cell state (units)
    num_layers: int = 1            # stacked LSTM layers (each feeds the next its h sequence)
    seq_len: int = 32              # T, time steps per example used for data and FLOP counts
    out_features: int = 10         # width of the head's output (classes, or targets)

    def __post_init__(self) -> None:
        for name in ("in_features", "hidden_size", "num_layers", "seq_len", "out_features"):
            positive_int(self, name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)


def param_shapes(spec: LSTMSpec) -> Shapes:
    h = spec.hidden_size
    entries: Shapes = []
    for layer in range(spec.num_layers):
        n_in = spec.in_features if layer == 0 else h
        entries += [(f"lstm.{layer}.kernel", (n_in, 4 * h)),
                    (f"lstm.{layer}.recurrent_kernel", (h, 4 * h)),
                    (f"lstm.{layer}.bias", (4 * h,))]
    return entries + dense_shapes("head", h, spec.out_features)


def forward(spec: LSTMSpec, p: Params, x: np.ndarray) -> np.ndarray:
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
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            outputs.append(h)
        seq = np.stack(outputs, axis=1)
    return dense(p, "head", seq[:, -1, :])


def forward_flops(spec: LSTMSpec, batch_size: int, seq_len: int | None = None) -> int:
    t, h, b = seq_len or spec.seq_len, spec.hidden_size, batch_size
    total = 0
    for layer in range(spec.num_layers):
        width_in = spec.in_features if layer == 0 else h
        # every time step: x_t @ kernel and h @ recurrent_kernel, 4 gates wide
        total += t * (matmul_flops(b, width_in, 4 * h) + matmul_flops(b, h, 4 * h))
    return total + matmul_flops(b, h, spec.out_features)


KIND = ModelKind(
    name="lstm", title="LSTM", spec=LSTMSpec, param_shapes=param_shapes, forward=forward,
    forward_flops=forward_flops, scaling_axis="seq_len",
    presets={
        "tiny": (LSTMSpec(in_features=3, hidden_size=5, num_layers=2, seq_len=6,
                          out_features=3), 4),
        "small": (LSTMSpec(in_features=16, hidden_size=128, num_layers=1, seq_len=32,
                           out_features=10), 32),
        # 322 GFLOP per training step
        "large": (LSTMSpec(in_features=64, hidden_size=512, num_layers=2, seq_len=128,
                           out_features=10), 128),
    })
