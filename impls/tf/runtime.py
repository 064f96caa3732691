"""Process settings for TensorFlow: threads, memory growth, TF32, peak device memory."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from bench.adapters import DeviceUnavailable


def configure(device: str, threads: int, tf32: bool) -> dict[str, Any]:
    try:  # settable only before the runtime starts; the harness calls this first
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu":
        if not gpus:
            raise DeviceUnavailable("device gpu: TensorFlow lists no GPU "
                                    f"(tensorflow {tf.__version__}, built with CUDA: "
                                    f"{tf.test.is_built_with_cuda()})")
        for gpu in gpus:  # grow on demand instead of taking the whole GPU at start-up
            tf.config.experimental.set_memory_growth(gpu, True)
    elif gpus:
        tf.config.set_visible_devices([], "GPU")
    tf.config.experimental.enable_tensor_float_32_execution(tf32)
    settings: dict[str, Any] = {
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
        # oneDNN is on by default on x86 Linux builds; it changes float results slightly
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default: on)"),
        "built_with_cuda": tf.test.is_built_with_cuda(),
    }
    if device == "gpu":
        details = tf.config.experimental.get_device_details(gpus[0])
        settings.update(gpu=details.get("device_name"),
                        compute_capability=details.get("compute_capability"))
    return settings


def peak_memory_bytes(device: str) -> int | None:
    if device != "gpu":
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def matmul_float32(a: np.ndarray, b: np.ndarray, device: str) -> np.ndarray:
    """a @ b in float32 on `device`, at the matmul precision configure() set (the TF32
    check of benchmarks/gpu_paths.py)."""
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        return tf.matmul(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()


def limit_kernels(dtype: str, device: str, n: int, elements: int) -> tuple[Any, Any, int]:
    """(an n x n x n matrix product, a streaming pass over `elements` values, the bytes
    that pass moves), each call returning once the device has finished (bench.speed.limits
    times them; reading one value back waits for the device)."""
    rng = np.random.default_rng(0)
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        a, b = (tf.constant(rng.random((n, n)).astype(dtype)) for _ in range(2))
        values = tf.Variable(rng.random(elements).astype(dtype))
        ones = tf.ones_like(values)

    def gemm() -> None:
        tf.matmul(a, b)[0, 0].numpy()

    def stream() -> None:  # x += ones in the variable's own buffer: x and ones read, x written
        values.assign_add(ones)[0].numpy()

    return gemm, stream, 3 * elements * np.dtype(dtype).itemsize
