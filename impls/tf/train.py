"""The Keras training step on TensorFlow: GradientTape, eager, tf.function or XLA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from bench.adapters import Trainer as BaseTrainer
from bench.spec import OptimizerSpec
from impls.tf.optimizers import make_optimizer


def loss_fn(name: str, output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    if name == "cross_entropy":
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=output)
        return tf.reduce_mean(per_example)
    return tf.reduce_mean(tf.square(output - target))


def to_target(loss: str, target: np.ndarray, dtype: str) -> tf.Tensor:
    if loss == "cross_entropy":
        return tf.convert_to_tensor(np.asarray(target, dtype=np.int64))
    return tf.convert_to_tensor(np.asarray(target, dtype=dtype))


def compiled_as(mode: str, fn: Callable, **options: Any) -> Callable:
    """`fn` as `mode` runs it: itself (eager), tf.function (compiled) or tf.function with
    XLA (xla); `options` go to tf.function (reduce_retracing, input_signature, ...)."""
    if mode == "compiled":
        return tf.function(fn, **options)
    if mode == "xla":
        return tf.function(fn, jit_compile=True, **options)
    return fn


class Trainer(BaseTrainer):
    def __init__(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str,
                 compile_options: dict[str, Any] | None = None):
        self.model, self.loss, self.mode = model, loss, mode
        self.optimizer = make_optimizer(optimizer, model.dtype)
        variables = model.keras.trainable_variables
        self.optimizer.build(variables)  # slots exist before any tracing

        def step(x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                value = loss_fn(loss, model.keras(x, training=True), target)
            grads = tape.gradient(value, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            return value

        self._step = compiled_as(mode, step, **(compile_options or {}))

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.device(self.model.device):
            return (tf.identity(tf.convert_to_tensor(np.asarray(x, dtype=self.model.dtype))),
                    tf.identity(to_target(self.loss, target, self.model.dtype)))

    def compile(self, batch: tuple[tf.Tensor, tf.Tensor]) -> str | None:
        if self.mode == "eager":
            return None
        # Traces the Python step into a graph; XLA (mode xla) still compiles that graph
        # inside the first call, which TensorFlow exposes no separate call for.
        with tf.device(self.model.device):
            self._step.get_concrete_function(*batch)
        return "tf.function.get_concrete_function (tracing only)"

    def step(self, batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        with tf.device(self.model.device):
            return self._step(*batch)

    def value(self, loss: tf.Tensor) -> float:
        return float(loss.numpy())  # .numpy() waits for the device


# --- the reference loop for the harness-overhead benchmark ---------------------------
def hand_step(model: Any, x: Any, y: Any, mode: str):
    """The minimal hand-written training loop of this model (Adam 1e-3, cross entropy),
    with none of fwbench's machinery: benchmarks/harness_overhead.py measures the
    harness's cells against it. Returns (step, read): step() runs one step and returns
    the loss as the framework's own value; read(loss) waits for it."""
    import keras

    net = model.keras
    opt = keras.optimizers.Adam(1e-3)
    xt, yt = tf.constant(x, tf.float32), tf.constant(y, tf.int64)

    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = net(inputs, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    if mode != "eager":
        train_step = tf.function(train_step, jit_compile=mode == "xla")
    return (lambda: train_step(xt, yt)), lambda loss: loss.numpy()
