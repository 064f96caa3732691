"""The adapter interface and the lazy registry of framework adapters.

`get("torch")` imports `impls.torch.adapter` only when called: `import bench` must not
import any framework (a subprocess test checks it), so that a user with one framework
installed can run everything that concerns it, and startup stays fast.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import inspect
from typing import Any

import numpy as np

from bench import canonical, frameworks
from bench.canonical import Params
from bench.frameworks import UnknownFramework  # noqa: F401  (raised here too)
from bench.spec import DTYPES, LOSSES, ModelSpec, OptimizerSpec

# What each framework is lives in bench.frameworks; these views of it are kept for callers.
# name -> (module that defines `Adapter`, framework, the modules it needs, pip extra)
REGISTRY: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    f.name: (f"{f.package}.adapter", f.title, f.requires, f.extra)
    for f in frameworks.FRAMEWORKS.values()}
FRAMEWORKS = frameworks.NAMES
DEVICES = ("cpu", "gpu")
# Modes each adapter offers, known without importing the framework (the harness expands
# its matrix from this); every adapter's `modes` is this entry.
MODES: dict[str, tuple[str, ...]] = {f.name: f.modes for f in frameworks.FRAMEWORKS.values()}


class FrameworkNotInstalled(ImportError):
    """The framework behind an adapter is absent: a module its record requires cannot be
    found (cells of it are `skipped`)."""


class FrameworkBroken(RuntimeError):
    """The framework is installed, but it or its adapter (impls/<name>/) fails to import:
    a broken wheel or a bug, which is a failure with its traceback, never `skipped`."""


class DeviceUnavailable(RuntimeError):
    """The framework cannot see the device a cell asks for (e.g. no GPU)."""


class Trainer(abc.ABC):
    """One model, one optimizer, one loss, one mode: `step` runs a training step.

    `step` returns the loss as the framework's own value without waiting for the device;
    `value` waits for it and returns a float. Batches go through `put` first, so that a
    step does no host-to-device copy.
    """

    mode: str

    @abc.abstractmethod
    def put(self, x: np.ndarray, target: np.ndarray) -> Any:
        """Move one batch to the model's device and dtype."""

    @abc.abstractmethod
    def step(self, batch: Any) -> Any:
        """One optimizer step on `batch`; returns the loss before the update."""

    @abc.abstractmethod
    def value(self, loss: Any) -> float:
        """Wait for the device and return the loss as a float."""

    def compile(self, batch: Any) -> str | None:
        """Trace/compile the step for `batch`'s shapes ahead of the first step, where the
        framework exposes that as its own call; returns which call, or None where
        compilation can only happen inside the first step (torch.compile, eager)."""
        return None


class Adapter(abc.ABC):
    """One framework behind the common interface (docs/design.md, Public Python API)."""

    name: str
    modes: tuple[str, ...] = ("eager", "compiled")

    @property
    def default_mode(self) -> str:
        """How a user of the framework trains without asking for more (bench.frameworks)."""
        return frameworks.get(self.name).default_mode

    # Optimizer -> form of its update in bench.optim.FORMS, where forms differ.
    optimizer_forms: dict[str, str] = {}
    # impls/<framework>/runtime.py: configure(device, threads, tf32), peak_memory_bytes(device)
    runtime: Any = None

    @abc.abstractmethod
    def build(self, spec: ModelSpec, params: Params, dtype: str = "float32",
              device: str = "cpu") -> Any:
        """A model of this framework's own layers holding `params` (canonical layout)."""

    @abc.abstractmethod
    def forward(self, model: Any, x: np.ndarray, mode: str | None = None) -> np.ndarray:
        """Model output for `x` as a NumPy array, computed in `mode` (one of `modes`;
        None: the framework's default mode)."""

    @abc.abstractmethod
    def loss_and_grads(self, model: Any, x: np.ndarray, target: np.ndarray,
                       loss: str = "cross_entropy",
                       mode: str | None = None) -> tuple[float, Params]:
        """Loss and its gradients in canonical names and layouts, computed in `mode`
        (None: the framework's default mode)."""

    @abc.abstractmethod
    def input_grads(self, model: Any, x: np.ndarray, target: np.ndarray,
                    loss: str = "cross_entropy",
                    mode: str | None = None) -> tuple[float, np.ndarray]:
        """Loss and its gradient with respect to the input `x` (same shape as `x`), by the
        framework's own autodiff in `mode`: for a sequence model, backpropagation through
        time to every step's input (the gradients study reads it per step)."""

    @abc.abstractmethod
    def get_params(self, model: Any) -> Params:
        """Current parameters in canonical names and layouts, in the model's dtype."""

    @abc.abstractmethod
    def param_count(self, model: Any) -> int:
        """Trainable scalars as the framework counts them."""

    # The framework's Trainer subclass, built as
    # trainer_class(model, optimizer, loss, mode, compile_options).
    trainer_class: type[Trainer]

    def trainer(self, model: Any, optimizer: OptimizerSpec, loss: str = "cross_entropy",
                mode: str = "eager", compile_options: dict[str, Any] | None = None) -> Trainer:
        """A training step for `model` in `mode`; `model` follows the trainer's updates.

        `compile_options` go to the framework's compiler call as keywords (tf.function,
        torch.compile; e.g. reduce_retracing, input_signature, dynamic); the static-vs-
        dynamic study uses them for each framework's dynamic-shape remedy."""
        self._check_mode(mode)
        self._check_loss(loss)
        if compile_options and mode == "eager":
            raise ValueError(f"compile_options {sorted(compile_options)} given for eager mode, "
                             f"which compiles nothing")
        return self.trainer_class(model, optimizer, loss, mode, dict(compile_options or {}))

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework's packages."""

    def configure(self, device: str = "cpu", threads: int = 1,
                  tf32: bool = False) -> dict[str, Any]:
        """Set this process's compute threads, device memory policy and float32 matmul
        precision (TF32 on or off) before any model is built; returns the settings as the
        framework reads them back. Raises DeviceUnavailable if `device` is not there."""
        return self.runtime.configure(device, threads, tf32)

    def peak_memory_bytes(self, device: str) -> int | None:
        """Peak device memory the framework allocated in this process (None on CPU, where
        the harness reads the process's peak RSS instead)."""
        return self.runtime.peak_memory_bytes(device)

    def alignments(self) -> list[dict[str, str]]:
        """What this adapter sets against the framework's defaults, read from the
        installed version: dicts with keys thing, default, fwbench."""
        return []

    # Shared argument checks, so every adapter refuses bad input with the same words.
    def _check_build(self, spec: ModelSpec, params: Params, dtype: str, device: str) -> None:
        canonical.check_params(spec, params)
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is not valid: allowed one of {', '.join(DTYPES)}")
        if device not in DEVICES:
            raise ValueError(f"device={device!r} is not valid: allowed one of {', '.join(DEVICES)}")

    def _mode_or_default(self, mode: str | None) -> str:
        if mode is None:
            return self.default_mode
        self._check_mode(mode)
        return mode

    def _check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"mode={mode!r} is not valid for {self.name}: "
                             f"allowed one of {', '.join(self.modes)}")

    @staticmethod
    def _check_loss(loss: str) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r} is not valid: allowed one of {', '.join(LOSSES)}")


def default_of(fn: Any, parameter: str) -> Any:
    """The installed framework's default for `parameter` of `fn` (read, not assumed)."""
    return inspect.signature(fn).parameters[parameter].default


def aligned(thing: str, default: Any, chosen: Any) -> dict[str, str]:
    return {"thing": thing, "default": str(default), "fwbench": str(chosen)}


_loaded: dict[str, Adapter] = {}


def get(name: str) -> Adapter:
    """The adapter called `name` ("tf", "torch" or "jax"), importing its framework now."""
    if name not in REGISTRY:
        raise UnknownFramework(f"unknown framework {name!r}: known frameworks are "
                               f"{', '.join(FRAMEWORKS)}")
    if name not in _loaded:
        module_name, framework, _, extra = REGISTRY[name]
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - absent or broken, told apart below
            if not installed(name):
                raise FrameworkNotInstalled(
                    f"{framework} is needed for the {name!r} adapter but cannot be imported "
                    f"({exc}); install it with: pip install 'fwbench[{extra}]'") from exc
            raise FrameworkBroken(
                f"{framework} is installed, but importing the {name!r} adapter "
                f"({module_name}) failed: {type(exc).__name__}: {exc}") from exc
        _loaded[name] = module.Adapter()
    return _loaded[name]


def installed(name: str) -> bool:
    """Whether the framework behind `name` is installed (every module its record requires
    can be found), without importing it. Installed is not importable: a broken wheel is
    installed, and adapters.get raises FrameworkBroken for it."""
    if name not in REGISTRY:
        raise UnknownFramework(f"unknown framework {name!r}: known frameworks are "
                               f"{', '.join(FRAMEWORKS)}")
    return all(importlib.util.find_spec(m) is not None for m in REGISTRY[name][2])
