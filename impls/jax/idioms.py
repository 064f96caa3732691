"""The idioms an expert would try for each model in Flax + Optax (bench/speed/idioms.py
times them against the adapter's and checks their parity)."""

from __future__ import annotations

from typing import Any

import jax

from bench.speed.idioms import Candidate, Variant, adapter_candidate, host_batches, variant
from impls.jax.models import LSTM, RNN, Attention


def _module(cls: type, **fields: Any):
    """Swap the model's Flax module for `cls(spec, dtype, **fields)`: the same parameter
    tree, so the adapter's bindings and trainer apply unchanged."""
    def change(model: Any) -> None:
        model.module = cls(model.spec, model.dtype, **fields)
    return change


def _no_donation(adapter: Any, spec: Any, params: Any, dtype: str) -> Candidate:
    """The adapter's step jitted without donating the parameters and optimizer state."""
    candidate = adapter_candidate(adapter, spec, params, dtype)
    trainer = candidate.trainer
    trainer._step = jax.jit(trainer._step.__wrapped__)  # the same Python step, no donation
    return candidate


VARIANTS: list[Variant] = [
    variant("mlp", "jit+donate", "jax.jit(step, donate_argnums=(0, 1)), batch on device",
            chosen=True),
    Variant("mlp", "jit", "jax.jit(step) without donated buffers", _no_donation),
    Variant("mlp", "host batch", "NumPy batch passed to the jitted step each step", host_batches("int32")),
    variant("attention", "flax", "nn.MultiHeadDotProductAttention, Flax's "
            "dot_product_attention", chosen=True),
    variant("attention", "jax.nn xla", "the same layer with attention_fn="
            "jax.nn.dot_product_attention(implementation='xla')",
            _module(Attention, attention="jax_nn_xla")),
    variant("attention", "einsum", "the same layer with a plain einsum + softmax attention_fn",
            _module(Attention, attention="einsum")),
    variant("lstm", "optimized", "nn.RNN(nn.OptimizedLSTMCell)", chosen=True),
    variant("lstm", "plain cell", "nn.RNN(nn.LSTMCell)", _module(LSTM, cell="plain")),
    variant("lstm", "unroll 4", "nn.RNN(nn.OptimizedLSTMCell, unroll=4)",
            _module(LSTM, unroll=4)),
    variant("rnn", "scan", "nn.RNN(nn.SimpleCell)", chosen=True),
    variant("rnn", "unroll 4", "nn.RNN(nn.SimpleCell, unroll=4)", _module(RNN, unroll=4)),
]
