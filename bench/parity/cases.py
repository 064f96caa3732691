"""What parity computes on: the cases (every model kind at its tiny preset, and each
kind's variants), their parameters and data seeds, and the optimizers' settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import canonical, models
from bench.canonical import Params
from bench.spec import ModelSpec, OptimizerSpec

STEPS = 20          # training steps per trajectory
DATA_SEED = 7       # seeds the batches; parameters use PARAM_SEED
PARAM_SEED = 3
# Hyperparameters for the trajectories. Learning rates are large enough that 20 steps
# move the tiny models visibly. Every value is exact in float32 (a short binary
# fraction): Keras casts Python floats such as momentum and beta_1 through float32 even
# for float64 variables (keras.ops.cast -> tf.cast), so 0.9 would be 0.8999999762 in
# Keras and 0.9 elsewhere, a 3e-8 difference that is Keras', not the math's.
LEARNING_RATES = {"sgd": 2.0**-3, "momentum": 2.0**-4, "nesterov": 2.0**-4, "adagrad": 2.0**-4,
                  "rmsprop": 2.0**-7, "adam": 2.0**-7}
HYPERPARAMETERS = {"momentum": 0.875, "beta1": 0.875, "beta2": 1 - 2.0**-9, "rho": 0.875,
                   "epsilon": 2.0**-27, "initial_accumulator": 0.125}
COMPILED_OPTIMIZER = "adam"  # the optimizer whose trajectory is compared across modes
MODE_STEPS = 5  # steps compared across modes (op-by-op JAX takes ~1 s a step)
# What a parity run computes: "all" checks, or "modes": only the eager-vs-compiled ones
# (outputs, gradients and a 5-step trajectory in every mode; `fwbench graphs` uses it).
SCOPES = ("all", "modes")
MODE_CHECKS = ("mode_forward", "mode_grads", "compiled")
WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Case:
    name: str               # row label in the parity table
    spec: ModelSpec
    batch_size: int
    trajectories: bool      # also run 20-step trajectories for every optimizer


def cases() -> list[Case]:
    """Every model kind at its tiny preset (with trajectories), then each kind's variants
    (other activations, attention options; forward and gradients only), from bench/models."""
    out, variants = [], []
    for name, kind in models.KINDS.items():
        spec, batch_size = kind.presets["tiny"]
        out.append(Case(name, spec, batch_size, True))
        variants += [Case(f"{name}-{label}", variant, batch_size, False)
                     for label, variant in kind.parity_variants(spec)]
    return out + variants


def case_params(case: Case) -> Params:
    """Initial parameters, with biases and LayerNorm parameters moved off 0 and 1.

    Zero biases and unit scales would let a swapped or misplaced bias pass the forward
    check unnoticed.
    """
    params = canonical.init_params(case.spec, seed=PARAM_SEED)
    rng = np.random.default_rng(PARAM_SEED + 1)
    for name, value in params.items():
        if not name.endswith("kernel"):
            params[name] = value + 0.1 * rng.standard_normal(value.shape)
    return params


def optimizer_spec(name: str) -> OptimizerSpec:
    return OptimizerSpec(name=name, learning_rate=LEARNING_RATES[name], **HYPERPARAMETERS)


