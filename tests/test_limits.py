"""The machine's limits (bench/speed/limits.py), the bytes a step must move
(bench/flops.py) and the roofline section of the report (bench/report/limits.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench import adapters, flops
from bench.models.mlp import MLPSpec
from bench.report import limits as report_limits
from bench.spec import MODELS, preset
from bench.speed import limits

INSTALLED = [fw for fw in adapters.FRAMEWORKS if adapters.installed(fw)]


def test_the_best_call_is_kept_after_a_warm_up_and_enough_calls():
    import time

    sleeps = iter([0.05, 0.02, 0.001, 0.02, 0.02, 0.02])  # the first is the untimed warm-up
    calls = []

    def call():
        calls.append(1)
        time.sleep(next(sleeps))

    best = limits.best_seconds(call, min_calls=5, min_seconds=0.0)
    assert len(calls) == 6 and 0.001 <= best < 0.02


def test_the_runs_peak_and_bandwidth_are_the_best_frameworks():
    rows = [{"framework": "tf", "gemm_flops_per_s": 5e10, "stream_bytes_per_s": 9e9},
            {"framework": "jax", "gemm_flops_per_s": 7e10, "stream_bytes_per_s": 6e9},
            {"framework": "torch", "error": "crashed"}]
    s = limits.summary(rows)
    assert (s["peak_flops_per_s"], s["peak_by"]) == (7e10, "jax")
    assert (s["bandwidth_bytes_per_s"], s["bandwidth_by"]) == (9e9, "tf")
    assert limits.ridge_point(s) == pytest.approx(7e10 / 9e9)
    assert limits.summary([rows[2]])["peak_flops_per_s"] is None


def test_a_step_moves_the_batch_parameters_activations_gradients_and_optimizer_state():
    spec = MLPSpec(in_features=3, hidden=(4,), out_features=2)
    params = 3 * 4 + 4 + 4 * 2 + 2  # 26
    saved = 5 * ((3 + 4) + (4 + 2))  # each layer's input and output, batch 5
    batch = 5 * 3
    assert flops.train_step_bytes(spec, 5, "sgd") == 4 * (batch + 2 * saved + 5 * params)
    assert flops.train_step_bytes(spec, 5, "adam") == 4 * (batch + 2 * saved + 9 * params)
    assert flops.train_step_bytes(spec, 5, "adam", "float64") == 2 * flops.train_step_bytes(
        spec, 5, "adam")


@pytest.mark.parametrize("model", MODELS)
def test_activations_grow_with_the_batch_and_the_sequence(model):
    spec, train = preset("small", model)
    one = flops.train_step_bytes(spec, train.batch_size, train.optimizer.name)
    two = flops.train_step_bytes(spec, 2 * train.batch_size, train.optimizer.name)
    assert one < two < 2 * one  # the parameters' share does not grow with the batch
    if hasattr(spec, "seq_len"):
        longer = flops.train_step_bytes(spec, train.batch_size, train.optimizer.name,
                                        seq_len=2 * spec.seq_len)
        assert longer > one


def _frame(**overrides):
    spec, train = preset("small", "mlp")
    row = {"run_id": "r", "status": "ok", "framework": "torch", "model": "mlp",
           "preset": "small", "mode": "eager", "device": "cpu", "dtype": "float32",
           "batch_size": train.batch_size, "seq_len": float("nan"),
           "flops_per_step": flops.train_step_flops(spec, train.batch_size), "flops_per_s": 2e10}
    return pd.DataFrame([{**row, **overrides}])


def test_each_cell_gets_its_share_of_the_peak_its_intensity_and_its_roof():
    doc = {"peak_flops_per_s": 1e11, "bandwidth_bytes_per_s": 1e9}
    row = report_limits.cell_rows(_frame(), doc).iloc[0]
    spec, train = preset("small", "mlp")
    intensity = flops.train_step_flops(spec, train.batch_size) / flops.train_step_bytes(
        spec, train.batch_size, train.optimizer.name)
    assert row["share of peak"] == pytest.approx(0.2)
    assert row["FLOP per byte"] == pytest.approx(intensity)
    assert row["bound by"] == "memory"  # 16 FLOP/byte, under the ridge at 100
    assert row["share of roof"] == pytest.approx(2e10 / (1e9 * intensity))
    high_bandwidth = report_limits.cell_rows(_frame(), {**doc, "bandwidth_bytes_per_s": 1e12})
    assert high_bandwidth.iloc[0]["bound by"] == "compute"
    assert high_bandwidth.iloc[0]["share of roof"] == pytest.approx(0.2)


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
@pytest.mark.slow
def test_a_run_measures_its_limits_records_them_and_the_report_shows_the_roofline(
        results_dir, capsys):
    from bench import cli

    argv = ["run", "--frameworks", ",".join(INSTALLED), "--models", "mlp", "--modes", "eager",
            "--repeats", "1", "--sample-seconds", "0.3", "--name", "lim", "--no-scaling",
            "--no-graphs", "--no-parity"]
    assert cli.main(argv) == 0
    run = results_dir / "runs" / "lim"
    doc = json.loads((run / "limits.json").read_text())
    assert json.loads((run / "run.json").read_text())["limits"] is True
    assert [r["framework"] for r in doc["frameworks"]] == INSTALLED
    assert all(r["gemm_flops_per_s"] > 1e8 and r["stream_bytes_per_s"] > 1e8
               for r in doc["frameworks"]), doc
    assert {r["gemm_n"] for r in doc["frameworks"]} == {limits.GEMM_N["cpu"]}
    # plausible: no cell trained faster than the best matrix product the machine did
    cells = [json.loads(p.read_text()) for p in (run / "cells").glob("*.json")]
    best = max(c["metrics"]["flops_per_s"] for c in cells)
    assert doc["peak_flops_per_s"] > best
    assert doc["peak_flops_per_s"] == max(r["gemm_flops_per_s"] for r in doc["frameworks"])
    text = (results_dir / "report" / "report.md").read_text()
    assert "The machine's limits and the roofline" in text and "figures/roofline.svg" in text
    assert (results_dir / "report" / "figures" / "roofline.png").exists()
    assert "Against the machine's measured peak" in text  # a finding at the top
