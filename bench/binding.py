"""Weight binding: where each canonical parameter lives in a framework's model, and how its
canonical array becomes what the framework stores, and back.

Each framework names its storage in its own terms, a slot: a torch tensor and a range of
its rows, a Keras variable, a path in a Flax parameter tree. What every framework shares
is here: a Binding (canonical name -> slots, with a Transform between the canonical
array and the stored parts) and the three operations on a list of them, given the
framework's way to see a slot's shape, store into it and fetch from it:

- check: the bindings cover exactly the canonical parameters, and each one's slots hold
  the canonical shape (bench.canonical.check_bound), before anything is loaded;
- write: canonical arrays -> slots, each part checked against its slot's shape (never
  broadcast, never reshaped into a different size);
- read: slots (the parameters, or their gradients) -> canonical arrays, copied.

So a wrong rename or transform fails at build naming the parameter, in every framework
alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import canonical

Shape = tuple[int, ...]


class BindingError(ValueError):
    """A canonical parameter that does not fit where a framework stores it."""


@dataclass(frozen=True)
class Transform:
    """Canonical array <-> the parts stored in a binding's slots (in slot order), and the
    canonical shape that slots of given shapes hold."""

    name: str
    to_stored: Callable[[np.ndarray, Sequence[Shape]], list[np.ndarray]]
    to_canonical: Callable[[list[np.ndarray]], np.ndarray]
    canonical_shape: Callable[[Sequence[Shape]], Shape]


SAME = Transform("same", lambda a, shapes: [a], lambda parts: parts[0],
                 lambda shapes: tuple(shapes[0]))
# torch.nn.Linear and the recurrent layers store (out, in): the canonical kernel is (in, out)
TRANSPOSED = Transform("transposed", lambda a, shapes: [a.T], lambda parts: parts[0].T,
                       lambda shapes: tuple(shapes[0])[::-1])


def reshaped(canonical_shape: Shape) -> Transform:
    """One slot holding the canonical array in another shape of the same size (Keras and
    Flax attention keep (d, heads, head_dim) where the canonical kernel is (d, d))."""
    target = tuple(canonical_shape)

    def holds(shapes: Sequence[Shape]) -> Shape:
        # a slot of another size shows as its own shape, which check_bound names
        return target if int(np.prod(shapes[0])) == int(np.prod(target)) else tuple(shapes[0])

    return Transform(f"reshaped to {target}", lambda a, shapes: [a.reshape(shapes[0])],
                     lambda parts: parts[0].reshape(target), holds)


def _joined(shapes: Sequence[Shape]) -> Shape:
    leading = {tuple(s[:-1]) for s in shapes}
    if len(leading) != 1:
        return tuple(shapes[0])  # parts that cannot be joined: shown as the first part's
    return (*leading.pop(), sum(s[-1] for s in shapes))


# Flax's LSTM cells keep one dense layer per gate: the canonical (n, 4H) array is split
# along its last axis into one (n, H) block per slot, in slot order (gates i, f, g, o).
SPLIT_LAST_AXIS = Transform(
    "split along the last axis",
    lambda a, shapes: np.split(a, np.cumsum([s[-1] for s in shapes])[:-1], axis=-1),
    lambda parts: np.concatenate(parts, axis=-1), _joined)


@dataclass(frozen=True)
class Binding:
    """Canonical parameter `name` is stored in `slots` (the framework's handles), through
    `transform`."""

    name: str
    slots: tuple[Any, ...]
    transform: Transform = SAME


def check(spec: Any, binds: Iterable[Binding], shape_of: Callable[[Any], Shape],
          framework: str) -> None:
    """Raise ValueError unless `binds` cover exactly the canonical parameters of `spec`,
    each held in its canonical shape (shape_of(slot): the slot's shape as stored)."""
    canonical.check_bound(spec, {b.name: b.transform.canonical_shape(
        [tuple(shape_of(s)) for s in b.slots]) for b in binds}, framework)


def write(binds: Iterable[Binding], params: Mapping[str, np.ndarray],
          shape_of: Callable[[Any], Shape], store: Callable[[Any, np.ndarray], None]) -> None:
    """Store every canonical array through its binding; each part must have its slot's
    shape exactly."""
    for b in binds:
        shapes = [tuple(shape_of(s)) for s in b.slots]
        parts = b.transform.to_stored(np.asarray(params[b.name]), shapes)
        for k, (slot, part, shape) in enumerate(zip(b.slots, parts, shapes, strict=True)):
            if tuple(part.shape) != shape:
                raise BindingError(f"{b.name}: part {k} ({b.transform.name}) has shape "
                                   f"{tuple(part.shape)}, its slot {shape}")
            store(slot, np.ascontiguousarray(part))


def read(binds: Iterable[Binding], fetch: Callable[[Any], Any]) -> dict[str, np.ndarray]:
    """Canonical arrays (copies) from what `fetch(slot)` returns for every slot: the
    parameters, or their gradients."""
    return {b.name: np.array(b.transform.to_canonical([np.asarray(fetch(s)) for s in b.slots]))
            for b in binds}
