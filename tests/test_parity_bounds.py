"""The bounds parity derives per row, checked without a framework: the drift between two
optimizer forms fed the same gradients (bench.parity._form_drift)."""

import numpy as np
import pytest

from bench import optim, parity, tolerances
from bench.spec import OptimizerSpec


def _gradients(steps=20, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.standard_normal(5), "b": rng.standard_normal(2)} for _ in range(steps)]


PARAMS = {"w": np.linspace(-1, 1, 5), "b": np.array([0.5, -0.5])}


def test_the_same_form_drifts_by_nothing():
    opt = OptimizerSpec(name="rmsprop", learning_rate=0.01, epsilon=0.1)
    assert parity._form_drift(opt, "eps_inside", "eps_inside", PARAMS, _gradients(),
                              np.ones(20)) == (0.0, 0.0)


@pytest.mark.parametrize("epsilon, low, high", [(1e-12, 0.0, 1e-8), (0.1, 1e-3, 1.0)])
def test_form_drift_grows_with_what_the_forms_disagree_on(epsilon, low, high):
    # RMSprop with epsilon inside or outside the square root: the same rule when epsilon
    # is negligible, visibly apart when it is not
    opt = OptimizerSpec(name="rmsprop", learning_rate=0.01, epsilon=epsilon)
    params_drift, _ = parity._form_drift(opt, "eps_inside", "eps_outside", PARAMS,
                                         _gradients(), np.ones(20))
    assert low <= params_drift <= high


def test_loss_drift_bounds_the_loss_gap_of_a_linear_loss():
    # With L(theta) = c . theta the gradient is c at every step, and the gap between the
    # two forms' losses after each step is |c . (theta_a - theta_b)| <= sum |c| |dtheta|,
    # which the bound must cover; it is compared in relative terms to the loss curve.
    c = {"w": np.array([1.0, -2.0, 0.5, 3.0, -1.0]), "b": np.array([0.25, 4.0])}
    grads = [c] * 20
    loss = lambda p: float(sum(np.dot(c[k], p[k]) for k in c))  # noqa: E731
    opt = OptimizerSpec(name="adagrad", learning_rate=0.05, epsilon=0.5,
                        initial_accumulator=0.0)
    run_a = optim.trajectory(opt, "eps_inside", PARAMS, grads)
    run_b = optim.trajectory(opt, "eps_outside", PARAMS, grads)
    losses = np.array([loss(PARAMS)] + [loss(p) for p in run_a[:-1]])
    gaps = np.array([0.0] + [abs(loss(a) - loss(b)) for a, b in zip(run_a[:-1], run_b[:-1])])
    _, loss_drift = parity._form_drift(opt, "eps_inside", "eps_outside", PARAMS, grads, losses)
    true_drift = tolerances.relative_error(losses + gaps, losses)
    assert 0 < true_drift <= loss_drift
