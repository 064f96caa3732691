"""The JAX (Flax + Optax) adapter."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax

# float64 parity needs 64-bit arrays, which JAX disables by default. Every array this
# adapter makes has an explicit dtype, so float32 runs stay float32.
jax.config.update("jax_enable_x64", True)

import flax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from bench import adapters, binding, canonical  # noqa: E402
from bench.binding import Binding  # noqa: E402
from bench.canonical import Params  # noqa: E402
from bench.spec import ModelSpec  # noqa: E402
from impls.jax import runtime  # noqa: E402
from impls.jax.models import alignments as model_alignments  # noqa: E402
from impls.jax.models import bindings, build_module, lookup, store_into  # noqa: E402
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


# Flax modules compare equal when their spec and dtype are equal, so models of one spec
# share one compiled function instead of tracing again for every model built.
@functools.lru_cache(maxsize=64)
def _expected_tree(module: Any, input_shape: tuple[int, ...], dtype: str) -> Any:
    """Shapes and dtypes of the parameters Flax's own init would create (traced, not run)."""
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.dtype(dtype))
    return jax.eval_shape(module.init, jax.random.key(0), x)["params"]


@functools.lru_cache(maxsize=64)
def _jitted_apply(module: Any) -> Any:
    return jax.jit(module.apply)


def _value_and_grad(module: Any, loss: str, wrt: int) -> Any:
    """The loss and its gradient with respect to argument `wrt`: 0 the parameters, 1 x."""
    return jax.value_and_grad(make_loss(module, loss), argnums=wrt)


@functools.lru_cache(maxsize=64)
def _jitted_value_and_grad(module: Any, loss: str, wrt: int) -> Any:
    return jax.jit(_value_and_grad(module, loss, wrt))


class Adapter(adapters.Adapter):
    name = "jax"
    trainer_class = Trainer
    modes = adapters.MODES["jax"]
    runtime = runtime
    optimizer_forms = {"adagrad": "eps_inside", "rmsprop": "eps_outside", "adam": "eps_outside"}

    def alignments(self) -> list[dict[str, str]]:
        d, a = adapters.default_of, adapters.aligned
        return model_alignments() + [
            a("64-bit arrays", "jax_enable_x64=False", "True; every array has an explicit dtype"),
            a("Adam epsilon", d(optax.adam, "eps"), "spec.epsilon, outside sqrt(v_hat), eps_root=0"),
            a("Adagrad initial accumulator", d(optax.adagrad, "initial_accumulator_value"),
              "spec.initial_accumulator"),
            a("Adagrad epsilon", d(optax.adagrad, "eps"), "spec.epsilon, inside sqrt (no option)"),
            a("RMSprop decay", d(optax.rmsprop, "decay"), "spec.rho"),
            a("RMSprop epsilon", f"{d(optax.rmsprop, 'eps')}, eps_in_sqrt="
              f"{d(optax.rmsprop, 'eps_in_sqrt')}", "spec.epsilon, eps_in_sqrt=False (as torch)"),
        ]

    def build(self, spec: ModelSpec, params: Params, dtype: str = "float32",
              device: str = "cpu") -> Model:
        self._check_build(spec, params, dtype, device)
        # this process's first device (under jax.distributed, devices() lists every host's)
        target = jax.local_devices(backend="gpu" if device == "gpu" else "cpu")[0]
        binds = bindings(spec)
        module = build_module(spec, DTYPES[dtype])
        # the slots' shapes are those of the tree Flax's own init would create
        expected = _expected_tree(module, spec.input_shape, dtype)
        shape_of = lambda path: tuple(lookup(expected, path).shape)  # noqa: E731
        binding.check(spec, binds, shape_of, "jax")
        tree: dict[str, Any] = {}
        binding.write(binds, canonical.cast(params, dtype), shape_of,
                      lambda path, value: store_into(tree, path, value))
        self._check_tree(spec, expected, tree)
        return Model(spec, module, jax.device_put(tree, target), binds, DTYPES[dtype], target)

    @staticmethod
    def _check_tree(spec: ModelSpec, expected: Any, tree: dict) -> None:
        """The tree we load must have exactly the structure, shapes and dtypes Flax would
        create: no leaf of Flax's left out."""
        got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)
        if jax.tree.structure(expected) != jax.tree.structure(got) or \
                jax.tree.leaves(expected) != jax.tree.leaves(got):
            raise ValueError(f"canonical parameters do not map onto the Flax tree of {spec}:\n"
                             f"expected {expected}\ngot {got}")

    def forward(self, model: Model, x: np.ndarray, mode: str | None = None) -> np.ndarray:
        mode = self._mode_or_default(mode)
        xj = jax.device_put(np.asarray(x, dtype=model.dtype), model.device)
        if mode == "eager":
            with jax.disable_jit():  # op by op
                return np.asarray(model.module.apply({"params": model.params}, xj))
        return np.asarray(_jitted_apply(model.module)({"params": model.params}, xj))

    def loss_and_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                       loss: str = "cross_entropy",
                       mode: str | None = None) -> tuple[float, Params]:
        value, grads = self._value_and_grad(model, x, target, loss, mode, wrt=0)
        return value, binding.read(model.bindings, lambda path: lookup(grads, path))

    def input_grads(self, model: Model, x: np.ndarray, target: np.ndarray,
                    loss: str = "cross_entropy",
                    mode: str | None = None) -> tuple[float, np.ndarray]:
        value, grad = self._value_and_grad(model, x, target, loss, mode, wrt=1)
        return value, np.asarray(grad)

    def _value_and_grad(self, model: Model, x: np.ndarray, target: np.ndarray, loss: str,
                        mode: str | None, wrt: int) -> tuple[float, Any]:
        self._check_loss(loss)
        mode = self._mode_or_default(mode)
        xj = jax.device_put(np.asarray(x, dtype=model.dtype), model.device)
        target_j = to_target(loss, target, model.dtype, model.device)
        if mode == "eager":
            with jax.disable_jit():
                value, grad = _value_and_grad(model.module, loss, wrt)(model.params, xj, target_j)
        else:
            value, grad = _jitted_value_and_grad(model.module, loss, wrt)(model.params, xj, target_j)
        return float(value), grad

    def get_params(self, model: Model) -> Params:
        return binding.read(model.bindings, lambda path: lookup(model.params, path))

    def param_count(self, model: Model) -> int:
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(model.params))

    def versions(self) -> dict[str, str]:
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
                "flax": flax.__version__, "optax": optax.__version__}
