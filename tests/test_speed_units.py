"""The speed harness's framework-free parts: FLOP counts, statistics, the matrix, the
result loader and the table. No framework is imported and no cell is run here."""

import json

import numpy as np
import pytest

from bench import adapters, canonical, flops, models, results, spec, workers
from bench.speed import cells, harness, measure, records, show, stats
from bench.speed.cells import Cell, MatrixError
from bench.threads import device_env
from tests.conftest import FRAMEWORKS


def test_mlp_flops_by_hand():
    s = spec.MLPSpec(in_features=3, hidden=(4,), out_features=2)
    # batch 5: (5x3)@(3x4) and (5x4)@(4x2), 2 FLOPs per multiply-add
    assert flops.forward_flops(s, 5) == 2 * (5 * 3 * 4 + 5 * 4 * 2)
    assert flops.train_step_flops(s, 5) == 3 * flops.forward_flops(s, 5)


class _CountingArray(np.ndarray):
    """An array that adds the FLOPs of every matrix product it takes part in to COUNT."""

    COUNT = [0]

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, _CountingArray) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, _CountingArray) else x
                                  for x in kwargs["out"])
        out = getattr(ufunc, method)(*plain, **kwargs)
        if ufunc is np.matmul:  # (..., n, k) @ (..., k, m): a multiply-add per k per output
            _CountingArray.COUNT[0] += 2 * np.size(out) * np.shape(plain[0])[-1]
        return out.view(_CountingArray) if isinstance(out, np.ndarray) else out


def _counted_forward_flops(model_spec, batch_size, seq_len=None):
    """The matrix-product FLOPs the float64 reference actually performs: an independent
    count of what bench.flops derives on paper."""
    kind = models.of(model_spec)
    rng = np.random.default_rng(0)
    shape = model_spec.input_shape if seq_len is None else (seq_len, model_spec.in_features)
    x = rng.standard_normal((batch_size, *shape)).view(_CountingArray)
    params = {k: v.view(_CountingArray) for k, v in canonical.init_params(model_spec).items()}
    _CountingArray.COUNT[0] = 0
    kind.forward(model_spec, params, x)
    return _CountingArray.COUNT[0]


@pytest.mark.parametrize("model", spec.MODELS)
@pytest.mark.parametrize("preset_name", ["tiny", "small"])
def test_flops_equal_a_count_of_the_reference_matmuls(model, preset_name):
    model_spec, train = spec.preset(preset_name, model)
    b = train.batch_size
    counted = _counted_forward_flops(model_spec, b)
    assert counted > 0 and flops.forward_flops(model_spec, b) == counted
    if models.get(model).sequence:  # at another length than the spec's
        longer = 2 * model_spec.seq_len
        assert flops.forward_flops(model_spec, 3, seq_len=longer) == \
            _counted_forward_flops(model_spec, 3, seq_len=longer)


def test_the_matmul_count_sees_every_product():
    # the counter itself, on products whose FLOPs are known: (2x3)@(3x4), batched (5,2,3)@(3,4)
    a = np.ones((2, 3)).view(_CountingArray)
    _CountingArray.COUNT[0] = 0
    _ = a @ np.ones((3, 4))
    _ = np.ones((5, 2, 3)) @ np.ones((3, 4)).view(_CountingArray)
    assert _CountingArray.COUNT[0] == 2 * 2 * 3 * 4 + 2 * 5 * 2 * 3 * 4


def test_the_memory_figures_see_an_allocation():
    # 256 MiB written page by page: the current and the peak resident size both rise by it
    before, peak_before = measure._rss_mib(), measure.peak_rss_mib()
    block = np.ones(256 * 2**20 // 8)
    after, peak_after = measure._rss_mib(), measure.peak_rss_mib()
    assert after - before >= 0.9 * 256 and peak_after >= max(peak_before, after) - 1
    del block


def test_flops_reject_non_specs():
    with pytest.raises(TypeError, match="not a model spec"):
        flops.forward_flops("mlp", 1)


def test_summarize_known_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["n"] == 5 and s["median"] == 3.0 and s["min"] == 1.0
    assert (s["q1"], s["q3"], s["iqr"]) == (2.0, 4.0, 2.0)
    assert s["mean"] == 22.0  # the outlier moves the mean, not the median
    assert stats.relative_iqr([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no samples"):
        stats.summarize([])


def test_default_matrix_is_every_framework_model_and_mode():
    matrix = cells.expand(adapters.FRAMEWORKS, spec.MODELS, None, "small", threads=2)
    per_fw = {fw: len(adapters.MODES[fw]) * len(spec.MODELS) for fw in adapters.FRAMEWORKS}
    # tf: eager, compiled, xla; torch and jax: eager, compiled; every model kind in each
    assert len(matrix) == sum(per_fw.values()) == (3 + 2 + 2) * len(spec.MODELS)
    assert {c.model for c in matrix} == set(spec.MODELS) >= {"mlp", "lstm", "attention", "rnn"}
    assert len({c.id for c in matrix}) == len(matrix)
    assert all(c.threads == 2 and c.device == "cpu" for c in matrix)


def test_a_mode_runs_only_where_offered():
    matrix = cells.expand(adapters.FRAMEWORKS, ["mlp"], ["xla"], "tiny")
    assert [(c.framework, c.mode) for c in matrix] == [("tf", "xla")]
    with pytest.raises(MatrixError, match="offered by none of torch, jax"):
        cells.expand(["torch", "jax"], ["mlp"], ["xla"], "tiny")


def test_sweeps_expand_and_the_mlp_ignores_sequence_lengths():
    matrix = cells.expand(["torch"], ["mlp", "lstm"], ["eager"], "tiny",
                          batch_sizes=[2, 8], seq_lens=[4, 16])
    assert len(matrix) == 2 + 4
    lstm = [c for c in matrix if c.model == "lstm"]
    assert {(c.specs()[1].batch_size, c.specs()[0].seq_len) for c in lstm} == \
        {(2, 4), (2, 16), (8, 4), (8, 16)}
    assert "-b8-t16-" in lstm[-1].id


@pytest.mark.parametrize("kwargs, message", [
    ({"frameworks": ["mxnet"]}, r"frameworks \['mxnet'\] not known; allowed: tf, torch, jax"),
    ({"models": ["cnn"]}, "models .'cnn'. not known"),
    ({"preset_name": "huge"}, "preset 'huge' not known"),
    ({"device": "tpu"}, "device 'tpu' not known; allowed: cpu, gpu"),
    ({"dtype": "float16"}, "dtype 'float16' not known"),
    ({"threads": 0}, "threads=0 must be a whole number >= 1"),
])
def test_bad_matrix_values_are_named(kwargs, message):
    args = {"frameworks": ["torch"], "models": ["mlp"], "modes": None, "preset_name": "tiny"}
    with pytest.raises(MatrixError, match=message):
        cells.expand(**{**args, **kwargs})


def test_flag_parsers_name_the_bad_value():
    assert cells.parse_list("torch, jax,torch", adapters.FRAMEWORKS, "--frameworks") == \
        ("torch", "jax")
    with pytest.raises(MatrixError, match="--frameworks: 'pytorch' not known"):
        cells.parse_list("torch,pytorch", adapters.FRAMEWORKS, "--frameworks")
    with pytest.raises(MatrixError, match="--models: nothing given"):
        cells.parse_list(" , ", spec.MODELS, "--models")
    assert cells.parse_ints("8,16,8", "--batch-sizes") == (8, 16)
    for bad in ("0", "-3", "2.5", "x"):
        with pytest.raises(MatrixError, match="whole number >= 1"):
            cells.parse_ints(bad, "--batch-sizes")


def test_cell_round_trips_and_rejects_unknown_fields():
    cell = Cell("jax", "lstm", "tiny", "compiled", batch_size=3, seq_len=9, threads=2)
    assert Cell.from_dict(json.loads(json.dumps(cell.to_dict()))) == cell
    assert cell.id == "jax-lstm-tiny-compiled-cpu-float32-b3-t9-th2"
    with pytest.raises(MatrixError, match=r"no field\(s\) \['colour'\]"):
        Cell.from_dict({**cell.to_dict(), "colour": "red"})


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_modes_known_without_import_match_the_adapter(fw):
    assert adapters.get(fw).modes == adapters.MODES[fw]


def test_affinity_refuses_more_threads_than_cpus():
    with pytest.raises(workers.WorkerError, match="--threads 100000: only"):
        workers.affinity(100000)
    assert len(workers.affinity(1)) == 1


def test_cpu_cells_hide_gpus_and_gpu_cells_do_not_preallocate():
    assert device_env("cpu")["CUDA_VISIBLE_DEVICES"] == ""
    gpu = device_env("gpu")
    assert gpu["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert gpu["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    env = harness.cell_env(Cell("tf", "mlp", "tiny", "eager", threads=2))
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "2"


@pytest.mark.parametrize("exc, status", [
    (adapters.FrameworkNotInstalled("no torch"), "skipped"),
    (adapters.DeviceUnavailable("no gpu"), "unavailable"),
    (measure.Diverged("loss nan"), "nan"),
    (MemoryError(), "oom"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "oom"),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating"), "oom"),
    (ValueError("shapes do not match"), "crash"),
])
def test_failures_are_classified(exc, status):
    assert measure.status_of(exc) == status


@pytest.mark.parametrize("steps, seconds, warm", [
    (5, 0.6, True), (4, 0.6, False), (5, 0.4, False),   # the usual rule: 5 steps and 0.5 s
    (2, 2.5, True), (1, 4.0, False),                     # slow steps: 2 are enough after 2 s
])
def test_warm_up_rule(steps, seconds, warm):
    assert measure.warm_enough(steps, seconds, measure.Budget()) is warm


@pytest.mark.parametrize("samples, seconds, enough", [
    (10, 1.6, True), (9, 1.6, False), (10, 1.4, False),  # the usual rule: 10 steps and 1.5 s
    (3, 10.5, True), (2, 12.0, False), (9, 9.9, False),  # slow steps: 3 are enough after 10 s
])
def test_sampling_rule(samples, seconds, enough):
    budget = measure.Budget(sample_s=1.5)
    assert measure.sampled_enough(samples, seconds, budget) is enough


def test_sampling_rule_never_asks_fewer_than_min_samples_allows():
    # --min-samples 2 on a slow cell: 2 samples suffice, the slow floor (3) does not raise it
    budget = measure.Budget(sample_s=1.5, min_samples=2)
    assert measure.sampled_enough(2, 1.6, budget)
    assert not measure.sampled_enough(1, 30.0, budget)


def _fake_run(tmp_path, records, cells_in_order):
    run_dir = tmp_path / "runs" / "r1"
    results.write_json(run_dir / "run.json", {
        "schema": harness.RUN_SCHEMA, "run_id": "r1", "tf32": False,
        "environment": {"cpu": "test cpu", "git_commit": "abc", "python": "3.11"},
        "cells": [c.to_dict() for c in cells_in_order],
        "cell_ids": [c.id for c in cells_in_order]})
    for rec in records:
        results.write_json(run_dir / "cells" / f"{rec['cell_id']}.r{rec['repeat']}.json", rec)
    return run_dir


def _record(cell, status="ok", samples=(1.0, 2.0, 3.0), repeat=1):
    model_spec, train_spec = cell.specs()
    metrics = {}
    if status == "ok":
        summary = stats.summarize(samples)
        metrics = {f"{k}_ms" if k != "n" else "samples": v for k, v in summary.items()}
        metrics.update(throughput=train_spec.batch_size / metrics["median_ms"] * 1e3,
                       flops_per_s=1e9, first_step_s=0.5, compile_s=None, peak_rss_mib=300.0,
                       peak_device_mib=None)
        metrics.update(flops_per_step=1e6, rss_after_import_mib=100.0)
    return {"schema": measure.SCHEMA, "run_id": "r1", "cell_id": cell.id, "repeat": repeat,
            "cell": cell.to_dict(),
            "status": status, "error": None if status == "ok" else "RuntimeError: boom\ntrace",
            "spec": spec.to_dict(model_spec), "train": spec.to_dict(train_spec),
            "metrics": metrics, "framework": {"versions": {"torch": "9.9"}},
            "samples_ms": list(samples) if status == "ok" else [], "tf32": False}


def test_load_gives_one_row_per_cell_in_matrix_order(tmp_path):
    matrix = cells.expand(["torch"], ["mlp", "lstm"], None, "tiny")
    eager_mlp, compiled_mlp, eager_lstm, compiled_lstm = matrix
    records = [_record(eager_mlp, samples=(4.0, 4.0)), _record(compiled_mlp, samples=(2.0, 2.0)),
               _record(eager_lstm), _record(compiled_lstm, status="crash")]
    run_dir = _fake_run(tmp_path, records[::-1], matrix)  # written in reverse: order is the run's
    frame = results.load(tmp_path)
    assert list(frame["cell_id"]) == [c.id for c in matrix]
    assert list(frame["status"]) == ["ok", "ok", "ok", "crash"]
    assert frame.loc[2, "samples_ms"] == [1.0, 2.0, 3.0]
    assert frame.loc[0, "batch_size"] == 5 and np.isnan(frame.loc[0, "seq_len"])
    assert frame.loc[2, "seq_len"] == 6
    assert frame.loc[0, "versions"] == "torch 9.9" and frame.loc[0, "cpu"] == "test cpu"
    assert np.isnan(frame.loc[3, "median_ms"])
    assert len(results.load([run_dir, run_dir])) == 8  # several runs stack
    assert list(frame["repeats"]) == [1, 1, 1, 1]

    rows = show.speed_rows(frame)
    assert [r["vs eager"] for r in rows[:3]] == ["1.00x", "2.00x", "1.00x"]
    assert rows[3]["status"] == "crash: RuntimeError: boom"
    assert "preset tiny" in show.describe_cells(frame)


def test_repeats_pool_their_samples_and_report_their_spread():
    cell = Cell("jax", "mlp", "tiny", "compiled")
    one = _record(cell, samples=(1.0, 1.0, 1.0, 1.0), repeat=1)
    two = _record(cell, samples=(1.2, 1.2, 1.2, 1.2), repeat=2)
    two["metrics"]["peak_rss_mib"] = 500.0
    merged = records.combine([two, one])
    m = merged["metrics"]
    assert merged["status"] == "ok" and merged["repeats"] == 2
    assert merged["samples_ms"] == [1.0] * 4 + [1.2] * 4 and m["samples"] == 8
    assert m["median_ms"] == pytest.approx(1.1)
    assert m["repeat_medians_ms"] == [1.0, 1.2]
    assert m["repeat_spread"] == pytest.approx(0.2 / 1.1)
    assert m["peak_rss_mib"] == 500.0 and m["first_step_s"] == 0.5
    assert m["throughput"] == pytest.approx(5 / 1.1e-3)
    assert m["flops_per_s"] == pytest.approx(1e6 / 1.1e-3)
    # a failed repeat shows, and the other's measurement is kept
    crashed = _record(cell, status="crash", repeat=2)
    merged = records.combine([one, crashed])
    assert merged["status"] == "crash"
    assert merged["error"].startswith("repeat 2 of 2: RuntimeError: boom")
    assert merged["metrics"]["median_ms"] == 1.0 and merged["repeats_ok"] == 1
    with pytest.raises(ValueError, match="no records"):
        records.combine([])


def test_load_of_nothing_is_an_empty_frame_and_a_wrong_path_an_error(tmp_path):
    assert results.load(tmp_path).empty
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        results.load(tmp_path / "missing")


def test_skipped_framework_is_recorded_without_a_process(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(adapters, "installed", lambda fw: False)
    cell = Cell("jax", "mlp", "tiny", "eager")
    run_dir = harness.new_run([cell], measure.Budget(), 10.0, False, name="skip", repeats=2)
    first, second = harness.execute(run_dir)
    assert first["status"] == second["status"] == "skipped"
    assert (first["repeat"], second["repeat"]) == (1, 2)
    assert "pip install 'fwbench[jax]'" in first["error"]
    assert harness.pending(run_dir, harness.load_run(run_dir)) == []


def test_runs_are_not_overwritten_and_empty_matrices_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    cell = Cell("torch", "mlp", "tiny", "eager")
    harness.new_run([cell], measure.Budget(), 10.0, False, name="same")
    with pytest.raises(MatrixError, match="exists already"):
        harness.new_run([cell], measure.Budget(), 10.0, False, name="same")
    with pytest.raises(MatrixError, match="empty"):
        harness.new_run([], measure.Budget(), 10.0, False)
    with pytest.raises(MatrixError, match="repeats=0 must be"):
        harness.new_run([cell], measure.Budget(), 10.0, False, name="zero", repeats=0)
    with pytest.raises(MatrixError, match="not a run folder"):
        harness.load_run(tmp_path)
