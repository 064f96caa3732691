"""Keras 3 optimizers from an OptimizerSpec, every hyperparameter passed explicitly."""

from __future__ import annotations

import keras

from bench.spec import OptimizerSpec


def make_optimizer(opt: OptimizerSpec, dtype: str) -> keras.optimizers.Optimizer:
    lr: float | object = opt.learning_rate
    if dtype == "float64":
        # Keras keeps a float learning rate in a float32 variable (floatx), and casts a
        # Python float through float32 too (tf.cast), which would change every float64
        # update by up to 3e-8 relative. A callable returning a float64 tensor is exact.
        # Momentum and beta powers still go through that cast: see alignments().
        lr = lambda: keras.ops.convert_to_tensor(opt.learning_rate, dtype="float64")  # noqa: E731
    if opt.name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.0, nesterov=False)
    if opt.name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(learning_rate=lr, momentum=opt.momentum,
                                    nesterov=opt.name == "nesterov")
    if opt.name == "adagrad":
        # epsilon sits inside the root here (outside in torch): see bench.optim.
        return keras.optimizers.Adagrad(learning_rate=lr,
                                        initial_accumulator_value=opt.initial_accumulator,
                                        epsilon=opt.epsilon)
    if opt.name == "rmsprop":
        # epsilon sits inside the root here (outside in torch and our Optax setting).
        return keras.optimizers.RMSprop(learning_rate=lr, rho=opt.rho, momentum=0.0,
                                        epsilon=opt.epsilon, centered=False)
    if opt.name == "adam":
        # Keras adds epsilon to sqrt(v) before bias correction ("epsilon hat").
        return keras.optimizers.Adam(learning_rate=lr, beta_1=opt.beta1, beta_2=opt.beta2,
                                     epsilon=opt.epsilon, amsgrad=False)
    raise ValueError(f"optimizer {opt.name!r} has no Keras mapping")
