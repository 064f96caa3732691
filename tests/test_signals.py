"""Stop signals (issue 21): SIGTERM, SIGHUP or SIGINT to a fwbench command stops its
worker processes, whole process groups, before it exits, and leaves the work resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import adapters

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = [fw for fw in ("torch", "jax", "tf") if adapters.installed(fw)]
needs_any = pytest.mark.skipif(not INSTALLED, reason="no framework installed")


def _workers_of(parent: int) -> list[int]:
    """Pids of the worker processes `parent` started: bench.workers processes and fork
    servers (bench.forkserver) that are its children, and the workers those servers
    forked (their children)."""
    children: dict[int, list[tuple[int, list[bytes]]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append((int(entry.name), cmdline))
    found = []
    for pid, cmdline in children.get(parent, []):
        if b"bench.workers" in cmdline:
            found.append(pid)
        elif b"bench.forkserver" in cmdline:
            found += [pid, *(child for child, _ in children.get(pid, []))]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop_while_a_worker_runs(argv: list[str], env: dict[str, str], sig: int,
                              wait_s: float = 0.0, timeout_s: float = 120.0,
                              ready: Callable[[], bool] | None = None):
    """Start `fwbench argv`, wait until it has a worker (and `wait_s` more, or until `ready()`
    holds while a worker runs), send `sig`; returns (exit status, stderr, the worker pids seen).
    `ready` is a condition rather than a delay because a loaded CI machine may take many
    times longer than this one to reach the same point."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    seen: list[int] = []
    while not seen and time.monotonic() < deadline and proc.poll() is None:
        seen = _workers_of(proc.pid)
        time.sleep(0.1)
    assert seen, f"no worker started: {proc.communicate()}"
    time.sleep(wait_s)
    while ready is not None and time.monotonic() < deadline and proc.poll() is None:
        workers = _workers_of(proc.pid)
        if workers and ready():
            seen.extend(workers)
            break
        time.sleep(0.1)
    seen = sorted(set(seen) | set(_workers_of(proc.pid)))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err, seen


def _gone(pids: list[int]) -> bool:
    for _ in range(50):
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@needs_any
@pytest.mark.slow
def test_sigterm_stops_a_run_and_its_cell_and_the_run_resumes(results_dir):
    fw = INSTALLED[0]
    env = {**os.environ, "FWBENCH_RESULTS": str(results_dir)}
    flags = ["--frameworks", fw, "--models", "mlp,lstm", "--modes", "eager", "--preset", "tiny",
             "--threads", "1", "--repeats", "1", "--sample-seconds", "0.01",
             "--min-samples", "3", "--warmup-seconds", "0.01", "--timeout", "600"]
    cells_dir = results_dir / "runs" / "stopped" / "cells"
    # the LSTM's cell hangs: the signal finds it measuring, once the MLP's cell is written
    status, err, seen = _stop_while_a_worker_runs(
        ["run", *flags, "--name", "stopped", "--inject-fault", "hang:-lstm-", "--no-scaling",
         "--no-graphs", "--no-parity", "--no-report"], env, signal.SIGTERM, timeout_s=300,
        ready=lambda: any(cells_dir.glob("*-mlp-*.json")))
    assert status == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM; finished cells are kept. Resume with: fwbench run --resume" in err
    assert _gone(seen), f"worker processes {seen} outlived fwbench run"
    cells = sorted(p.name for p in cells_dir.glob("*.json"))
    assert len(cells) == 1 and "-mlp-" in cells[0]  # the finished cell is kept
    done = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--resume", "stopped",
                           "--no-graphs", "--no-parity", "--no-report"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 of 2 cell processes to run" in done.stderr
    assert "2 cells measured, 0 failed" in done.stdout


@needs_any
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_parity_and_its_workers(sig, results_dir):
    fw = INSTALLED[0]
    env = {**os.environ, "FWBENCH_RESULTS": str(results_dir)}
    status, err, seen = _stop_while_a_worker_runs(["parity", "--frameworks", fw], env, sig,
                                                  wait_s=1.0)
    assert status == 128 + sig, err
    assert f"fwbench parity: stopped by {signal.Signals(sig).name}; its worker processes " \
           "are stopped" in err
    assert "Traceback" not in err
    assert _gone(seen), f"worker processes {seen} outlived fwbench parity"


@needs_any
@pytest.mark.slow
def test_sigterm_stops_a_study_and_it_resumes(results_dir):
    fw = INSTALLED[0]
    env = {**os.environ, "FWBENCH_RESULTS": str(results_dir)}
    status, err, seen = _stop_while_a_worker_runs(
        ["study", "genz", "--quick", "--frameworks", fw, "--threads", "1", "--id", "st"],
        env, signal.SIGTERM, wait_s=1.0)
    assert status == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM; finished items are kept. Resume with: fwbench study genz" in err
    assert _gone(seen), f"worker processes {seen} outlived fwbench study"
    done = subprocess.run([sys.executable, "-m", "bench.cli", "study", "genz", "--resume", "st"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
