"""The scaling sweep of the main job: which points it measures, how they are stored and
loaded, and the curves and exponents built from them. No framework is imported."""

import numpy as np
import pandas as pd
import pytest

from bench import results
from bench.speed import cells, harness, measure, scaling, show
from bench.speed.cells import Cell
from tests.test_speed_units import _record

QUICK = measure.Budget(warmup_steps=1, warmup_s=0.0, min_samples=5, max_samples=20,
                       sample_s=0.01)


def test_scaling_points_vary_one_axis_per_model_around_the_preset_default():
    sweep = cells.scaling_cells(["torch", "jax"], ["mlp", "lstm", "attention"], "small")
    by_curve = {}
    for axis, cell in sweep:
        assert cell.mode == "compiled" and cell.preset == "small"
        by_curve.setdefault((cell.framework, cell.model, axis), []).append(cell)
    assert set(by_curve) == {(fw, m, a) for fw in ("torch", "jax")
                             for m, a in (("mlp", "batch_size"), ("lstm", "seq_len"),
                                          ("attention", "seq_len"))}
    # small: MLP batch 128, LSTM length 32, attention length 64; factors 1/4, 2, 4
    assert [c.batch_size for c in by_curve["torch", "mlp", "batch_size"]] == [32, 256, 512]
    assert [c.seq_len for c in by_curve["jax", "lstm", "seq_len"]] == [8, 64, 128]
    assert [c.seq_len for c in by_curve["jax", "attention", "seq_len"]] == [16, 128, 256]
    assert all(c.batch_size is None for c in by_curve["jax", "lstm", "seq_len"])
    # a factor that rounds back to the default is not a new point
    assert cells.scaling_cells(["jax"], ["mlp"], "small", factors=(1.001, 2.0))[0][1].batch_size == 256


def test_the_sweep_runs_after_the_repeats_and_loads_as_its_own_rows(results_dir):
    matrix = cells.expand(["torch"], ["mlp"], ["compiled"], "tiny")
    sweep = cells.scaling_cells(["torch"], ["mlp"], "tiny")
    # a sweep point that is already a matrix cell is measured once, as the matrix cell
    doubled = [("batch_size", Cell("torch", "mlp", "tiny", "compiled", batch_size=5))]
    run_dir = harness.new_run(matrix, QUICK, 60.0, False, "s", repeats=2, sweep=sweep + doubled)
    run = harness.load_run(run_dir)
    assert len(run["sweep"]) == 3 and harness.process_count(run) == 5  # tiny MLP batch: 5
    todo = harness.pending(run_dir, run)
    assert [(c.batch_size, r) for c, r in todo] == [(None, 1), (None, 2), (1, 1), (10, 1),
                                                    (20, 1)]

    for cell, repeat in todo:  # records as the cells would write them: step time ~ batch
        batch = cell.specs()[1].batch_size
        record = _record(cell, samples=(batch, batch * 1.1, batch * 0.9), repeat=repeat)
        record["run_id"] = "s"
        results.write_json(harness.cell_path(run_dir, cell, repeat), record)
    assert harness.pending(run_dir, run) == []
    frame = results.load(run_dir)
    assert list(frame["sweep_axis"].fillna("-")) == ["-"] + ["batch_size"] * 3
    matrix_rows, sweep_rows = scaling.split(frame)
    assert len(matrix_rows) == 1 and list(sweep_rows["batch_size"]) == [1, 10, 20]

    curve = scaling.points(frame)
    assert list(curve["value"]) == [1, 5, 10, 20]  # the matrix cell is the default point
    assert list(curve["median_ms"]) == [1.0, 5.0, 10.0, 20.0]
    fit = scaling.exponents(curve)
    assert fit.loc[0, "exponent k"] == pytest.approx(1.0)
    assert fit.loc[0, "time ratio"] == pytest.approx(20.0)
    rows = show.scaling_rows(curve)
    assert rows == [{"framework": "torch", "model": "mlp", "axis": "batch_size",
                     "sizes": "1,5,10,20", "median ms": "1  5  10  20", "status": "ok"}]


def test_a_failed_point_is_kept_and_named_but_left_out_of_the_fit():
    frame = pd.DataFrame([
        {"run_id": "r", "framework": "jax", "model": "lstm", "mode": "compiled",
         "preset": "small", "batch_size": 32, "seq_len": t, "sweep_axis": axis,
         "median_ms": ms, "q1_ms": ms, "q3_ms": ms, "throughput": 1.0, "status": status,
         "error": error}
        for t, axis, ms, status, error in [
            (32, None, 4.0, "ok", None), (8, "seq_len", 1.0, "ok", None),
            (64, "seq_len", 8.0, "ok", None),
            (128, "seq_len", float("nan"), "oom", "out of memory: 9 GiB")]])
    curve = scaling.points(frame)
    assert list(curve["value"]) == [8, 32, 64, 128]
    assert list(curve["status"]) == ["ok", "ok", "ok", "oom"]
    assert scaling.exponents(curve).loc[0, "exponent k"] == pytest.approx(1.0)
    assert show.scaling_rows(curve)[0]["status"] == "oom at 128: out of memory: 9 GiB"


def test_exponents_tell_launch_bound_from_work_bound():
    frame = pd.DataFrame({"run_id": "r", "framework": ["a"] * 3 + ["b"] * 3, "model": "mlp",
                          "axis": "batch_size", "value": [32, 128, 512] * 2,
                          "median_ms": [2.0, 2.0, 2.0, 1.0, 4.0, 16.0], "status": "ok"})
    fit = scaling.exponents(frame)
    assert np.allclose(fit["exponent k"], [0.0, 1.0], atol=1e-12)
