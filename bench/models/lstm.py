"""The stacked LSTM: layer l has `lstm.{l}.kernel` (in, 4H), `recurrent_kernel` (H, 4H) and
`bias` (4H,), gate blocks i, f, g, o; a dense `head` on the last step's h
(docs/design.md). Its scaling sweep varies the sequence length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import Params, dense, sigmoid
from bench.models.recurrent import (
    RecurrentSpec,
    head_input,
    parity_variants,
    stacked_flops,
    stacked_saved_elements,
    stacked_shapes,
)


@dataclass(frozen=True)
class LSTMSpec(RecurrentSpec):
    """Stacked LSTM over a sequence (the cell state is H wide too); dense head on the last
    time step's hidden state."""

    kind: ClassVar[str] = "lstm"


def param_shapes(spec: LSTMSpec) -> Shapes:
    return stacked_shapes("lstm", spec, gates=4)


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
    return dense(p, "head", head_input(spec, seq))


def forward_flops(spec: LSTMSpec, batch_size: int, seq_len: int | None = None) -> int:
    return stacked_flops(spec, 4, batch_size, seq_len)


def saved_elements(spec: LSTMSpec, batch_size: int, seq_len: int | None = None) -> int:
    return stacked_saved_elements(spec, 4, batch_size, seq_len)


KIND = ModelKind(
    name="lstm", title="LSTM", spec=LSTMSpec, param_shapes=param_shapes, forward=forward,
    forward_flops=forward_flops, saved_elements=saved_elements, scaling_axis="seq_len",
    parity_variants=parity_variants,
    presets={
        "tiny": (LSTMSpec(in_features=3, hidden_size=5, num_layers=2, seq_len=6,
                          out_features=3), 4),
        "small": (LSTMSpec(in_features=16, hidden_size=128, num_layers=1, seq_len=32,
                           out_features=10), 32),
        # 322 GFLOP per training step
        "large": (LSTMSpec(in_features=64, hidden_size=512, num_layers=2, seq_len=128,
                           out_features=10), 128),
    })
