"""Checks for specification fields, shared by the model kinds and bench.spec.

Kept apart from bench.spec so that a model-kind module can define its spec class without
importing bench.spec, which imports every kind (the table in bench.models).
"""

from __future__ import annotations

from typing import Any

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "swish", "identity")
# gelu is the exact (erf) form; gelu_tanh the tanh approximation (Flax's default).


class SpecError(ValueError):
    """A specification field holds a value that makes no sense."""


def fail(cls_name: str, name: str, value: Any, allowed: str) -> None:
    raise SpecError(f"{cls_name}.{name}={value!r} is not valid: allowed {allowed}")


def positive_int(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(type(obj).__name__, name, value, "a whole number >= 1")


def choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        fail(type(obj).__name__, name, value, "one of " + ", ".join(choices))


def number(obj: Any, name: str, low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> None:
    """Require low <= value <= high (strict where the bound is open)."""
    value = getattr(obj, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        lo = ("(" if low_open else "[") + f"{low:g}"
        hi = f"{high:g}" + (")" if high_open else "]")
        fail(type(obj).__name__, name, value, f"a number in {lo}, {hi}")
