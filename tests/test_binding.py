"""The weight binding every framework shares (bench/binding.py), framework-free: slots are
keys of a dict of NumPy arrays, as a framework's storage would be."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bench import binding, canonical, spec
from bench.binding import Binding


def _storage(shapes):
    store = {k: np.zeros(s) for k, s in shapes.items()}
    return (store, lambda k: store[k].shape,
            lambda k, v: store.__setitem__(k, v.copy()), lambda k: store[k])


def test_transforms_round_trip_and_say_which_canonical_shape_their_slots_hold():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 8))  # (in, 4H) with H = 2
    cases = [(binding.SAME, {"a": (3, 8)}), (binding.TRANSPOSED, {"a": (8, 3)}),
             (binding.reshaped((3, 8)), {"a": (3, 2, 4)}),
             (binding.SPLIT_LAST_AXIS, {g: (3, 2) for g in "ifgo"})]
    for transform, shapes in cases:
        store, shape_of, put, fetch = _storage(shapes)
        b = Binding("w", tuple(shapes), transform)
        assert transform.canonical_shape([shape_of(k) for k in b.slots]) == (3, 8)
        binding.write([b], {"w": kernel}, shape_of, put)
        back = binding.read([b], fetch)["w"]
        assert np.array_equal(back, kernel), transform.name
    # the gate split puts columns 2k, 2k+1 of the canonical array in the k-th slot
    assert np.array_equal(store["g"], kernel[:, 4:6])


def test_a_part_that_does_not_fit_its_slot_is_refused_naming_the_parameter():
    store, shape_of, put, _ = _storage({"a": (3, 8)})
    with pytest.raises(binding.BindingError, match=r"w: part 0 \(transposed\) has shape "
                                                   r"\(8, 3\), its slot \(3, 8\)"):
        binding.write([Binding("w", ("a",), binding.TRANSPOSED)], {"w": np.ones((3, 8))},
                      shape_of, put)
    assert not store["a"].any()  # nothing was stored


def test_check_names_a_wrong_transform_or_a_missing_parameter():
    s, _ = spec.preset("tiny", "mlp")
    shapes = canonical.param_shapes(s)
    # every canonical parameter in a slot of its shape: passes
    good = [Binding(n, (n,)) for n in shapes]
    binding.check(s, good, lambda k: shapes[k], "x")
    # a kernel stored (out, in) but bound without the transpose
    kernel = "layers.0.kernel"
    stored = {**shapes, kernel: shapes[kernel][::-1]}
    with pytest.raises(ValueError, match=re.escape(f"{kernel} is stored as {stored[kernel]}")):
        binding.check(s, good, lambda k: stored[k], "x")
    fixed = [Binding(n, (n,), binding.TRANSPOSED if n == kernel else binding.SAME)
             for n in shapes]
    binding.check(s, fixed, lambda k: stored[k], "x")
    with pytest.raises(ValueError, match="layers.0.bias is not bound"):
        binding.check(s, [b for b in good if b.name != "layers.0.bias"], lambda k: shapes[k], "x")


def test_a_reshape_into_another_size_shows_the_stored_shape():
    t = binding.reshaped((4, 4))
    assert t.canonical_shape([(4, 2, 2)]) == (4, 4)
    assert t.canonical_shape([(4, 2, 3)]) == (4, 2, 3)  # which check_bound then names
    assert binding.SPLIT_LAST_AXIS.canonical_shape([(3, 2), (4, 2)]) == (3, 2)
