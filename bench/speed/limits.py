"""The machine's limits, measured by each run: the attainable matrix-product peak and
memory bandwidth of the device the run's cells train on, so that every cell's achieved
FLOP/s has a reference (a share of the peak) and a roofline.

Per framework, in a process set up as that framework's cells are (the same threads,
cores, device and TF32 setting; bench.workers), impls/<framework>/runtime.py's
limit_kernels gives two calls, each timed alone after a warm-up, best of several:

- GEMM: an n x n x n product in the run's dtype (2 n^3 FLOPs), the kernel a framework
  reaches for its dense layers at its best; n = 2048 on a CPU, 8192 on a GPU;
- stream: x + 1 over 2^26 values (256 MiB in float32, far past any CPU cache; 2^28 on a
  GPU) in each framework's own elementwise code, written to a buffer that exists
  already (torch's out=, JAX's donated input, a TensorFlow variable's assign_add of a
  ones tensor), so no call faults in fresh pages: the bytes read and written per pass
  (2 or 3 arrays) over its time, like the STREAM benchmark's kernels.

The run's peak is the best GEMM of any framework and its bandwidth the best stream:
what the machine can be made to do, whichever library gets there. Written by hand
because it must run inside each framework's own process with its settings; STREAM and
vendor GEMM benchmarks measure a C program, not what a framework's kernels reach.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from bench import adapters, frameworks, results, workers

SCHEMA = "fwbench.limits/1"
FILE = "limits.json"
GEMM_N = {"cpu": 2048, "gpu": 8192}
STREAM_ELEMENTS = {"cpu": 2**26, "gpu": 2**28}
MIN_CALLS, MIN_SECONDS = 5, 1.0  # each kernel: timed calls, at least this many and this long
# The tiny preset (tests, smoke runs) measures a quick, rougher limit: a 512 product and
# 16 MiB (float32) stream for 0.1 s each, about 1 s per framework instead of 5.
QUICK = {"gemm_n": 512, "stream_elements": 2**22, "min_seconds": 0.1}
TIMEOUT_S = 300.0


def best_seconds(call: Any, min_calls: int = MIN_CALLS, min_seconds: float = MIN_SECONDS) -> float:
    """The fastest of repeated calls of `call` (s), after one untimed warm-up call: at
    least `min_calls` calls and `min_seconds` of them. The best, not the median: the
    limit is what the device attains, and a slower call met interference."""
    call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < min_seconds:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def limits_task(args: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """A bench.workers task: the framework's GEMM and stream figures on the run's device."""
    framework, device, dtype = args["framework"], args["device"], args["dtype"]
    adapter = adapters.get(framework)
    adapter.configure(device, args["threads"], args["tf32"])
    runtime = importlib.import_module(f"{frameworks.get(framework).package}.runtime")
    quick = args.get("quick", False)
    n = QUICK["gemm_n"] if quick else GEMM_N[device]
    elements = QUICK["stream_elements"] if quick else STREAM_ELEMENTS[device]
    seconds = QUICK["min_seconds"] if quick else MIN_SECONDS
    gemm, stream, stream_bytes = runtime.limit_kernels(dtype, device, n, elements)
    gemm_s, stream_s = best_seconds(gemm, min_seconds=seconds), best_seconds(stream, min_seconds=seconds)
    return {"framework": framework, "gemm_n": n, "gemm_s": gemm_s,
            "gemm_flops_per_s": 2 * n**3 / gemm_s, "stream_elements": elements,
            "stream_bytes": stream_bytes, "stream_s": stream_s,
            "stream_bytes_per_s": stream_bytes / stream_s}


def measure(run_dir: Path, run: dict[str, Any], framework_names: list[str]) -> dict[str, Any]:
    """Measure every installed framework's figures for the run (one process each, like
    a cell's), write <run>/limits.json and return it. A framework that fails is recorded
    with its error; the others still count."""
    first = run["cells"][0]
    device, dtype, threads = first["device"], first["dtype"], first["threads"]
    quick = all(c["preset"] == "tiny" for c in run["cells"])
    rows = []
    for framework in framework_names:
        if not adapters.installed(framework):
            continue
        job = workers.Job("bench.speed.limits:limits_task",
                          {"framework": framework, "device": device, "dtype": dtype,
                           "threads": threads, "tf32": run["tf32"], "quick": quick},
                          threads=threads, device=device, cores=tuple(workers.affinity(threads)),
                          timeout_s=TIMEOUT_S, preload=framework)
        outcome = workers.run(job, Path(run_dir) / "logs" / f"limits-{framework}.log")
        rows.append(outcome.value if outcome.ok
                    else {"framework": framework, "error": outcome.describe()})
    doc = {"schema": SCHEMA, "device": device, "dtype": dtype, "threads": threads,
           "tf32": run["tf32"], "quick": quick, "frameworks": rows, **summary(rows)}
    results.write_json(Path(run_dir) / FILE, doc)
    return doc


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's peak and bandwidth: the best of the frameworks that measured, and by whom."""
    measured = [r for r in rows if "error" not in r]
    if not measured:
        return {"peak_flops_per_s": None, "bandwidth_bytes_per_s": None}
    gemm = max(measured, key=lambda r: r["gemm_flops_per_s"])
    stream = max(measured, key=lambda r: r["stream_bytes_per_s"])
    return {"peak_flops_per_s": gemm["gemm_flops_per_s"], "peak_by": gemm["framework"],
            "bandwidth_bytes_per_s": stream["stream_bytes_per_s"], "bandwidth_by": stream["framework"]}


def read(run_dir: Path) -> dict[str, Any] | None:
    """A run's limits.json, or None for a run from before they were measured."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return None
    return results.read_document(path, SCHEMA)


def ridge_point(doc: dict[str, Any]) -> float | None:
    """FLOPs per byte where the roofline's slope meets its flat top: cells below it are
    bound by memory bandwidth, above it by compute."""
    if not doc or not doc.get("peak_flops_per_s") or not doc.get("bandwidth_bytes_per_s"):
        return None
    return doc["peak_flops_per_s"] / doc["bandwidth_bytes_per_s"]
