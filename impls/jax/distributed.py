"""Data-parallel training in JAX: one jitted step over a Mesh with a "data" axis, the
batch sharded over it and the parameters and optimizer state replicated; XLA's SPMD
partitioner makes the gradient of the global mean loss an all-reduce across devices.
One host: one process, its devices (on a CPU, host devices split by
--xla_force_host_platform_device_count). Several hosts: jax.distributed.initialize with
a coordinator, each process feeding its rows (make_array_from_process_local_data); on a
CPU the cross-process collectives are gloo's."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from bench import adapters
from bench.adapters import Trainer as BaseTrainer
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec
from impls.jax.optimizers import make_optimizer
from impls.jax.train import make_loss


class Trainer(BaseTrainer):
    def __init__(self, dp: "DataParallel", model: Any, optimizer: OptimizerSpec, loss: str,
                 mode: str):
        if mode != "compiled":
            raise ValueError(f"mode={mode!r}: JAX's data parallelism is jax.jit over a Mesh "
                             f"(compiled only)")
        self.dp, self.model, self.loss, self.mode = dp, model, loss, mode
        tx = make_optimizer(optimizer)
        replicated, rows = dp.replicated, dp.rows
        self.opt_state = jax.jit(tx.init, out_shardings=replicated)(model.params)
        grad_fn = jax.value_and_grad(make_loss(model.module, loss))

        def step(params, opt_state, x, target):
            value, grads = grad_fn(params, x, target)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        self._step = jax.jit(step, in_shardings=(replicated, replicated, rows, rows),
                             out_shardings=replicated, donate_argnums=(0, 1))

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[jax.Array, jax.Array]:
        target = np.asarray(target, dtype=np.int32 if self.loss == "cross_entropy" else self.model.dtype)
        return (self.dp.global_rows(np.asarray(x, dtype=self.model.dtype)),
                self.dp.global_rows(target))

    def compile(self, batch: tuple[jax.Array, jax.Array]) -> str | None:
        self._step.lower(self.model.params, self.opt_state, *batch).compile()
        return "jax.jit(step, in_shardings=..., out_shardings=...).lower(...).compile()"

    def step(self, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        self.model.params, self.opt_state, value = self._step(self.model.params, self.opt_state, *batch)
        return value

    def value(self, loss: jax.Array) -> float:
        return float(loss.addressable_data(0))  # replicated: this process's copy


class DataParallel:
    def __init__(self, world: Any, timeout_s: float, threads: int | None = None,
                 tf32: bool = False) -> None:
        self.world = world
        kind = "gpu" if world.device == "gpu" else "cpu"
        if world.form == "multi-host":
            if kind == "cpu":
                jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(coordinator_address=f"{world.address}:{world.port}",
                                       num_processes=world.processes, process_id=world.rank,
                                       initialization_timeout=int(timeout_s))
        self.adapter = adapters.get("jax")
        # after jax.distributed.initialize: configure lists the devices, starting JAX
        self.settings = (self.adapter.configure(world.device, threads, tf32)
                         if threads is not None else {})
        devices = jax.devices(kind)
        if len(devices) < world.replicas:
            raise adapters.DeviceUnavailable(f"{world.replicas} replicas asked for, JAX sees "
                                             f"{len(devices)} {kind} devices: {devices}")
        self.mesh = Mesh(np.array(devices[:world.replicas]), ("data",))
        self.replicated = NamedSharding(self.mesh, P())
        self.rows = NamedSharding(self.mesh, P("data"))

    def global_rows(self, batch: np.ndarray) -> jax.Array:
        """The global batch as one array sharded over "data", from this process's rows."""
        n = len(batch) // self.world.processes
        mine = batch[self.world.rank * n:(self.world.rank + 1) * n]
        return jax.make_array_from_process_local_data(self.rows, mine, batch.shape)

    def describe(self) -> dict[str, Any]:
        return {"runtime": "jax.jit over jax.sharding.Mesh (axis 'data')",
                "backend": ("gloo (jax.distributed)" if self.world.form == "multi-host" and
                            self.world.device == "cpu" else "XLA collectives"),
                "world_size": self.world.replicas, "rank": jax.process_index(),
                "processes": jax.process_count(),
                "devices": [str(d) for d in self.mesh.devices.flat if d.process_index ==
                            jax.process_index()], "settings": self.settings}

    def build(self, spec: ModelSpec, params: Params, dtype: str) -> Any:
        model = self.adapter.build(spec, params, dtype, self.world.device)
        host = jax.tree.map(np.asarray, model.params)
        tree = jax.tree.map(lambda a: jax.make_array_from_process_local_data(
            self.replicated, a, a.shape), host)
        return dataclasses.replace(model, params=tree)

    def trainer(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str) -> Trainer:
        return Trainer(self, model, optimizer, loss, mode)

    def global_loss(self, trainer: Trainer, loss: Any) -> float:
        return trainer.value(loss)  # the step's loss is the global batch's mean already

    def agree_max(self, value: float) -> float:
        """The largest of every process's `value` (outside any timed step)."""
        if self.world.processes == 1:
            return value
        from jax.experimental import multihost_utils

        return float(np.max(multihost_utils.process_allgather(np.array([value]))))

    def get_params(self, model: Any) -> Params:
        local = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), model.params)
        return self.adapter.get_params(dataclasses.replace(model, params=local))

    def close(self) -> None:
        if self.world.form == "multi-host":
            jax.distributed.shutdown()


def hand_step(world: Any, build: Any, x: np.ndarray, y: np.ndarray, mode: str):
    """The minimal hand-written data-parallel loop (Adam 1e-3, cross entropy), with none
    of fwbench's machinery: a Mesh over this host's devices, the parameters put there
    replicated and the batch sharded over "data", and one jax.jit whose shardings follow
    its inputs. One host only. benchmarks/harness_overhead.py --devices measures the
    harness's data-parallel cells against it. Returns (step, read)."""
    mesh = Mesh(np.array(jax.devices()[:world.replicas]), ("data",))
    model = build()
    tx = optax.adam(1e-3)
    params = jax.device_put(model.params, NamedSharding(mesh, P()))
    rows = NamedSharding(mesh, P("data"))
    xt, yt = jax.device_put(np.float32(x), rows), jax.device_put(np.int32(y), rows)

    def train_step(params, opt_state, inputs, labels):
        def loss_of(p):
            logits = model.module.apply({"params": p}, inputs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    state = {"params": params, "opt": jax.jit(tx.init)(params)}

    def step():
        state["params"], state["opt"], loss = jitted(state["params"], state["opt"], xt, yt)
        return loss

    return step, lambda loss: float(loss)
