import numpy as np
import pytest

from bench import canonical, spec
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec


def test_mlp_names_and_shapes():
    shapes = canonical.param_shapes(MLPSpec(in_features=3, hidden=(4,), out_features=2))
    assert shapes == {"layers.0.kernel": (3, 4), "layers.0.bias": (4,),
                      "layers.1.kernel": (4, 2), "layers.1.bias": (2,)}


def test_lstm_names_and_shapes():
    shapes = canonical.param_shapes(LSTMSpec(in_features=3, hidden_size=5, num_layers=2, out_features=2))
    assert shapes == {"lstm.0.kernel": (3, 20), "lstm.0.recurrent_kernel": (5, 20), "lstm.0.bias": (20,),
                      "lstm.1.kernel": (5, 20), "lstm.1.recurrent_kernel": (5, 20), "lstm.1.bias": (20,),
                      "head.kernel": (5, 2), "head.bias": (2,)}


def test_attention_names_and_shapes():
    s = AttentionSpec(in_features=3, d_model=8, num_heads=2, ff_dim=16, num_blocks=1, out_features=2)
    shapes = canonical.param_shapes(s)
    assert shapes["embed.kernel"] == (3, 8)
    for p in "qkvo":
        assert shapes[f"blocks.0.attn.{p}.kernel"] == (8, 8) and shapes[f"blocks.0.attn.{p}.bias"] == (8,)
    assert shapes["blocks.0.ln1.scale"] == shapes["blocks.0.ln2.bias"] == (8,)
    assert shapes["blocks.0.ffn.0.kernel"] == (8, 16) and shapes["blocks.0.ffn.1.kernel"] == (16, 8)
    assert shapes["head.kernel"] == (8, 2)
    assert len(shapes) == 2 + 8 + 4 + 4 + 2


@pytest.mark.parametrize("model, count", [
    # exact counts of the tiny presets, computed by hand
    ("mlp", 6 * 8 + 8 + 8 * 7 + 7 + 7 * 3 + 3),
    ("lstm", (3 * 20 + 5 * 20 + 20) + (5 * 20 + 5 * 20 + 20) + 5 * 3 + 3),
    ("attention", (5 * 8 + 8) + 2 * (4 * (8 * 8 + 8) + 4 * 8 + (8 * 12 + 12) + (12 * 8 + 8)) + 8 * 3 + 3),
])
def test_tiny_parameter_counts(model, count):
    assert canonical.param_count(spec.preset("tiny", model)[0]) == count


def test_init_is_glorot_seeded_and_float64():
    s = spec.preset("small", "attention")[0]
    a, b = canonical.init_params(s, seed=1), canonical.init_params(s, seed=1)
    assert canonical.params_equal(a, b)
    assert not canonical.params_equal(a, canonical.init_params(s, seed=2))
    k = a["blocks.0.ffn.0.kernel"]
    limit = np.sqrt(6 / (64 + 256))
    assert k.dtype == np.float64 and np.abs(k).max() <= limit and np.abs(k).max() > 0.95 * limit
    assert np.all(a["blocks.0.ln1.scale"] == 1) and np.all(a["blocks.0.attn.q.bias"] == 0)


def test_check_params_names_every_problem():
    s = spec.preset("tiny", "mlp")[0]
    p = canonical.init_params(s)
    p["layers.0.kernel"] = np.zeros((2, 2))
    del p["layers.1.bias"]
    p["extra"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        canonical.check_params(s, p)
    msg = str(info.value)
    assert "missing layers.1.bias" in msg and "unexpected extra" in msg and "layers.0.kernel has shape" in msg
