"""One training run through an adapter, the same loop for every framework.

The studies train many small models to convergence rather than timing a few steps, so
this loop reads the loss back after every step: that gives the loss curve, catches a
divergence at the step it happens, and makes each step's wall time include the wait for
the device. Mini-batch order comes from NumPy with the run's seed, so every framework sees
the same batches in the same order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec
from bench.speed.measure import Diverged


@dataclass
class Snapshots:
    """Per-layer weights and gradients every `every` training steps, for TensorBoard's
    histograms (`fwbench study --histograms N`). Taken between steps, outside each
    step's timing: the weights as the adapter reads them back (canonical names), the
    gradients of the loss on the batch the next step trains on, by an extra
    loss_and_grads call in the training mode. float32 copies, to keep memory small."""

    every: int  # training steps between snapshots (the first is before step 0)
    taken: list[tuple[int, Params, Params]] = field(default_factory=list)

    def take(self, adapter: Adapter, model: Any, step: int, x: np.ndarray, target: np.ndarray,
             loss: str, mode: str) -> None:
        weights = adapter.get_params(model)
        _, grads = adapter.loss_and_grads(model, x, target, loss, mode=mode)
        cast = lambda params: {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}  # noqa: E731
        self.taken.append((step, cast(weights), cast(grads)))


@dataclass
class Fit:
    """What one training run produced: the trained model and its curves."""

    model: Any
    losses: list[float] = field(default_factory=list)   # training loss before each step
    step_ms: list[float] = field(default_factory=list)  # wall time of each step (ms), synced
    first_step_s: float = 0.0   # the first step alone (s): includes tracing/compilation
    train_s: float = 0.0        # every step, the first included (s)


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Indices of every mini-batch, epoch by epoch: a fresh permutation per epoch, the
    last incomplete batch dropped (a batch of another shape would make the compiled
    frameworks trace again). `batch_size` >= n means full-batch gradient descent."""
    if batch_size >= n:
        return [np.arange(n)] * epochs
    rng = np.random.default_rng([seed, 7919])
    per_epoch = n // batch_size
    out = []
    for _ in range(epochs):
        perm = rng.permutation(n)
        out.extend(perm[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch))
    return out


def fit(adapter: Adapter, spec: ModelSpec, params: Params, x: np.ndarray, target: np.ndarray,
        optimizer: OptimizerSpec, loss: str, batches: list[np.ndarray], mode: str = "compiled",
        dtype: str = "float32", device: str = "cpu", snapshots: Snapshots | None = None) -> Fit:
    """Train a model built from `params` on (x, target) over `batches` (index arrays);
    `snapshots`, if given, collects weights and gradients every `snapshots.every` steps."""
    model = adapter.build(spec, params, dtype=dtype, device=device)
    trainer = adapter.trainer(model, optimizer, loss=loss, mode=mode)
    result = Fit(model=model)
    full = len(batches) > 0 and all(b is batches[0] for b in batches)
    fixed = trainer.put(x[batches[0]], target[batches[0]]) if full else None
    start = time.perf_counter()
    for index, rows in enumerate(batches):
        if snapshots is not None and index % snapshots.every == 0:
            paused = time.perf_counter()
            snapshots.take(adapter, model, index, x[rows], target[rows], loss, mode)
            start += time.perf_counter() - paused  # train_s counts training only
        t0 = time.perf_counter()
        batch = fixed if fixed is not None else trainer.put(x[rows], target[rows])
        value = trainer.value(trainer.step(batch))
        elapsed = time.perf_counter() - t0
        if not math.isfinite(value):
            raise Diverged(f"training loss is {value} at step {index}")
        result.losses.append(value)
        result.step_ms.append(elapsed * 1e3)
        if index == 0:
            result.first_step_s = elapsed
    result.train_s = time.perf_counter() - start
    return result


def predict(adapter: Adapter, model: Any, x: np.ndarray, mode: str = "compiled",
            chunk: int = 1024) -> np.ndarray:
    """The model's output for `x`, in float64, computed `chunk` rows at a time."""
    parts = [np.asarray(adapter.forward(model, x[i:i + chunk], mode=mode), dtype=np.float64)
             for i in range(0, len(x), chunk)]
    return np.concatenate(parts)
