"""Keras 3 models, one builder per model kind, and their binding to canonical parameters.

BUILDERS maps a kind's name (bench/models) to a `Builder`: how to build the functional
Keras model and where each canonical parameter lives in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from bench import adapters, binding, models
from bench.binding import Binding
from bench.reference import positional_encoding
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec


def _gelu_float64(x: Any, approximate: bool = False) -> Any:
    """GELU with its constants in float64.

    tf.nn.gelu casts its Python constants (1/sqrt(2); 0.044715 in the tanh form) through
    a float32 tensor, so in float64 its output is off by up to 5e-9 relative (TF 2.21).
    """
    import tensorflow as tf

    c = lambda value: tf.constant(value, dtype=x.dtype)  # noqa: E731
    if approximate:
        inner = c(0.7978845608028654) * (x + c(0.044715) * x * x * x)
        return c(0.5) * x * (c(1.0) + tf.math.tanh(inner))
    return c(0.5) * x * tf.math.erfc(-x * c(0.7071067811865476))


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "sigmoid": keras.activations.sigmoid,
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_tanh": lambda x: keras.activations.gelu(x, approximate=True),
    "swish": keras.activations.silu,
    "identity": keras.activations.linear,
}


def activation(name: str, dtype: str) -> Callable[[Any], Any]:
    """Keras' own activation, except GELU in float64 (see _gelu_float64)."""
    if name in ("gelu", "gelu_tanh") and dtype == "float64":
        return lambda x: _gelu_float64(x, approximate=name == "gelu_tanh")
    return ACTIVATIONS[name]


class PositionEncoding(keras.layers.Layer):
    """Adds the fixed sinusoidal table of docs/design.md (no parameters)."""

    def __init__(self, seq_len: int, d_model: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = positional_encoding(seq_len, d_model)

    def call(self, h: Any) -> Any:
        table = keras.ops.convert_to_tensor(self.table, dtype=self.compute_dtype)
        return h + table[: keras.ops.shape(h)[1]]


class Block(keras.layers.Layer):
    """One encoder block from Keras layers: MultiHeadAttention, LayerNormalization, Dense."""

    def __init__(self, spec: AttentionSpec, **kwargs: Any):
        super().__init__(**kwargs)
        s, dt = spec, kwargs.get("dtype")
        self.spec = s
        self.attn = keras.layers.MultiHeadAttention(
            s.num_heads, key_dim=s.head_dim, value_dim=s.head_dim, dropout=0.0, use_bias=True,
            dtype=dt, name="attn")
        self.ln1 = keras.layers.LayerNormalization(epsilon=s.layer_norm_eps, dtype=dt, name="ln1")
        self.ln2 = keras.layers.LayerNormalization(epsilon=s.layer_norm_eps, dtype=dt, name="ln2")
        self.ffn0 = keras.layers.Dense(s.ff_dim, activation=activation(s.activation, dt), dtype=dt,
                                       name="ffn_0")
        self.ffn1 = keras.layers.Dense(s.d_model, dtype=dt, name="ffn_1")

    def _attend(self, h: Any) -> Any:
        return self.attn(h, h, use_causal_mask=self.spec.causal)

    def call(self, h: Any) -> Any:
        if self.spec.norm == "post":
            h = self.ln1(h + self._attend(h))
            return self.ln2(h + self.ffn1(self.ffn0(h)))
        h = h + self._attend(self.ln1(h))
        return h + self.ffn1(self.ffn0(self.ln2(h)))


def _dense_layer(units: int, name: str, dtype: str, act: Any = None) -> Any:
    return keras.layers.Dense(units, activation=act, dtype=dtype, name=name)


def _bind(name: str, variable: Any, transform: binding.Transform = binding.SAME) -> Binding:
    """A binding's slot in Keras is one variable."""
    return Binding(name, (variable,), transform)


def _dense(name: str, layer: Any) -> list[Binding]:
    return [_bind(f"{name}.kernel", layer.kernel), _bind(f"{name}.bias", layer.bias)]


def _recurrent(name: str, spec: Any, model: keras.Model) -> list[Binding]:
    """`{name}.{l}.kernel`, `recurrent_kernel`, `bias` of Keras recurrent layers named
    `{name}_{l}`: their cells store exactly the canonical layout (LSTM gates i, f, c, o
    = i, f, g, o)."""
    out = []
    for layer in range(spec.num_layers):
        cell = model.get_layer(f"{name}_{layer}").cell
        for attr in ("kernel", "recurrent_kernel", "bias"):
            var = getattr(cell, attr)
            out.append(_bind(f"{name}.{layer}.{attr}", var))
    return out


# --- MLP ---------------------------------------------------------------------------------
def build_mlp(spec: MLPSpec, dtype: str) -> keras.Model:
    inputs = keras.Input((spec.in_features,), dtype=dtype)
    h = inputs
    widths = [*spec.hidden, spec.out_features]
    for i, width in enumerate(widths):
        h = _dense_layer(width, f"layers_{i}", dtype,
                         activation(spec.activation, dtype) if i < len(widths) - 1 else None)(h)
    return keras.Model(inputs, h)


def bind_mlp(spec: MLPSpec, model: keras.Model) -> list[Binding]:
    return [b for i in range(len(spec.hidden) + 1)
            for b in _dense(f"layers.{i}", model.get_layer(f"layers_{i}"))]


# --- LSTM --------------------------------------------------------------------------------
def build_lstm(spec: LSTMSpec, dtype: str, unroll: bool = False) -> keras.Model:
    """`unroll`: Keras' unrolled loop, which needs the sequence length fixed (the spec's)."""
    inputs = keras.Input((spec.seq_len if unroll else None, spec.in_features), dtype=dtype)
    h = inputs
    for layer in range(spec.num_layers):
        h = keras.layers.LSTM(
            spec.hidden_size, activation="tanh", recurrent_activation="sigmoid",
            use_bias=True, unit_forget_bias=False, dropout=0.0, recurrent_dropout=0.0,
            # the last layer returns the last step's h, or every step's (spec.output)
            return_sequences=spec.every_step or layer < spec.num_layers - 1, unroll=unroll,
            dtype=dtype, name=f"lstm_{layer}")(h)
    return keras.Model(inputs, _dense_layer(spec.out_features, "head", dtype)(h))


def bind_lstm(spec: LSTMSpec, model: keras.Model) -> list[Binding]:
    return _recurrent("lstm", spec, model) + _dense("head", model.get_layer("head"))


# --- self-attention ----------------------------------------------------------------------
def build_attention(spec: AttentionSpec, dtype: str) -> keras.Model:
    inputs = keras.Input((None, spec.in_features), dtype=dtype)
    h = _dense_layer(spec.d_model, "embed", dtype)(inputs)
    h = PositionEncoding(spec.seq_len, spec.d_model, dtype=dtype, name="position")(h)
    for b in range(spec.num_blocks):
        h = Block(spec, dtype=dtype, name=f"blocks_{b}")(h)
    h = keras.layers.GlobalAveragePooling1D(dtype=dtype, name="mean_over_time")(h)
    return keras.Model(inputs, _dense_layer(spec.out_features, "head", dtype)(h))


def bind_attention(spec: AttentionSpec, model: keras.Model) -> list[Binding]:
    d = spec.d_model
    out = _dense("embed", model.get_layer("embed"))
    for b in range(spec.num_blocks):
        blk = model.get_layer(f"blocks_{b}")
        for proj, layer in (("q", blk.attn.query_dense), ("k", blk.attn.key_dense),
                            ("v", blk.attn.value_dense), ("o", blk.attn.output_dense)):
            # EinsumDense kernels are (d, heads, head_dim) for q, k, v and
            # (heads, head_dim, d) for the output; row-major reshape gives (d, d).
            out += [_bind(f"blocks.{b}.attn.{proj}.kernel", layer.kernel, binding.reshaped((d, d))),
                    _bind(f"blocks.{b}.attn.{proj}.bias", layer.bias, binding.reshaped((d,)))]
        for norm in ("ln1", "ln2"):
            layer = getattr(blk, norm)
            out += [_bind(f"blocks.{b}.{norm}.scale", layer.gamma),
                    _bind(f"blocks.{b}.{norm}.bias", layer.beta)]
        out += _dense(f"blocks.{b}.ffn.0", blk.ffn0)
        out += _dense(f"blocks.{b}.ffn.1", blk.ffn1)
    return out + _dense("head", model.get_layer("head"))


# --- vanilla RNN -------------------------------------------------------------------------
def build_rnn(spec: Any, dtype: str, unroll: bool = False) -> keras.Model:
    """`unroll` as for the LSTM."""
    inputs = keras.Input((spec.seq_len if unroll else None, spec.in_features), dtype=dtype)
    h = inputs
    for layer in range(spec.num_layers):
        h = keras.layers.SimpleRNN(
            spec.hidden_size, activation="tanh", use_bias=True, dropout=0.0,
            recurrent_dropout=0.0,
            # the last layer returns the last step's h, or every step's (spec.output)
            return_sequences=spec.every_step or layer < spec.num_layers - 1, unroll=unroll,
            dtype=dtype, name=f"rnn_{layer}")(h)
    return keras.Model(inputs, _dense_layer(spec.out_features, "head", dtype)(h))


def bind_rnn(spec: Any, model: keras.Model) -> list[Binding]:
    return _recurrent("rnn", spec, model) + _dense("head", model.get_layer("head"))


def alignments() -> list[dict[str, str]]:
    """Where Keras' layers default differently from the canonical model, and what fwbench
    does about it (the report lists these beside the optimizers')."""
    d, a = adapters.default_of, adapters.aligned
    return [
        a("LayerNorm epsilon", d(keras.layers.LayerNormalization, "epsilon"),
          "spec.layer_norm_eps"),
        a("GELU form", f"approximate={d(keras.activations.gelu, 'approximate')}",
          "exact; in float64 via erfc with a float64 1/sqrt(2), because tf.nn.gelu "
          "rounds that constant to float32"),
        a("LSTM forget-gate bias init", f"unit_forget_bias={d(keras.layers.LSTM, 'unit_forget_bias')}",
          "False (weights are loaded anyway)"),
        a("LSTM gate order", "i, f, c, o", "= canonical i, f, g, o"),
        a("MultiHeadAttention kernels", "(d, heads, head_dim) and (heads, head_dim, d)",
          "reshaped from canonical (d, d)"),
    ]


@dataclass(frozen=True)
class Builder:
    # a functional Keras model; sequence inputs take any length (time axis None)
    build: Callable[[Any, str], keras.Model]
    # where each canonical parameter lives in the built model
    bind: Callable[[Any, keras.Model], list[Binding]]


# Model kind (bench/models) -> how Keras builds and binds it.
BUILDERS: dict[str, Builder] = {
    "mlp": Builder(build_mlp, bind_mlp),
    "lstm": Builder(build_lstm, bind_lstm),
    "attention": Builder(build_attention, bind_attention),
    "rnn": Builder(build_rnn, bind_rnn),
}


def _builder(spec: ModelSpec) -> Builder:
    return models.entry(BUILDERS, spec, "impls/tf/models.py BUILDERS")


def build_model(spec: ModelSpec, dtype: str) -> keras.Model:
    """A functional Keras model; variable-length sequences are accepted (time axis None)."""
    return _builder(spec).build(spec, dtype)


def bindings(spec: ModelSpec, model: keras.Model) -> list[Binding]:
    """Where each canonical parameter lives in `model`."""
    return _builder(spec).bind(spec, model)


def shape_of(variable: Any) -> tuple[int, ...]:
    return tuple(variable.shape)


def store(variable: Any, value: np.ndarray) -> None:
    variable.assign(value)


def fetch(value: Any) -> np.ndarray:
    """A variable's or a gradient tensor's value, as NumPy."""
    return keras.ops.convert_to_numpy(value)
