"""The environment a run happened in, recorded with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

import numpy as np

# Settings that change numerics or speed and are read from the environment.
RECORDED_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                      "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS",
                      "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES")


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


def describe() -> dict[str, Any]:
    """Framework-free facts: Python, NumPy, CPU, cores, affinity, GPUs, git commit, command."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": affinity,
        "gpus": gpus(),
        "git_commit": git_commit(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "variables": {k: os.environ[k] for k in RECORDED_VARIABLES if k in os.environ},
    }
