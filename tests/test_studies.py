"""Studies (issue 7): Genz functions, forecasting windows, the sweep grid, the study
runner in every framework, its failure handling, and the report's study sections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import adapters, cli, frameworks, workers
from bench.studies import fit, forecast, genz, runner, sweep
from tests.conftest import FRAMEWORKS

# --- Genz ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", genz.FAMILIES)
@pytest.mark.parametrize("d", [2, 5, 10])
def test_genz_coefficients_are_normalised_as_the_study_asks(family, d):
    c, w = genz.coefficients(family, d, seed=3)
    b = {"oscillatory": 1.5, "product_peak": d, "corner_peak": 1.85, "gaussian": 7.03,
         "continuous": 20.4, "discontinuous": 4.3}[family]
    assert c.shape == w.shape == (d,)
    assert c.sum() == pytest.approx(b) and w.sum() == pytest.approx(1.0)
    assert (c > 0).all() and (w > 0).all()


def test_genz_functions_at_points_with_known_values():
    d = 3
    c, w = np.array([0.5, 1.0, 2.0]), np.array([0.2, 0.3, 0.5])
    zero, at_w = np.zeros((1, d)), w[None, :]
    assert genz.evaluate("oscillatory", zero, c, w)[0] == pytest.approx(np.cos(2 * np.pi * 0.2))
    assert genz.evaluate("product_peak", at_w, c, w)[0] == pytest.approx(np.prod(c ** 2))
    assert genz.evaluate("corner_peak", zero, c, w)[0] == pytest.approx(1.0)
    assert genz.evaluate("corner_peak", np.ones((1, d)), c, w)[0] == pytest.approx(4.5 ** -4)
    assert genz.evaluate("gaussian", at_w, c, w)[0] == pytest.approx(1.0)
    assert genz.evaluate("continuous", at_w, c, w)[0] == pytest.approx(1.0)
    x = np.array([[0.1, 0.2, 0.9], [0.3, 0.2, 0.0], [0.1, 0.4, 0.0]])
    expected = [np.exp(x[0] @ c), 0.0, 0.0]  # inside; x1 > w1; x2 > w2
    np.testing.assert_allclose(genz.evaluate("discontinuous", x, c, w), expected)


def test_genz_data_are_the_same_for_the_same_seed_and_nested_in_n():
    a, b = genz.dataset("gaussian", 5, 100, seed=1), genz.dataset("gaussian", 5, 100, seed=1)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    small = genz.dataset("gaussian", 5, 10, seed=1)
    np.testing.assert_array_equal(small["x_train"], a["x_train"][:10])
    np.testing.assert_array_equal(small["x_test"], a["x_test"])
    other = genz.dataset("gaussian", 5, 100, seed=2)
    assert not np.array_equal(other["x_train"], a["x_train"])
    assert a["x_test"].shape == (genz.TEST_POINTS, 5)
    assert (a["x_train"] >= 0).all() and (a["x_train"] < 1).all()


@pytest.mark.parametrize("change, message", [
    ({"families": ["wavy"]}, "family='wavy'"), ({"dims": [0]}, "d=0"),
    ({"sizes": [10, 501]}, "n=501"), ({"steps": 0}, "steps=0")])
def test_a_malformed_genz_configuration_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        genz.items({**genz.QUICK, **change})


def test_genz_checks_count_the_expected_qualitative_results():
    rows = []
    for fw in ("torch", "jax"):
        for d, scale in ((2, 1.0), (10, 3.0)):
            for n, error in ((10, 0.5), (500, 0.05)):
                rows.append({"framework": fw, "family": "gaussian", "d": d, "n": n,
                             "mean_abs_error": error * scale, "test_std": 1.0})
    rows[-1]["mean_abs_error"] = 10.0  # jax, 10 d: error rises with n
    checks = genz.summary  # the summary renders without error too
    assert "torch" in checks(pd.DataFrame(rows).assign(status="ok", max_abs_error=1.0))
    from bench.report.studies import genz_checks

    result = genz_checks(pd.DataFrame(rows))
    assert result["falls_with_n"] == (3, 4, ["gaussian d=10 (jax)"])
    assert result["harder_in_high_d"] == (4, 4, [])


# --- forecasting -----------------------------------------------------------------------


def test_forecast_windows_keep_the_test_period_out_of_training():
    y = np.cumsum(np.random.default_rng(0).standard_normal(200)) + 300
    data = forecast.windows(y, window=12, horizons=[1, 6], test_fraction=0.25)
    origins, split = data["origins"], data["split"]
    assert split == 150
    assert (origins[data["train"]] + 6 < split).all()  # no training target in the test months
    assert (origins[data["test"]] >= split).all()
    assert not (data["train"] & data["test"]).any()
    assert data["x"].shape == (len(origins), 12, 1)
    # Scaling uses the training part only: changing the test months changes nothing of it.
    changed = y.copy()
    changed[split:] += 50 * np.arange(len(y) - split)
    other = forecast.windows(changed, window=12, horizons=[1, 6], test_fraction=0.25)
    np.testing.assert_array_equal(other["x"][data["train"]], data["x"][data["train"]])
    np.testing.assert_array_equal(other["target_mean"], data["target_mean"])
    np.testing.assert_array_equal(other["target_std"], data["target_std"])
    # The training targets are standardised: mean 0 and sd 1 per horizon.
    np.testing.assert_allclose(data["target"][data["train"]].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data["target"][data["train"]].std(axis=0), 1)


def test_forecast_data_set_is_the_packaged_monthly_co2_series():
    pytest.importorskip("statsmodels", reason="statsmodels not installed (pip install 'fwbench[studies]')")
    y, months = forecast.series()
    assert len(y) == len(months) == 526
    assert (months[0], months[-1]) == ("1958-03", "2001-12")
    assert np.isfinite(y).all() and 310 < y[0] < 320 and 365 < y[-1] < 375


def test_forecast_agreement_compares_the_gap_between_means_with_the_seed_spread():
    table = pd.DataFrame([
        {"framework": "tf", "horizon": 1, "rmse_mean": 0.30, "rmse_sd": 0.02},
        {"framework": "torch", "horizon": 1, "rmse_mean": 0.31, "rmse_sd": 0.02},
        {"framework": "tf", "horizon": 12, "rmse_mean": 0.70, "rmse_sd": 0.01},
        {"framework": "torch", "horizon": 12, "rmse_mean": 0.80, "rmse_sd": 0.01}])
    agree = forecast.agreement(table).set_index("horizon")
    assert bool(agree.loc[1, "agree"]) and not bool(agree.loc[12, "agree"])
    assert agree.loc[12, "largest_gap"] == pytest.approx(0.10)


def test_the_classical_forecasts_see_only_the_past_of_each_origin(monkeypatch):
    """SARIMA and exponential smoothing are fitted on the training months and, from each
    test origin t, forecast with y up to t only: changing the months after an origin
    leaves its forecasts (and every earlier origin's) as they were."""
    pytest.importorskip("statsmodels", reason="statsmodels not installed (pip install 'fwbench[studies]')")
    config = forecast.QUICK
    horizons = tuple(config["horizons"])
    y, months = forecast.series()
    data = forecast.windows(y, config["window"], list(horizons), config["test_fraction"])
    origins = data["origins"][data["test"]]
    forecast.classical_forecasts.cache_clear()
    try:
        first = forecast.classical_forecasts(config["window"], horizons, config["test_fraction"])
        cut = int(origins[40])
        changed = y.copy()
        changed[cut + 1:] += 50.0  # a jump the past could not have told
        monkeypatch.setattr(forecast, "series", lambda: (changed, months))
        forecast.classical_forecasts.cache_clear()
        second = forecast.classical_forecasts(config["window"], horizons, config["test_fraction"])
    finally:
        forecast.classical_forecasts.cache_clear()
    for name in forecast.CLASSICAL:
        assert first[name].shape == (len(origins), len(horizons))
        np.testing.assert_array_equal(first[name][:41], second[name][:41])
        assert not np.allclose(first[name][41:], second[name][41:])
        # and they are worth comparing with: far better than the naive forecast at 1 month
        rmse = np.sqrt(np.mean((first[name][:, 0] - y[origins + horizons[0]]) ** 2))
        naive = np.sqrt(np.mean((y[origins] - y[origins + horizons[0]]) ** 2))
        assert rmse < naive / 2, name


def test_the_classical_verdict_says_who_is_better_and_against_the_seed_spread():
    table = pd.DataFrame([
        {"framework": "tf", "horizon": 1, "rmse_mean": 0.33, "rmse_sd": 0.01,
         "sarima_rmse": 0.29, "ets_rmse": 0.32},
        {"framework": "tf", "horizon": 12, "rmse_mean": 0.80, "rmse_sd": 0.05,
         "sarima_rmse": 0.81, "ets_rmse": 0.88},
        {"framework": "tf", "horizon": 24, "rmse_mean": 0.70, "rmse_sd": 0.05,
         "sarima_rmse": 0.90, "ets_rmse": float("nan")}])
    verdicts = forecast.classical_verdicts(table).set_index("horizon")
    assert verdicts.loc[1, "better"] == "sarima" and bool(verdicts.loc[1, "beyond_seed_spread"])
    assert verdicts.loc[12, "better"] == "lstm" and not bool(verdicts.loc[12, "beyond_seed_spread"])
    assert verdicts.loc[24, "classical"] == "sarima"  # a missing model is left out
    lines = forecast.verdict_lines(table)
    assert lines[0] == ("1 month(s) ahead: SARIMA(1,1,1)(0,1,1)12 is better by 14% (0.040 ppm): "
                        "the LSTM 0.330 ppm (tf), SARIMA(1,1,1)(0,1,1)12 0.290 ppm; the "
                        "difference is larger than the LSTM's seed-to-seed sd (0.01 ppm).")
    assert lines[1].startswith("12 month(s) ahead: the LSTM is better by 1% (0.010 ppm)")
    assert "is within the LSTM's seed-to-seed sd" in lines[1]


# --- sweep -----------------------------------------------------------------------------


def test_sweep_grid_has_every_point_once_per_seed():
    items = sweep.items(sweep.FULL)
    ids = [sweep.item_id(i) for i in items]
    assert len(ids) == len(set(ids)) == (4 * 6 + 9 - 1) * 3
    base = [i for i in items if sweep.item_id(i).startswith("2x64-relu-adam")]
    assert len(base) == 3  # the point both grids share, once per seed
    with pytest.raises(ValueError, match="activation 'softsign'"):
        sweep.items({**sweep.FULL, "activations": ["softsign"]})


def test_sweep_split_is_fixed_and_stratified():
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'fwbench[studies]')")
    a, b = sweep.digits(), sweep.digits()
    np.testing.assert_array_equal(a["y_test"], b["y_test"])
    assert len(a["y_train"]) + len(a["y_test"]) == 1797
    counts = np.bincount(a["y_test"], minlength=10) / np.bincount(
        np.concatenate([a["y_train"], a["y_test"]]), minlength=10)
    assert np.allclose(counts, sweep.TEST_FRACTION, atol=0.01)
    np.testing.assert_allclose(a["x_train"].mean(axis=0), 0, atol=1e-12)


# --- the training loop -----------------------------------------------------------------


def test_batch_order_is_seeded_and_drops_the_incomplete_batch():
    a, b = fit.batch_order(10, 3, epochs=2, seed=5), fit.batch_order(10, 3, epochs=2, seed=5)
    assert len(a) == 6 and all(len(rows) == 3 for rows in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len(set(np.concatenate(a[:3]))) == 9  # one epoch: distinct rows
    full = fit.batch_order(10, 64, epochs=4, seed=0)
    assert len(full) == 4 and all(rows is full[0] for rows in full)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_diverging_fit_stops_with_the_step_it_diverged_at(fw):
    from bench.canonical import init_params
    from bench.spec import MLPSpec, OptimizerSpec

    adapter = adapters.get(fw)
    spec = MLPSpec(in_features=2, hidden=(4,), out_features=1, activation="relu")
    x = np.random.default_rng(0).standard_normal((8, 2)) * 1e3
    with pytest.raises(fit.Diverged, match="at step"):
        fit.fit(adapter, spec, init_params(spec, seed=0), x, x[:, :1] * 1e3,
                OptimizerSpec("sgd", 1e6), "mse", fit.batch_order(8, 8, 50, 0),
                mode=runner.STUDY_MODES[fw])


# --- the runner ------------------------------------------------------------------------

TINY_GENZ = {"families": ["gaussian"], "dims": [2], "sizes": [10, 50], "steps": 30}


@pytest.fixture(scope="module")
def tiny_genz(tmp_path_factory):
    """One tiny Genz study in every installed framework (one process each)."""
    from bench import results

    root = tmp_path_factory.mktemp("studies")
    old, results.RESULTS_DIR = results.RESULTS_DIR, root
    try:
        folder = runner.new_study("genz", list(adapters.FRAMEWORKS), overrides=TINY_GENZ,
                                  threads=1, tensorboard=str(root / "tb"))
        runner.execute(folder)
    finally:
        results.RESULTS_DIR = old
    return folder


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_a_study_trains_every_item_in_every_framework(fw, tiny_genz):
    frame = runner.load(tiny_genz)
    mine = frame[frame["framework"] == fw]
    assert list(mine["status"]) == ["ok", "ok"], mine["error"].tolist()
    assert list(mine["n"]) == [10, 50]
    assert (mine["mode"] == runner.STUDY_MODES[fw]).all()
    assert np.isfinite(mine[["mean_abs_error", "max_abs_error", "train_s"]].to_numpy()).all()
    assert (mine["max_abs_error"] >= mine["mean_abs_error"]).all()


@pytest.mark.slow
def test_the_frameworks_learn_the_same_function_from_the_same_data(tiny_genz):
    """Same data, initial weights and full-batch Adam: after 30 float32 steps every
    framework's test error agrees to a few parts in 10^4 (a trajectory-level check)."""
    frame = runner.load(tiny_genz)
    ok = frame[frame["status"] == "ok"]
    if ok["framework"].nunique() < 2:
        pytest.skip("needs two installed frameworks")
    spread = ok.groupby("n")["mean_abs_error"].agg(lambda v: v.max() / v.min() - 1)
    assert (spread < 1e-3).all(), spread


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_a_study_writes_tensorboard_curves_for_every_framework(fw, tiny_genz):
    from bench import tensorboard

    tb = tiny_genz.parent.parent / "tb" / tiny_genz.name  # <results>/studies/<id> -> <results>/tb
    files = sorted(tb.glob(f"gaussian-d2-n10-s0/{fw}/events.out.tfevents.*"))
    assert len(files) == 1
    scalars = list(tensorboard.read_scalars(files[0]))
    losses = [v for _, tag, v in scalars if tag == "loss"]
    assert len(losses) == TINY_GENZ["steps"] and losses[-1] < losses[0]
    assert len([v for _, tag, v in scalars if tag == "step_ms"]) == TINY_GENZ["steps"]


@pytest.mark.slow
def test_a_failing_item_loses_nothing_else(results_dir):
    fw = next((f for f in ("torch", "jax", "tf") if adapters.installed(f)), None)
    if fw is None:
        pytest.skip("no framework installed")
    config = {**TINY_GENZ, "sizes": [10, 20, 30], "steps": 5}
    # n20 raises inside the worker: recorded, and the same process goes on.
    folder = runner.new_study("genz", [fw], overrides=config, threads=1)
    calls = []
    runner.execute(folder, lambda *call: calls.append(call), workers.Fault("raise", "n20"))
    assert calls[0] == (fw, 0, 3, None)
    assert calls[-1][:3] == (fw, 3, 3) and len(calls[-1][3]) == 3
    done = [c[1] for c in calls]
    assert done == sorted(done)  # progress only grows
    first = runner.load(folder).set_index("n")
    assert list(first["status"]) == ["ok", "crash", "ok"]
    assert "injected fault" in first.loc[20, "error"]
    assert len(list((folder / "logs").glob(f"{fw}.*.log"))) == 1
    # n20's process exits without a record, like a segfault: n20 is recorded as failed
    # and a fresh process trains n30.
    folder2 = runner.new_study("genz", [fw], overrides=config, threads=1, study_id="second")
    runner.execute(folder2, fault=workers.Fault("exit", "n20"))
    second = runner.load(folder2).set_index("n")
    assert list(second["status"]) == ["ok", "crash", "ok"]
    assert "exited with status 3" in second.loc[20, "error"]
    assert len(list((folder2 / "logs").glob(f"{fw}.*.log"))) == 2
    # An injected NaN is a divergence, recorded as such.
    folder3 = runner.new_study("genz", [fw], overrides={**config, "sizes": [10]}, threads=1,
                               study_id="third")
    runner.execute(folder3, fault=workers.Fault("nan", "n10"))
    third = runner.load(folder3).iloc[0]
    assert third["status"] == "nan" and "injected NaN" in third["error"]
    # Nothing left to do: a resume runs no process.
    assert runner.execute(folder2) == {fw: []}


@pytest.mark.slow
def test_a_broken_framework_fails_every_item_from_one_process(results_dir, tmp_path,
                                                              monkeypatch):
    """Installed but failing to import: every item is a crash with the real error (not
    skipped), and no second process is started for the same failure."""
    fw = next((f for f in ("torch", "jax", "tf") if adapters.installed(f)), None)
    if fw is None:
        pytest.skip("no framework installed")
    shadow = tmp_path / "shadow" / frameworks.get(fw).requires[-1]
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('this wheel is broken (a test)')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    folder = runner.new_study("genz", [fw], overrides={**TINY_GENZ, "sizes": [10, 20]},
                              threads=1)
    runner.execute(folder)
    frame = runner.load(folder)
    assert list(frame["status"]) == ["crash", "crash"]
    assert all("this wheel is broken (a test)" in e and "is installed, but importing" in e
               for e in frame["error"])
    assert len(list((folder / "logs").glob(f"{fw}.*.log"))) == 1


def test_a_framework_that_is_not_installed_is_recorded_as_skipped(results_dir, monkeypatch):
    monkeypatch.setattr(adapters, "installed", lambda name: False)
    folder = runner.new_study("genz", ["tf"], overrides={**TINY_GENZ, "sizes": [10]}, threads=1)
    runner.execute(folder)
    row = runner.load(folder).iloc[0]
    assert row["status"] == "skipped" and "pip install 'fwbench[tf]'" in row["error"]


@pytest.mark.parametrize("argv, message", [
    (["study", "genz", "--frameworks", "mxnet"], "--frameworks: 'mxnet' not known"),
    (["study", "genz", "--seeds", "a"], "--seeds: 'a' is not a whole number >= 0"),
    (["study", "genz", "--mode", "xla", "--frameworks", "torch"], "--mode 'xla' is not offered"),
    (["study", "genz", "--threads", "999"], "--threads 999"),
    (["study", "wavelets"], "invalid choice: 'wavelets'"),
    (["study", "genz", "--id", "../up"], "study name '../up' is not allowed"),
    (["study", "genz", "--resume", "x", "--quick", "--threads", "1"],
     "--resume takes the study's settings from its folder; --quick, --threads given"),
])
def test_bad_study_flags_fail_before_anything_runs(argv, message, results_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (results_dir / "studies").exists()


# --- report ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_shows_every_study(results_dir):
    fw = next((f for f in ("torch", "jax", "tf") if adapters.installed(f)), None)
    if fw is None:
        pytest.skip("no framework installed")
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'fwbench[studies]')")
    pytest.importorskip("statsmodels", reason="statsmodels not installed (pip install 'fwbench[studies]')")
    from bench import report
    from bench.report import studies as study_sections

    folders = [
        runner.new_study("genz", [fw], overrides={**TINY_GENZ, "steps": 50}, threads=1),
        runner.new_study("forecast", [fw], overrides={"epochs": 2, "seeds": [0, 1]}, threads=1),
        runner.new_study("sweep", [fw], threads=1, overrides={
            "activations": ["relu", "tanh"], "optimizers": ["sgd", "adam"], "depths": [1, 2],
            "widths": [8], "epochs": 1, "seeds": [0]}),
    ]
    for folder in folders:
        runner.execute(folder)
    out = results_dir / "report"
    (out / "figures").mkdir(parents=True)
    rep = report.Report("studies")
    study_sections.add_sections(rep, folders, out)
    text = report.to_markdown(rep)
    for heading in ("Genz function approximation", "LSTM forecasting of CO2",
                    "Architecture and optimizer sweep"):
        assert f"### {heading}" in text
    for figure in ("genz_mean_abs_error", "genz_max_abs_error", "forecast",
                   "sweep_activation_optimizer", "sweep_depth_width"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 5000, figure
    assert "Error falls from the smallest to the largest n in" in text
    assert "Beats the naive last-value forecast" in text
    assert "Against the classical models, SARIMA(1,1,1)(0,1,1)12 and exponential" in text
    assert "1 month(s) ahead: " in text
    assert f"Best optimizer and activation per framework: {fw}" in text
    tables = {block[1]: block[2] for block in rep.blocks if block[0] == "table"}
    assert {"sarima_rmse", "ets_rmse"} <= set(tables["forecast_rmse"].columns)
    assert tables["forecast_rmse"]["sarima_rmse"].notna().all()
    assert sorted(set(tables["sweep_depth_width"]["layers"])) == [1, 2]
    assert tables["sweep_depth_width"]["layers"].dtype.kind == "i"  # 1, 2, not 1.0, 2.0
    assert tables["genz_errors"]["n"].dtype.kind == "i"
    record = runner.read_records(folders[1], fw)[0]
    assert len(record["outputs"]["forecast"]) == record["metrics"]["test_origins"]
    # No studies: each kind is named with the command that makes it.
    empty = report.Report("none")
    study_sections.add_sections(empty, [], out)
    assert "run `fwbench study forecast`" in report.to_markdown(empty)


# --- TensorBoard ------------------------------------------------------------------------


def test_event_files_are_what_tensorflow_reads(tmp_path):
    from bench import tensorboard

    assert tensorboard.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    path = tensorboard.write_curves(tmp_path / "run", {"loss": [1.0, 0.5, float("nan"), 0.25],
                                                       "step_ms": [3.0, 2.0]}, {"step_ms": 1})
    ours = list(tensorboard.read_scalars(path))
    assert ours == [(0, "loss", 1.0), (1, "loss", 0.5), (3, "loss", 0.25),
                    (1, "step_ms", 3.0), (2, "step_ms", 2.0)]  # NaN is left out
    if not adapters.installed("tf"):
        pytest.skip("TensorFlow not installed: its reader cannot be checked (ours was)")
    import tensorflow as tf

    theirs = [(e.step, v.tag, v.simple_value) for e in tf.compat.v1.train.summary_iterator(str(path))
              for v in e.summary.value]
    versions = [e.file_version for e in tf.compat.v1.train.summary_iterator(str(path))]
    assert theirs == ours and versions[0] == "brain.Event:2"
    damaged = bytearray(path.read_bytes())
    damaged[-3] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="bad CRC"):
        list(tensorboard.read_scalars(path))


# --- fwbench run --tensorboard ----------------------------------------------------------


@pytest.mark.slow
def test_run_writes_tensorboard_curves_of_every_cell_process(results_dir, tmp_path):
    fw = next((f for f in ("torch", "jax", "tf") if adapters.installed(f)), None)
    if fw is None:
        pytest.skip("no framework installed")
    from bench import tensorboard

    tb = tmp_path / "tb"
    code = cli.main(["run", "--preset", "tiny", "--frameworks", fw, "--models", "mlp",
                     "--modes", "eager", "--repeats", "1", "--no-scaling", "--no-graphs",
                     "--no-parity", "--no-report", "--sample-seconds", "0.1",
                     "--warmup-seconds", "0.05", "--tensorboard", str(tb), "--name", "tbrun"])
    assert code == 0
    record = json.loads(next((results_dir / "runs" / "tbrun" / "cells").glob("*.json")).read_text())
    files = list((tb / "tbrun").glob("*/events.out.tfevents.*"))
    assert len(files) == 1 and files[0].parent.name == f"{record['cell_id']}.r1"
    scalars = list(tensorboard.read_scalars(files[0]))
    timed = [(s, v) for s, tag, v in scalars if tag == "step_ms/timed"]
    warm = [(s, v) for s, tag, v in scalars if tag == "step_ms/warmup"]
    losses = [v for _, tag, v in scalars if tag == "loss"]
    np.testing.assert_allclose([v for _, v in timed], record["samples_ms"], rtol=1e-6)
    assert len(losses) == 1 + len(warm) + len(timed) == 1 + record["metrics"]["warmup_steps"] \
        + record["metrics"]["samples"]
    assert timed[0][0] == len(warm) + 1  # one step axis: warm-up, then the timed steps


def test_framework_gap_is_measured_item_by_item():
    from bench.report.studies import framework_gap

    ok = pd.DataFrame({"study_id": "s", "item_id": ["a", "a", "a", "b", "b", "c"],
                       "framework": ["tf", "torch", "jax", "tf", "torch", "tf"],
                       "value": [1.0, 1.5, 2.0, 4.0, 4.0, 9.0]})
    gap = framework_gap(ok, "value")
    assert gap.to_dict() == {("s", "a"): 1.0, ("s", "b"): 0.0}  # c: one framework only
    assert framework_gap(ok, "value", relative=True)[("s", "a")] == pytest.approx(1.0)


def test_study_resume_refuses_another_environment_unless_told(results_dir, capsys):
    from bench import results

    folder = runner.new_study("genz", ["torch"], quick=True, threads=1, study_id="moved")
    study = results.read_json(folder / "study.json")
    study["environment"]["git_commit"] = "0" * 40
    results.write_json(folder / "study.json", study)
    with pytest.raises(SystemExit) as exc:
        cli.main(["study", "genz", "--resume", "moved"])
    assert exc.value.code == 2
    assert f"this is not the environment the study was started in (git_commit: '{'0' * 40}'" \
        in capsys.readouterr().err
    assert not (folder / "records").exists()
