"""Students' machines (issue 23): each platform's install gets one TensorFlow wheel that
exists there, and fwbench runs where Linux-only calls (sched_getaffinity, /proc) are
missing, as on macOS, with the methodology saying what could not be pinned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from bench import adapters, cpus, environment

ROOT = Path(__file__).resolve().parent.parent

# (sys_platform, platform_machine) of the machines students bring, and the TensorFlow
# package each must get
PLATFORMS = {
    ("linux", "x86_64"): "tensorflow-cpu",
    ("linux", "aarch64"): "tensorflow",
    ("darwin", "arm64"): "tensorflow",
    ("darwin", "x86_64"): "tensorflow",
    ("win32", "AMD64"): "tensorflow-cpu",
}


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def _chosen(requirements: list[Requirement], system: str, machine: str) -> list[Requirement]:
    env = {**default_environment(), "sys_platform": system, "platform_machine": machine}
    return [r for r in requirements if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.parametrize("system,machine", sorted(PLATFORMS), ids="-".join)
def test_each_platform_gets_one_tensorflow_wheel_that_exists_there(system, machine):
    chosen = [r for r in _chosen(_extra("tf"), system, machine) if r.name.startswith("tensorflow")]
    assert [r.name for r in chosen] == [PLATFORMS[(system, machine)]]
    # Intel Macs: 2.16 is the last TensorFlow with a macOS x86-64 wheel
    if (system, machine) == ("darwin", "x86_64"):
        assert not chosen[0].specifier.contains("2.17.0")
    assert any(r.name == "keras" for r in _chosen(_extra("tf"), system, machine))


@pytest.mark.parametrize("system,machine", sorted(PLATFORMS), ids="-".join)
def test_each_platform_gets_one_torch(system, machine):
    chosen = [r for r in _chosen(_extra("torch"), system, machine) if r.name != "fwbench"]
    assert [r.name for r in chosen] == ["torch"]
    # never a release past the 2.13 line, whose registry wheels pull CUDA packages
    assert not chosen[0].specifier.contains("2.14.0")


@pytest.mark.parametrize("extra", ["tf", "torch", "jax"])
def test_every_framework_extra_installs_tensorboard_to_open_its_event_files(extra):
    # fwbench writes event files with any one framework (--tensorboard); TensorBoard opens them
    assert any(r.name == "fwbench" and r.extras == {"tensorboard"} for r in _extra(extra))
    assert [r.name for r in _extra("tensorboard")] == ["tensorboard"]
    assert {"tf", "torch", "jax"} <= {x for r in _extra("all") for x in r.extras}


def test_cpus_fall_back_where_affinity_calls_are_missing(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    assert cpus.allowed() == list(range(os.cpu_count() or 1))
    assert not cpus.can_pin()
    assert cpus.pin([0]) is False
    env = environment.describe()
    assert env["affinity"] is None
    assert "not available on this platform" in env["pinning"]


# Loaded by every Python process started with this folder on PYTHONPATH (the fwbench
# command and its workers alike): takes away what macOS does not have. Only fwbench's own
# reads of /proc fail: libraries (threadpoolctl) take their Linux branch, which reads it.
SIMULATED_MACOS = '''
import builtins, os, sys
for name in ("sched_getaffinity", "sched_setaffinity"):
    if hasattr(os, name):
        delattr(os, name)
_open = builtins.open
def _open_without_proc(file, *args, **kwargs):
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if (caller.startswith(("bench", "impls")) and isinstance(file, (str, bytes, os.PathLike))
            and os.fsdecode(file).startswith("/proc")):
        raise FileNotFoundError(2, "No such file or directory (simulated macOS)", os.fsdecode(file))
    return _open(file, *args, **kwargs)
builtins.open = _open_without_proc
'''


@pytest.mark.slow
@pytest.mark.skipif(not adapters.installed("torch"), reason="PyTorch not installed")
def test_a_cell_runs_to_completion_without_affinity_calls_or_proc(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SIMULATED_MACOS)
    env = {**os.environ, "FWBENCH_RESULTS": str(tmp_path / "results"),
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--frameworks", "torch", "--models", "mlp",
         "--modes", "eager", "--preset", "tiny", "--repeats", "1", "--sample-seconds", "0.05",
         "--warmup-seconds", "0.01", "--min-samples", "3", "--name", "mac", "--no-scaling",
         "--no-graphs", "--no-parity", "--no-report"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "results" / "runs" / "mac"
    (record,) = [json.loads(p.read_text()) for p in (run_dir / "cells").glob("*.json")]
    assert record["status"] == "ok", record.get("error")
    assert record["metrics"]["samples"] >= 3
    run = json.loads((run_dir / "run.json").read_text())
    assert run["environment"]["affinity"] is None
    assert "not available on this platform" in run["environment"]["pinning"]


def test_native_windows_is_refused_with_one_line(monkeypatch, capsys):
    from bench import cli

    monkeypatch.setattr(sys, "platform", "win32")
    assert cli.main(["show", "--code", "mlp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fwbench: native Windows is not supported (its worker processes need "
                   "POSIX process groups); run it under WSL2"]


def test_an_apple_gpu_is_recorded_as_a_device_that_is_not_used(monkeypatch):
    import platform

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert environment.unused_devices() == [
        "Apple GPU (MPS/Metal; not used: --device gpu means CUDA)"]
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert environment.unused_devices() == []
