"""The JAX training step: one pure function, run op by op (eager) or through jax.jit."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from bench.adapters import Trainer as BaseTrainer
from bench.spec import OptimizerSpec
from impls.jax.optimizers import make_optimizer


def loss_fn(name: str, output: jax.Array, target: jax.Array) -> jax.Array:
    if name == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(output, target).mean()
    return optax.squared_error(output, target).mean()  # not l2_loss: that halves it


def make_loss(module: Any, loss: str):
    def of_params(params: Any, x: jax.Array, target: jax.Array, *lengths: jax.Array) -> jax.Array:
        # `lengths`: optional valid lengths of a padded sequence batch (see models.py)
        return loss_fn(loss, module.apply({"params": params}, x, *lengths), target)
    return of_params


def to_target(loss: str, target: np.ndarray, dtype: Any, device: Any) -> jax.Array:
    if loss == "cross_entropy":
        return jax.device_put(np.asarray(target, dtype=np.int32), device)
    return jax.device_put(np.asarray(target, dtype=dtype), device)


class Trainer(BaseTrainer):
    def __init__(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str,
                 compile_options: dict[str, Any] | None = None):
        self.model, self.loss, self.mode = model, loss, mode
        tx = make_optimizer(optimizer)
        # Committed to the model's device like the params: else the first step's output
        # (committed) differs from its input (uncommitted) and jit compiles twice.
        self.opt_state = jax.device_put(tx.init(model.params), model.device)
        grad_fn = jax.value_and_grad(make_loss(model.module, loss))

        def step(params, opt_state, x, target, *lengths):
            value, grads = grad_fn(params, x, target, *lengths)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        if mode == "compiled":
            # Donating params and optimizer state lets XLA update them in place.
            self._step = jax.jit(step, donate_argnums=(0, 1), **(compile_options or {}))
        else:
            self._step = step

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[jax.Array, jax.Array]:
        m = self.model
        return (jax.device_put(np.asarray(x, dtype=m.dtype), m.device),
                to_target(self.loss, target, m.dtype, m.device))

    def compile(self, batch: tuple[jax.Array, jax.Array]) -> str | None:
        if self.mode != "compiled":
            return None
        # Ahead-of-time lowering and XLA compilation; jit's cache keeps the executable, so
        # the first step then runs it instead of compiling again.
        self._step.lower(self.model.params, self.opt_state, *batch).compile()
        return "jax.jit(step).lower(...).compile()"

    def step(self, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        if self.mode == "eager":
            with jax.disable_jit():  # op by op, as an eager framework runs
                return self._run(batch)
        return self._run(batch)

    def _run(self, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        params, self.opt_state, value = self._step(self.model.params, self.opt_state, *batch)
        self.model.params = params
        return value

    def value(self, loss: jax.Array) -> float:
        # float() waits for the device and copies the scalar to the host, as .item() does
        # in torch; jnp.asarray(loss) first added ~8 us of dispatch to every timed step.
        return float(loss)


# --- the reference loop for the harness-overhead benchmark ---------------------------
def hand_step(model: Any, x: Any, y: Any, mode: str):
    """The minimal hand-written training loop of this model (Adam 1e-3, cross entropy),
    with none of fwbench's machinery: benchmarks/harness_overhead.py measures the
    harness's cells against it. Returns (step, read): step() runs one step and returns
    the loss as the framework's own value; read(loss) waits for it."""
    import jax.numpy as jnp

    module = model.module
    tx = optax.adam(1e-3)
    state = {"params": model.params, "opt": tx.init(model.params)}
    xt, yt = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)

    def train_step(params, opt_state, inputs, labels):
        def loss_of(p):
            logits = module.apply({"params": p}, inputs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jitted = jax.jit(train_step, donate_argnums=(0, 1))

    def step():
        if mode == "eager":
            with jax.disable_jit():  # op by op
                state["params"], state["opt"], loss = train_step(state["params"], state["opt"], xt, yt)
        else:
            state["params"], state["opt"], loss = jitted(state["params"], state["opt"], xt, yt)
        return loss

    return step, lambda loss: float(loss)  # reads the loss back, as .item() and .numpy() do
