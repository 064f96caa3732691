import dataclasses

import pytest

from bench import spec
from bench.spec import AttentionSpec, LSTMSpec, MLPSpec, OptimizerSpec, SpecError, TrainSpec


@pytest.mark.parametrize("make, field, allowed", [
    (lambda: AttentionSpec(d_model=64, num_heads=3), "num_heads", "divisor of d_model=64"),
    (lambda: AttentionSpec(d_model=63, num_heads=1), "d_model", "even"),
    (lambda: AttentionSpec(num_blocks=0), "num_blocks", ">= 1"),
    (lambda: AttentionSpec(norm="middle"), "norm", "post, pre"),
    (lambda: AttentionSpec(layer_norm_eps=0.0), "layer_norm_eps", "(0, 1]"),
    (lambda: LSTMSpec(num_layers=0), "num_layers", ">= 1"),
    (lambda: LSTMSpec(hidden_size=2.5), "hidden_size", "whole number"),
    (lambda: MLPSpec(activation="softplus"), "activation", "relu, tanh, sigmoid, gelu"),
    (lambda: MLPSpec(hidden=(8, 0)), "hidden", "whole numbers >= 1"),
    (lambda: MLPSpec(in_features=True), "in_features", "whole number"),
    (lambda: OptimizerSpec(learning_rate=-1e-3), "learning_rate", "(0, inf)"),
    (lambda: OptimizerSpec(name="adamw"), "name", "sgd, momentum, nesterov, adagrad, rmsprop, adam"),
    (lambda: OptimizerSpec(beta2=1.0), "beta2", "[0, 1)"),
    (lambda: OptimizerSpec(name="rmsprop", epsilon=0.0), "epsilon", "> 0"),
    (lambda: TrainSpec(loss="hinge"), "loss", "cross_entropy, mse"),
    (lambda: TrainSpec(dtype="float16"), "dtype", "float32, float64"),
    (lambda: TrainSpec(batch_size=0), "batch_size", ">= 1"),
])
def test_nonsense_is_refused_naming_field_and_allowed_values(make, field, allowed):
    with pytest.raises(SpecError) as info:
        make()
    message = str(info.value)
    assert f".{field}=" in message and allowed in message


def test_specs_are_frozen_and_hashable():
    s = MLPSpec(hidden=[4, 5])
    assert s.hidden == (4, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.in_features = 3
    assert hash(s) == hash(MLPSpec(hidden=(4, 5)))


@pytest.mark.parametrize("model", spec.MODELS)
def test_dict_round_trip(model):
    s, _ = spec.preset("small", model)
    assert spec.model_from_dict(spec.to_dict(s)) == s


def test_from_dict_refuses_unknown_kind_and_field():
    with pytest.raises(SpecError, match="kind='cnn'"):
        spec.model_from_dict({"kind": "cnn"})
    with pytest.raises(SpecError, match="no field"):
        spec.model_from_dict({"kind": "mlp", "widht": 3})


def test_small_preset_matches_design():
    mlp, t = spec.preset("small", "mlp")
    assert (mlp.in_features, mlp.hidden, mlp.out_features, t.batch_size) == (32, (256,) * 3, 10, 128)
    lstm, t = spec.preset("small", "lstm")
    assert (lstm.in_features, lstm.hidden_size, lstm.num_layers, lstm.seq_len, t.batch_size) == \
        (16, 128, 1, 32, 32)
    att, t = spec.preset("small", "attention")
    assert (att.in_features, att.d_model, att.num_heads, att.ff_dim, att.num_blocks, att.seq_len,
            t.batch_size) == (64, 64, 4, 256, 1, 64, 32)
    assert t.optimizer.name == "adam" and t.optimizer.learning_rate == 1e-3
    assert t.loss == "cross_entropy"
    with pytest.raises(SpecError, match="preset='huge'"):
        spec.preset("huge", "mlp")
