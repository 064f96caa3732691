"""TensorFlow's side of the static-vs-dynamic study (bench/graphs/__init__.py): retracing on new
sequence lengths, and data-dependent Python control flow under tf.function."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from bench import adapters, canonical, data, graphs


def retrace(job: dict[str, Any]) -> dict[str, Any]:
    spec, train = graphs.retrace_specs(job["preset"], job["model"], job["order"])
    adapter = adapters.get("tf")
    model = adapter.build(spec, canonical.init_params(spec, seed=0), "float32")
    options: dict[str, Any] = {}
    if job["setting"] == "reduce_retracing":
        options["reduce_retracing"] = True
    elif job["setting"] == "input_signature":
        options["input_signature"] = [tf.TensorSpec((None, None, spec.in_features), tf.float32),
                                      tf.TensorSpec((None,), tf.int64)]
    elif job["setting"] != "default":
        raise ValueError(f"unknown retrace setting {job['setting']!r} for tf")
    trainer = adapter.trainer(model, train.optimizer, "cross_entropy", job["mode"], options)
    count = trainer._step.experimental_get_tracing_count  # the tf.function's own counter
    steps = []
    for i, length in enumerate(job["order"]):
        x, target = data.batch(spec, train.batch_size, "cross_entropy", graphs.RETRACE_SEED, i,
                               seq_len=length)
        batch = trainer.put(x, target)
        started = time.perf_counter()
        trainer.value(trainer.step(batch))
        steps.append({"length": length, "padded_to": length,
                      "seconds": time.perf_counter() - started, "traces": count()})
    return {"steps": steps, "counter": "tf.function.experimental_get_tracing_count()",
            "traces": count(), "compiles": None}


# --- control flow ---------------------------------------------------------------------
def _python_loss(w1: tf.Variable, w2: tf.Variable, x: tf.Tensor, tau: float) -> tf.Tensor:
    h = x @ w1
    a = tf.nn.relu(h) if tf.reduce_mean(h) > 0 else tf.tanh(h)
    while tf.norm(a) > tau:
        a = a / 2
    return tf.reduce_mean((a @ w2) ** 2)


def _ops_loss(w1: tf.Variable, w2: tf.Variable, x: tf.Tensor, tau: float) -> tf.Tensor:
    h = x @ w1
    a = tf.cond(tf.reduce_mean(h) > 0, lambda: tf.nn.relu(h), lambda: tf.tanh(h))
    (a,) = tf.while_loop(lambda a: tf.norm(a) > tau, lambda a: (a / 2,), (a,))
    return tf.reduce_mean((a @ w2) ** 2)


def _bounded_loss(w1: tf.Variable, w2: tf.Variable, x: tf.Tensor, tau: float) -> tf.Tensor:
    h = x @ w1
    a = tf.cond(tf.reduce_mean(h) > 0, lambda: tf.nn.relu(h), lambda: tf.tanh(h))
    # A bound on the trip count gives the gradient's loop stack a fixed size, which XLA needs.
    (a,) = tf.while_loop(lambda a: tf.norm(a) > tau, lambda a: (a / 2,), (a,),
                         maximum_iterations=graphs.CF_MAX_HALVINGS)
    return tf.reduce_mean((a @ w2) ** 2)


VARIANTS = {"python": _python_loss, "tf.cond + tf.while_loop": _ops_loss,
            "tf.cond + tf.while_loop(maximum_iterations)": _bounded_loss}
# mode -> how the loss-and-gradient function is wrapped
MODES: dict[str, Callable[[Callable], Callable]] = {
    "eager": lambda fn: fn,
    "compiled": tf.function,  # AutoGraph on, as by default
    "xla": lambda fn: tf.function(fn, jit_compile=True),
    "compiled (autograph=False)": lambda fn: tf.function(fn, autograph=False),
}


def control_flow(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every variant in every mode of job["modes"]: one row each (bench.graphs.verdict)."""
    return [{**row, "mode": mode} for mode in job["modes"] for row in _control_flow(mode)]


def _control_flow(mode: str) -> list[dict[str, Any]]:
    problem = graphs.control_flow_problem()
    rows = []
    for variant, loss in VARIANTS.items():
        w1 = tf.Variable(problem.w1.astype(np.float32))
        w2 = tf.Variable(problem.w2.astype(np.float32))

        def loss_and_grads(x: tf.Tensor, loss: Callable = loss, w1: Any = w1,
                           w2: Any = w2) -> tuple[tf.Tensor, list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                value = loss(w1, w2, x, problem.tau)
            return value, tape.gradient(value, [w1, w2])

        fn = MODES[mode](loss_and_grads)
        inputs = [tf.constant(x.astype(np.float32)) for x in problem.inputs]

        def call(x: tf.Tensor, fn: Callable = fn) -> tuple[Any, Any, Any]:
            value, (g1, g2) = fn(x)
            return value.numpy(), g1.numpy(), g2.numpy()

        row: dict[str, Any] = {"variant": variant, **graphs.drive_control_flow(call, inputs)}
        if hasattr(fn, "experimental_get_tracing_count"):
            row["traces"] = fn.experimental_get_tracing_count()
        rows.append(row)
    return rows

