"""Thread and device settings given to every framework's process alike.

Set through the environment before the framework is imported, because TensorFlow and
XLA read their thread pools' sizes once, at start-up.
"""

from __future__ import annotations

import os

from bench import frameworks

# Read by every framework's compute libraries alike: torch's intra-op pool, oneDNN, MKL,
# OpenBLAS. Each framework's own pools are in its bench.frameworks record.
COMMON_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap every framework's compute threads at `threads`."""
    n = str(threads)
    env = {name: n for name in COMMON_THREAD_VARIABLES}
    for fw in frameworks.FRAMEWORKS.values():
        env.update({name: value.format(n=n) for name, value in fw.thread_env})
    # XLA:CPU, shared by JAX and TensorFlow's jit_compile: its Eigen pool and intra-op
    # parallelism, appended to whatever XLA_FLAGS the user set.
    env["XLA_FLAGS"] = " ".join(filter(None, [
        os.environ.get("XLA_FLAGS", ""),
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
        f"intra_op_parallelism_threads={n}"]))
    return env


def device_env(device: str) -> dict[str, str]:
    """Environment for a process (speed cell or parity worker) on `device`, read by the
    frameworks at start-up (each framework's part is in its bench.frameworks record)."""
    if device == "cpu":
        # Hide any GPU, so a CPU process neither initialises CUDA nor places work there.
        env = {"CUDA_VISIBLE_DEVICES": ""}
        for fw in frameworks.FRAMEWORKS.values():
            env.update(fw.cpu_env)
        return env
    env = {}
    for fw in frameworks.FRAMEWORKS.values():
        env.update(fw.gpu_env)
    return env
