"""The multi-layer perceptron: dense layers `layers.0..n-1`, the activation after all but
the last (docs/design.md). Its scaling sweep varies the batch size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench.models.fields import ACTIVATIONS, choice, fail, positive_int
from bench.models.kind import ModelKind, Shapes
from bench.models.numerics import Params, activation, dense, dense_shapes, matmul_flops


@dataclass(frozen=True)
class MLPSpec:
    """Multi-layer perceptron: dense layers `layers.0..n-1`, activation after all but the last."""

    kind: ClassVar[str] = "mlp"
    in_features: int = 32          # width of one input vector (features)
    hidden: tuple[int, ...] = (256, 256, 256)  # width of each hidden layer (units), in order
    out_features: int = 10         # width of the output (classes, or regression targets)
    activation: str = "relu"       # nonlinearity after every layer but the last

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        positive_int(self, "in_features")
        positive_int(self, "out_features")
        for width in self.hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                fail("MLPSpec", "hidden", self.hidden, "a tuple of whole numbers >= 1")
        choice(self, "activation", ACTIVATIONS)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (no batch axis)."""
        return (self.in_features,)


def _widths(spec: MLPSpec) -> list[int]:
    return [spec.in_features, *spec.hidden, spec.out_features]


def param_shapes(spec: MLPSpec) -> Shapes:
    widths = _widths(spec)
    return [entry for i in range(len(widths) - 1)
            for entry in dense_shapes(f"layers.{i}", widths[i], widths[i + 1])]


def forward(spec: MLPSpec, p: Params, x: np.ndarray) -> np.ndarray:
    n_layers = len(spec.hidden) + 1
    h = x
    for i in range(n_layers):
        h = dense(p, f"layers.{i}", h)
        if i < n_layers - 1:
            h = activation(spec.activation, h)
    return h


def forward_flops(spec: MLPSpec, batch_size: int, seq_len: int | None = None) -> int:
    widths = _widths(spec)
    return sum(matmul_flops(batch_size, w_in, w_out) for w_in, w_out in zip(widths, widths[1:]))


def saved_elements(spec: MLPSpec, batch_size: int, seq_len: int | None = None) -> int:
    """Each layer's input and pre-activation output."""
    widths = _widths(spec)
    return batch_size * (sum(widths[:-1]) + sum(widths[1:]))


def parity_variants(spec: MLPSpec) -> list[tuple[str, MLPSpec]]:
    """Every other activation on the tiny MLP (the tiny preset uses tanh)."""
    return [(act, dataclasses.replace(spec, activation=act))
            for act in ("relu", "sigmoid", "gelu", "gelu_tanh", "swish", "identity")]


KIND = ModelKind(
    name="mlp", title="MLP", spec=MLPSpec, param_shapes=param_shapes, forward=forward,
    forward_flops=forward_flops, saved_elements=saved_elements, scaling_axis="batch_size",
    parity_variants=parity_variants,
    presets={
        "tiny": (MLPSpec(in_features=6, hidden=(8, 7), out_features=3, activation="tanh"), 5),
        "small": (MLPSpec(in_features=32, hidden=(256, 256, 256), out_features=10), 128),
        # 58 GFLOP per training step: compute-bound on a GPU, minutes per step on 2 cores
        "large": (MLPSpec(in_features=512, hidden=(2048, 2048, 2048), out_features=10), 1024),
    })
