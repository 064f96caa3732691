"""JAX's side of the static-vs-dynamic study (bench/graphs/__init__.py): compiles of jax.jit on
new sequence lengths (and padding to buckets as the remedy), and data-dependent Python
control flow under jax.jit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, monitoring

from bench import adapters, canonical, data, graphs

# JAX reports every trace and every XLA compilation as a monitoring event.
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_events: dict[str, list[float]] = {}


def _listen(event: str, duration: float, **_: Any) -> None:
    _events.setdefault(event, []).append(duration)


monitoring.register_event_duration_secs_listener(_listen)


def _count(event: str) -> int:
    return len(_events.get(event, []))


def retrace(job: dict[str, Any]) -> dict[str, Any]:
    spec, train = graphs.retrace_specs(job["preset"], job["model"], job["order"])
    adapter = adapters.get("jax")
    model = adapter.build(spec, canonical.init_params(spec, seed=0), "float32")
    setting = job["setting"]
    if setting not in ("default", "buckets"):
        raise ValueError(f"unknown retrace setting {setting!r} for jax")
    trainer = adapter.trainer(model, train.optimizer, "cross_entropy", job["mode"])
    _events.clear()  # building the model compiled nothing of the step's
    steps = []
    for i, length in enumerate(job["order"]):
        x, target = data.batch(spec, train.batch_size, "cross_entropy", graphs.RETRACE_SEED, i,
                               seq_len=length)
        padded = graphs.bucket(length) if setting == "buckets" else length
        # Host-side padding and device_put: no JAX computation, so nothing compiles here.
        x = np.pad(x, ((0, 0), (0, padded - length), (0, 0)))
        batch = trainer.put(x, target)
        if setting == "buckets":
            batch = (*batch, jax.device_put(np.full(len(x), length, np.int32), model.device))
        started = time.perf_counter()
        trainer.value(trainer.step(batch))
        steps.append({"length": length, "padded_to": padded,
                      "seconds": time.perf_counter() - started, "traces": _count(TRACE_EVENT),
                      "compiles": _count(COMPILE_EVENT)})
    out = {"steps": steps, "traces": _count(TRACE_EVENT), "compiles": _count(COMPILE_EVENT),
           "compile_s": float(sum(_events.get(COMPILE_EVENT, []))),
           "counter": f"jax.monitoring events {TRACE_EVENT} and {COMPILE_EVENT}"}
    if setting == "buckets":
        out["padding_error"] = _padding_error(model, spec, train.batch_size,
                                              sorted(set(job["order"])))
    return out


def _padding_error(model: Any, spec: Any, batch_size: int, lengths: list[int]) -> float:
    """Largest relative difference, over the lengths, between the loss of a padded,
    masked batch and of the same batch unpadded, at the model's current parameters
    (the remedy must not change the math)."""
    from impls.jax.train import make_loss

    of_params = jax.jit(make_loss(model.module, "cross_entropy"))
    worst = 0.0
    for length in lengths:
        x, target = data.batch(spec, batch_size, "cross_entropy", graphs.RETRACE_SEED, 0,
                               seq_len=length)
        x32, t = np.asarray(x, np.float32), np.asarray(target, np.int32)
        plain = float(of_params(model.params, x32, t))
        pad = np.pad(x32, ((0, 0), (0, graphs.bucket(length) - length), (0, 0)))
        masked = float(of_params(model.params, pad, t, np.full(len(x), length, np.int32)))
        worst = max(worst, abs(masked - plain) / abs(plain))
    return worst


# --- control flow ---------------------------------------------------------------------
def _python_loss(w1: jax.Array, w2: jax.Array, x: jax.Array, tau: float) -> jax.Array:
    h = x @ w1
    a = jax.nn.relu(h) if h.mean() > 0 else jnp.tanh(h)
    while jnp.linalg.norm(a) > tau:
        a = a / 2
    return jnp.mean((a @ w2) ** 2)


def _ops_loss(w1: jax.Array, w2: jax.Array, x: jax.Array, tau: float) -> jax.Array:
    h = x @ w1
    a = lax.cond(h.mean() > 0, jax.nn.relu, jnp.tanh, h)
    a = lax.while_loop(lambda a: jnp.linalg.norm(a) > tau, lambda a: a / 2, a)
    return jnp.mean((a @ w2) ** 2)


def _masked_loss(w1: jax.Array, w2: jax.Array, x: jax.Array, tau: float) -> jax.Array:
    h = x @ w1
    a = lax.cond(h.mean() > 0, jax.nn.relu, jnp.tanh, h)
    # Reverse mode needs a known trip count: a fixed number of steps, each halving only
    # while the norm is above tau.
    a = lax.fori_loop(0, graphs.CF_MAX_HALVINGS,
                      lambda _, a: jnp.where(jnp.linalg.norm(a) > tau, a / 2, a), a)
    return jnp.mean((a @ w2) ** 2)


VARIANTS = {"python": _python_loss, "lax.cond + lax.while_loop": _ops_loss,
            "lax.cond + masked lax.fori_loop": _masked_loss}


def control_flow(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every variant in every mode of job["modes"]: one row each (bench.graphs.verdict)."""
    return [{**row, "mode": mode} for mode in job["modes"] for row in _control_flow(mode)]


def _control_flow(mode: str) -> list[dict[str, Any]]:
    problem = graphs.control_flow_problem()
    w1 = jnp.asarray(problem.w1, jnp.float32)
    w2 = jnp.asarray(problem.w2, jnp.float32)
    inputs = [jnp.asarray(x, jnp.float32) for x in problem.inputs]
    rows = []
    for variant, loss in VARIANTS.items():
        grad_fn = jax.value_and_grad(lambda w1, w2, x, loss=loss: loss(w1, w2, x, problem.tau),
                                     argnums=(0, 1))
        if mode == "compiled":
            grad_fn = jax.jit(grad_fn)
        elif mode != "eager":
            raise ValueError(f"unknown control-flow mode {mode!r} for jax")

        def call(x: jax.Array, grad_fn: Callable = grad_fn) -> Any:
            if mode == "eager":
                with jax.disable_jit():  # op by op
                    return jax.block_until_ready(grad_fn(w1, w2, x))
            return jax.block_until_ready(grad_fn(w1, w2, x))

        def loss_and_grads(x: jax.Array, call: Callable = call) -> tuple[Any, Any, Any]:
            value, (g1, g2) = call(x)
            return value, g1, g2

        _events.clear()
        row: dict[str, Any] = {"variant": variant,
                               **graphs.drive_control_flow(loss_and_grads, inputs)}
        if mode == "compiled":
            row["traces"] = _count(TRACE_EVENT)
        rows.append(row)
    return rows

