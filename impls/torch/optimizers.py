"""torch.optim optimizers from an OptimizerSpec, every hyperparameter passed explicitly."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from bench.spec import OptimizerSpec


def make_optimizer(params: Iterable[torch.Tensor], opt: OptimizerSpec) -> torch.optim.Optimizer:
    lr = opt.learning_rate
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0, dampening=0.0, nesterov=False,
                               weight_decay=0.0)
    if opt.name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=opt.momentum, dampening=0.0,
                               nesterov=opt.name == "nesterov", weight_decay=0.0)
    if opt.name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, lr_decay=0.0, weight_decay=0.0,
                                   initial_accumulator_value=opt.initial_accumulator,
                                   eps=opt.epsilon)
    if opt.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=opt.rho, eps=opt.epsilon,
                                   weight_decay=0.0, momentum=0.0, centered=False)
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(opt.beta1, opt.beta2), eps=opt.epsilon,
                                weight_decay=0.0, amsgrad=False)
    raise ValueError(f"optimizer {opt.name!r} has no torch mapping")
