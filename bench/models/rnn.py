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

from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import Params, dense
from bench.models.recurrent import (
    RecurrentSpec,
    head_input,
    parity_variants,
    stacked_flops,
    stacked_saved_elements,
    stacked_shapes,
)


@dataclass(frozen=True)
class RNNSpec(RecurrentSpec):
    """Stacked vanilla RNN (tanh) over a sequence; dense head on the last step's hidden state."""

    kind: ClassVar[str] = "rnn"


def param_shapes(spec: RNNSpec) -> Shapes:
    return stacked_shapes("rnn", spec, gates=1)


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
    return dense(p, "head", head_input(spec, seq))


def forward_flops(spec: RNNSpec, batch_size: int, seq_len: int | None = None) -> int:
    return stacked_flops(spec, 1, batch_size, seq_len)


def saved_elements(spec: RNNSpec, batch_size: int, seq_len: int | None = None) -> int:
    return stacked_saved_elements(spec, 1, batch_size, seq_len)


KIND = ModelKind(
    name="rnn", title="vanilla RNN", spec=RNNSpec, param_shapes=param_shapes, forward=forward,
    forward_flops=forward_flops, saved_elements=saved_elements, scaling_axis="seq_len",
    parity_variants=parity_variants,
    presets={
        "tiny": (RNNSpec(in_features=3, hidden_size=5, num_layers=2, seq_len=6,
                         out_features=3), 4),
        # the LSTM's sizes, so the two recurrent models compare step for step
        "small": (RNNSpec(in_features=16, hidden_size=128, num_layers=1, seq_len=32,
                          out_features=10), 32),
        "large": (RNNSpec(in_features=64, hidden_size=512, num_layers=2, seq_len=128,
                          out_features=10), 128),
    })
