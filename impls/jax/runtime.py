"""Process settings for JAX: matmul precision, device checks, peak device memory.

JAX has no thread-count call: its CPU threads follow the affinity mask and XLA_FLAGS,
which the harness sets before the process starts (bench.threads). Likewise
XLA_PYTHON_CLIENT_PREALLOCATE=false, read when the GPU client starts.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from bench import cpus
from bench.adapters import DeviceUnavailable


def configure(device: str, threads: int, tf32: bool) -> dict[str, Any]:
    # XLA:GPU's float32 matmuls default to TF32 on Ampere and later; "highest" is true f32.
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")
    settings: dict[str, Any] = {
        # XLA:CPU sizes its pool from the CPUs this process may run on
        "threads": len(cpus.allowed()),
        "default_matmul_precision": jax.config.jax_default_matmul_precision,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "unset (JAX default: 75%)"),
        "cpu_devices": len(jax.devices("cpu")),
    }
    if device == "gpu":
        try:
            gpu = jax.devices("gpu")[0]
        except RuntimeError as exc:
            raise DeviceUnavailable(f"device gpu: JAX finds no GPU backend ({exc})") from exc
        settings.update(gpu=gpu.device_kind, platform_version=gpu.client.platform_version)
    return settings


def peak_memory_bytes(device: str) -> int | None:
    if device != "gpu":
        return None
    stats = jax.devices("gpu")[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def matmul_float32(a: np.ndarray, b: np.ndarray, device: str) -> np.ndarray:
    """a @ b in float32 on `device`, at the matmul precision configure() set (the TF32
    check of benchmarks/gpu_paths.py)."""
    import jax.numpy as jnp

    target = jax.devices(device)[0]
    return np.asarray(jax.jit(jnp.matmul)(jax.device_put(np.float32(a), target),
                                          jax.device_put(np.float32(b), target)))


def limit_kernels(dtype: str, device: str, n: int, elements: int) -> tuple[Any, Any, int]:
    """(an n x n x n matrix product, a streaming pass over `elements` values, the bytes
    that pass moves), each call returning once the device has finished
    (bench.speed.limits times them). float64 needs jax_enable_x64."""
    import jax.numpy as jnp

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    target = jax.devices(device)[0]
    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.random((n, n)).astype(dtype), target) for _ in range(2))
    state = [jax.device_put(rng.random(elements).astype(dtype), target)]
    matmul = jax.jit(jnp.matmul)
    # x + 1 into x's own buffer (donated): a read and a write of every value, no fresh
    # allocation to fault in each call (x * 1.0 would be folded away)
    add_one = jax.jit(lambda x: x + 1.0, donate_argnums=0)

    def stream() -> None:
        state[0] = add_one(state[0])
        state[0].block_until_ready()

    return (lambda: matmul(a, b).block_until_ready(), stream,
            2 * elements * np.dtype(dtype).itemsize)
