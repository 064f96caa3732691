"""The torch training step, eager or through torch.compile."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.adapters import Trainer as BaseTrainer
from bench.spec import OptimizerSpec
from impls.torch.optimizers import make_optimizer


def loss_fn(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "cross_entropy":
        if output.dim() > 2:
            # F.cross_entropy wants classes on axis 1; a head on every step gives (batch,
            # T, classes) and (batch, T) labels, so every step becomes a row. Only there:
            # a speed cell's step (2-D logits) runs the call it always ran.
            return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))
        return F.cross_entropy(output, target)  # mean over the batch
    return F.mse_loss(output, target)  # mean over every element


def to_target(loss: str, target: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if loss == "cross_entropy":
        return torch.as_tensor(np.asarray(target, dtype=np.int64), device=device)
    return torch.as_tensor(np.asarray(target), dtype=dtype, device=device)


class Trainer(BaseTrainer):
    def __init__(self, model: Any, optimizer: OptimizerSpec, loss: str, mode: str,
                 compile_options: dict[str, Any] | None = None):
        self.model, self.loss, self.mode = model, loss, mode
        trainable = [p for p in model.module.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(trainable, optimizer)
        # compiled: the module goes through torch.compile (forward and, via AOTAutograd,
        # backward) and so does the optimizer step (PyTorch's "compiled optimizer" recipe:
        # one fused kernel for every parameter's update instead of a loop of small ops).
        # loss.backward() stays between them: compiling it too would break the graph there.
        self.forward = (torch.compile(model.module, **(compile_options or {}))
                        if mode == "compiled" else model.module)
        # Not in float64: the compiled Adam computes its bias corrections from its float32
        # step counter (torch's default scalar dtype), ~1e-7 off the eager result after 5
        # steps, which float64 parity (1e-9) would rightly flag.
        compile_update = mode == "compiled" and model.dtype != torch.float64
        self.update = torch.compile(self.optimizer.step) if compile_update else self.optimizer.step

    def put(self, x: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        return (torch.as_tensor(np.asarray(x), dtype=m.dtype, device=m.device),
                to_target(self.loss, target, m.dtype, m.device))

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, target = batch
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.loss, self.forward(x), target)
        loss.backward()
        self.update()
        return loss.detach()

    def value(self, loss: torch.Tensor) -> float:
        return float(loss.item())  # .item() waits for the device


# --- the reference loop for the harness-overhead benchmark ---------------------------
def hand_step(model: Any, x: Any, y: Any, mode: str):
    """The minimal hand-written training loop of this model (Adam 1e-3, cross entropy),
    with none of fwbench's machinery: benchmarks/harness_overhead.py measures the
    harness's cells against it. Returns (step, read): step() runs one step and returns
    the loss as the framework's own value; read(loss) waits for it."""
    module = model.module
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    compiled = mode == "compiled"
    forward = torch.compile(module) if compiled else module
    update = torch.compile(opt.step) if compiled else opt.step  # the compiled-optimizer recipe
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(xt), yt)
        loss.backward()
        update()
        return loss

    return step, lambda loss: loss.item()
