"""The PyTorch adapter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench import adapters, binding, canonical
from bench.binding import Binding
from bench.canonical import Params
from bench.spec import ModelSpec
from impls.torch import runtime
from impls.torch.models import alignments as model_alignments
from impls.torch.models import bindings, build_module, fetch_grad, fetch_value, shape_of, store
from impls.torch.train import Trainer, loss_fn, to_target

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Model:
    spec: ModelSpec
    module: nn.Module
    bindings: list[Binding]
    dtype: torch.dtype
    device: torch.device
    compiled: nn.Module | None = None  # torch.compile(module), made on first use


class Adapter(adapters.Adapter):
    name = "torch"
    trainer_class = Trainer
    modes = adapters.MODES["torch"]
    runtime = runtime
    optimizer_forms = {"adagrad": "eps_outside", "rmsprop": "eps_outside", "adam": "eps_outside"}

    def alignments(self) -> list[dict[str, str]]:
        d, a = adapters.default_of, adapters.aligned
        return model_alignments() + [
            a("Adam epsilon", d(torch.optim.Adam, "eps"), "spec.epsilon, outside sqrt(v_hat)"),
            a("Adagrad initial accumulator", d(torch.optim.Adagrad, "initial_accumulator_value"),
              "spec.initial_accumulator"),
            a("Adagrad epsilon", d(torch.optim.Adagrad, "eps"), "spec.epsilon, outside sqrt"),
            a("RMSprop decay (alpha)", d(torch.optim.RMSprop, "alpha"), "spec.rho"),
            a("RMSprop epsilon", d(torch.optim.RMSprop, "eps"), "spec.epsilon, outside sqrt"),
        ]

    def build(self, spec: ModelSpec, params: Params, dtype: str = "float32",
              device: str = "cpu") -> Model:
        self._check_build(spec, params, dtype, device)
        target = torch.device("cuda" if device == "gpu" else "cpu")
        module = build_module(spec).to(device=target, dtype=DTYPES[dtype])
        model = Model(spec, module, bindings(spec, module), DTYPES[dtype], target)
        binding.check(spec, model.bindings, shape_of, "torch")
        binding.write(model.bindings, canonical.cast(params, dtype), shape_of, store)
        return model

    def _module(self, model: Model, mode: str | None) -> nn.Module:
        """The module itself (eager), or one torch.compile wrapper of it kept on the model."""
        if self._mode_or_default(mode) == "eager":
            return model.module
        if model.compiled is None:
            model.compiled = torch.compile(model.module)
        return model.compiled

    def forward(self, model: Model, x: np.ndarray, mode: str | None = None) -> np.ndarray:
        module = self._module(model, mode)
        with torch.no_grad():
            out = module(torch.as_tensor(np.asarray(x), dtype=model.dtype, device=model.device))
        return out.cpu().numpy()

    def loss_and_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                       loss: str = "cross_entropy",
                       mode: str | None = None) -> tuple[float, Params]:
        self._check_loss(loss)
        module = self._module(model, mode)
        model.module.zero_grad(set_to_none=True)
        xt = torch.as_tensor(np.asarray(x), dtype=model.dtype, device=model.device)
        value = loss_fn(loss, module(xt), to_target(loss, target, model.dtype, model.device))
        value.backward()
        grads = binding.read(model.bindings, fetch_grad)
        model.module.zero_grad(set_to_none=True)
        return float(value.item()), grads

    def input_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                    loss: str = "cross_entropy",
                    mode: str | None = None) -> tuple[float, np.ndarray]:
        self._check_loss(loss)
        module = self._module(model, mode)
        xt = torch.as_tensor(np.asarray(x), dtype=model.dtype, device=model.device)
        xt.requires_grad_(True)
        value = loss_fn(loss, module(xt), to_target(loss, target, model.dtype, model.device))
        (grad,) = torch.autograd.grad(value, xt)  # leaves the parameters' .grad alone
        return float(value.item()), grad.cpu().numpy()

    def get_params(self, model: Model) -> Params:
        return binding.read(model.bindings, fetch_value)

    def param_count(self, model: Model) -> int:
        return sum(p.numel() for p in model.module.parameters() if p.requires_grad)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}
