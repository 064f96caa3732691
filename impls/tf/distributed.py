"""Data-parallel training in TensorFlow with Keras 3: a tf.distribute strategy and a
custom loop. One host: MirroredStrategy over N devices (on a CPU, N logical devices
split from it before the runtime starts). Several hosts: MultiWorkerMirroredStrategy
from TF_CONFIG (ring collectives on CPU, NCCL on GPU). The model and optimizer are made
in strategy.scope() (mirrored variables); each replica's loss is its examples' sum over
the global batch (tf.nn.compute_average_loss), and the Keras optimizer, called in the
replica context, sums the replicas' gradients: the gradient of the global mean."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from bench import adapters
from bench.adapters import Trainer as BaseTrainer
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec
from impls.tf.optimizers import make_optimizer
from impls.tf.train import compiled_as, to_target


def per_example_loss(name: str, output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    if name == "cross_entropy":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=output)
    return tf.reduce_mean(tf.square(output - target), axis=-1)


class Trainer(BaseTrainer):
    def __init__(self, dp: "DataParallel", model: Any, optimizer: OptimizerSpec, loss: str,
                 mode: str):
        self.dp, self.model, self.loss, self.mode = dp, model, loss, mode
        strategy = dp.strategy
        variables = model.keras.trainable_variables
        with strategy.scope():
            self.optimizer = make_optimizer(optimizer, model.dtype)
            self.optimizer.build(variables)

        def replica_step(x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
            # every replica gets the same number of rows (put), so the global batch is
            # this replica's rows times the replicas
            global_batch = tf.shape(x)[0] * strategy.num_replicas_in_sync
            with tf.GradientTape() as tape:
                per = per_example_loss(loss, model.keras(x, training=True), target)
                value = tf.nn.compute_average_loss(per, global_batch_size=global_batch)
            grads = tape.gradient(value, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            return value

        def step(x: Any, target: Any) -> tf.Tensor:
            per_replica = strategy.run(replica_step, args=(x, target))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self._step = compiled_as(mode, step)

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[Any, Any]:
        """Each replica's rows of the global batch, as the strategy's per-replica values
        (replica ids are global: a worker makes only its own replicas')."""
        rows = len(x) // self.dp.world.replicas
        x, target = np.asarray(x, dtype=self.model.dtype), np.asarray(target)

        def rows_of(array: np.ndarray, convert: Any) -> Any:
            def value(ctx: tf.distribute.InputReplicaContext) -> tf.Tensor:
                first = ctx.replica_id_in_sync_group * rows
                return convert(array[first:first + rows])
            return self.dp.strategy.experimental_distribute_values_from_function(value)

        return (rows_of(x, tf.constant),
                rows_of(target, lambda t: to_target(self.loss, t, self.model.dtype)))

    def step(self, batch: tuple[Any, Any]) -> tf.Tensor:
        return self._step(*batch)

    def value(self, loss: tf.Tensor) -> float:
        return float(loss.numpy())


class DataParallel:
    def __init__(self, world: Any, timeout_s: float, threads: int | None = None,
                 tf32: bool = False) -> None:
        self.world = world
        self.adapter = adapters.get("tf")
        # before the strategy: TensorFlow's thread settings hold only before its runtime starts
        self.settings = (self.adapter.configure(world.device, threads, tf32)
                         if threads is not None else {})
        if world.form == "multi-host":
            impl = (tf.distribute.experimental.CommunicationImplementation.NCCL
                    if world.device == "gpu" else
                    tf.distribute.experimental.CommunicationImplementation.RING)
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=tf.distribute.experimental.CommunicationOptions(
                    implementation=impl, timeout_seconds=timeout_s))
            self.backend = f"MultiWorkerMirroredStrategy ({impl.name} collectives)"
        elif world.device == "gpu":
            gpus = tf.config.list_logical_devices("GPU")
            self.strategy = tf.distribute.MirroredStrategy([g.name for g in gpus[:world.replicas]])
            self.backend = "MirroredStrategy (NCCL all-reduce)"
        else:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * world.replicas)
            names = [d.name for d in tf.config.list_logical_devices("CPU")][:world.replicas]
            self.strategy = tf.distribute.MirroredStrategy(names)
            # which all-reduce it chose (a private attribute: "default" if it moves)
            ops = getattr(self.strategy.extended, "_cross_device_ops", None)
            self.backend = f"MirroredStrategy ({type(ops).__name__ if ops else 'default'})"
        if self.strategy.num_replicas_in_sync != world.replicas:
            raise adapters.DeviceUnavailable(
                f"{world.replicas} replicas asked for, the strategy has "
                f"{self.strategy.num_replicas_in_sync}")

    def describe(self) -> dict[str, Any]:
        return {"runtime": type(self.strategy).__name__, "backend": self.backend,
                "world_size": self.strategy.num_replicas_in_sync, "rank": self.world.rank,
                "devices": list(self.strategy.extended.worker_devices),
                "settings": self.settings}

    def build(self, spec: ModelSpec, params: Params, dtype: str) -> Any:
        with self.strategy.scope():
            return self.adapter.build(spec, params, dtype, self.world.device)

    def trainer(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str) -> Trainer:
        return Trainer(self, model, optimizer, loss, mode)

    def global_loss(self, trainer: Trainer, loss: Any) -> float:
        return trainer.value(loss)  # the step's loss is the global batch's mean already

    def agree_max(self, value: float) -> float:
        """The largest of every worker's `value` (outside any timed step)."""
        if self.world.form == "one-host":
            return value
        per_replica = self.strategy.run(lambda: tf.constant([value], tf.float64))
        return float(tf.reduce_max(self.strategy.gather(per_replica, axis=0)))

    def get_params(self, model: Any) -> Params:
        return self.adapter.get_params(model)

    def close(self) -> None:
        pass


def hand_step(world: Any, build: Any, x: np.ndarray, y: np.ndarray, mode: str):
    """The minimal hand-written data-parallel loop (Adam 1e-3, cross entropy), with none
    of fwbench's machinery, as TensorFlow's custom-training-loop tutorial writes it:
    MirroredStrategy over N logical CPUs, model and optimizer made in its scope, the
    global batch split by experimental_distribute_dataset, strategy.run in a
    tf.function, the loss averaged over the global batch. One host, CPU. Returns
    (step, read)."""
    import keras

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * world.replicas)
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")][:world.replicas])
    with strategy.scope():
        net = build().keras
        opt = keras.optimizers.Adam(1e-3)
        opt.build(net.trainable_variables)  # its slots mirrored too, made before tracing
    data = tf.data.Dataset.from_tensors((np.float32(x), np.int64(y))).repeat()
    batch = next(iter(strategy.experimental_distribute_dataset(data)))

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                 logits=net(inputs, training=True))
            loss = tf.nn.compute_average_loss(per, global_batch_size=len(x))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    def train_step(inputs, labels):
        per_replica = strategy.run(replica_step, args=(inputs, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    if mode != "eager":
        train_step = tf.function(train_step)
    return (lambda: train_step(*batch)), lambda loss: loss.numpy()
