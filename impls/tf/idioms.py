"""The idioms an expert would try for each model in Keras 3 on TensorFlow
(bench/speed/idioms.py times them against the adapter's and checks their parity)."""

from __future__ import annotations

from functools import partial
from typing import Any

import tensorflow as tf

from bench.speed.idioms import Candidate, Variant, adapter_candidate, host_batches, variant
from impls.tf import models
from impls.tf.train import compiled_as


def _scores_path(layer: Any, query: Any, key: Any, value: Any, attention_mask: Any = None,
                 training: Any = None, return_attention_scores: bool = False,
                 use_causal_mask: bool = False) -> tuple[Any, None]:
    """MultiHeadAttention's explicit path (einsum, masked softmax, einsum), which the layer
    took before Keras routed it through keras.ops.dot_product_attention; it still takes
    it when attention scores are asked for."""
    out, _ = type(layer)._compute_attention(layer, query, key, value, attention_mask, training,
                                            return_attention_scores=True,
                                            use_causal_mask=use_causal_mask)
    return out, None


def _explicit_attention(model: Any) -> None:
    for b in range(model.spec.num_blocks):
        attn = model.keras.get_layer(f"blocks_{b}").attn
        attn._compute_attention = partial(_scores_path, attn)


def _unrolled(build: Any):
    """Rebuild the model with its recurrent layers unrolled over a fixed sequence length
    (Keras' unroll=True), holding the same weights."""
    def change(model: Any) -> None:
        with tf.device(model.device):
            keras_model = build(model.spec, model.dtype, unroll=True)
            keras_model.set_weights(model.keras.get_weights())
        model.keras, model.bindings = keras_model, models.bindings(model.spec, keras_model)
    return change


def _xla(adapter: Any, spec: Any, params: Any, dtype: str) -> Candidate:
    """The adapter's step under tf.function(jit_compile=True) (the matrix's xla mode)."""
    candidate = adapter_candidate(adapter, spec, params, dtype)
    trainer = candidate.trainer
    trainer._step = compiled_as("xla", trainer._step.python_function)
    return candidate


VARIANTS: list[Variant] = [
    variant("mlp", "tf.function", "GradientTape step in tf.function, batch on device",
            chosen=True),
    Variant("mlp", "xla", "the same step in tf.function(jit_compile=True)", _xla),
    Variant("mlp", "host batch", "NumPy batch passed to the tf.function each step",
            host_batches("int64")),
    variant("attention", "MHA", "keras.layers.MultiHeadAttention (keras.ops."
            "dot_product_attention inside)", chosen=True),
    variant("attention", "explicit", "MultiHeadAttention's einsum + masked softmax path",
            _explicit_attention),
    Variant("attention", "xla", "keras.layers.MultiHeadAttention, step under XLA", _xla),
    variant("lstm", "LSTM", "keras.layers.LSTM (while loop over time)", chosen=True),
    variant("lstm", "unrolled", "keras.layers.LSTM(unroll=True) at a fixed length",
            _unrolled(models.build_lstm)),
    Variant("lstm", "xla", "keras.layers.LSTM, step under XLA", _xla),
    variant("rnn", "SimpleRNN", "keras.layers.SimpleRNN (while loop over time)", chosen=True),
    variant("rnn", "unrolled", "keras.layers.SimpleRNN(unroll=True) at a fixed length",
            _unrolled(models.build_rnn)),
]
