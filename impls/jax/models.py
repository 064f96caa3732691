"""Flax linen modules, one per model kind, and their binding to canonical parameters.

BUILDERS maps a kind's name (bench/models) to a `Builder`: its module class and where
each canonical parameter lives in the module's parameter tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bench import adapters, binding, models
from bench.binding import Binding
from bench.reference import positional_encoding
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, ModelSpec

ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "gelu": partial(nn.gelu, approximate=False),  # Flax defaults to the tanh form
    "gelu_tanh": partial(nn.gelu, approximate=True),
    "swish": nn.swish,
    "identity": lambda x: x,
}


def einsum_attention(query: Any, key: Any, value: Any, mask: Any = None) -> Any:
    """softmax(q k^T / sqrt(head_dim)) v written out with einsum, in the inputs' dtype.
    Shapes (batch, length, heads, head_dim) as Flax passes them; `mask` True = attend."""
    scale = jnp.asarray(1.0 / np.sqrt(query.shape[-1]), dtype=query.dtype)
    logits = jnp.einsum("bqhd,bkhd->bhqk", query * scale, key)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), value)


def jax_nn_attention(query: Any, key: Any, value: Any, mask: Any = None) -> Any:
    """jax.nn.dot_product_attention with its XLA implementation (its softmax is float32
    whatever the input, so float64 parity fails; see Block)."""
    return jax.nn.dot_product_attention(query, key, value, mask=mask, implementation="xla")


# How a block computes attention from its projected q, k, v. "flax" is the one the
# adapter uses; benchmarks/idioms.py times the others against it.
ATTENTION_FNS: dict[str, Callable[..., Any]] = {
    "flax": nn.dot_product_attention,
    "jax_nn_xla": jax_nn_attention,
    "einsum": einsum_attention,
}
# The LSTM cell under nn.RNN: both keep the same parameter tree (i<gate>, h<gate>).
LSTM_CELLS: dict[str, type[nn.Module]] = {
    "optimized": nn.OptimizedLSTMCell,  # one fused matmul for the four gates
    "plain": nn.LSTMCell,               # four matmuls per input and per hidden state
}


class MLP(nn.Module):
    spec: MLPSpec
    dtype: Any

    @nn.compact
    def __call__(self, x):
        widths = [*self.spec.hidden, self.spec.out_features]
        for i, width in enumerate(widths):
            x = nn.Dense(width, dtype=self.dtype, param_dtype=self.dtype, name=f"layers_{i}")(x)
            if i < len(widths) - 1:
                x = ACTIVATIONS[self.spec.activation](x)
        return x


def _head_input(spec: Any, seq: Any, lengths: Any, last: Any) -> Any:
    """What a recurrent head reads: every step's h (spec.every_step), the last step's,
    or with `lengths` each sequence's last valid step (its final carry)."""
    if spec.every_step:
        return seq
    return seq[:, -1, :] if lengths is None else last


class LSTM(nn.Module):
    spec: LSTMSpec
    dtype: Any
    cell: str = "optimized"  # a key of LSTM_CELLS (benchmarks/idioms.py times the others)
    unroll: int = 1          # scan iterations unrolled into one (nn.RNN's unroll)

    @nn.compact
    def __call__(self, x, lengths=None):
        """`lengths` (batch,): valid steps of a batch padded at the end (for padding to
        shape buckets); the head then reads each sequence's last valid step."""
        last = None
        for layer in range(self.spec.num_layers):
            # The cell, created here, owns the parameters, so it carries the name.
            cell = LSTM_CELLS[self.cell](self.spec.hidden_size, dtype=self.dtype,
                                         param_dtype=self.dtype, name=f"lstm_{layer}")
            # Scan over time, zero initial carry; past seq_lengths the carry stays put.
            (_, last), x = nn.RNN(cell, return_carry=True, unroll=self.unroll)(
                x, seq_lengths=lengths)
        return nn.Dense(self.spec.out_features, dtype=self.dtype, param_dtype=self.dtype,
                        name="head")(_head_input(self.spec, x, lengths, last))


class RNN(nn.Module):
    spec: Any  # bench.models.rnn.RNNSpec
    dtype: Any
    unroll: int = 1  # as for the LSTM

    @nn.compact
    def __call__(self, x, lengths=None):
        """`lengths` as for the LSTM: the head reads each sequence's last valid step."""
        last = None
        for layer in range(self.spec.num_layers):
            # h_t = tanh(x_t @ i.kernel + i.bias + h_{t-1} @ h.kernel), zero initial carry
            cell = nn.SimpleCell(self.spec.hidden_size, activation_fn=jnp.tanh,
                                 dtype=self.dtype, param_dtype=self.dtype, name=f"rnn_{layer}")
            last, x = nn.RNN(cell, return_carry=True, unroll=self.unroll)(x, seq_lengths=lengths)
        return nn.Dense(self.spec.out_features, dtype=self.dtype, param_dtype=self.dtype,
                        name="head")(_head_input(self.spec, x, lengths, last))


class Block(nn.Module):
    spec: AttentionSpec
    dtype: Any
    attention: str = "flax"  # a key of ATTENTION_FNS

    @nn.compact
    def __call__(self, h, valid=None):
        s, dt = self.spec, self.dtype
        # Flax's own dot_product_attention, not jax.nn.dot_product_attention: the fused
        # one computes its softmax in float32 whatever the input (float64 parity fails at
        # 4e-8) and its cuDNN kernel takes only fp16/bf16, so a float32 run would get
        # XLA's unfused path from it anyway (measured with jax 0.10.2, flax 0.12.8).
        attn = nn.MultiHeadDotProductAttention(
            s.num_heads, qkv_features=s.d_model, out_features=s.d_model, dtype=dt,
            param_dtype=dt, dropout_rate=0.0, deterministic=True,
            attention_fn=ATTENTION_FNS[self.attention], name="attn")
        # use_fast_variance=False: Flax's default E[x^2] - E[x]^2 loses digits in float32.
        norm = partial(nn.LayerNorm, epsilon=s.layer_norm_eps, dtype=dt, param_dtype=dt,
                       use_fast_variance=False)
        ln1, ln2 = norm(name="ln1"), norm(name="ln2")
        ffn0 = nn.Dense(s.ff_dim, dtype=dt, param_dtype=dt, name="ffn_0")
        ffn1 = nn.Dense(s.d_model, dtype=dt, param_dtype=dt, name="ffn_1")
        mask = nn.make_causal_mask(jnp.ones(h.shape[:2], dtype=bool)) if s.causal else None
        if valid is not None:  # padded keys get no attention weight
            mask = nn.combine_masks(mask, valid[:, None, None, :])

        def ffn(y):
            return ffn1(ACTIVATIONS[s.activation](ffn0(y)))

        if s.norm == "post":
            h = ln1(h + attn(h, mask=mask))
            return ln2(h + ffn(h))
        h = h + attn(ln1(h), mask=mask)
        return h + ffn(ln2(h))


class Attention(nn.Module):
    spec: AttentionSpec
    dtype: Any
    attention: str = "flax"  # a key of ATTENTION_FNS

    @nn.compact
    def __call__(self, x, lengths=None):
        """`lengths` (batch,): valid steps of a batch padded at the end; padded steps are
        masked out of attention and of the mean over time."""
        s, dt = self.spec, self.dtype
        position = jnp.asarray(positional_encoding(s.seq_len, s.d_model), dtype=dt)
        h = nn.Dense(s.d_model, dtype=dt, param_dtype=dt, name="embed")(x)
        h = h + position[: x.shape[1]]
        valid = None if lengths is None else jnp.arange(x.shape[1])[None, :] < lengths[:, None]
        for b in range(s.num_blocks):
            h = Block(s, dt, self.attention, name=f"blocks_{b}")(h, valid)
        if valid is None:
            pooled = h.mean(axis=1)
        else:
            pooled = (h * valid[..., None]).sum(axis=1) / lengths[:, None].astype(dt)
        return nn.Dense(s.out_features, dtype=dt, param_dtype=dt, name="head")(pooled)


GATES = ("i", "f", "g", "o")  # canonical gate blocks, in order along the last axis


# A binding's slot in Flax is a path of keys into the parameter tree.
Path = tuple[str, ...]


def _dense(name: str, path: Path) -> list[Binding]:
    return [_plain(f"{name}.kernel", path + ("kernel",)), _plain(f"{name}.bias", path + ("bias",))]


def _plain(name: str, path: Path) -> Binding:
    return Binding(name, (path,))


def _reshaped(name: str, path: Path, canonical: tuple[int, ...]) -> Binding:
    return Binding(name, (path,), binding.reshaped(canonical))


def _gates(name: str, paths: list[Path]) -> Binding:
    """(n, 4H) canonical array <-> four (n, H) arrays, one per gate, in order i, f, g, o."""
    return Binding(name, tuple(paths), binding.SPLIT_LAST_AXIS)


def bind_mlp(spec: MLPSpec) -> list[Binding]:
    return [b for i in range(len(spec.hidden) + 1) for b in _dense(f"layers.{i}", (f"layers_{i}",))]


def bind_lstm(spec: LSTMSpec) -> list[Binding]:
    out: list[Binding] = []
    for layer in range(spec.num_layers):
        cell = (f"lstm_{layer}",)
        # OptimizedLSTMCell keeps LSTMCell's tree: dense `i<gate>` (input, no bias) and
        # `h<gate>` (hidden, with the gate's bias), fused into one matmul when run.
        out += [_gates(f"lstm.{layer}.kernel", [cell + (f"i{g}", "kernel") for g in GATES]),
                _gates(f"lstm.{layer}.recurrent_kernel",
                       [cell + (f"h{g}", "kernel") for g in GATES]),
                _gates(f"lstm.{layer}.bias", [cell + (f"h{g}", "bias") for g in GATES])]
    return out + _dense("head", ("head",))


def bind_attention(spec: AttentionSpec) -> list[Binding]:
    d = spec.d_model
    out = _dense("embed", ("embed",))
    for b in range(spec.num_blocks):
        blk = f"blocks_{b}"
        for proj, flax_name in (("q", "query"), ("k", "key"), ("v", "value")):
            # (d, heads, head_dim) kernels and (heads, head_dim) biases, row-major
            out += [_reshaped(f"blocks.{b}.attn.{proj}.kernel", (blk, "attn", flax_name, "kernel"),
                              (d, d)),
                    _reshaped(f"blocks.{b}.attn.{proj}.bias", (blk, "attn", flax_name, "bias"),
                              (d,))]
        out += [_reshaped(f"blocks.{b}.attn.o.kernel", (blk, "attn", "out", "kernel"), (d, d)),
                _plain(f"blocks.{b}.attn.o.bias", (blk, "attn", "out", "bias"))]
        for norm in ("ln1", "ln2"):
            out += [_plain(f"blocks.{b}.{norm}.scale", (blk, norm, "scale")),
                    _plain(f"blocks.{b}.{norm}.bias", (blk, norm, "bias"))]
        out += _dense(f"blocks.{b}.ffn.0", (blk, "ffn_0"))
        out += _dense(f"blocks.{b}.ffn.1", (blk, "ffn_1"))
    return out + _dense("head", ("head",))


def alignments() -> list[dict[str, str]]:
    """Where Flax's layers default differently from the canonical model, and what fwbench
    does about it (the report lists these beside the optimizers')."""
    d, a = adapters.default_of, adapters.aligned
    return [
        a("LayerNorm epsilon", d(nn.LayerNorm, "epsilon"), "spec.layer_norm_eps"),
        a("LayerNorm variance", f"use_fast_variance={d(nn.LayerNorm, 'use_fast_variance')}",
          "use_fast_variance=False (two-pass)"),
        a("GELU form", f"approximate={d(nn.gelu, 'approximate')}", "approximate=False for gelu"),
        a("LSTM parameters", "per-gate dense layers ii..io (no bias), hi..ho (bias)",
          "split/joined along the 4H axis"),
        a("SimpleCell parameters", "dense i (input, with the bias) and h (hidden, no bias)",
          "= canonical kernel, bias and recurrent_kernel"),
    ]


def bind_rnn(spec: Any) -> list[Binding]:
    out: list[Binding] = []
    for layer in range(spec.num_layers):
        cell = (f"rnn_{layer}",)  # SimpleCell: dense `i` (input, with the bias), `h` (no bias)
        out += [_plain(f"rnn.{layer}.kernel", cell + ("i", "kernel")),
                _plain(f"rnn.{layer}.recurrent_kernel", cell + ("h", "kernel")),
                _plain(f"rnn.{layer}.bias", cell + ("i", "bias"))]
    return out + _dense("head", ("head",))


@dataclass(frozen=True)
class Builder:
    module: type[nn.Module]                       # called as module(spec, dtype)
    bind: Callable[[Any], list[Binding]]          # spec -> where each parameter lives


# Model kind (bench/models) -> its Flax module and binding.
BUILDERS: dict[str, Builder] = {
    "mlp": Builder(MLP, bind_mlp),
    "lstm": Builder(LSTM, bind_lstm),
    "attention": Builder(Attention, bind_attention),
    "rnn": Builder(RNN, bind_rnn),
}


def _builder(spec: ModelSpec) -> Builder:
    return models.entry(BUILDERS, spec, "impls/jax/models.py BUILDERS")


def bindings(spec: ModelSpec) -> list[Binding]:
    """Where each canonical parameter lives in the module's parameter tree."""
    return _builder(spec).bind(spec)


def lookup(tree: Any, path: Path) -> Any:
    """The leaf at `path` of a nested parameter tree."""
    for key in path:
        tree = tree[key]
    return tree


def store_into(tree: dict[str, Any], path: Path, value: np.ndarray) -> None:
    """Put `value` at `path` of a nested dict, making the levels it needs."""
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def build_module(spec: ModelSpec, dtype: Any) -> nn.Module:
    return _builder(spec).module(spec, dtype)
