"""What the stacked recurrent kinds (lstm, rnn) share: their spec's fields, and the shapes
and FLOPs of `gates` blocks of H units per layer (4 for the LSTM, 1 for the vanilla RNN).
Layer l of kind `name` holds `{name}.{l}.kernel` (in, gates*H), `recurrent_kernel`
(H, gates*H) and `bias` (gates*H,); a dense `head` reads the last step's h, or every
step's h when the spec's `output` is "every_step" (one prediction per time step, as a
character-level language model makes)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bench.models.fields import choice, positive_int
from bench.models.kind import Shapes
from bench.models.numerics import dense_shapes, matmul_flops


@dataclass(frozen=True)
class RecurrentSpec:
    """Fields of a stacked recurrent model over a sequence, head on the last step."""

    in_features: int = 16          # width of the input at each time step (features)
    hidden_size: int = 128         # H, width of the hidden state (units)
    num_layers: int = 1            # stacked layers (each feeds the next its h sequence)
    seq_len: int = 32              # T, time steps per example used for data and FLOP counts
    out_features: int = 10         # width of the head's output (classes, or targets)
    # "last": the head reads the last step's h, output (batch, out_features);
    # "every_step": it reads every step's h, output (batch, T, out_features), and a
    # cross-entropy target holds one label per step (batch, T)
    output: str = "last"

    def __post_init__(self) -> None:
        for name in ("in_features", "hidden_size", "num_layers", "seq_len", "out_features"):
            positive_int(self, name)
        choice(self, "output", OUTPUTS)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)

    @property
    def every_step(self) -> bool:
        """The head reads every time step (output (batch, T, out_features))."""
        return self.output == "every_step"


OUTPUTS = ("last", "every_step")


def head_input(spec: RecurrentSpec, seq: np.ndarray) -> np.ndarray:
    """What the head reads of the top layer's h sequence (batch, T, H): the last step's,
    or every step's."""
    return seq if spec.every_step else seq[:, -1, :]


def parity_variants(spec: RecurrentSpec) -> list[tuple[str, RecurrentSpec]]:
    """The head on every time step (forward and gradient rows; docs/design.md)."""
    return [("every-step", replace(spec, output="every_step"))]


def stacked_shapes(name: str, spec: RecurrentSpec, gates: int) -> Shapes:
    h, entries = spec.hidden_size, []
    for layer in range(spec.num_layers):
        n_in = spec.in_features if layer == 0 else h
        entries += [(f"{name}.{layer}.kernel", (n_in, gates * h)),
                    (f"{name}.{layer}.recurrent_kernel", (h, gates * h)),
                    (f"{name}.{layer}.bias", (gates * h,))]
    return entries + dense_shapes("head", h, spec.out_features)


def stacked_saved_elements(spec: RecurrentSpec, gates: int, batch_size: int,
                           seq_len: int | None) -> int:
    """Per layer and time step: the input, the gates (`gates` x H) and the hidden state
    (and an LSTM's cell state); the head's input."""
    t, h, b = seq_len or spec.seq_len, spec.hidden_size, batch_size
    states = 2 if gates == 4 else 1  # h and c, or h
    total = 0
    for layer in range(spec.num_layers):
        width_in = spec.in_features if layer == 0 else h
        total += t * b * (width_in + gates * h + states * h)
    return total + b * h * (t if spec.every_step else 1)


def stacked_flops(spec: RecurrentSpec, gates: int, batch_size: int, seq_len: int | None) -> int:
    t, h, b = seq_len or spec.seq_len, spec.hidden_size, batch_size
    total = 0
    for layer in range(spec.num_layers):
        width_in = spec.in_features if layer == 0 else h
        # every time step: x_t @ kernel and h @ recurrent_kernel, gates * H wide
        total += t * (matmul_flops(b, width_in, gates * h) + matmul_flops(b, h, gates * h))
    head_rows = b * t if spec.every_step else b
    return total + matmul_flops(head_rows, h, spec.out_features)
