"""The gradients study (bench/studies/gradients.py): its float64 backpropagation through
time by hand against finite differences, each framework's input gradient against it,
the weights it scales, its fit, and the quick study run end to end."""

import numpy as np
import pytest

from bench import adapters, canonical, reference
from bench.spec import LSTMSpec, RNNSpec
from bench.studies import bptt, gradients, runner
from tests.conftest import FRAMEWORKS

TINY = {"rnn": RNNSpec(in_features=2, hidden_size=4, num_layers=1, seq_len=5, out_features=3),
        "lstm": LSTMSpec(in_features=2, hidden_size=4, num_layers=1, seq_len=5, out_features=3)}


def _tiny_case(model):
    s = TINY[model]
    rng = np.random.default_rng(0)
    p = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s, 1).items()}
    return s, p, rng.standard_normal((3, 5, 2)), rng.integers(0, 3, 3)


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_bptt_by_hand_matches_finite_differences_of_the_reference(model):
    s, p, x, labels = _tiny_case(model)
    loss, dx = bptt.input_grads(s, p, x, labels)
    assert loss == pytest.approx(reference.loss(s, p, x, labels), rel=1e-14)
    fd, h = np.zeros_like(x), 1e-6
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (reference.loss(s, p, up, labels) - reference.loss(s, p, down, labels)) / (2 * h)
    assert np.abs(dx - fd).max() <= 1e-8 * np.abs(fd).max()
    # float32 arithmetic: the same gradient to float32 rounding, not the float64 one
    dx32 = bptt.input_grads(s, p, x, labels, "float32")[1]
    assert dx32.dtype == np.float32 and 0 < np.abs(dx32 - dx).max() <= 1e-5 * np.abs(dx).max()


def test_bptt_refuses_what_it_does_not_compute():
    with pytest.raises(ValueError, match="one-layer rnn or lstm"):
        bptt.input_grads(RNNSpec(num_layers=2), {}, np.zeros((1, 2, 16)), np.zeros(1, int))
    with pytest.raises(ValueError, match="one-layer rnn or lstm"):
        bptt.input_grads(LSTMSpec(num_layers=1, output="every_step"), {}, np.zeros((1, 2, 16)),
                         np.zeros(1, int))


@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_each_framework_input_gradient_is_bptt_by_hand(fw, model):
    s, p, x, labels = _tiny_case(model)
    a = adapters.get(fw)
    m = a.build(s, p, dtype="float64")
    expected = bptt.input_grads(s, p, x, labels)[1]
    for mode in ("eager", "compiled"):
        loss, dx = a.input_grads(m, x, labels, "cross_entropy", mode=mode)
        assert dx.shape == x.shape
        assert np.abs(dx - expected).max() <= 1e-12 * np.abs(expected).max(), mode
    # the parameters' own gradients are untouched by it
    assert canonical.params_equal(a.get_params(m), p)


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_weights_have_the_item_spectral_radius_and_forget_bias(model):
    config = {**gradients.QUICK, "hidden_size": 6}
    item = {"model": model, "radius": 0.7, "forget_bias": 2.0 if model == "lstm" else None, "seed": 4}
    p = gradients.weights(item, config)
    recurrent, h = p[f"{model}.0.recurrent_kernel"], 6
    for gate in range(gradients.GATES[model]):
        block = recurrent[:, gate * h:(gate + 1) * h]
        assert np.abs(np.linalg.eigvals(block)).max() == pytest.approx(0.7, rel=1e-12)
    if model == "lstm":
        assert (p["lstm.0.bias"][h:2 * h] == 2.0).all() and (p["lstm.0.bias"][:h] == 0).all()


def test_items_ids_and_bad_configurations():
    found = gradients.items(gradients.QUICK)
    ids = [gradients.item_id(i) for i in found]
    assert len(ids) == len(set(ids)) == 3 + 3 * 3  # rnn x 3 radii; lstm x 3 radii x 3 biases
    assert "rnn-r0.5-s0" in ids and "lstm-r1.5-fb3-s0" in ids
    for bad in ({"models": ["gru"]}, {"seq_len": 0}, {"radii": [0.0]}, {"models": []}):
        with pytest.raises(ValueError, match="gradients: "):
            gradients.items({**gradients.QUICK, **bad})


def test_fit_and_orders_of_a_known_curve():
    curve = 2.0 * 0.8 ** np.arange(130.0)
    decay, r2 = gradients.fit_decay(curve)
    assert decay == pytest.approx(0.8, rel=1e-12) and r2 == pytest.approx(1.0)
    assert gradients.orders(curve) == pytest.approx(-100 * np.log10(0.8))
    assert np.isnan(gradients.orders(curve[:50]))  # shorter than the span
    under = curve.copy()
    under[60:] = 0.0  # float32 underflow: left out of the fit
    assert gradients.fit_decay(under)[0] == pytest.approx(0.8, rel=1e-12)
    assert gradients.orders(under) == float("inf")


@pytest.mark.slow
def test_quick_study_runs_in_every_framework_and_states_its_findings(results_dir):
    folder = runner.new_study("gradients", [f.values[0] for f in FRAMEWORKS
                                            if adapters.installed(f.values[0])],
                              quick=True, overrides={"radii": [0.5, 1.5], "forget_biases": [0.0, 3.0]})
    runner.execute(folder)
    frame = runner.load(folder)
    assert (frame["status"] == "ok").all() and len(frame) == 6 * frame["framework"].nunique()
    assert frame["agrees"].all()
    rnn = frame[(frame["model"] == "rnn") & (frame["radius"] == 0.5)]
    assert (rnn["orders_100"] > 10).all()  # vanishes
    kept = frame[(frame["model"] == "lstm") & (frame["radius"] == 0.5) & (frame["forget_bias"] == 3.0)]
    assert (kept["orders_100"] < 1).all()
    text = gradients.summary(frame)
    assert "At spectral radius 0.5, the RNN's gradient norm falls by" in text
    assert "with forget-gate bias 3, and not with 0" in text
