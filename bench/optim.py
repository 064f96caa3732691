"""NumPy optimizers in every form the frameworks use, for checks and derived bounds.

Where frameworks agree on an optimizer's math, there is one form. Where they differ
in math that no hyperparameter aligns, each form is written out here; parity applies
both to the same gradients to derive how far apart the trajectories may drift.

Forms (g gradient, t step from 1, lr learning rate, eps epsilon):
  eps_outside  denominator sqrt(s) + eps          torch (adagrad, rmsprop, adam), Optax adam
  eps_inside   denominator sqrt(s + eps)          Keras (adagrad, rmsprop), Optax adagrad
  eps_hat      Adam with eps added to sqrt(v) before bias correction, i.e.
               eps_hat = eps * sqrt(1 - beta2^t) in torch's terms   Keras adam
"""

from __future__ import annotations

import numpy as np

from bench.canonical import Params
from bench.spec import OptimizerSpec

FORMS = {"sgd": ("plain",), "momentum": ("plain",), "nesterov": ("plain",),
         "adagrad": ("eps_outside", "eps_inside"), "rmsprop": ("eps_outside", "eps_inside"),
         "adam": ("eps_outside", "eps_hat")}


def trajectory(opt: OptimizerSpec, form: str, params: Params, grads: list[Params]) -> list[Params]:
    """Parameters after each step of `opt` in `form`, fed the gradient sequence `grads`."""
    if form not in FORMS[opt.name]:
        raise ValueError(f"form={form!r} is not a form of {opt.name}: allowed {FORMS[opt.name]}")
    p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    state: dict[str, dict[str, np.ndarray]] = {k: {} for k in p}
    out = []
    lr, eps = opt.learning_rate, opt.epsilon
    for t, g_all in enumerate(grads, start=1):
        for name, value in p.items():
            g = np.asarray(g_all[name], dtype=np.float64)
            s = state[name]
            if opt.name == "sgd":
                step = g
            elif opt.name in ("momentum", "nesterov"):
                s["b"] = opt.momentum * s.get("b", 0.0) + g
                step = g + opt.momentum * s["b"] if opt.name == "nesterov" else s["b"]
            elif opt.name in ("adagrad", "rmsprop"):
                if opt.name == "adagrad":
                    s["v"] = s.get("v", opt.initial_accumulator) + g * g
                else:
                    s["v"] = opt.rho * s.get("v", 0.0) + (1 - opt.rho) * g * g
                denom = np.sqrt(s["v"]) + eps if form == "eps_outside" else np.sqrt(s["v"] + eps)
                step = g / denom
            else:  # adam
                s["m"] = opt.beta1 * s.get("m", 0.0) + (1 - opt.beta1) * g
                s["v"] = opt.beta2 * s.get("v", 0.0) + (1 - opt.beta2) * g * g
                c1, c2 = 1 - opt.beta1**t, 1 - opt.beta2**t
                if form == "eps_outside":
                    step = (s["m"] / c1) / (np.sqrt(s["v"] / c2) + eps)
                else:
                    step = np.sqrt(c2) / c1 * s["m"] / (np.sqrt(s["v"]) + eps)
            p[name] = value - lr * step
        out.append({k: v.copy() for k, v in p.items()})
    return out
