"""The machine-speed probe (bench.speed.speedprobe) and the fast-state comparison built on it:
steps are tagged with the probe of their block, and `fwbench compare` compares the steps
taken in the machine's fast state, so the VM's speed state no longer passes for a change
in the code, while a real change in the code still shows."""

import os

import numpy as np
import pytest

from bench import compare
from bench.speed import speedprobe


def test_each_step_gets_the_slower_probe_around_its_block():
    assert speedprobe.per_step([1.0, 2.0, 1.0], [2, 3]) == [2.0, 2.0, 2.0, 2.0, 2.0]
    assert speedprobe.per_step([1.0, 1.1, 1.8], [1, 2]) == [1.1, 1.8, 1.8]
    with pytest.raises(ValueError, match="need one more probe than blocks"):
        speedprobe.per_step([1.0, 1.0], [2, 3])


def test_fast_samples_keep_the_steps_within_the_margin_of_the_fast_level():
    probes = [[1.0, 1.0, 1.8, 1.9], [1.1, 1.7]]
    level = speedprobe.fast_level(probes)
    assert 1.0 <= level < 1.01
    assert speedprobe.fast_samples([10, 11, 18, 19], probes[0], level) == [10, 11]
    assert speedprobe.fast_samples([10, 17], probes[1], level) == [10]
    with pytest.raises(ValueError, match="3 samples but 2 probes"):
        speedprobe.fast_samples([1, 2, 3], [1, 1], level)
    with pytest.raises(ValueError, match="no probes"):
        speedprobe.fast_level([[], []])


def test_probe_visits_every_core_and_restores_the_affinity():
    home = os.sched_getaffinity(0)
    cores = sorted(home)
    assert speedprobe.probe(cores) > 0
    assert speedprobe.probe(cores[:1]) > 0
    assert os.sched_getaffinity(0) == home


def _process(rng, fast_fraction, fast_ms, slow_factor=1.6, n=300):
    """One process's samples and probes: a fast_fraction of its blocks in the fast state
    (probe ~1 ms, step fast_ms), the rest in the slow state (probe ~1.8 ms, the step
    slow_factor times longer), 1% noise on both."""
    fast = rng.random(n) < fast_fraction
    probes = np.where(fast, 1.0, 1.8) * (1 + 0.01 * rng.standard_normal(n))
    samples = fast_ms * np.where(fast, 1.0, slow_factor) * (1 + 0.01 * rng.standard_normal(n))
    return samples.tolist(), probes.tolist()


def _cell(rng, fractions, fast_ms):
    pairs = [_process(rng, f, fast_ms) for f in fractions]
    return compare.Cell("c", {"framework": "torch"}, [s for s, _ in pairs],
                        probes=[p for _, p in pairs])


def test_fast_state_comparison_ignores_the_machine_state_but_not_the_code():
    rng = np.random.default_rng(0)
    base = _cell(rng, [0.9, 0.8, 0.9, 0.7], fast_ms=10.0)       # caught the fast state
    unlucky = _cell(rng, [0.3, 0.2, 0.4, 0.3], fast_ms=10.0)    # same code, slow minutes
    slower = _cell(rng, [0.3, 0.2, 0.4, 0.3], fast_ms=12.5)     # +25% code, slow minutes

    every = compare.cell_statistics(base, unlucky, steps="all")
    assert every["steps"] == "all" and every["ratio"] > 1.4   # the machine looks like a regression
    found = compare.cell_statistics(base, unlucky, "fast")
    assert found["steps"] == "fast state (4/4, 4/4 processes)"
    assert found["low"] < 1 < found["high"] and abs(found["ratio"] - 1) < 0.02
    assert compare.verdict(found["ratio"], found["low"], found["high"], found["p slower"],
                           found["p faster"], 0.1, 0.01) == "no clear change"

    found = compare.cell_statistics(base, slower, "fast")
    assert abs(found["ratio"] - 1.25) < 0.02 and found["low"] > 1.2
    assert compare.verdict(found["ratio"], found["low"], found["high"], found["p slower"],
                           found["p faster"], 0.1, 0.01) == "slower"


def test_every_step_is_compared_when_the_fast_state_is_too_rare_or_unrecorded():
    rng = np.random.default_rng(1)
    base = _cell(rng, [0.9, 0.9, 0.9, 0.9], fast_ms=10.0)
    # three of four processes never saw the fast state: fewer than half remain
    rare = _cell(rng, [0.0, 0.0, 0.0, 0.5], fast_ms=10.0)
    assert compare.fast_state_processes(base, rare) is None
    assert compare.cell_statistics(base, rare, "fast")["steps"] == "all"
    # records made before the probe existed have no probes
    old = compare.Cell("c", {}, [list(p) for p in base.processes])
    assert compare.fast_state_processes(old, base) is None
    kept = compare.fast_state_processes(base, _cell(rng, [0.0, 0.5, 0.5, 0.9], 10.0))
    assert kept is not None and [len(side) for side in kept] == [4, 3]


def test_matmul_probe_times_a_fixed_blas_loop():
    assert speedprobe.matmul_probe() > 0
    assert speedprobe.per_step([1.0, 2.0, 4.0], [1, 2], "mean") == [1.5, 3.0, 3.0]


def _scaled_cell(rng, machine, work_ms, processes=4, n=200):
    """Processes on a machine `machine` times slower than the reference (its matmul probe
    `machine` ms), doing `work_ms` of reference-machine work per step; 1% noise."""
    samples, probes = [], []
    for _ in range(processes):
        speed = machine * (1 + 0.01 * rng.standard_normal(n))
        samples.append((work_ms * speed * (1 + 0.01 * rng.standard_normal(n))).tolist())
        probes.append(speed.tolist())
    return compare.Cell("c", {}, samples, matmul_probes=probes)


def test_normalized_steps_cancel_the_machine_speed_that_the_probe_feels():
    assert speedprobe.normalized([10.0, 20.0], [1.0, 2.0], 1.5) == [15.0, 15.0]
    with pytest.raises(ValueError, match="2 samples but 1 probes"):
        speedprobe.normalized([1.0, 2.0], [1.0], 1.0)
    rng = np.random.default_rng(2)
    base = _scaled_cell(rng, 1.0, 10.0)
    slow_machine = _scaled_cell(rng, 1.3, 10.0)       # same code, the machine 30% slower
    slower_code = _scaled_cell(rng, 1.3, 12.5)        # +25% work, on the slow machine too
    assert compare.cell_statistics(base, slow_machine, "all")["ratio"] > 1.25
    found = compare.cell_statistics(base, slow_machine, "normalized")
    assert found["steps"] == "normalized" and abs(found["ratio"] - 1) < 0.02
    found = compare.cell_statistics(base, slower_code, "normalized")
    assert abs(found["ratio"] - 1.25) < 0.03 and found["low"] > 1.2
    # without matmul probes (older records): every step
    old = compare.Cell("c", {}, base.processes)
    assert compare.cell_statistics(old, slower_code, "normalized")["steps"] == "all"
    # ... nor between probes of different versions, whose times differ by design
    settled = compare.Cell("c", {}, slower_code.processes, matmul_probes=slower_code.matmul_probes,
                           matmul_probe_version=2)
    found = compare.cell_statistics(base, settled, "normalized")
    assert found["steps"] == "all (matmul probe versions 1 and 2)" and found["ratio"] > 1.5
    with pytest.raises(compare.CompareError, match="steps 'median': expected one of fast"):
        compare.cell_statistics(base, base, "median")


def test_the_matmul_probe_settles_before_it_times(monkeypatch):
    """What ran just before (a Python spin, say) slows the next milliseconds of matmuls:
    the probe runs MATMUL_SETTLE_S of them untimed first, and times only what follows."""
    # A fake clock that moves 1 ms per reading, and a counting matmul: the settling loop
    # must run about MATMUL_SETTLE_S worth of products before the timer starts, and the
    # figure must cover the MATMUL_REPEATS timed products only.
    clock, calls = [0.0], []

    def tick() -> float:
        clock[0] += 1e-3
        return clock[0]

    def fake_matmul(a, b, out=None):
        calls.append(clock[0])

    monkeypatch.setattr(speedprobe.time, "perf_counter", tick)
    monkeypatch.setattr(speedprobe.np, "matmul", fake_matmul)
    timed_ms = speedprobe.matmul_probe()
    settle_ticks = round(speedprobe.MATMUL_SETTLE_S / 1e-3)
    assert len(calls) - speedprobe.MATMUL_REPEATS >= settle_ticks - 2  # it settled first
    assert timed_ms == pytest.approx(1.0)  # one clock reading after `started`: repeats only
    timed_at = calls[-speedprobe.MATMUL_REPEATS:]
    assert min(timed_at) >= speedprobe.MATMUL_SETTLE_S  # the timed products come after
    # 3: on one BLAS thread (issue 8); records of version 2 are not normalized against it
    assert speedprobe.MATMUL_PROBE_VERSION == 3
