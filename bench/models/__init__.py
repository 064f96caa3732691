"""Model kinds: one module per kind, and the table everything else reads.

A kind's module holds all that fwbench knows about it without a framework: its spec
dataclass, canonical parameter shapes, float64 reference forward pass, analytic FLOPs,
scaling axis, parity variants and per-preset sizes (bench.models.kind.ModelKind). Each
framework builds it in `impls/<framework>/models.py`, keyed by the same name. Adding a
kind: write its module here, add it to KINDS, and add its builder to each framework.
"""

from __future__ import annotations

from typing import Any, TypeVar

from bench.models import attention, lstm, mlp, rnn
from bench.models.fields import SpecError
from bench.models.kind import ModelKind

KINDS: dict[str, ModelKind] = {k.name: k for k in (mlp.KIND, lstm.KIND, attention.KIND,
                                                       rnn.KIND)}
NAMES: tuple[str, ...] = tuple(KINDS)


def get(name: str) -> ModelKind:
    """The kind called `name`; SpecError naming the known kinds otherwise."""
    if name not in KINDS:
        raise SpecError(f"model={name!r} is not valid: allowed one of {', '.join(NAMES)}")
    return KINDS[name]


def of(spec: Any) -> ModelKind:
    """The kind of a model spec; TypeError for anything that is not one."""
    kind = KINDS.get(getattr(type(spec), "kind", None))
    if kind is None or not isinstance(spec, kind.spec):
        raise TypeError(f"not a model spec: {spec!r}")
    return kind


Entry = TypeVar("Entry")


def entry(table: dict[str, Entry], spec: Any, where: str) -> Entry:
    """A framework's entry for `spec`'s kind in its table (impls/<name>/models.py
    BUILDERS); NotImplementedError naming the table where the kind has none yet."""
    kind = of(spec).name
    if kind not in table:
        raise NotImplementedError(f"{where} has no builder for model kind {kind!r}")
    return table[kind]
