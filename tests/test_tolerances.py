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


def _central(f, theta, h):
    grads = np.zeros_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grads[i] = (f(up) - f(down)) / (2 * h)
    return grads


@pytest.mark.parametrize("step", [1e-2, 1e-3])
def test_finite_difference_bound_covers_the_true_error_without_hiding_it(step):
    # f = sum(exp(theta)): the exact gradient is exp(theta), and the central difference's
    # error is exp(theta) (sinh(h)/h - 1) ~ exp(theta) h^2 / 6, which the bound must cover
    # (it fails if the truncation estimate were too small) without exceeding it by more
    # than the round-off term and a factor 1.1 (it fails if it were loose enough to pass
    # anything).
    theta = np.linspace(-1.0, 1.0, 7)
    f = lambda t: float(np.exp(t).sum())  # noqa: E731
    fd_h = {"theta": _central(f, theta, step)}
    fd_2h = {"theta": _central(f, theta, 2 * step)}
    exact = np.exp(theta)
    scale = np.abs(fd_h["theta"]).max()
    true_error = np.abs(fd_h["theta"] - exact).max() / scale
    bound = tolerances.finite_difference_bound(fd_h, fd_2h, f(theta), step)
    roundoff = tolerances.FD_ROUNDOFF_ULPS * tolerances.EPS["float64"] * f(theta) / step / scale
    assert true_error <= bound <= 1.1 * true_error + roundoff
    assert true_error == pytest.approx(np.exp(1.0) * step**2 / 6 / scale, rel=1e-2)


def test_finite_difference_bound_is_infinite_for_a_zero_gradient():
    zero = {"w": np.zeros(3)}
    assert tolerances.finite_difference_bound(zero, zero, 1.0) == float("inf")
