"""The parity error measure: max-norm relative error per tensor."""

import numpy as np
import pytest

from bench import tolerances


def test_relative_error_per_tensor_with_a_floor():
    b = {"w": np.array([1.0, -2.0]), "tiny": np.array([1e-9])}
    a = {"w": np.array([1.0, -2.002]), "tiny": np.array([2e-9])}
    # w: 0.002 / 2; tiny: 1e-9 against the floor 1e-3 * 2, not against 1e-9
    assert tolerances.relative_error(a, b) == pytest.approx(1e-3)
    assert tolerances.relative_error(np.array([2.0]), np.array([1.0])) == 1.0
    with pytest.raises(ValueError, match="different names"):
        tolerances.relative_error({"w": b["w"]}, b)


def test_exactly_zero_tensors_are_judged_against_the_largest_value():
    b = {"w": np.array([4.0]), "inert": np.array([1e-9])}
    a = {"w": np.array([4.0]), "inert": np.array([5e-6])}
    # against the floor (1e-3 * 4) the rounding residue would count 1.25e-3
    assert tolerances.relative_error(a, b) == pytest.approx((5e-6 - 1e-9) / 4e-3)
    assert tolerances.relative_error(a, b, exactly_zero=["inert"]) == \
        pytest.approx((5e-6 - 1e-9) / 4.0)
