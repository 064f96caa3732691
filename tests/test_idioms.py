"""The idiom audit (bench/speed/idioms.py, impls/<framework>/idioms.py, benchmarks/idioms.py)."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.adapters import Trainer
from bench.spec import MODELS, preset
from bench.speed import idioms
from tests.conftest import FRAMEWORKS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import idioms as idioms_script  # noqa: E402  (benchmarks/idioms.py)


class SleepyTrainer(Trainer):
    """A pure-Python trainer: each step sleeps `step_s` and moves one parameter by `drift`."""

    mode = "compiled"

    def __init__(self, step_s: float, drift: float = 0.0):
        self.step_s, self.drift, self.weight = step_s, drift, np.ones(3)

    def put(self, x, target):
        return x

    def step(self, batch):
        time.sleep(self.step_s)
        self.weight = self.weight - 0.1 + self.drift
        return float(self.weight.sum())

    def value(self, loss):
        return loss


def _variant(name: str, step_s: float, drift: float = 0.0, chosen: bool = False) -> idioms.Variant:
    def make(adapter, spec, params, dtype):
        trainer = SleepyTrainer(step_s, drift)
        return idioms.Candidate(trainer, lambda: {"w": trainer.weight.copy()})
    return idioms.Variant("mlp", name, f"sleeps {step_s} s", make, chosen)


@pytest.fixture
def quick_timing(monkeypatch):
    monkeypatch.setattr(idioms, "WARMUP_S", 0.01)
    monkeypatch.setattr(idioms, "ROUND_S", 0.01)


def test_a_faster_variant_that_breaks_parity_is_timed_but_never_the_fastest_passing(quick_timing):
    spec, train = preset("tiny", "mlp")
    variants = [_variant("mine", 0.004, chosen=True), _variant("quick", 0.001),
                _variant("wrong", 0.0005, drift=1e-3), _variant("slow", 0.008)]
    audit = idioms.audit_kind(None, variants, spec, train.batch_size, rounds=3, dtypes=("float32",))
    rows = audit["variants"]
    assert rows["mine"]["ratio_to_chosen"] == 1.0 and rows["mine"]["chosen"]
    assert rows["wrong"]["median_ms"] < rows["quick"]["median_ms"] < rows["mine"]["median_ms"]
    assert not rows["wrong"]["parity_passed"] and rows["wrong"]["parity"]["float32"]["error"] > 1e-4
    assert rows["quick"]["parity_passed"] and rows["quick"]["ratio_to_chosen"] < 0.7
    assert rows["slow"]["ratio_to_chosen"] > 1.4
    assert audit["fastest_passing"] == "quick"
    assert all(len(r["round_ms"]) == 3 for r in rows.values())


def test_a_kind_needs_exactly_one_chosen_idiom(quick_timing):
    spec, train = preset("tiny", "mlp")
    with pytest.raises(ValueError, match="2 variants are marked chosen"):
        idioms.audit_kind(None, [_variant("a", 0.0, chosen=True), _variant("b", 0.0, chosen=True)],
                          spec, train.batch_size, rounds=2, dtypes=("float32",))


def test_parity_leaves_inert_parameters_out():
    chosen = {"losses": [1.0, 0.5], "params": {"w": np.ones(2), "k.bias": np.zeros(2)}}
    other = {"losses": [1.0, 0.5], "params": {"w": np.ones(2), "k.bias": np.full(2, 1e-3)}}
    assert not idioms.parity(chosen, other, "float64")["passed"]
    assert idioms.parity(chosen, other, "float64", inert=("k.bias",))["error"] == 0.0


def test_the_table_puts_the_chosen_idiom_first_and_marks_the_fastest_passing():
    row = {"idiom": "x", "median_ms": 2.0, "ratio_to_chosen": 1.0, "chosen": True,
           "parity": {"float64": {"passed": True, "error": 0.0}, "float32": {"passed": True, "error": 0.0}}}
    other = {**row, "idiom": "y", "median_ms": 1.0, "ratio_to_chosen": 0.5, "chosen": False,
             "parity": {"float64": {"passed": False, "error": 5e-8},
                        "float32": {"passed": True, "error": 2e-7}}}
    doc = {"runs": [{"framework": "jax", "audits": [{"kind": "attention", "seq_len": 256,
                                                       "fastest_passing": "mine",
                                                       "variants": {"fast": other, "mine": row}}]}]}
    lines = idioms_script.table(doc).splitlines()
    assert lines[2].startswith("| jax | attention | 256 | mine: x **(fastest passing)** | 2 | 1 (chosen)")
    assert lines[3].endswith("| 1 | 0.50 | FAIL 5e-08 / ok 2e-07 |")


@pytest.mark.parametrize("args", [["--models", "bogus"], ["--seq-lens", "x"], ["--rounds", "1"],
                                  ["--seq-lens", "0"]])
def test_bad_arguments_get_one_line_and_status_2(args, capsys):
    assert idioms_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("idioms: ")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_kind_has_one_chosen_idiom_and_alternatives(framework):
    variants = importlib.import_module(f"impls.{framework}.idioms").VARIANTS
    for kind in MODELS:
        of_kind = [v for v in variants if v.kind == kind]
        assert sum(v.chosen for v in of_kind) == 1, kind
        assert len(of_kind) >= 2, kind
        assert len({v.name for v in of_kind}) == len(of_kind), kind


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_idiom_trains_the_same_model_as_the_adapter(framework, quick_timing):
    """On the tiny specs, every variant's float32 trajectory matches the adapter's; in
    float64 all do but jax.nn.dot_product_attention, whose softmax is float32 (the reason
    the adapter does not use it)."""
    from bench import adapters

    adapter = adapters.get(framework)
    adapter.configure("cpu", 1, False)
    variants = importlib.import_module(f"impls.{framework}.idioms").VARIANTS
    for kind in MODELS:
        spec, train = preset("tiny", kind)
        audit = idioms.audit_kind(adapter, [v for v in variants if v.kind == kind], spec,
                                  train.batch_size, rounds=2)
        for name, row in audit["variants"].items():
            assert row["parity"]["float32"]["passed"], (kind, name, row["parity"])
            f64 = row["parity"]["float64"]
            if (framework, name) == ("jax", "jax.nn xla"):
                assert not f64["passed"] and f64["error"] > 1e-8, f64
            else:
                assert f64["passed"], (kind, name, f64)
