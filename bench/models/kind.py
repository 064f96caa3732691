"""What describes a model kind: the record every kind's module fills in once.

Everything outside bench/models (canonical parameters, the reference, FLOP counts,
cells, parity, the graph study, reports, the CLI's --models) reads a kind through this
record, so adding a kind is one module here and one line in bench/models/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

Shapes = list[tuple[str, tuple[int, ...]]]


class ModelSpec(Protocol):
    """What every kind's spec dataclass offers (frozen, every field commented with its unit)."""

    kind: ClassVar[str]            # the kind's name, the key of bench.models.KINDS
    in_features: int               # width of one input vector, or of one time step's
    out_features: int              # width of the output (classes, or regression targets)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (no batch axis)."""


@dataclass(frozen=True)
class ModelKind:
    name: str                  # the kind's name in specs, results and --models
    title: str                 # how reports name it ("vanilla RNN")
    spec: type                 # its frozen spec dataclass
    # canonical name -> shape, in the order parameters are drawn in (docs/design.md)
    param_shapes: Callable[[Any], Shapes]
    # float64 reference forward pass: (spec, float64 params, float64 x) -> output
    forward: Callable[[Any, dict[str, np.ndarray], np.ndarray], np.ndarray]
    # matrix-product FLOPs of one forward pass over a batch at a sequence length
    forward_flops: Callable[[Any, int, int | None], int]
    # elements the forward pass over a batch keeps for the backward pass (each product's
    # input, each layer's output, attention's scores and weights), at a sequence length:
    # the activations a step must write and read back at least once (bench.flops)
    saved_elements: Callable[[Any, int, int | None], int]
    # per preset: (model spec, batch size); presets "tiny", "small", "large"
    presets: dict[str, tuple[Any, int]]
    # the axis the scaling sweep varies: "batch_size" or "seq_len"
    scaling_axis: str
    # parity variants beside the tiny preset: (label suffix, spec), forward and gradient
    # checks only (the tiny preset itself also runs the optimizer trajectories)
    parity_variants: Callable[[Any], list[tuple[str, Any]]] = lambda spec: []
    # parameters no output depends on in exact arithmetic (left out of trajectories)
    inert_params: Callable[[Any], tuple[str, ...]] = lambda spec: ()

    @property
    def sequence(self) -> bool:
        """Inputs have a time axis (batch, seq_len, in_features)."""
        return "seq_len" in self.spec.__dataclass_fields__
