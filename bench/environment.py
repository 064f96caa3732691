"""The environment a run happened in, recorded with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np

from bench import cpus

# Settings that change numerics or speed and are read from the environment.
RECORDED_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                      "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS",
                      "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES")


# The frameworks' distributions, whose versions a run records without importing them.
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "torch", "jax", "jaxlib", "flax", "optax")
# What a resumed run must share with the run it finishes (differences are refused).
RESUME_KEYS = ("python", "numpy", "packages", "cpu", "cpu_count", "affinity", "gpus",
               "git_commit", "variables")


def packages() -> dict[str, str]:
    """Installed versions of the frameworks' distributions (absent ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def differences(before: Mapping[str, Any], now: Mapping[str, Any],
                keys: tuple[str, ...] = RESUME_KEYS) -> list[str]:
    """'key: before -> now' for every key (and every entry of a dict-valued key, as
    key.entry) that differs; a key `before` does not have (an older record) is skipped."""
    out = []
    for key in keys:
        if key not in before:
            continue
        a, b = before.get(key), now.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for entry in sorted(set(a) | set(b)):
                if a.get(entry) != b.get(entry):
                    out.append(f"{key}.{entry}: {_shown(a.get(entry))} -> {_shown(b.get(entry))}")
        elif a != b:
            out.append(f"{key}: {_shown(a)} -> {_shown(b)}")
    return out


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def gpus() -> list[dict[str, str]]:
    """Name, driver and memory of each NVIDIA GPU, from nvidia-smi ([] where there is none)."""
    query = "name,driver_version,memory.total"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    keys = ("name", "driver", "memory")
    return [dict(zip(keys, (v.strip() for v in line.split(","))))
            for line in out.stdout.strip().splitlines() if line.strip()]


def unused_devices() -> list[str]:
    """Accelerators this machine has that fwbench does not measure on: an Apple silicon
    Mac's GPU (the frameworks reach it through MPS or Metal; --device gpu means CUDA).
    Known from the platform alone, so no framework is imported to find it."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return ["Apple GPU (MPS/Metal; not used: --device gpu means CUDA)"]
    return []


def describe() -> dict[str, Any]:
    """Framework-free facts: Python, NumPy, CPU, cores, affinity, GPUs, git commit, command."""
    affinity = cpus.allowed() if cpus.can_pin() else None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": affinity,
        "pinning": cpus.describe(),
        "gpus": gpus(),
        "unused_devices": unused_devices(),
        "git_commit": git_commit(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "variables": {k: os.environ[k] for k in RECORDED_VARIABLES if k in os.environ},
        "packages": packages(),
    }
