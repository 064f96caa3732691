"""Model and training specifications: one frozen dataclass per model, one for training.

Every number that the frameworks default differently is a field here and is passed
explicitly to every framework (docs/design.md lists them). A spec that makes no sense is
refused at construction with a `SpecError` naming the field and what it allows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "swish", "identity")
# gelu is the exact (erf) form; gelu_tanh the tanh approximation (Flax's default).
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
LOSSES = ("cross_entropy", "mse")
DTYPES = ("float32", "float64")
NORMS = ("post", "pre")
MODELS = ("mlp", "lstm", "attention")


class SpecError(ValueError):
    """A specification field holds a value that makes no sense."""


def _fail(cls_name: str, name: str, value: Any, allowed: str) -> None:
    raise SpecError(f"{cls_name}.{name}={value!r} is not valid: allowed {allowed}")


def _positive_int(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(type(obj).__name__, name, value, "a whole number >= 1")


def _choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        _fail(type(obj).__name__, name, value, "one of " + ", ".join(choices))


def _number(obj: Any, name: str, low: float, high: float, *, low_open: bool = False,
            high_open: bool = False) -> None:
    """Require low <= value <= high (strict where the bound is open)."""
    value = getattr(obj, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        lo = ("(" if low_open else "[") + f"{low:g}"
        hi = f"{high:g}" + (")" if high_open else "]")
        _fail(type(obj).__name__, name, value, f"a number in {lo}, {hi}")


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
        _positive_int(self, "in_features")
        _positive_int(self, "out_features")
        for width in self.hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                _fail("MLPSpec", "hidden", self.hidden, "a tuple of whole numbers >= 1")
        _choice(self, "activation", ACTIVATIONS)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (no batch axis)."""
        return (self.in_features,)


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
            _positive_int(self, name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)


@dataclass(frozen=True)
class AttentionSpec:
    """Self-attention encoder: embed + sinusoidal positions, blocks, head on the time mean."""

    kind: ClassVar[str] = "attention"
    in_features: int = 64          # width of the input at each position (features)
    d_model: int = 64              # width of the residual stream (units); must be even
    num_heads: int = 4             # attention heads; each takes d_model / num_heads units
    ff_dim: int = 256              # width of the feed-forward hidden layer (units)
    num_blocks: int = 1            # encoder blocks
    seq_len: int = 64              # T, positions per example used for data and FLOP counts
    out_features: int = 10         # width of the head's output (classes, or targets)
    activation: str = "gelu"       # nonlinearity between the two feed-forward layers
    norm: str = "post"             # "post": h = LN(h + f(h)); "pre": h = h + f(LN(h))
    causal: bool = False           # position t attends only to positions <= t
    layer_norm_eps: float = 1e-5   # added to the variance inside LayerNorm's sqrt

    def __post_init__(self) -> None:
        for name in ("in_features", "d_model", "num_heads", "ff_dim", "num_blocks",
                     "seq_len", "out_features"):
            _positive_int(self, name)
        if self.d_model % 2:
            _fail("AttentionSpec", "d_model", self.d_model,
                  "an even number (the sinusoidal encoding pairs sin and cos columns)")
        if self.d_model % self.num_heads:
            divisors = [n for n in range(1, self.d_model + 1) if self.d_model % n == 0]
            _fail("AttentionSpec", "num_heads", self.num_heads,
                  f"a divisor of d_model={self.d_model}: {divisors}")
        _choice(self, "activation", ACTIVATIONS)
        _choice(self, "norm", NORMS)
        if not isinstance(self.causal, bool):
            _fail("AttentionSpec", "causal", self.causal, "True or False")
        _number(self, "layer_norm_eps", 0.0, 1.0, low_open=True)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)


ModelSpec = Union[MLPSpec, LSTMSpec, AttentionSpec]
MODEL_SPECS: dict[str, type] = {"mlp": MLPSpec, "lstm": LSTMSpec, "attention": AttentionSpec}


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
    if "hidden" in out:
        out["hidden"] = list(out["hidden"])
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
# `large` for GPUs.

_PRESETS: dict[str, dict[str, tuple[ModelSpec, int]]] = {
    "tiny": {
        "mlp": (MLPSpec(in_features=6, hidden=(8, 7), out_features=3, activation="tanh"), 5),
        "lstm": (LSTMSpec(in_features=3, hidden_size=5, num_layers=2, seq_len=6,
                          out_features=3), 4),
        "attention": (AttentionSpec(in_features=5, d_model=8, num_heads=2, ff_dim=12,
                                    num_blocks=2, seq_len=6, out_features=3), 4),
    },
    "small": {
        "mlp": (MLPSpec(in_features=32, hidden=(256, 256, 256), out_features=10), 128),
        "lstm": (LSTMSpec(in_features=16, hidden_size=128, num_layers=1, seq_len=32,
                          out_features=10), 32),
        "attention": (AttentionSpec(in_features=64, d_model=64, num_heads=4, ff_dim=256,
                                    num_blocks=1, seq_len=64, out_features=10), 32),
    },
    # For GPUs: big enough that a step is compute-bound rather than launch-bound there
    # (58, 322 and 1346 GFLOP per training step by bench.flops; minutes per step on a
    # 2-core CPU, so not for CPU runs).
    "large": {
        "mlp": (MLPSpec(in_features=512, hidden=(2048, 2048, 2048), out_features=10), 1024),
        "lstm": (LSTMSpec(in_features=64, hidden_size=512, num_layers=2, seq_len=128,
                          out_features=10), 128),
        "attention": (AttentionSpec(in_features=128, d_model=512, num_heads=8, ff_dim=2048,
                                    num_blocks=4, seq_len=256, out_features=10), 64),
    },
}
PRESETS = tuple(_PRESETS)


def preset(name: str, model: str, **train: Any) -> tuple[ModelSpec, TrainSpec]:
    """The model spec and training spec (Adam 1e-3, cross entropy) of a named preset."""
    if name not in _PRESETS:
        raise SpecError(f"preset={name!r} is not valid: allowed one of {', '.join(PRESETS)}")
    if model not in _PRESETS[name]:
        raise SpecError(f"model={model!r} is not valid: allowed one of {', '.join(MODELS)}")
    model_spec, batch_size = _PRESETS[name][model]
    train.setdefault("batch_size", batch_size)
    return model_spec, TrainSpec(**train)
