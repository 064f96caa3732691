"""The vanilla RNN kind (bench/models/rnn.py): its canonical layout, an independent
reference, a closed form, its FLOP count, and its framework builds against the reference.

The checks every kind gets (parity, the speed matrix, the graph study) come from the
kind table and are tested where those parts are.
"""

import numpy as np
import pytest

from bench import adapters, canonical, data, flops, models, reference, spec
from bench.spec import RNNSpec
from tests.conftest import FRAMEWORKS


def test_names_and_shapes_follow_the_design():
    shapes = canonical.param_shapes(RNNSpec(in_features=3, hidden_size=5, num_layers=2,
                                            out_features=2))
    assert shapes == {"rnn.0.kernel": (3, 5), "rnn.0.recurrent_kernel": (5, 5), "rnn.0.bias": (5,),
                      "rnn.1.kernel": (5, 5), "rnn.1.recurrent_kernel": (5, 5), "rnn.1.bias": (5,),
                      "head.kernel": (5, 2), "head.bias": (2,)}


def test_tiny_parameter_count_by_hand():
    # in 3, H 5, 2 layers, out 3
    count = (3 * 5 + 5 * 5 + 5) + (5 * 5 + 5 * 5 + 5) + 5 * 3 + 3
    assert canonical.param_count(spec.preset("tiny", "rnn")[0]) == count == 118


def test_kind_is_in_the_table_as_a_sequence_model_swept_in_length():
    kind = models.get("rnn")
    assert "rnn" in spec.MODELS and kind.sequence and kind.scaling_axis == "seq_len"
    assert spec.model_from_dict(spec.to_dict(RNNSpec(hidden_size=7))) == RNNSpec(hidden_size=7)
    with pytest.raises(spec.SpecError, match="RNNSpec.hidden_size=0"):
        RNNSpec(hidden_size=0)


def _independent(s, p, x):
    """Unit by unit with explicit sums, not matrix products."""
    seq = x
    for layer in range(s.num_layers):
        W, U, b = (p[f"rnn.{layer}.{n}"] for n in ("kernel", "recurrent_kernel", "bias"))
        h = np.zeros((x.shape[0], s.hidden_size))
        out = []
        for t in range(seq.shape[1]):
            h = np.array([[np.tanh(sum(seq[n, t, i] * W[i, j] for i in range(W.shape[0]))
                                   + sum(h[n, k] * U[k, j] for k in range(s.hidden_size)) + b[j])
                           for j in range(s.hidden_size)] for n in range(x.shape[0])])
            out.append(h)
        seq = np.stack(out, 1)
    return np.einsum("bh,ho->bo", seq[:, -1], p["head.kernel"]) + p["head.bias"]


def test_reference_matches_an_independent_implementation():
    s = spec.preset("tiny", "rnn")[0]
    rng = np.random.default_rng(4)
    p = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s, 1).items()}
    x = rng.standard_normal((3, *s.input_shape))
    ref, ind = reference.forward(s, p, x), _independent(s, p, x)
    assert np.abs(ref - ind).max() <= 1e-12 * max(1.0, np.abs(ind).max())


def test_closed_form_of_a_scalar_rnn():
    # H = 1, one input: h_t = tanh(w x_t + r h_{t-1} + b), by hand for three steps.
    s = RNNSpec(in_features=1, hidden_size=1, num_layers=1, seq_len=3, out_features=1)
    w, r, b = 0.7, -0.4, 0.1
    p = {"rnn.0.kernel": np.array([[w]]), "rnn.0.recurrent_kernel": np.array([[r]]),
         "rnn.0.bias": np.array([b]), "head.kernel": np.array([[2.0]]), "head.bias": np.array([0.5])}
    xs = [1.0, -2.0, 0.5]
    h = 0.0
    for x_t in xs:
        h = np.tanh(w * x_t + r * h + b)
    out = reference.forward(s, p, np.array(xs).reshape(1, 3, 1))
    assert out[0, 0] == pytest.approx(2.0 * h + 0.5, rel=1e-15)


def test_flops_count_each_product_of_the_recurrence():
    # one layer, in 4, H 6, out 2, batch 3, T 5: per step x_t @ W (3x4 @ 4x6) and
    # h @ U (3x6 @ 6x6), then the head (3x6 @ 6x2); 2 FLOPs per multiply-add
    s = RNNSpec(in_features=4, hidden_size=6, num_layers=1, seq_len=5, out_features=2)
    per_step = 2 * 3 * 4 * 6 + 2 * 3 * 6 * 6
    assert flops.forward_flops(s, 3) == 5 * per_step + 2 * 3 * 6 * 2 == 1872
    assert flops.forward_flops(s, 3, seq_len=10) == 10 * per_step + 72


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_framework_build_matches_the_reference_in_float64(fw):
    s = spec.preset("tiny", "rnn")[0]
    rng = np.random.default_rng(2)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in canonical.init_params(s).items()}
    a = adapters.get(fw)
    m = a.build(s, params, dtype="float64")
    x, target = data.batch(s, 4, "cross_entropy", seed=1)
    assert np.allclose(a.forward(m, x), reference.forward(s, params, x), rtol=1e-12, atol=1e-12)
    assert canonical.params_equal(a.get_params(m), params)
    loss, grads = a.loss_and_grads(m, x, target, "cross_entropy")
    assert loss == pytest.approx(reference.loss(s, params, x, target), rel=1e-12)
    assert grads.keys() == params.keys()
