"""The model-kind table (bench/models): every kind is complete and consistent, so that
what reads the table (canonical init, the reference, FLOPs, cells, parity, the graph
study, the report, the CLI) can take any kind without a special case."""

import dataclasses

import numpy as np
import pytest

from bench import canonical, flops, models, reference, spec


@pytest.mark.parametrize("name", models.NAMES)
def test_each_kind_is_complete_and_consistent(name):
    kind = models.get(name)
    assert kind.name == name == kind.spec.kind and dataclasses.is_dataclass(kind.spec)
    assert set(kind.presets) == set(spec.PRESETS)
    assert kind.scaling_axis in ("batch_size", "seq_len")
    assert kind.sequence == (kind.scaling_axis == "seq_len")
    for preset_name, (model_spec, batch) in kind.presets.items():
        assert isinstance(model_spec, kind.spec) and batch >= 1, preset_name
        assert models.of(model_spec) is kind
    tiny = kind.presets["tiny"][0]
    variants = kind.parity_variants(tiny)
    assert len({label for label, _ in variants}) == len(variants)  # case names are unique
    for _, variant in variants:
        assert isinstance(variant, kind.spec) and variant != tiny
    # the inert parameters exist, and the reference forward runs on the tiny preset with
    # the output shape the spec says
    assert set(kind.inert_params(tiny)) <= set(canonical.param_shapes(tiny))
    x = np.random.default_rng(0).standard_normal((2, *tiny.input_shape))
    out = reference.forward(tiny, canonical.init_params(tiny), x)
    assert out.shape == (2, tiny.out_features) and np.isfinite(out).all()
    assert flops.train_step_flops(tiny, 2) > 0


def test_unknown_kinds_and_non_specs_are_refused():
    with pytest.raises(spec.SpecError, match="model='gru' is not valid: allowed one of mlp"):
        models.get("gru")
    with pytest.raises(TypeError, match="not a model spec"):
        models.of("mlp")

    @dataclasses.dataclass(frozen=True)
    class Impostor:  # claims a kind's name without being its spec class
        kind = "mlp"

    with pytest.raises(TypeError, match="not a model spec"):
        models.of(Impostor())


def test_spec_reexports_every_kind_by_name():
    for kind in models.KINDS.values():
        assert getattr(spec, kind.spec.__name__) is kind.spec
    with pytest.raises(AttributeError, match="GRUSpec"):
        spec.GRUSpec  # noqa: B018


def test_a_framework_without_a_builder_for_a_kind_says_which_table():
    tiny = models.get("rnn").presets["tiny"][0]
    assert models.entry({"rnn": "builder"}, tiny, "impls/x/models.py BUILDERS") == "builder"
    with pytest.raises(NotImplementedError, match="impls/x/models.py BUILDERS has no builder "
                                                  "for model kind 'rnn'"):
        models.entry({"mlp": "builder"}, tiny, "impls/x/models.py BUILDERS")
