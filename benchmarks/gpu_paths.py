"""GPU paths: does each framework's GPU cell do what the harness claims it does?

Run on a machine with a GPU (PyTorch and/or JAX installed; TensorFlow too if present):

    python benchmarks/gpu_paths.py [--frameworks torch,jax] [--models mlp,lstm,attention]
        [--preset small] [--device gpu] [--output results/gpu_paths.json]

Per framework, each check in its own process (a bench.workers job: the cells' environment
and settings, as `fwbench run` gives them; logs beside --output):

- sync: is every timed step the device's work? For each model in compiled mode: the
  median of per-step times with the loss read back after each step (what `fwbench run`
  times), the time per step of a block of steps with one read-back at the end
  ("pipelined"), and the time to only dispatch that block ("dispatch"). A timer that
  did not wait for the device would report about the dispatch time. With PyTorch also
  the median CUDA-event time of the same steps, and whether the CUDA stream is idle
  right after each read-back (the direct test). Passes when the stream is always idle
  and, unless the cell is launch-bound (dispatch >= half the pipelined time: the GPU
  waits on the host, so a missing wait would not show), the per-step median is at least
  0.8x the pipelined time (a missing wait would give about the dispatch time).
- kernels (PyTorch): the CUDA kernels the profiler sees in three training steps of the
  LSTM (is it cuDNN's RNN?) and attention (is it a fused scaled-dot-product kernel?),
  eager and compiled.
- attention_cudnn (JAX): does jax.nn.dot_product_attention's cuDNN implementation take
  float32 (fwbench's JAX attention assumes not, and uses Flax's unfused one)?
- tf32: the relative error of a 2048x2048 float32 matmul against float64 with TF32 off
  (fwbench's default) and on (--tf32): off should be ~1e-6, on ~1e-3.

--device cpu runs the same code on the CPU, a smoke test for machines without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import adapters, canonical, data, frameworks, workers  # noqa: E402
from bench.spec import MODELS  # noqa: E402
from bench.speed.cells import Cell  # noqa: E402

SYNC_STEPS = 30          # steps per timing of the sync check
WARMUP_STEPS = 5         # untimed steps first (compilation, autotuning)
MATMUL_N = 2048          # square matmul of the TF32 check
LSTM_KERNEL = re.compile(r"cudnn|rnn|lstm", re.I)
ATTENTION_KERNEL = re.compile(r"fmha|flash|efficient_attention|attention_kernel|cutlass.*attn", re.I)


def _setup(framework: str, model: str, preset: str, mode: str, device: str) -> tuple[Any, Any, Any]:
    """The cell's adapter, trainer and one batch, built as bench.speed.measure builds them."""
    cell = Cell(framework, model, preset, mode, device=device)
    model_spec, train_spec = cell.specs()
    adapter = adapters.get(framework)
    adapter.configure(device, cell.threads, False)
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    built = adapter.build(model_spec, params, dtype=cell.dtype, device=device)
    trainer = adapter.trainer(built, train_spec.optimizer, train_spec.loss, mode)
    batch = trainer.put(*data.batch(model_spec, train_spec.batch_size, train_spec.loss,
                                    train_spec.seed, 0))
    return adapter, trainer, batch


def check_sync(framework: str, model: str, preset: str, device: str) -> dict[str, Any]:
    adapter, trainer, batch = _setup(framework, model, preset, adapter_compiled(framework), device)
    for _ in range(WARMUP_STEPS):
        trainer.value(trainer.step(batch))
    per_step = []
    for _ in range(SYNC_STEPS):
        t = time.perf_counter()
        trainer.value(trainer.step(batch))
        per_step.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    for _ in range(SYNC_STEPS):
        loss = trainer.step(batch)
    dispatched = time.perf_counter()
    trainer.value(loss)
    done = time.perf_counter()
    out: dict[str, Any] = {
        "per_step_synced_median_ms": statistics.median(per_step),
        "pipelined_ms": (done - t) * 1e3 / SYNC_STEPS,
        "dispatch_ms": (dispatched - t) * 1e3 / SYNC_STEPS,
    }
    if framework == "torch" and device == "gpu":
        import torch

        # The direct test: once the loss is read back, the stream has no work left.
        idle = []
        for _ in range(SYNC_STEPS):
            trainer.value(trainer.step(batch))
            idle.append(torch.cuda.current_stream().query())
        out["stream_idle_after_read_back"] = f"{sum(idle)}/{len(idle)}"
        gpu_ms = []
        for _ in range(SYNC_STEPS):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loss = trainer.step(batch)
            end.record()
            trainer.value(loss)
            gpu_ms.append(start.elapsed_time(end))
        out["cuda_event_median_ms"] = statistics.median(gpu_ms)
    # Launch-bound (dispatch takes most of the pipelined time): the GPU idles between
    # kernels and a missing wait would not show in the times, only in the stream test.
    out["launch_bound"] = out["dispatch_ms"] >= 0.5 * out["pipelined_ms"]
    out["passed"] = bool((out["launch_bound"]
                          or out["per_step_synced_median_ms"] >= 0.8 * out["pipelined_ms"])
                         and out.get("stream_idle_after_read_back", "1/1").split("/")[0]
                         == out.get("stream_idle_after_read_back", "1/1").split("/")[1])
    out["peak_memory_bytes"] = adapter.peak_memory_bytes(device)
    return out


def adapter_compiled(framework: str) -> str:
    """The framework's most compiled mode (its record lists the modes from eager on)."""
    return frameworks.FRAMEWORKS[framework].modes[-1]


def check_kernels(model: str, preset: str, device: str) -> dict[str, Any]:
    """PyTorch only: the device kernels (CPU ops on --device cpu) of three training steps,
    eager and compiled."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    pattern = LSTM_KERNEL if model == "lstm" else ATTENTION_KERNEL
    out: dict[str, Any] = {}
    for mode in ("eager", "compiled"):
        _, trainer, batch = _setup("torch", model, preset, mode, device)
        for _ in range(WARMUP_STEPS):
            trainer.value(trainer.step(batch))
        activity = ProfilerActivity.CUDA if device == "gpu" else ProfilerActivity.CPU
        with profile(activities=[activity]) as prof:
            for _ in range(3):
                trainer.value(trainer.step(batch))
        names = sorted({e.key for e in prof.key_averages()
                        if device != "gpu" or e.device_type == torch.autograd.DeviceType.CUDA})
        matched = [n for n in names if pattern.search(n)]
        out[mode] = {"kernels": len(names), "matched": matched[:12], "passed": bool(matched)}
    return out


def check_jax_cudnn_attention(device: str) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    shape = (4, 64, 4, 32)  # batch, sequence, heads, head size
    out: dict[str, Any] = {}
    for dtype in ("float32", "bfloat16"):
        q = jnp.ones(shape, dtype=dtype)
        try:
            jax.nn.dot_product_attention(q, q, q, implementation="cudnn").block_until_ready()
            out[dtype] = "runs"
        except Exception as exc:  # the answer we are after, whichever it is
            out[dtype] = f"refused: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def check_tf32(framework: str, device: str) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, MATMUL_N, MATMUL_N))
    exact = a @ b
    adapter = adapters.get(framework)
    out = {}
    for tf32 in (False, True):
        adapter.configure(device, 1, tf32)
        got = adapter.runtime.matmul_float32(a, b, device)
        error = float(np.max(np.abs(got - exact)) / np.max(np.abs(exact)))
        out["tf32_on" if tf32 else "tf32_off"] = error
    return out


CHECKS = {
    "sync": lambda fw, model, preset, device: check_sync(fw, model, preset, device),
    "kernels": lambda fw, model, preset, device: check_kernels(model, preset, device),
    "attention_cudnn": lambda fw, model, preset, device: check_jax_cudnn_attention(device),
    "tf32": lambda fw, model, preset, device: check_tf32(fw, device),
}


# Checks of one framework's own machinery (torch's profiler and kernels, JAX's cuDNN
# attention), with the models they apply to (None: once per framework). The others run
# on every framework.
OWN_CHECKS: dict[str, list[tuple[str, tuple[str, ...] | None]]] = {
    "torch": [("kernels", ("lstm", "attention"))],
    "jax": [("attention_cudnn", None)],
}
OWN_CHECK_NEEDS = {"attention_cudnn": "attention"}  # a model the check is about


def jobs(frameworks: list[str], models: list[str]) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for fw in frameworks:
        out += [("sync", fw, m) for m in models]
        for check, applies_to in OWN_CHECKS.get(fw, []):
            if applies_to is not None:
                out += [(check, fw, m) for m in models if m in applies_to]
            elif check not in OWN_CHECK_NEEDS or OWN_CHECK_NEEDS[check] in models:
                out.append((check, fw, None))
        out.append(("tf32", fw, None))
    return out


def check_task(args: dict[str, Any], fault: Any = None) -> dict[str, Any]:
    """One check, as a bench.workers task (args: check, framework, model, preset, device)."""
    return CHECKS[args["check"]](args["framework"], args["model"], args["preset"], args["device"])


def run_job(check: str, framework: str, model: str | None, preset: str, device: str,
            timeout_s: float, logs: Path) -> dict[str, Any]:
    """One check in its own process (bench.workers), with a cell's environment; never
    raises."""
    job = workers.Job("benchmarks.gpu_paths:check_task",
                      {"check": check, "framework": framework, "model": model,
                       "preset": preset, "device": device},
                      threads=1, device=device, timeout_s=timeout_s)
    outcome = workers.run(job, logs / f"{check}-{framework}-{model or 'all'}.log")
    row: dict[str, Any] = {"check": check, "framework": framework, "model": model,
                           "seconds": round(outcome.wall_s, 1)}
    if not outcome.ok:
        return {**row, "error": f"{outcome.status}: {outcome.describe()}"}
    return {**row, "result": outcome.value}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="torch,jax")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default="gpu", choices=adapters.DEVICES)
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=300.0, help="per check process (s)")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "gpu_paths.json")
    args = parser.parse_args(argv)
    frameworks = [f for f in args.frameworks.split(",") if f]
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(frameworks) - set(adapters.FRAMEWORKS)) + sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"not known: {', '.join(unknown)}")
    rows = []
    for fw in frameworks:
        if not adapters.installed(fw):
            rows.append({"check": "all", "framework": fw, "model": None,
                         "error": f"{fw} is not installed"})
            continue
    checks = [c for c in args.checks.split(",") if c]
    if set(checks) - set(CHECKS):
        parser.error(f"checks not known: {', '.join(sorted(set(checks) - set(CHECKS)))}")
    for check, fw, model in jobs([f for f in frameworks if adapters.installed(f)], models):
        if check not in checks:
            continue
        row = run_job(check, fw, model, args.preset, args.device, args.timeout,
                      args.output.parent / "gpu_paths_logs")
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"device": args.device, "preset": args.preset,
                                       "cwd": os.getcwd(), "rows": rows}, indent=1))
    failed = [r for r in rows if "error" in r or not _passed(r.get("result"))]
    print(f"{len(rows) - len(failed)} of {len(rows)} checks passed; written to {args.output}")
    return 1 if failed else 0


def _passed(result: Any) -> bool:
    """A check's verdict; checks that only report (tf32, attention_cudnn) pass."""
    if not isinstance(result, dict):
        return True
    if "passed" in result:
        return bool(result["passed"])
    return all(_passed(v) for v in result.values())


if __name__ == "__main__":
    sys.exit(main())
