"""Process settings for torch: threads, TF32, device checks and peak device memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.adapters import DeviceUnavailable


def configure(device: str, threads: int, tf32: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first parallel region; keep what is set
        pass
    # TF32 is off by default for matmuls but on for cuDNN convolutions/RNNs: set both.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    settings: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cuda_build": torch.version.cuda,
    }
    if device == "gpu":
        if not torch.cuda.is_available():
            raise DeviceUnavailable("device gpu: torch.cuda.is_available() is False "
                                    f"(torch {torch.__version__}, CUDA build {torch.version.cuda})")
        props = torch.cuda.get_device_properties(0)
        settings.update(gpu=props.name, gpu_memory_mib=props.total_memory // 2**20,
                        cudnn=torch.backends.cudnn.version())
        torch.cuda.reset_peak_memory_stats()
    return settings


def peak_memory_bytes(device: str) -> int | None:
    if device != "gpu":
        return None
    return int(torch.cuda.max_memory_allocated())


def matmul_float32(a: np.ndarray, b: np.ndarray, device: str) -> np.ndarray:
    """a @ b in float32 on `device`, at the matmul precision configure() set (the TF32
    check of benchmarks/gpu_paths.py)."""
    target = "cuda" if device == "gpu" else "cpu"
    return (torch.as_tensor(a, dtype=torch.float32, device=target)
            @ torch.as_tensor(b, dtype=torch.float32, device=target)).cpu().numpy()


def limit_kernels(dtype: str, device: str, n: int, elements: int) -> tuple[Any, Any, int]:
    """(an n x n x n matrix product, a streaming pass over `elements` values, the bytes
    that pass moves: one array read, another written), each call returning once the
    device has finished (bench.speed.limits times them)."""
    target = torch.device("cuda" if device == "gpu" else "cpu")
    dt = getattr(torch, dtype)
    a, b, c = (torch.rand(n, n, dtype=dt, device=target) for _ in range(3))
    src, dst = torch.rand(elements, dtype=dt, device=target), torch.empty(elements, dtype=dt,
                                                                          device=target)
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def gemm() -> None:
        torch.matmul(a, b, out=c)
        sync()

    def stream() -> None:
        torch.add(src, 1.0, out=dst)
        sync()

    return gemm, stream, 2 * elements * src.element_size()
