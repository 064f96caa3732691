"""Thread and device settings given to every framework's process alike.

Set through the environment before the framework is imported, because TensorFlow and
XLA read their thread pools' sizes once, at start-up.
"""

from __future__ import annotations

import os


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap every framework's compute threads at `threads`."""
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,            # torch intra-op, oneDNN, MKL, OpenBLAS
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,     # TensorFlow's two pools
        "TF_NUM_INTEROP_THREADS": n,
        # XLA:CPU (JAX, and TF's jit_compile): its Eigen pool and intra-op parallelism.
        "XLA_FLAGS": " ".join(filter(None, [
            os.environ.get("XLA_FLAGS", ""),
            f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
            f"intra_op_parallelism_threads={n}"])),
    }


def device_env(device: str) -> dict[str, str]:
    """Environment for a process (speed cell or parity worker) on `device`, read by the
    frameworks at start-up."""
    if device == "cpu":
        # Hide any GPU, so a CPU process neither initialises CUDA nor places work there.
        return {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    return {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # JAX takes 75% of the GPU at start else
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",       # TF takes all of it at start else
    }
