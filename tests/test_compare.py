"""`fwbench compare` and baselines: verdicts that clear the noise, refusals that name
what differs, pytest-benchmark JSON in, and the slowdown hook used to calibrate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import adapters, cli, compare, results, workers
from bench.speed import harness, measure, speedprobe
from bench.speed.cells import Cell
from tests.test_speed_units import _record

ROOT = Path(__file__).resolve().parent.parent
ENV = {"cpu": "Test CPU 9000", "cpu_count": 2, "gpus": [], "python": "3.11.2",
       "git_commit": "abc", "variables": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
CELLS = [Cell("torch", "mlp", "tiny", "compiled", threads=2),
         Cell("jax", "mlp", "tiny", "compiled", threads=2)]


def _run(root, name, scale, env=ENV, noise=0.02, processes=2, seed=0, versions=None,
         loaded=()):
    """A fake fwbench run: per cell `processes` repeats of 200 samples around 10 ms x
    scale[cell index], each repeat with its own process-level offset; the (cell index,
    repeat) pairs in `loaded` sampled on a loaded machine (bench.speed.machineload)."""
    rng = np.random.default_rng(seed)
    run_dir = root / "runs" / name
    results.write_json(run_dir / "run.json", {
        "schema": harness.RUN_SCHEMA, "run_id": name, "tf32": False, "environment": env,
        "cells": [c.to_dict() for c in CELLS], "cell_ids": [c.id for c in CELLS],
        "repeats": processes})
    for i, cell in enumerate(CELLS):
        for repeat in range(1, processes + 1):
            level = 10.0 * scale[i] * (1 + noise * rng.standard_normal())
            samples = level * (1 + 0.03 * rng.standard_normal(200))
            record = _record(cell, samples=tuple(samples), repeat=repeat)
            record.update(run_id=name, framework={"versions": versions or {"torch": "2.13.0"}})
            record["metrics"]["loaded"] = (i, repeat) in loaded
            results.write_json(run_dir / "cells" / f"{cell.id}.r{repeat}.json", record)
    return run_dir


def test_cells_measured_on_a_loaded_machine_are_flagged(results_dir, capsys):
    _run(results_dir, "base", [1.0, 1.0])
    _run(results_dir, "busy", [1.0, 1.0], seed=1, loaded={(0, 2)})
    assert cli.main(["compare", "base", "busy"]) == 0
    out = capsys.readouterr().out
    assert "Warning: 1 of 2 cells have processes that sampled while other processes" in out
    table = compare.compare(compare.load(results_dir / "runs" / "base"),
                            compare.load(results_dir / "runs" / "busy"))
    assert dict(zip(table["framework"], table["loaded"])) == {"torch": "0/1", "jax": "0/0"}
    # the same runs as `fwbench show` prints them
    frame = results.load(results_dir / "runs" / "busy")
    assert list(frame["loaded_repeats"]) == [1, 0] and list(frame["loaded"]) == [True, False]


def test_hierarchical_bootstrap_sees_the_noise_between_processes():
    rng = np.random.default_rng(0)
    # two processes per side whose levels differ by 10%; within each, 1% noise
    base = [10 * (1 + 0.01 * rng.standard_normal(300)), 11 * (1 + 0.01 * rng.standard_normal(300))]
    same = [10.5 * (1 + 0.01 * rng.standard_normal(300)), 10.4 * (1 + 0.01 * rng.standard_normal(300))]
    ratio, low, high = compare.ratio_interval(base, same)
    assert low < 1 < high  # between-process noise is in the interval
    pooled_low, pooled_high = compare.ratio_interval([np.concatenate(base)],
                                                     [np.concatenate(same)])[1:]
    assert high - low > 1.3 * (pooled_high - pooled_low)
    # one process per side knows only the step-to-step noise: a 5% process-level
    # difference looks certain
    assert compare.ratio_interval([base[0]], [same[0]])[1] > 1.04


@pytest.mark.parametrize("ratio, low, high, p_slow, p_fast, expected", [
    (1.30, 1.2, 1.4, 1e-9, 1.0, "slower"),
    (1.08, 1.05, 1.11, 1e-9, 1.0, "no clear change"),    # under the minimum effect
    (1.30, 0.9, 1.7, 1e-9, 1.0, "no clear change"),      # interval includes 1
    (1.30, 1.2, 1.4, 0.2, 0.8, "no clear change"),       # not significant
    (0.70, 0.6, 0.8, 1.0, 1e-9, "faster"),
])
def test_verdict_needs_effect_interval_and_test(ratio, low, high, p_slow, p_fast, expected):
    assert compare.verdict(ratio, low, high, p_slow, p_fast, 0.10, 0.01) == expected


def test_compare_finds_the_slower_cell_and_exits_1(results_dir, capsys, tmp_path):
    _run(results_dir, "base", [1.0, 1.0])
    _run(results_dir, "new", [1.3, 1.0], seed=1)
    summary = tmp_path / "summary.md"
    assert cli.main(["compare", "base", "new", "--threshold", "0.1",
                     "--markdown", str(summary)]) == 1
    out = capsys.readouterr().out
    assert "2 cells: **1 slower**, 0 faster, 1 no clear change (threshold 10%" in out
    assert "Regressions: torch/mlp/compiled 1.3" in out  # e.g. 1.31x
    assert summary.read_text().startswith("### fwbench compare: new against base")
    # the same run against itself: nothing to report, exit 0
    assert cli.main(["compare", "base", "base"]) == 0
    assert "**0 slower**" in capsys.readouterr().out
    # the default threshold (calibrated on a noisy 2-core VM: 20%) flags 30% too, and
    # says that 2 processes per side are fewer than it was calibrated for
    assert cli.main(["compare", "base", "new"]) == 1
    out = capsys.readouterr().out
    assert "**1 slower**" in out
    assert compare.DEFAULT_THRESHOLD == 0.20 and compare.CALIBRATED_PROCESSES == (8, 4)
    assert ("calibrated for 8 baseline and 4 current processes per cell; 2 of 2 cells here "
            "have fewer (baseline/current: 2/2)") in out
    assert cli.main(["compare", "base", "new", "--threshold", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "(threshold 40%" in out and "calibrated for" not in out


def test_compare_refuses_other_environments_and_names_the_keys(results_dir, capsys):
    _run(results_dir, "base", [1.0, 1.0])
    _run(results_dir, "other", [1.0, 1.0], env={**ENV, "cpu": "Other CPU", "cpu_count": 16},
         versions={"torch": "2.14.0"})
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "base", "other"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "cpu: 'Test CPU 9000' != 'Other CPU'" in err and "cpu_count: 2 != 16" in err
    assert "--allow-env-diff" in err
    assert cli.main(["compare", "base", "other", "--allow-env-diff"]) == 0
    out = capsys.readouterr().out
    assert "Environments differ (compared anyway)" in out
    assert "Versions changed: torch 2.13.0 -> 2.14.0" in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "nope", "base"], "nope: not a run folder"),
    (["compare", "base", "base", "--threshold", "-1"], "threshold -1.0: must be >= 0"),
    (["compare", "base", "base", "--alpha", "2"], "alpha 2.0: must be between 0 and 1"),
    (["compare", "stored", "base"], "no stored baseline for this environment"),
])
def test_bad_compare_input_is_named(argv, message, results_dir, capsys):
    _run(results_dir, "base", [1.0, 1.0])
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_baseline_is_saved_per_environment_and_found_by_compare(results_dir, capsys):
    _run(results_dir, "base", [1.0, 1.0])
    _run(results_dir, "new", [1.0, 1.5], seed=2)
    assert cli.main(["baseline", "save", "base"]) == 0
    folder = results_dir / "baselines" / "test-cpu-9000-2c"
    assert (folder / "run.json").exists() and len(list((folder / "cells").glob("*.json"))) == 4
    assert not (folder / "logs").exists()
    assert cli.main(["baseline", "path", "new"]) == 0
    assert capsys.readouterr().out.strip().endswith("baselines/test-cpu-9000-2c")
    with pytest.raises(SystemExit):  # no silent overwrite
        cli.main(["baseline", "save", "new"])
    assert "--force" in capsys.readouterr().err
    assert cli.main(["compare", "stored", "new", "--threshold", "0.1"]) == 1
    assert "Regressions: jax/mlp/compiled 1.49x" in capsys.readouterr().out


def test_environment_keys_are_folder_names():
    assert compare.environment_key({"cpu": "AMD EPYC 7B13", "cpu_count": 2,
                                    "gpus": "none"}) == "amd-epyc-7b13-2c"
    assert compare.environment_key({
        "cpu": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", "cpu_count": 16,
        "gpus": "NVIDIA H100 80GB HBM3"}) == "intel-xeon-platinum-8480-16c-nvidia-h100-80gb-hbm3"


def _pytest_benchmark_doc(medians, data=True, cpu="Test CPU 9000"):
    rng = np.random.default_rng(0)
    out = {"machine_info": {"cpu": {"brand_raw": cpu, "count": 2}, "python_version": "3.11.2"},
           "benchmarks": []}
    for name, median in medians.items():
        values = (median * (1 + 0.02 * rng.standard_normal(60))).tolist()
        q1, q2, q3 = np.percentile(values, [25, 50, 75])
        stats = {"median": q2, "q1": q1, "q3": q3, "rounds": 60, **({"data": values} if data else {})}
        out["benchmarks"].append({"name": name, "fullname": f"bench.py::{name}", "stats": stats,
                                  "extra_info": {"framework": "torch", "model": name, "mode": "compiled"}})
    return out


def test_pytest_benchmark_json_with_and_without_raw_data(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_pytest_benchmark_doc({"mlp": 0.010, "lstm": 0.020})))
    new.write_text(json.dumps(_pytest_benchmark_doc({"mlp": 0.013, "lstm": 0.020})))
    assert cli.main(["compare", str(old), str(new), "--threshold", "0.1"]) == 1
    assert "**1 slower**" in capsys.readouterr().out
    stats_only = tmp_path / "stats.json"
    stats_only.write_text(json.dumps(_pytest_benchmark_doc({"mlp": 0.013, "lstm": 0.020},
                                                           data=False)))
    assert cli.main(["compare", str(old), str(stats_only), "--threshold", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "summary stats" in out and "--benchmark-save-data" in out
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_pytest_benchmark_doc({"mlp": 0.01}, cpu="Other CPU")))
    with pytest.raises(SystemExit):
        cli.main(["compare", str(old), str(other)])
    assert "cpu: 'Test CPU 9000' != 'Other CPU'" in capsys.readouterr().err


def test_a_run_and_a_pytest_benchmark_file_are_not_matched(results_dir, tmp_path, capsys):
    _run(results_dir, "base", [1.0, 1.0])
    doc = tmp_path / "b.json"
    doc.write_text(json.dumps(_pytest_benchmark_doc({"mlp": 0.01})))
    with pytest.raises(SystemExit):
        cli.main(["compare", "base", str(doc)])
    assert "cannot match cells of a fwbench result with a pytest-benchmark" in \
        capsys.readouterr().err


INSTALLED = [fw for fw in ("jax", "torch", "tf") if adapters.installed(fw)]


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
@pytest.mark.slow
def test_injected_slowdown_shows_in_a_real_cell(results_dir, monkeypatch):
    fw = INSTALLED[0]
    budget = measure.Budget(warmup_steps=5, warmup_s=0.0, min_samples=30, max_samples=60,
                            sample_s=0.01)
    cell = Cell(fw, "mlp", "tiny", "compiled")
    plain = harness.run_cell(harness.new_run([cell], budget, 120.0, False, "plain"),
                             harness.load_run(harness.runs_dir() / "plain"), cell)
    slow_dir = harness.new_run([cell], budget, 120.0, False, "slow")
    slow = harness.run_cell(slow_dir, harness.load_run(slow_dir), cell,
                            fault=workers.Fault("slow", fraction=1.0))  # double: clear of the noise
    assert slow["metrics"]["injected_slowdown"] == 1.0
    assert "injected_slowdown" not in plain["metrics"]
    # deterministic even on a loaded machine: every timed step holds the spin, which is
    # as long as the process's own median warm-up step
    extra_ms = slow["metrics"]["injected_ms"]
    assert extra_ms > 0 and min(slow["samples_ms"]) >= extra_ms
    # every timed step carries the machine-speed probe of its block (bench.speed.speedprobe)
    for record in (plain, slow):
        for probe in ("probe_ms", "matmul_probe_ms"):
            assert len(record[probe]) == len(record["samples_ms"]) and min(record[probe]) > 0
        assert record["metrics"]["probe_median_ms"] > 0
        assert record["metrics"]["matmul_probe_median_ms"] > 0
        assert record["metrics"]["matmul_probe_version"] == speedprobe.MATMUL_PROBE_VERSION


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
@pytest.mark.slow
def test_pytest_benchmark_suite_runs_and_feeds_compare(tmp_path, capsys):
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark not installed "
                        "(pip install 'fwbench[test]')")
    fw = INSTALLED[0]
    out = tmp_path / "bench.json"
    # a clean pytest: none of this session's variables (an xdist worker's would make
    # pytest-benchmark switch itself off)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(FWBENCH_BENCH_PRESET="tiny", FWBENCH_BENCH_ROUNDS="10")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(ROOT / "benchmarks" / "test_speed.py"), "-k", f"mlp and {fw}",
         "--benchmark-group-by=param:model", f"--benchmark-json={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    params = sorted((b["params"]["model"], b["params"]["mode"], b["params"]["framework"])
                    for b in doc["benchmarks"])
    assert params == [("mlp", "compiled", fw), ("mlp", "eager", fw)]
    assert "benchmark 'model=mlp': 2 tests" in proc.stdout  # grouped by model
    for b in doc["benchmarks"]:
        assert len(b["stats"]["data"]) == 10  # rounds; warm-up rounds excluded
        info = b["extra_info"]
        assert info["flops_per_step"] > 0 and info["batch_size"] == 5
        assert {"cpu", "cpu_count", "threads"} <= set(info["environment"])
    assert cli.main(["compare", str(out), str(out)]) == 0
    assert "2 cells: **0 slower**" in capsys.readouterr().out


def benchmark_module(name):
    """benchmarks/<name>.py, imported from its file (benchmarks/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pool_side(name, rng, scale, slow_state):
    """One calibration run of one process per cell: 120 steps of ~10 ms x scale, probed.
    With slow_state the machine ran 1.4x slower throughout, and the matmul probe saw it."""
    side = compare.Side(name, "fwbench", {}, {})
    machine = 1.4 if slow_state else 1.0
    for cell in ("a", "b"):
        probes = list(0.45 * machine * (1 + 0.01 * rng.standard_normal(120)))
        steps = list(10 * scale * machine * (1 + 0.02 * rng.standard_normal(120)))
        side.cells[cell] = compare.Cell(cell, {"framework": cell}, [steps], probes=[probes],
                                        matmul_probes=[probes], matmul_probe_version=2)
    return side


def test_calibration_draws_baselines_and_current_runs_of_their_own_sizes():
    calibrate = benchmark_module("calibrate_compare")
    rng = np.random.default_rng(0)
    # the machine's state changes from run to run; normalized steps cancel it
    runs = {"same": [_pool_side(f"same-{i}", rng, 1.0, i % 3 == 0) for i in range(7)],
            "slow": [_pool_side(f"slow-{i}", rng, 1.3, i % 2 == 0) for i in range(3)]}
    found = calibrate.evaluate(runs, per_side=2, thresholds=[0.1, 0.5], comparisons=6,
                               steps="normalized", baseline_processes=5)
    at_10, at_50 = found["rows"]
    assert at_10["false_alarm_comparison_rate"] == 0 and at_10["detection_cell_rate"] == 1
    assert at_50["detection_cell_rate"] == 0  # +30% is under a 50% minimum effect
    assert found["steps_used"] == 1  # every comparison normalized
    # measured as they are, the runs in the slow state would make false alarms
    as_measured = calibrate.evaluate(runs, per_side=2, thresholds=[0.1], comparisons=6,
                                     steps="all", baseline_processes=5)
    assert found["ratio_quantiles"]["false_alarm"]["p99"] < 1.05
    assert as_measured["ratio_quantiles"]["false_alarm"]["p99"] > 1.1
    # 5 + 2 disjoint 'same' processes are needed: with one fewer it says what it has
    with pytest.raises(SystemExit, match="need >= 8 'same' and >= 2 'slow' runs, have 7 and 3"):
        calibrate.evaluate(runs, per_side=2, thresholds=[0.1], comparisons=1,
                           steps="normalized", baseline_processes=6)


def test_calibration_refuses_an_unknown_step_choice_or_condition_before_measuring(tmp_path):
    for flag, value in (("--steps", "normalized,quick"), ("--conditions", "same,fast")):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "calibrate_compare.py"), flag, value,
             "--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "out.json")],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"{flag}: {value.split(',')[1]} not known" in proc.stderr
        assert not (tmp_path / "runs").exists()  # nothing measured


LOST_CELLS = [Cell("torch", "mlp", "tiny", "compiled", threads=2),
              Cell("jax", "mlp", "tiny", "compiled", threads=2),
              Cell("torch", "lstm", "tiny", "compiled", threads=2),
              Cell("jax", "lstm", "tiny", "compiled", threads=2)]


def _partial_run(root, name, statuses, seed=0):
    """A fake 2-repeat run of LOST_CELLS; statuses[i] gives each repeat's status of cell i
    ("ok", a failure, or None: no record at all)."""
    rng = np.random.default_rng(seed)
    run_dir = root / "runs" / name
    results.write_json(run_dir / "run.json", {
        "schema": harness.RUN_SCHEMA, "run_id": name, "tf32": False, "environment": ENV,
        "cells": [c.to_dict() for c in LOST_CELLS], "cell_ids": [c.id for c in LOST_CELLS],
        "repeats": 2})
    for cell, repeats in zip(LOST_CELLS, statuses):
        for repeat, status in enumerate(repeats, start=1):
            if status is None:
                continue
            if status == "ok":
                record = _record(cell, samples=tuple(10 * (1 + 0.03 * rng.standard_normal(200))),
                                 repeat=repeat)
            else:
                record = {**measure.skeleton(cell, name, repeat, status,
                                             f"{status} of {cell.framework} {cell.model}"),
                          "wall_s": 1.0}
            record.update(run_id=name)
            results.write_json(run_dir / "cells" / f"{cell.id}.r{repeat}.json", record)
    return run_dir


def test_compare_names_every_cell_the_current_run_lost_and_exits_1(results_dir, capsys):
    _partial_run(results_dir, "base", [["ok", "ok"]] * 4)
    # torch mlp: one repeat crashed (compared on the other); jax mlp crashed in both;
    # torch lstm timed out in both; jax lstm has no record (the run was interrupted)
    _partial_run(results_dir, "cur", [["ok", "crash"], ["crash", "crash"],
                                      ["timeout", "timeout"], [None, None]], seed=1)
    assert cli.main(["compare", "base", "cur"]) == 1
    out = capsys.readouterr().out
    assert "4 cells: **0 slower**, 0 faster, 1 no clear change, **2 failed**, **1 missing**" in out
    lost = out.split("Not measured in the current run although the baseline measured them: ")[1]
    assert "jax/mlp/compiled/5 (failed: current: crash: repeat 1 of 2: crash of jax mlp)" in lost
    assert "torch/lstm/compiled/4/6 (failed: current: timeout: repeat 1 of 2: timeout of " \
        "torch lstm)" in lost
    assert "jax/lstm/compiled/4/6 (missing: current: missing: no record" in lost
    table = compare.compare(compare.load(results_dir / "runs" / "base"),
                            compare.load(results_dir / "runs" / "cur"))
    partial = table[(table["framework"] == "torch") & (table["model"] == "mlp")].iloc[0]
    assert partial["verdict"] == "no clear change" and partial["processes"] == "2/1"
    assert partial["detail"] == \
        "current: 1 of 2 processes measured (crash: repeat 2 of 2: crash of torch mlp)"
    assert list(table["lost"]) == [False, True, True, True]
    # told to, it lists them and passes; the other way round nothing was lost
    assert cli.main(["compare", "base", "cur", "--allow-missing"]) == 0
    capsys.readouterr()
    assert cli.main(["compare", "cur", "base"]) == 0
    assert "Not measured in the current run" not in capsys.readouterr().out


def test_a_cell_missing_some_repeats_is_marked(results_dir):
    _partial_run(results_dir, "base", [["ok", "ok"]] * 4)
    _partial_run(results_dir, "cut", [["ok", None]] + [["ok", "ok"]] * 3, seed=1)
    table = compare.compare(compare.load(results_dir / "runs" / "base"),
                            compare.load(results_dir / "runs" / "cut"))
    row = table.iloc[0]
    assert row["processes"] == "2/1" and row["verdict"] == "no clear change"
    assert row["detail"] == "current: 1 of 2 processes measured (missing: 1 of 2 repeats not recorded)"


def test_baseline_save_refuses_an_incomplete_run_and_replaces_the_old_one_whole(
        results_dir, capsys, monkeypatch):
    _partial_run(results_dir, "cut", [["ok", "crash"], ["ok", "ok"], ["ok", "ok"], [None, None]])
    with pytest.raises(SystemExit) as info:
        cli.main(["baseline", "save", "cut"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "2 cell(s) failed or are missing (torch/mlp/compiled: crash; jax/lstm/compiled: " \
           "missing); a baseline without them never catches their regressions" in err
    assert not compare.baselines_dir().exists()
    assert cli.main(["baseline", "save", "cut", "--allow-incomplete"]) == 0
    folder = next(compare.baselines_dir().glob("*/run.json")).parent
    _partial_run(results_dir, "full", [["ok", "ok"]] * 4, seed=3)
    # a copy that fails half way (a full disk) leaves the old baseline as it was
    import shutil

    real_copy, calls = shutil.copy2, []

    def failing_copy(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst)

    monkeypatch.setattr(shutil, "copy2", failing_copy)
    with pytest.raises(OSError):
        compare.save_baseline(results_dir / "runs" / "full", force=True)
    monkeypatch.setattr(shutil, "copy2", real_copy)
    assert results.read_json(folder / "run.json")["run_id"] == "cut"
    assert sorted(p.name for p in compare.baselines_dir().iterdir()) == [folder.name]
    assert cli.main(["baseline", "save", "full", "--force"]) == 0
    assert results.read_json(folder / "run.json")["run_id"] == "full"
    assert len(list((folder / "cells").glob("*.json"))) == 8
    assert sorted(p.name for p in compare.baselines_dir().iterdir()) == [folder.name]
