"""The recurrent kinds' head on every time step (`output="every_step"`): the spec field,
the reference against the last-step model on each prefix, the loss, FLOPs, data and
parity cases, and each framework's build against the reference."""

import dataclasses

import numpy as np
import pytest

from bench import adapters, canonical, data, flops, reference, spec
from bench.parity.cases import cases as parity_cases
from bench.spec import LSTMSpec, RNNSpec
from tests.conftest import FRAMEWORKS

KINDS = [LSTMSpec, RNNSpec]


def _tiny(cls, output="every_step"):
    return cls(in_features=3, hidden_size=5, num_layers=2, seq_len=6, out_features=4, output=output)


@pytest.mark.parametrize("cls", KINDS)
def test_the_field_defaults_to_the_last_step_and_refuses_other_values(cls):
    assert cls().output == "last" and not cls().every_step
    assert _tiny(cls).every_step
    with pytest.raises(spec.SpecError, match=rf"{cls.__name__}.output='all'"):
        cls(output="all")
    # a result file written before the field existed still loads, as the last-step model
    old = {k: v for k, v in spec.to_dict(cls()).items() if k != "output"}
    assert spec.model_from_dict(old) == cls()
    assert spec.model_from_dict(spec.to_dict(_tiny(cls))) == _tiny(cls)


@pytest.mark.parametrize("cls", KINDS)
def test_every_step_output_is_the_last_step_model_on_each_prefix(cls):
    s = _tiny(cls)
    rng = np.random.default_rng(5)
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s, 2).items()}
    x = rng.standard_normal((3, *s.input_shape))
    out = reference.forward(s, p, x)
    assert out.shape == (3, 6, 4)
    last = _tiny(cls, "last")
    for t in range(6):
        np.testing.assert_allclose(out[:, t], reference.forward(last, p, x[:, :t + 1]), rtol=1e-13)


def test_every_step_cross_entropy_is_the_mean_over_steps():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((3, 6, 4)), rng.integers(0, 4, size=(3, 6))
    per_step = [reference.loss_value("cross_entropy", logits[:, t], labels[:, t]) for t in range(6)]
    assert reference.loss_value("cross_entropy", logits, labels) == pytest.approx(np.mean(per_step))


@pytest.mark.parametrize("cls", KINDS)
def test_flops_count_the_head_at_every_step(cls):
    s, last = _tiny(cls), _tiny(cls, "last")
    head = 2 * 7 * 5 * 4  # batch 7: (7 x 5) @ (5 x 4)
    assert flops.forward_flops(s, 7) - flops.forward_flops(last, 7) == 5 * head  # 6 steps, not 1
    assert flops.forward_flops(s, 7, seq_len=10) - flops.forward_flops(last, 7, seq_len=10) == 9 * head


@pytest.mark.parametrize("cls", KINDS)
def test_batches_hold_one_target_per_step_and_last_step_batches_are_unchanged(cls):
    x, t = data.batch(_tiny(cls), 3, "cross_entropy", seed=1)
    assert x.shape == (3, 6, 3) and t.shape == (3, 6) and t.max() < 4
    assert data.batch(_tiny(cls), 3, "mse", seed=1)[1].shape == (3, 6, 4)
    assert data.batch(_tiny(cls), 3, "cross_entropy", seed=1, seq_len=9)[1].shape == (3, 9)
    # the stream of a last-step spec is the one it always was
    rng = np.random.default_rng([1, 0])
    rng.standard_normal((3, 6, 3))
    assert (data.batch(_tiny(cls, "last"), 3, "cross_entropy", seed=1)[1]
            == rng.integers(0, 4, size=3)).all()


def test_parity_checks_the_every_step_head_of_both_recurrent_kinds():
    found = {c.name: c for c in parity_cases()}
    for kind in ("lstm", "rnn"):
        case = found[f"{kind}-every-step"]
        assert case.spec == dataclasses.replace(found[kind].spec, output="every_step")
        assert not case.trajectories


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_framework_builds_match_the_reference_in_float64(fw, cls):
    s = _tiny(cls)
    rng = np.random.default_rng(3)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s).items()}
    a = adapters.get(fw)
    m = a.build(s, params, dtype="float64")
    x, target = data.batch(s, 3, "cross_entropy", seed=2)
    np.testing.assert_allclose(a.forward(m, x), reference.forward(s, params, x), rtol=1e-12, atol=1e-12)
    loss, grads = a.loss_and_grads(m, x, target, "cross_entropy")
    assert loss == pytest.approx(reference.loss(s, params, x, target), rel=1e-12)
    assert {k: g.shape for k, g in grads.items()} == {k: v.shape for k, v in params.items()}
