"""The public API of docs/design.md, per framework, against the float64 reference."""

import numpy as np
import pytest

from bench import adapters, canonical, data, models, reference, spec
from bench.spec import OptimizerSpec
from tests.conftest import FRAMEWORKS


def _params(s, seed=0):
    # Biases and LayerNorm parameters off 0 and 1, so a misplaced one shows.
    rng = np.random.default_rng(seed)
    return {k: v if k.endswith("kernel") else v + 0.1 * rng.standard_normal(v.shape)
            for k, v in canonical.init_params(s, seed).items()}


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("model", spec.MODELS)
def test_public_api_float64(fw, model):
    s, _ = spec.preset("tiny", model)
    params = _params(s)
    a = adapters.get(fw)
    m = a.build(s, params, dtype="float64")
    x, target = data.batch(s, 3, "cross_entropy", seed=1)
    y = a.forward(m, x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (3, s.out_features)
    ref = reference.forward(s, params, x)
    assert np.abs(y - ref).max() <= 1e-12 * np.abs(ref).max()
    loss, grads = a.loss_and_grads(m, x, target, loss="cross_entropy")
    assert loss == pytest.approx(reference.loss(s, params, x, target), rel=1e-12)
    assert {k: g.shape for k, g in grads.items()} == canonical.param_shapes(s)
    assert canonical.params_equal(a.get_params(m), params)
    assert a.param_count(m) == canonical.param_count(s)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_float32_build_is_float32_and_round_trips_exactly(fw):
    s, _ = spec.preset("tiny", "attention")
    params = _params(s)
    a = adapters.get(fw)
    m = a.build(s, params, dtype="float32")
    x, _ = data.batch(s, 2)
    y = a.forward(m, x)
    assert y.dtype == np.float32
    assert np.abs(y - reference.forward(s, params, x)).max() <= 1e-5 * np.abs(y).max()
    exported = a.get_params(m)
    assert all(v.dtype == np.float32 for v in exported.values())
    assert canonical.params_equal(exported, canonical.cast(params, "float32"))


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("model", [name for name, kind in models.KINDS.items() if kind.sequence])
def test_shorter_sequences_than_the_spec(fw, model):
    s, _ = spec.preset("tiny", model)
    params = _params(s)
    a = adapters.get(fw)
    m = a.build(s, params, dtype="float64")
    x, _ = data.batch(s, 2, seq_len=s.seq_len - 2)
    assert np.allclose(a.forward(m, x), reference.forward(s, params, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_bad_input_is_refused_with_its_name(fw):
    s, _ = spec.preset("tiny", "mlp")
    a = adapters.get(fw)
    params = canonical.init_params(s)
    bad = dict(params, **{"layers.0.kernel": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="layers.0.kernel has shape"):
        a.build(s, bad)
    with pytest.raises(ValueError, match="dtype='float16'"):
        a.build(s, params, dtype="float16")
    with pytest.raises(ValueError, match="device='tpu'"):
        a.build(s, params, device="tpu")
    m = a.build(s, params)
    with pytest.raises(ValueError, match="loss='hinge'"):
        a.loss_and_grads(m, *data.batch(s, 2), loss="hinge")
    with pytest.raises(ValueError, match="mode='turbo'.*eager, compiled"):
        a.trainer(m, OptimizerSpec(), mode="turbo")


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("loss", spec.LOSSES)
def test_eager_training_lowers_the_loss_and_moves_the_model(fw, loss):
    # The MLP: op-by-op JAX takes about 1 s a step on the tiny LSTM (its scan runs in
    # Python). Eager training of every kind is compared step by step with compiled
    # training in parity's `compiled` check.
    s, _ = spec.preset("tiny", "mlp")
    a = adapters.get(fw)
    m = a.build(s, canonical.init_params(s), dtype="float32")
    trainer = a.trainer(m, OptimizerSpec(name="adam", learning_rate=0.05), loss, mode="eager")
    batch = trainer.put(*data.batch(s, 8, loss, seed=2))
    losses = [trainer.value(trainer.step(batch)) for _ in range(25)]
    assert losses[-1] < 0.7 * losses[0]
    # the model handle follows the trainer: its loss is the trained one
    x, target = data.batch(s, 8, loss, seed=2)
    assert a.loss_and_grads(m, x, target, loss)[0] < 0.7 * losses[0]


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_alignments_read_installed_defaults(fw):
    a = adapters.get(fw)
    rows = a.alignments()
    assert rows and all(set(r) == {"thing", "default", "fwbench"} for r in rows)
    eps = next(r for r in rows if r["thing"] == "LayerNorm epsilon")
    # the frameworks' documented LayerNorm defaults, read from the installed signatures
    assert float(eps["default"]) == {"torch": 1e-5, "tf": 1e-3, "jax": 1e-6}[fw]


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_binding_that_misses_or_misshapes_a_parameter_fails_at_build(fw, monkeypatch):
    """Each framework's binding is checked against the canonical layout before anything
    is loaded (bench.canonical.check_bound): drop the head's bias from the MLP's binding
    and the build names it."""
    import dataclasses
    import importlib

    from bench import models as kinds

    impl = importlib.import_module(f"impls.{fw}.models")
    s, _ = spec.preset("tiny", "mlp")
    if fw == "torch":
        class Short(impl.MLP):
            def bindings(self):
                return super().bindings()[:-1]
        monkeypatch.setitem(impl.BUILDERS, "mlp", Short)
    else:
        builder = kinds.entry(impl.BUILDERS, s, fw)
        monkeypatch.setitem(impl.BUILDERS, "mlp", dataclasses.replace(
            builder, bind=lambda *args: builder.bind(*args)[:-1]))
    with pytest.raises(ValueError, match=f"{fw}'s binding of MLPSpec does not fit the "
                                         "canonical layout: layers.2.bias is not bound"):
        adapters.get(fw).build(s, canonical.init_params(s))


def test_check_bound_names_every_mismatch():
    s, _ = spec.preset("tiny", "mlp")
    shapes = canonical.param_shapes(s)
    bound = {**{k: v for k, v in shapes.items() if k != "layers.0.bias"},
             "layers.1.kernel": (7, 8), "extra": (1,)}
    with pytest.raises(ValueError) as info:
        canonical.check_bound(s, bound, "x")
    text = str(info.value)
    assert "layers.0.bias is not bound" in text and "extra is bound but not canonical" in text
    assert "layers.1.kernel is stored as (7, 8), canonical (8, 7)" in text
    canonical.check_bound(s, shapes, "x")  # the exact layout passes
