"""The TensorFlow (Keras 3) adapter."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

# Keras 3 picks its backend once, at import; this adapter is the TensorFlow one.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/CUDA notices off stdout

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import adapters, binding, canonical  # noqa: E402
from bench.binding import Binding  # noqa: E402
from bench.canonical import Params  # noqa: E402
from bench.spec import ModelSpec  # noqa: E402
from impls.tf import runtime  # noqa: E402
from impls.tf.models import alignments as model_alignments  # noqa: E402
from impls.tf.models import bindings, build_model, fetch, shape_of, store  # noqa: E402
from impls.tf.train import Trainer, compiled_as, loss_fn, to_target  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the tf adapter needs KERAS_BACKEND=tensorflow, "
                      f"Keras was imported with {keras.backend.backend()!r}")


@dataclass
class Model:
    spec: ModelSpec
    keras: keras.Model
    bindings: list[Binding]
    dtype: str
    device: str  # a TensorFlow device name
    # (what, mode, loss) -> the function made on first use, so that repeated calls (a
    # study's evaluation, text generation, histograms) reuse one tf.function and its traces
    functions: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)


class Adapter(adapters.Adapter):
    name = "tf"
    trainer_class = Trainer
    modes = adapters.MODES["tf"]
    runtime = runtime
    optimizer_forms = {"adagrad": "eps_inside", "rmsprop": "eps_inside", "adam": "eps_hat"}

    def alignments(self) -> list[dict[str, str]]:
        d, a = adapters.default_of, adapters.aligned
        opt = keras.optimizers
        return model_alignments() + [
            a("learning rate variable", "float32 (floatx)", "float64 runs pass a callable "
              "returning a float64 tensor"),
            a("float64 optimizer constants", "momentum, beta_1, beta_2, initial accumulator cast via float32 "
              "(keras.ops.cast of a Python float)", "parity uses values exact in float32"),
            a("Adam epsilon", d(opt.Adam, "epsilon"), "spec.epsilon, added to sqrt(v) before "
              "bias correction (no option moves it)"),
            a("Adagrad initial accumulator", d(opt.Adagrad, "initial_accumulator_value"),
              "spec.initial_accumulator"),
            a("Adagrad epsilon", d(opt.Adagrad, "epsilon"), "spec.epsilon, inside sqrt (no option)"),
            a("RMSprop decay (rho)", d(opt.RMSprop, "rho"), "spec.rho"),
            a("RMSprop epsilon", d(opt.RMSprop, "epsilon"), "spec.epsilon, inside sqrt (no option)"),
        ]

    def build(self, spec: ModelSpec, params: Params, dtype: str = "float32",
              device: str = "cpu") -> Model:
        self._check_build(spec, params, dtype, device)
        tf_device = "/GPU:0" if device == "gpu" else "/CPU:0"
        with tf.device(tf_device):
            model = build_model(spec, dtype)
            binds = bindings(spec, model)
            binding.check(spec, binds, shape_of, "tf")
            binding.write(binds, canonical.cast(params, dtype), shape_of, store)
        return Model(spec, model, binds, dtype, tf_device)

    def forward(self, model: Model, x: np.ndarray, mode: str | None = None) -> np.ndarray:
        fn = self._function(model, "forward", mode, "", lambda x: model.keras(x, training=False))
        with tf.device(model.device):
            return fn(tf.convert_to_tensor(np.asarray(x, dtype=model.dtype))).numpy()

    def loss_and_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                       loss: str = "cross_entropy",
                       mode: str | None = None) -> tuple[float, Params]:
        variables = [b.slots[0] for b in model.bindings]
        value, grads = self._taped(model, x, target, loss, mode, "grads",
                                   lambda tape, x: variables)
        grad_of = {id(v): g for v, g in zip(variables, grads)}
        return value, binding.read(model.bindings, lambda v: fetch(grad_of[id(v)]))

    def input_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                    loss: str = "cross_entropy",
                    mode: str | None = None) -> tuple[float, np.ndarray]:
        def watched(tape: tf.GradientTape, x: tf.Tensor) -> tf.Tensor:
            tape.watch(x)  # a constant, not a variable: watched by hand
            return x

        value, grad = self._taped(model, x, target, loss, mode, "input_grads", watched)
        return value, grad.numpy()

    def _taped(self, model: Model, x: np.ndarray, target: np.ndarray, loss: str,
               mode: str | None, what: str, sources: Any) -> tuple[float, Any]:
        """The loss and its gradient with respect to sources(tape, x), under a
        GradientTape, in `mode` (one function per model, what, mode and loss)."""
        self._check_loss(loss)

        def value_and_grad(x: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, Any]:
            with tf.GradientTape() as tape:
                wrt = sources(tape, x)
                value = loss_fn(loss, model.keras(x, training=True), target)
            return value, tape.gradient(value, wrt)

        fn = self._function(model, what, mode, loss, value_and_grad)
        with tf.device(model.device):
            value, grad = fn(tf.convert_to_tensor(np.asarray(x, dtype=model.dtype)),
                             to_target(loss, target, model.dtype))
        return float(value.numpy()), grad

    def _function(self, model: Model, what: str, mode: str | None, loss: str, fn: Any) -> Any:
        """`fn` as `mode` runs it, made once per model, what, mode and loss."""
        mode = self._mode_or_default(mode)
        key = (what, mode, loss)
        if key not in model.functions:
            model.functions[key] = compiled_as(mode, fn)
        return model.functions[key]

    def get_params(self, model: Model) -> Params:
        return binding.read(model.bindings, fetch)

    def param_count(self, model: Model) -> int:
        return int(sum(np.prod(v.shape) for v in model.keras.trainable_variables))

    def versions(self) -> dict[str, str]:
        return {"tensorflow": tf.__version__, "keras": keras.__version__}

