"""Model and training specifications: one frozen dataclass per model, one for training.

The model specs are defined with their kind in bench/models (one module per kind) and
re-exported here; training (TrainSpec, OptimizerSpec), serialisation and presets are here.

Every number that the frameworks default differently is a field here and is passed
explicitly to every framework (docs/design.md lists them). A spec that makes no sense is
refused at construction with a `SpecError` naming the field and what it allows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench import models
from bench.models.attention import NORMS, AttentionSpec
from bench.models.fields import ACTIVATIONS, SpecError
from bench.models.fields import choice as _choice
from bench.models.fields import fail as _fail
from bench.models.fields import number as _number
from bench.models.fields import positive_int as _positive_int
from bench.models.kind import ModelSpec
from bench.models.lstm import LSTMSpec
from bench.models.mlp import MLPSpec

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
LOSSES = ("cross_entropy", "mse")
DTYPES = ("float32", "float64")
MODELS = models.NAMES  # the model kinds, in table order (bench/models)

__all__ = ["ACTIVATIONS", "AttentionSpec", "DTYPES", "LOSSES", "LSTMSpec", "MLPSpec", "MODELS",
           "MODEL_SPECS", "ModelSpec", "NORMS", "OPTIMIZERS", "OptimizerSpec", "PRESETS",
           "SpecError", "TrainSpec", "model_from_dict", "preset", "to_dict"]

MODEL_SPECS: dict[str, type] = {name: kind.spec for name, kind in models.KINDS.items()}


def __getattr__(name: str) -> type:
    """Every kind's spec class by its name (`from bench.spec import RNNSpec`), including
    kinds added to bench/models after this module was written."""
    for cls in MODEL_SPECS.values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'bench.spec' has no attribute {name!r}")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer and all its hyperparameters; fields an optimizer does not use are ignored.

    Update rules (g gradient, t step from 1), as torch writes them:
      sgd       p -= lr g
      momentum  b = momentum b + g;  p -= lr b
      nesterov  b = momentum b + g;  p -= lr (g + momentum b)
      adagrad   s = s + g^2 (s starts at initial_accumulator);  p -= lr g / (sqrt(s) + epsilon)
      rmsprop   v = rho v + (1 - rho) g^2 (v starts at 0);  p -= lr g / (sqrt(v) + epsilon)
      adam      m, v moving averages (beta1, beta2), bias-corrected;
                p -= lr m_hat / (sqrt(v_hat) + epsilon)
    Where a framework places epsilon elsewhere and no argument moves it, bench.optim
    holds its form and parity derives the resulting bound.
    """

    name: str = "adam"                  # one of OPTIMIZERS
    learning_rate: float = 1e-3         # step size (parameter units per gradient unit)
    momentum: float = 0.9               # momentum / nesterov: decay of the velocity
    beta1: float = 0.9                  # adam: decay of the first-moment average
    beta2: float = 0.999                # adam: decay of the second-moment average
    rho: float = 0.9                    # rmsprop: decay of the squared-gradient average
    epsilon: float = 1e-8               # adam, rmsprop, adagrad: added to the denominator
    initial_accumulator: float = 0.1    # adagrad: starting value of the sum of squares

    def __post_init__(self) -> None:
        _choice(self, "name", OPTIMIZERS)
        _number(self, "learning_rate", 0.0, float("inf"), low_open=True, high_open=True)
        _number(self, "momentum", 0.0, 1.0, high_open=True)
        _number(self, "beta1", 0.0, 1.0, high_open=True)
        _number(self, "beta2", 0.0, 1.0, high_open=True)
        _number(self, "rho", 0.0, 1.0, high_open=True)
        _number(self, "epsilon", 0.0, 1.0)
        _number(self, "initial_accumulator", 0.0, float("inf"), high_open=True)
        if self.name == "adagrad" and self.initial_accumulator == 0 and self.epsilon == 0:
            _fail("OptimizerSpec", "epsilon", self.epsilon,
                  "> 0 when initial_accumulator is 0 (else 0/0 on a zero gradient)")
        if self.name == "rmsprop" and self.epsilon == 0:
            _fail("OptimizerSpec", "epsilon", self.epsilon,
                  "> 0 for rmsprop (else 0/0 on a zero gradient)")


@dataclass(frozen=True)
class TrainSpec:
    """How a model is trained: optimizer, loss, batch, numeric type, seed."""

    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    loss: str = "cross_entropy"    # cross_entropy on integer labels, or mse on float targets
    batch_size: int = 32           # examples per step
    dtype: str = "float32"         # parameter and activation type
    seed: int = 0                  # seeds the initial parameters and the data

    def __post_init__(self) -> None:
        if isinstance(self.optimizer, dict):
            object.__setattr__(self, "optimizer", OptimizerSpec(**self.optimizer))
        if not isinstance(self.optimizer, OptimizerSpec):
            _fail("TrainSpec", "optimizer", self.optimizer, "an OptimizerSpec")
        _choice(self, "loss", LOSSES)
        _positive_int(self, "batch_size")
        _choice(self, "dtype", DTYPES)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            _fail("TrainSpec", "seed", self.seed, "a whole number >= 0")


# ---------------------------------------------------------------------------------
# Serialisation (results files record the exact specs that were run)

def to_dict(spec: ModelSpec | TrainSpec | OptimizerSpec) -> dict[str, Any]:
    """Plain-JSON form; model specs carry their `kind`."""
    out = dataclasses.asdict(spec)
    kind = getattr(type(spec), "kind", None)
    if kind is not None:
        out = {"kind": kind, **out}
    # tuples (the MLP's hidden widths) as JSON lists
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
    return out


def model_from_dict(data: dict[str, Any]) -> ModelSpec:
    """Inverse of `to_dict` for model specs; unknown kinds and fields are refused."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in MODEL_SPECS:
        raise SpecError(f"model kind={kind!r} is not valid: allowed one of {', '.join(MODELS)}")
    cls = MODEL_SPECS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"{cls.__name__} has no field(s) {unknown}: allowed {sorted(names)}")
    return cls(**data)


# ---------------------------------------------------------------------------------
# Presets: `tiny` for tests and parity, `small` for the CPU comparison (docs/design.md),
# `large` for GPUs (big enough that a step is compute-bound rather than launch-bound
# there; minutes per step on a 2-core CPU). Each kind's sizes live in its module.

PRESETS = ("tiny", "small", "large")


def preset(name: str, model: str, **train: Any) -> tuple[ModelSpec, TrainSpec]:
    """The model spec and training spec (Adam 1e-3, cross entropy) of a named preset."""
    if name not in PRESETS:
        raise SpecError(f"preset={name!r} is not valid: allowed one of {', '.join(PRESETS)}")
    model_spec, batch_size = models.get(model).presets[name]
    train.setdefault("batch_size", batch_size)
    return model_spec, TrainSpec(**train)
