"""The JAX (Flax + Optax) adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax

# float64 parity needs 64-bit arrays, which JAX disables by default. Every array this
# adapter makes has an explicit dtype, so float32 runs stay float32.
jax.config.update("jax_enable_x64", True)

import flax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from bench import adapters  # noqa: E402
from bench.canonical import Params  # noqa: E402
from bench.spec import ModelSpec, OptimizerSpec  # noqa: E402
from impls.jax.models import Binding, bindings, build_module, from_tree, to_tree  # noqa: E402
from impls.jax.train import Trainer, make_loss, to_target  # noqa: E402

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


@dataclass
class Model:
    spec: ModelSpec
    module: Any
    params: Any  # Flax parameter tree on `device`; trainers replace it after each step
    bindings: list[Binding]
    dtype: Any
    device: Any
    jitted: dict[str, Any] = field(default_factory=dict)


class Adapter(adapters.Adapter):
    name = "jax"
    modes = ("eager", "compiled")

    def build(self, spec: ModelSpec, params: Params, dtype: str = "float32",
              device: str = "cpu") -> Model:
        self._check_build(spec, params, dtype, device)
        target = jax.devices("gpu" if device == "gpu" else "cpu")[0]
        binds = bindings(spec)
        tree = to_tree(binds, {k: np.asarray(v, dtype=dtype) for k, v in params.items()})
        module = build_module(spec, DTYPES[dtype])
        self._check_tree(module, spec, tree, dtype)
        return Model(spec, module, jax.device_put(tree, target), binds, DTYPES[dtype], target)

    @staticmethod
    def _check_tree(module: Any, spec: ModelSpec, tree: dict, dtype: str) -> None:
        """The tree we load must have exactly the structure and shapes Flax would create."""
        x = jnp.zeros((1, *spec.input_shape), dtype=dtype)
        expected = jax.eval_shape(module.init, jax.random.key(0), x)["params"]
        got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)
        if jax.tree.structure(expected) != jax.tree.structure(got) or \
                jax.tree.leaves(expected) != jax.tree.leaves(got):
            raise ValueError(f"canonical parameters do not map onto the Flax tree of {spec}:\n"
                             f"expected {expected}\ngot {got}")

    def _jitted(self, model: Model, key: str, make: Any) -> Any:
        if key not in model.jitted:
            model.jitted[key] = make()
        return model.jitted[key]

    def forward(self, model: Model, x: np.ndarray) -> np.ndarray:
        apply = self._jitted(model, "forward", lambda: jax.jit(model.module.apply))
        xj = jax.device_put(np.asarray(x, dtype=model.dtype), model.device)
        return np.asarray(apply({"params": model.params}, xj))

    def loss_and_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                       loss: str = "cross_entropy") -> tuple[float, Params]:
        self._check_loss(loss)
        fn = self._jitted(model, f"grad:{loss}",
                          lambda: jax.jit(jax.value_and_grad(make_loss(model.module, loss))))
        xj = jax.device_put(np.asarray(x, dtype=model.dtype), model.device)
        value, grads = fn(model.params, xj, to_target(loss, target, model.dtype, model.device))
        return float(value), from_tree(model.bindings, grads)

    def get_params(self, model: Model) -> Params:
        return from_tree(model.bindings, model.params)

    def param_count(self, model: Model) -> int:
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(model.params))

    def trainer(self, model: Model, optimizer: OptimizerSpec, loss: str = "cross_entropy",
                mode: str = "eager") -> Trainer:
        self._check_mode(mode)
        self._check_loss(loss)
        return Trainer(model, optimizer, loss, mode)

    def versions(self) -> dict[str, str]:
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                "flax": flax.__version__, "optax": optax.__version__}
