"""Data-parallel training in PyTorch: DistributedDataParallel, one process per replica,
the process group initialised from torchrun's variables (init_method env://); gloo on
CPU, NCCL on GPU. DDP broadcasts rank 0's parameters at construction and averages the
gradients across replicas during backward, in buckets overlapped with it."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bench import adapters
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec
from impls.torch.train import Trainer as SingleTrainer
from impls.torch.train import hand_step as single_hand_step


class Trainer(SingleTrainer):
    """The single-device step on the DDP-wrapped module; `put` takes the global batch and
    keeps this replica's rows (each replica's loss is the mean over its rows: DDP's
    average of the replicas' gradients is then the gradient of the global mean)."""

    def __init__(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str, world: Any):
        super().__init__(model, optimizer, loss, mode)
        self.world = world

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = len(x) // self.world.replicas
        mine = slice(self.world.rank * rows, (self.world.rank + 1) * rows)
        return super().put(x[mine], target[mine])


class DataParallel:
    def __init__(self, world: Any, timeout_s: float, threads: int | None = None,
                 tf32: bool = False) -> None:
        self.world = world
        self.adapter = adapters.get("torch")
        self.backend = "nccl" if world.device == "gpu" else "gloo"
        self.local_rank = int(os.environ["LOCAL_RANK"])
        if world.device == "gpu":
            torch.cuda.set_device(self.local_rank)
        dist.init_process_group(self.backend, timeout=timedelta(seconds=timeout_s))
        self.settings = (self.adapter.configure(world.device, threads, tf32)
                         if threads is not None else {})

    def describe(self) -> dict[str, Any]:
        device = (f"cuda:{self.local_rank}" if self.world.device == "gpu" else "cpu")
        return {"runtime": "torch.distributed + DistributedDataParallel",
                "backend": self.backend, "world_size": dist.get_world_size(),
                "rank": dist.get_rank(), "local_rank": self.local_rank,
                "devices": [device], "init_method": "env:// (torchrun's variables)",
                "settings": self.settings}

    def build(self, spec: ModelSpec, params: Params, dtype: str) -> Any:
        model = self.adapter.build(spec, params, dtype, self.world.device)
        ids = [self.local_rank] if self.world.device == "gpu" else None
        return dataclasses.replace(model, module=DistributedDataParallel(model.module, device_ids=ids))

    def trainer(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str) -> Trainer:
        return Trainer(model, optimizer, loss, mode, self.world)

    def global_loss(self, trainer: Trainer, loss: torch.Tensor) -> float:
        """The global batch's mean loss: each replica's step returns its rows' mean (what
        a DDP user logs), so parity averages them over the replicas here, outside the
        step."""
        total = loss.detach().clone()
        dist.all_reduce(total)
        return float(total.item()) / self.world.replicas

    def agree_max(self, value: float) -> float:
        """The largest of every process's `value` (an all-reduce outside any timed step)."""
        out = torch.tensor([value], dtype=torch.float64,
                           device=f"cuda:{self.local_rank}" if self.world.device == "gpu" else "cpu")
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return float(out.item())

    def get_params(self, model: Any) -> Params:
        return self.adapter.get_params(model)  # the bindings hold the wrapped module's tensors

    def close(self) -> None:
        dist.destroy_process_group()



def hand_step(world: Any, build: Any, x: np.ndarray, y: np.ndarray, mode: str):
    """The minimal hand-written data-parallel loop (Adam 1e-3, cross entropy), with none
    of fwbench's machinery: the process group from torchrun's variables, the model
    (`build()`, the adapter's) wrapped in DDP, and the single-device hand loop
    (impls/torch/train.py hand_step: torch.compile'd in compiled mode) on it and this
    rank's rows of the global batch. CPU. benchmarks/harness_overhead.py --devices
    measures the harness's data-parallel cells against it. Returns (step, read)."""
    dist.init_process_group("gloo")
    model = build()
    rows = len(x) // world.replicas
    mine = slice(world.rank * rows, (world.rank + 1) * rows)
    ddp = dataclasses.replace(model, module=DistributedDataParallel(model.module))
    return single_hand_step(ddp, x[mine], y[mine], mode)
