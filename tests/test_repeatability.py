"""benchmarks/repeatability.py's estimate from a pool of repeats: what two runs of a given
number of processes per cell would agree to, and how many processes the bar would need."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.speed.cells import Cell
from tests.test_compare import benchmark_module
from tests.test_speed_units import _fake_run, _record

ROOT = Path(__file__).resolve().parent.parent


def _repeatability_module():
    return benchmark_module("repeatability")


def _pool(rng, cells=12, processes=40, process_sd=0.1):
    """Per cell, `processes` processes of 50 steps of ~10 ms, each process slower or faster
    as a whole by a log-normal factor of sd `process_sd` (the between-process noise)."""
    return {f"cell{c}": [list(10.0 * np.exp(rng.normal(0, process_sd)) * (1 + 0.01 * rng.random(50)))
                         for _ in range(processes)] for c in range(cells)}


def test_a_noise_free_pool_repeats_exactly_and_needs_one_process():
    rep = _repeatability_module()
    pool = {f"cell{c}": [[5.0 + c, 6.0 + c, 7.0 + c]] * 6 for c in range(3)}
    found = rep.pool_estimate(pool, 2)
    assert (found["groups"], found["pairs"], found["comparisons"]) == (3, 3, 9)
    assert found["within_bar"] == 9 and found["pairs_all_within"] == 3
    assert found["log_ratio_sd"] == 0.0 and found["worst_ratio"] == 1.0
    assert rep.processes_needed(0.0, 2, 3) == 1


def test_the_ratio_spread_follows_the_between_process_noise():
    rep = _repeatability_module()
    pool = _pool(np.random.default_rng(0))
    one, four = rep.pool_estimate(pool, 1), rep.pool_estimate(pool, 4)
    # two independent process medians of log sd 0.1 differ by sd 0.1 * sqrt(2)
    assert one["log_ratio_sd"] == pytest.approx(0.1 * np.sqrt(2), rel=0.1)
    # four processes pooled per run: half the spread
    assert four["log_ratio_sd"] == pytest.approx(0.1 * np.sqrt(2) / 2, rel=0.2)
    assert one["within_bar"] < one["comparisons"]


def test_processes_needed_for_every_cell_within_ten_percent():
    rep = _repeatability_module()
    # 12 cells, 80% for all: each cell within log(1.1) with p = 0.8 ** (1/12), z = 2.357,
    # so a log-ratio sd of 0.0404 at most; 0.1414 at one process needs (0.1414/0.0404)^2
    assert rep.processes_needed(0.1414, 1, 12) == 13
    assert rep.processes_needed(0.1414 / 2, 4, 12) == 13  # the same noise, measured at 4
    assert rep.processes_needed(0.02, 2, 12) == 1


def test_a_pool_too_small_for_two_groups_is_refused():
    rep = _repeatability_module()
    with pytest.raises(ValueError, match="need at least 8 processes per cell; the pool has 6"):
        rep.pool_estimate({"a": [[1.0]] * 6}, 4)


def test_a_window_keeps_the_first_seconds_of_steps():
    rep = _repeatability_module()
    assert rep.first_seconds([1.0, 2.0, 3.0, 4.0], 0.006) == [1.0, 2.0, 3.0]
    assert rep.first_seconds([5.0, 1.0], 0.001) == [5.0]  # at least one step
    assert rep.first_seconds([5.0, 1.0], None) == [5.0, 1.0]


def test_from_pool_reads_a_run_and_leaves_eager_cells_out(tmp_path, capsys):
    rep = _repeatability_module()
    rng = np.random.default_rng(1)
    compiled = Cell("torch", "mlp", "tiny", "compiled", threads=1)
    eager = Cell("torch", "mlp", "tiny", "eager", threads=1)
    records = [_record(cell, samples=tuple(10.0 * np.exp(rng.normal(0, 0.05)) + rng.random(20)),
                       repeat=k)
               for cell in (compiled, eager) for k in range(1, 5)]
    run_dir = _fake_run(tmp_path, records, [compiled, eager])
    found = rep.from_pool(run_dir, [1, 2, 4], None)
    assert found["cells"] == 1
    assert [r["group_size"] for r in found["rows"]] == [1, 2]  # 4 processes make no 2 groups of 4
    assert found["rows"][0]["comparisons"] == 6
    assert "groups of 4 processes need at least 8" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--group-sizes", "1,x"], "--group-sizes '1,x': expected whole numbers"),
    (["--group-sizes", "0"], "--group-sizes '0': every size must be >= 1"),
    (["--window", "-1"], "--window -1.0: must be > 0"),
])
def test_bad_pool_flags_are_refused(flags, message, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "repeatability.py"),
                           "--from-pool", str(tmp_path), *flags], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert message in proc.stderr
