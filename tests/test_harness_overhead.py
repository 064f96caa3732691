"""benchmarks/harness_overhead.py, the check that the harness does not move what it
measures: it runs, it fails when a row lies over the bar, and it refuses bad flags.
The overhead figures themselves come from running it on a quiet machine (README), not
from the test suite: nothing here asserts a duration."""

import json

import pytest

from bench import adapters
from tests.test_compare import benchmark_module

INSTALLED = [fw for fw in ("torch", "jax", "tf") if adapters.installed(fw)]


@pytest.fixture(scope="module")
def overhead():
    return benchmark_module("harness_overhead")


@pytest.mark.parametrize("argv, message", [
    (["--frameworks", "mxnet"], "--frameworks: 'mxnet' not known"),
    (["--modes", "graph"], "--modes: 'graph' not known"),
    (["--rounds", "1"], "--rounds 1: an interval needs at least 2"),
    (["--threads", "999"], "--threads 999: only"),
    (["--devices", "999"], "--devices 999: this machine has"),
])
def test_bad_flags_are_refused_in_one_line(overhead, argv, message, capsys):
    assert overhead.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_verdicts_and_the_exit_rule(overhead):
    assert overhead.verdict(0.97, 1.04) == "within bar"
    assert overhead.verdict(1.06, 1.20) == "over bar"
    assert overhead.verdict(1.00, 1.10).startswith("inconclusive")
    ratio, low, high = overhead.ratio_ci([1.0, 1.2, 0.9, 1.1])
    assert low < ratio < high and ratio == pytest.approx((1.0 * 1.2 * 0.9 * 1.1) ** 0.25)


def test_the_hand_loops_follow_the_default_runs_budget(overhead):
    budget = overhead.default_run_budget()
    assert (budget.sample_s, budget.min_samples, budget.warmup_s) == (1.5, 10, 0.5)


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
@pytest.mark.slow
def test_one_row_is_measured_end_to_end(overhead, tmp_path, capsys):
    out = tmp_path / "overhead.json"
    code = overhead.main(["--frameworks", INSTALLED[0], "--models", "mlp", "--modes", "eager",
                          "--preset", "tiny", "--rounds", "2", "--threads", "1",
                          "--output", str(out)])
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert (row["framework"], row["model"], row["mode"]) == (INSTALLED[0], "mlp", "eager")
    # 2 rounds, or 4 when the first 2 lay wholly over the bar (the rule tested above; a
    # loaded CI runner can put a tiny cell there)
    assert row["rounds_added"] in (0, 2) and len(row["round_ratios"]) == 2 + row["rounds_added"]
    assert row["harness_ms"] > 0 and row["hand_loop_ms"] > 0
    assert row["ci95"][0] <= row["ratio"] <= row["ci95"][1] and row["iqr_ratio"] > 0
    assert doc["failed"] == [] and doc["bar"] == 1.05
    # exit 1 only when a row (or all rows together) lies wholly over the bar
    assert code == (1 if row["verdict"] == "over bar" or doc["overall"][1] > 1.05 else 0)
    assert "all rows together" in capsys.readouterr().out


def test_a_row_over_the_bar_is_judged_again_on_twice_the_rounds(overhead, monkeypatch):
    """No process runs: _pair is replaced by made-up medians. Rounds 1-4 say the harness
    is 10% slower; rounds 5-8 say it is not; a round on a loaded machine is redone."""
    from bench.speed.cells import Cell

    calls = []

    def pair(cell, results_dir, name, hand_first):
        calls.append(name)
        r, attempt = (int(v) for v in name.rsplit("-", 2)[1:])
        loaded = r == 1 and attempt == 0
        slow = 1.10 + 0.01 * (r % 2) if r < 4 else 1.0 + 0.01 * (r % 2)
        side = {"iqr_ms": 0.1, "loaded": loaded, "other_cpu_share": 0.5 if loaded else 0.0,
                "pipelined_ms": None}
        return {**side, "median_ms": slow}, {**side, "loaded": False, "median_ms": 1.0}

    monkeypatch.setattr(overhead, "_pair", pair)
    row = overhead.measure_row(Cell("torch", "mlp", "tiny", "eager"), 4, None)
    assert row["first_rounds"]["ci95"][0] > 1.05  # over the bar after 4 rounds ...
    assert row["rounds_added"] == 4 and len(row["round_ratios"]) == 8
    assert row["verdict"] != "over bar"  # ... but not on all 8
    assert row["loaded_rounds_retried"] == 1 and row["loaded_rounds_kept"] == 0
    assert len(calls) == 9  # 8 rounds and the loaded one again
    # a row within the bar gets no more rounds
    monkeypatch.setattr(overhead, "_pair", lambda cell, d, name, hand_first: (
        {"iqr_ms": 0.1, "loaded": False, "median_ms": 1.0 + 0.01 * len(name), "pipelined_ms": None},
        {"iqr_ms": 0.1, "loaded": False, "median_ms": 1.0 + 0.01 * len(name), "pipelined_ms": None}))
    steady = overhead.measure_row(Cell("torch", "mlp", "tiny", "eager"), 4, None)
    assert steady["rounds_added"] == 0 and len(steady["round_ratios"]) == 4
    assert steady["verdict"] == "within bar" and steady["first_rounds"] is None


@pytest.mark.slow
@pytest.mark.parametrize("framework", INSTALLED)
def test_a_data_parallel_row_is_measured_end_to_end(overhead, framework, tmp_path):
    """--devices 2: both sides are groups, the hand loop impls/<name>/distributed.py's."""
    from bench.distributed import available_devices

    if available_devices("cpu") < 2:
        pytest.skip("2 replicas need 2 cores")
    out = tmp_path / "overhead.json"
    overhead.main(["--devices", "2", "--frameworks", framework, "--models", "mlp",
                   "--rounds", "2", "--threads", "2", "--output", str(out)])
    doc = json.loads(out.read_text())
    assert doc["failed"] == [] and doc["replicas"] == 2
    (row,) = doc["rows"]
    assert (row["framework"], row["mode"], row["replicas"]) == (framework, "compiled", 2)
    assert row["harness_ms"] > 0 and row["hand_loop_ms"] > 0
    # each hand loop takes the timed steps of the harness's last process (kept or, on a
    # loaded machine, measured again): at least the budget's 10
    assert all(m["samples"] >= 10 for m in row["hand_loop"] + row["harness"])
