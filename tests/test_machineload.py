"""Nothing of the harness's own may run beside the steps it times (issue 8), and what
else ran on the machine is read from counters, not from work (bench.speed.machineload).

No test here times anything: the mechanism is checked directly (which thread pools the
measured process has, and whether NumPy's BLAS worker ever runs), and the load counters
are checked on readings made up for the test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.speed import machineload, measure, show

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="reads /proc (Linux)")


def reading(t, busy, steal=0.0, own=0.0, switches=0, load=0.5):
    return machineload.Reading(t, busy, steal, own, switches, load)


def test_other_processes_share_is_the_machines_busy_time_less_our_own():
    # 2 CPUs for 10 s = 20 CPU-s; the machine was busy 7 CPU-s, 5 of them ours
    found = machineload.summary([reading(100.0, 50.0, own=1.0, switches=10),
                                 reading(110.0, 57.0, steal=0.0, own=6.0, switches=30)], cpus=2)
    assert found["other_cpu_share"] == pytest.approx(0.1)
    assert found["own_cpu_share"] == pytest.approx(0.25)
    assert found["involuntary_switches_per_s"] == pytest.approx(2.0)
    assert found["span_s"] == pytest.approx(10.0)
    assert not found["loaded"]  # 10% is the limit, not past it


@pytest.mark.parametrize("other_busy, steal, loaded", [
    (2.1, 0.0, True),     # another process took 10.5% of the machine
    (0.0, 1.2, True),     # the hypervisor took 6%
    (0.3, 0.5, False),    # 1.5% and 2.5%
])
def test_a_cell_is_flagged_when_others_or_the_hypervisor_took_the_machine(other_busy, steal, loaded):
    found = machineload.summary([reading(0.0, 0.0), reading(10.0, other_busy, steal)], cpus=2)
    assert found["loaded"] is loaded


def test_without_proc_stat_the_machines_share_is_unknown_not_zero():
    found = machineload.summary([reading(0.0, None, None, 0.0), reading(1.0, None, None, 0.5)], cpus=2)
    assert found["other_cpu_share"] is None and found["steal_share"] is None
    assert found["own_cpu_share"] == pytest.approx(0.25) and not found["loaded"]
    with pytest.raises(ValueError, match="a span needs two"):
        machineload.summary([reading(0.0, 1.0)])


@linux_only
def test_reading_the_counters_starts_no_thread_and_reads_real_values():
    threads = len(os.listdir("/proc/self/task"))
    first, second = machineload.read(), machineload.read()
    assert len(os.listdir("/proc/self/task")) == threads
    assert second.t >= first.t and second.machine_busy_s >= first.machine_busy_s > 0
    assert second.own_cpu_s >= first.own_cpu_s > 0 and first.loadavg_1min is not None


WORKER_TICKS = """if True:
    import json, os, sys, time
    before = set(os.listdir("/proc/self/task"))
    import numpy as np
    workers = set(os.listdir("/proc/self/task")) - before  # OpenBLAS's, made at load
    from bench.speed import measure, speedprobe
    from bench.workers import quiet_helper_pools
    if sys.argv[1] == "quiet":
        quiet_helper_pools()  # as every bench.workers process does at start
    def ticks():
        total = 0
        for tid in workers:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total
    time.sleep(0.5)  # a new worker spins ~0.1 s when OpenBLAS starts it, then sleeps
    start = ticks()
    for _ in range(5):  # five probes, with the gaps a block of steps would leave
        speedprobe.matmul_probe()
        time.sleep(0.1)
    print(json.dumps({"workers": len(workers), "ticks": ticks() - start,
                      "pools": measure.helper_threadpools()}))
"""


def _worker_ticks(setting: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", WORKER_TICKS, setting], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@linux_only
@pytest.mark.slow
def test_the_matmul_probe_leaves_no_blas_worker_spinning_beside_the_step():
    """The mechanism of issue 8: the matmul probe woke OpenBLAS's worker thread, which
    then spun for ~0.1 s on the cell's cores after every probe. In a measured process
    NumPy's pool is held to one thread, so its worker never runs: it is charged no CPU
    tick at all, however often the probe runs (a thread that never runs is charged
    nothing: no timing involved). Without the hold, the same five probes keep it busy
    (~30 ticks of 10 ms here), which shows the count can see the mechanism."""
    quiet = _worker_ticks("quiet")
    helpers = [p for p in quiet["pools"] if p["helper"]]
    assert helpers, quiet["pools"]  # NumPy's BLAS is seen, and held to one thread
    assert all(p["num_threads"] == 1 for p in helpers), helpers
    assert quiet["workers"] >= 1 and quiet["ticks"] == 0, quiet
    loud = _worker_ticks("as-before")
    assert loud["ticks"] > 0, loud


def test_helper_pools_are_numpys_and_scipys_never_a_frameworks():
    assert measure.is_helper_pool("/v/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-1.so")
    assert measure.is_helper_pool("/v/site-packages/scipy_openblas32/lib/libscipy_openblas.so")
    assert not measure.is_helper_pool("/v/site-packages/torch/lib/libgomp.so.1")
    assert not measure.is_helper_pool("/v/site-packages/torch/lib/libopenblas.so.0")


def test_show_flags_cells_sampled_on_a_loaded_machine():
    import pandas as pd

    frame = pd.DataFrame([
        {"status": "ok", "framework": "torch", "model": "mlp", "mode": "eager",
         "loaded_repeats": 1, "repeats_ok": 2, "load_other_cpu_share": 0.31,
         "load_steal_share": 0.0},
        {"status": "ok", "framework": "jax", "model": "mlp", "mode": "compiled",
         "loaded_repeats": 0, "repeats_ok": 2, "load_other_cpu_share": 0.01,
         "load_steal_share": 0.0},
        {"status": "ok", "framework": "tf", "model": "mlp", "mode": "eager",  # an old record
         "loaded_repeats": float("nan"), "repeats_ok": 1, "load_other_cpu_share": float("nan"),
         "load_steal_share": float("nan")},
    ])
    assert [show.ok_status(r) for _, r in frame.iterrows()] == ["ok, loaded 1/2", "ok", "ok"]
    note = show.loaded_note(frame)
    assert note.startswith("1 cell(s) sampled while other processes used more than 10%")
    assert "torch/mlp/eager" in note and "31%" in note and "jax" not in note
    assert show.loaded_note(frame.iloc[1:]) is None
