"""Optax optimizers from an OptimizerSpec, every hyperparameter passed explicitly."""

from __future__ import annotations

import optax

from bench.spec import OptimizerSpec


def make_optimizer(opt: OptimizerSpec) -> optax.GradientTransformation:
    lr = opt.learning_rate
    if opt.name == "sgd":
        return optax.sgd(lr, momentum=None, nesterov=False)
    if opt.name in ("momentum", "nesterov"):
        return optax.sgd(lr, momentum=opt.momentum, nesterov=opt.name == "nesterov")
    if opt.name == "adagrad":
        return optax.adagrad(lr, initial_accumulator_value=opt.initial_accumulator,
                             eps=opt.epsilon)
    if opt.name == "rmsprop":
        # eps_in_sqrt=False puts epsilon outside the root, as torch does; Optax's default
        # (inside) is Keras' form, which no argument of Keras' RMSprop changes.
        return optax.rmsprop(lr, decay=opt.rho, eps=opt.epsilon, initial_scale=0.0,
                             eps_in_sqrt=False, centered=False, momentum=None,
                             nesterov=False, bias_correction=False)
    if opt.name == "adam":
        return optax.adam(lr, b1=opt.beta1, b2=opt.beta2, eps=opt.epsilon, eps_root=0.0,
                          nesterov=False)
    raise ValueError(f"optimizer {opt.name!r} has no optax mapping")
