"""One speed cell, measured in a process of its own (the task bench.speed.measure:cell_task).

The harness (bench.speed.harness) runs one worker (bench.workers) per cell with the cell's
thread and device environment set, pinned to its cores, so that no framework's state
(thread pools, compile caches, allocator) leaks from one cell into the next. The task
returns the cell's record, whatever happens inside it; if the process dies before that (a
segfault, the OOM killer, a timeout), the harness writes the record instead.

What is timed, in this order (seconds from time.perf_counter):
- import_s: importing the adapter and its framework;
- build_s: building the model from canonical parameters;
- compile_s: the framework's own ahead-of-time trace/compile call, where it has one;
- first_step_s: the first training step, which includes whatever compilation is left
  (not the machine probes a fork server made once for every process of the run: those
  are preload_calls_s, apart);
- steady state: after warm-up, every step on its own, each ending with the loss read
  back to the host, which waits for the device (.item() / .numpy() /
  block_until_ready()). The raw samples are kept.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import adapters, canonical, cpus, data, flops, forkserver, frameworks, results, spec, workers
from bench.speed import machineload, speedprobe, stats
from bench.speed.cells import Cell

SCHEMA = results.CELL_SCHEMA
DISTINCT_BATCHES = 4  # batches cycled through, all on the device before timing starts
@dataclass(frozen=True)
class Budget:
    """How long a cell measures. The sample count adapts: slow cells get fewer samples."""

    warmup_steps: int = 5     # untimed steps after the first (at least, but see warmup_max_s)
    warmup_s: float = 0.5     # ... and untimed for at least this long (s)
    warmup_max_s: float = 2.0  # past this (s), 2 warm-up steps are enough: a 2 s eager step
    #                            has nothing left to warm after the first one compiled it
    min_samples: int = 10     # timed steps, at least (but see sample_max_s)
    max_samples: int = 2000   # timed steps, at most
    sample_s: float = 3.0     # keep sampling until this long (s), once min_samples are in
    sample_max_s: float = 10.0  # past this (s), slow_min_samples timed steps are enough:
    #                             10 samples of JAX's 5 s op-by-op LSTM step took 51 s of
    #                             a 717 s default run; its IQR (15-23%) is small beside the
    #                             14-270x from op by op to jit that such a cell shows
    slow_min_samples: int = 3


class Diverged(ArithmeticError):
    """The training loss became NaN or infinite."""


def _rss_mib() -> float:
    """Resident set size of this process now (MiB); without /proc (macOS) the peak so far,
    which after the imports is the same thing to within the import's transient."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def helper_threadpools() -> list[dict[str, Any]]:
    """Every native thread pool loaded in this process, as threadpoolctl sees it: the
    framework's (torch's libgomp, ...) and the helper libraries' (NumPy's OpenBLAS),
    each with its library file's name and its width (num_threads)."""
    from threadpoolctl import threadpool_info

    return [{"user_api": p.get("user_api"), "internal_api": p.get("internal_api"),
             "library": Path(p.get("filepath") or "").name, "num_threads": p.get("num_threads"),
             "helper": is_helper_pool(p.get("filepath") or "")}
            for p in threadpool_info()]


def is_helper_pool(filepath: str) -> bool:
    """Whether a thread pool's library belongs to NumPy or SciPy (the harness's helpers),
    not to a framework."""
    return any(part in ("numpy.libs", "scipy.libs", "numpy", "scipy", "scipy_openblas32",
                        "scipy_openblas64") for part in Path(filepath).parts)


def _spin(seconds: float) -> None:
    """Busy-wait: CPU work of a known length (sleep would give the core away)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def checked_loss(loss: float, step: int, fault: str | None) -> float:
    if fault == "nan":
        loss = float("nan")
    if not math.isfinite(loss):
        raise Diverged(f"training loss is {loss} at step {step}")
    return loss


def warm_enough(steps: int, seconds: float, budget: Budget) -> bool:
    """Whether warm-up may end after `steps` untimed steps taking `seconds`."""
    enough_steps = steps >= budget.warmup_steps or (steps >= 2 and seconds >= budget.warmup_max_s)
    return enough_steps and seconds >= budget.warmup_s


def sampled_enough(samples: int, seconds: float, budget: Budget) -> bool:
    """Whether sampling may end after `samples` timed steps taking `seconds`."""
    enough_samples = samples >= budget.min_samples or (
        samples >= min(budget.slow_min_samples, budget.min_samples)
        and seconds >= budget.sample_max_s)
    return enough_samples and seconds >= budget.sample_s


# Exceptions (by class name: a group's failure arrives as text) and the status they give.
ERROR_STATUSES = {"FrameworkNotInstalled": "skipped", "DeviceUnavailable": "unavailable",
                  "Diverged": "nan", "MemoryError": "oom"}


def status_of_error(error: str) -> str:
    """Classify a failure from its "ExceptionName: message" text: a missing framework or
    device, out of memory, NaN, or a crash."""
    name = error.split(":", 1)[0].strip()
    if name in ERROR_STATUSES:
        return ERROR_STATUSES[name]
    if ("OutOfMemory" in name or "ResourceExhausted" in name or "RESOURCE_EXHAUSTED" in error
            or "out of memory" in error.lower()):
        return "oom"
    return "crash"


def status_of(exc: BaseException) -> str:
    """Classify an exception raised in a cell (status_of_error of its text)."""
    return status_of_error(f"{type(exc).__name__}: {exc}")


Curves = dict[str, list[float]]


def compile_caches(framework: str, folder: str | None) -> str:
    """Point the framework's persistent compile caches (its record's compile_cache_env)
    at `folder`, an empty one its parent made for a cold start (and removes, whatever way
    this process ends), or leave the user's when None. Returns what the record says."""
    names = frameworks.get(framework).compile_cache_env
    if not names:
        return "none: nothing compiled is kept across processes"
    if folder is None:
        return f"shared: the user's ({', '.join(names)}), warm or not"
    for name in names:
        os.environ[name] = str(Path(folder) / name.lower())
    return f"cold: empty folders in {', '.join(names)}"


def measure(cell: Cell, budget: Budget, tf32: bool = False, fault: workers.Fault | None = None,
            compile_cache: str = "") -> tuple[dict[str, Any], dict[str, Any], list[float], Curves]:
    """Run the cell; returns (metrics, framework facts, raw step times in ms, curves).

    curves: "loss", the loss of every step from the first (before its update), and
    "warmup_ms", the untimed warm-up steps' times, for TensorBoard (`--tensorboard`);
    "probe_ms" and "matmul_probe_ms", the machine-speed probes (bench.speed.speedprobe) of each
    timed step. `fault` (tests and calibration only) strikes after the compile call: it
    raises, exits, kills or hangs there, makes the first loss NaN, or ("slow") makes
    every timed step `fault.fraction` slower by spinning on the CPU for that fraction of
    the warm-up's median step inside the timed region, the way extra work in the step
    would (the record says so: injected_slowdown)."""
    model_spec, train_spec = cell.specs()
    metrics: dict[str, Any] = {}
    facts: dict[str, Any] = {}

    t = time.perf_counter()
    adapter = adapters.get(cell.framework)
    facts["runtime"] = adapter.configure(cell.device, cell.threads, tf32)
    facts["versions"] = adapter.versions()
    metrics["import_s"] = time.perf_counter() - t
    preloaded_s = forkserver.preloaded_import_s(cell.framework)
    if preloaded_s is not None:  # imported once by the run's fork server, before the fork
        metrics["import_s"] += preloaded_s
        facts["process"] = "forked from the run's fork server (framework imported there)"
    else:
        facts["process"] = "fresh interpreter"
    calls = forkserver.preloaded_calls(cell.framework)
    if calls is not None:  # e.g. torch Inductor's CPU-ISA probe: the machine's, not the model's
        facts["preload_calls"], metrics["preload_calls_s"] = calls
    facts["compile_cache"] = compile_cache
    metrics["rss_after_import_mib"] = _rss_mib()

    t = time.perf_counter()
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    model = adapter.build(model_spec, params, dtype=cell.dtype, device=cell.device)
    trainer = adapter.trainer(model, train_spec.optimizer, train_spec.loss, cell.mode)
    batches = [trainer.put(*data.batch(model_spec, train_spec.batch_size, train_spec.loss,
                                       train_spec.seed, i))
               for i in range(DISTINCT_BATCHES)]
    metrics["build_s"] = time.perf_counter() - t
    metrics["param_count"] = adapter.param_count(model)

    t = time.perf_counter()
    facts["compile_api"] = trainer.compile(batches[0])
    metrics["compile_s"] = time.perf_counter() - t if facts["compile_api"] else None

    struck = workers.strike(fault, cell.id)
    t = time.perf_counter()
    first_loss = checked_loss(trainer.value(trainer.step(batches[0])), 0, struck)
    metrics["first_step_s"] = time.perf_counter() - t
    metrics["time_to_first_step_s"] = metrics["first_step_s"] + (metrics["compile_s"] or 0.0)
    losses = [first_loss]  # reading them costs nothing: each step's loss is read back anyway

    step = 1
    warm_start = time.perf_counter()
    warm_ms = []
    while not warm_enough(step - 1, time.perf_counter() - warm_start, budget):
        t = time.perf_counter()
        losses.append(checked_loss(trainer.value(trainer.step(batches[step % DISTINCT_BATCHES])), step,
                               None))
        warm_ms.append((time.perf_counter() - t) * 1e3)
        step += 1
    metrics["warmup_steps"] = step - 1
    metrics["warmup_s"] = time.perf_counter() - warm_start
    slowdown = fault.fraction if struck == "slow" and fault is not None else 0.0
    # Sized from the warm-up's second half: its first steps are still slower than the
    # steady ones, and a spin sized from them overshot (+34% asked for +25%).
    steady_warm = warm_ms[len(warm_ms) // 2:]
    extra_s = slowdown * statistics.median(steady_warm) / 1e3 if slowdown and warm_ms else 0.0
    if slowdown:
        metrics["injected_slowdown"] = slowdown
        metrics["injected_ms"] = extra_s * 1e3  # added to every timed step

    # The machine's speed, probed on the cell's cores between blocks of steps, outside
    # the timed steps (bench.speed.speedprobe): each step gets the probe of its block. The
    # probes leave nothing running: NumPy's BLAS computes the matmul probe on this thread
    # (quiet_helper_pools). Whether anything else used the machine meanwhile is read from
    # counters the kernel keeps anyway, before and after sampling (bench.speed.machineload).
    # Visiting each core needs pinning: without it (macOS) the probe runs where it runs.
    cores = cpus.allowed() if cell.device == "cpu" and cpus.can_pin() else None
    samples_ms: list[float] = []
    block_probes: list[float] = []
    block_matmuls: list[float] = []
    block_sizes = [0]

    def take_probes() -> None:
        block_probes.append(speedprobe.probe(cores))
        block_matmuls.append(speedprobe.matmul_probe())

    load_before = machineload.read()
    take_probes()
    sample_start = block_start = time.perf_counter()
    while len(samples_ms) < budget.max_samples:
        batch = batches[step % DISTINCT_BATCHES]
        t = time.perf_counter()
        loss = trainer.value(trainer.step(batch))  # returns once the device has finished
        if extra_s:
            _spin(extra_s)
        samples_ms.append((time.perf_counter() - t) * 1e3)
        block_sizes[-1] += 1
        last_loss = checked_loss(loss, step, None)
        losses.append(last_loss)
        step += 1
        done = sampled_enough(len(samples_ms), time.perf_counter() - sample_start, budget)
        if done or time.perf_counter() - block_start >= speedprobe.BLOCK_S:
            take_probes()
            if done:
                break
            block_sizes.append(0)
            block_start = time.perf_counter()
    if block_sizes[-1] == 0:  # max_samples reached right after a probe
        block_sizes.pop()
    elif len(block_probes) == len(block_sizes):  # ... or inside a block: close it
        take_probes()
    load = machineload.summary([load_before, machineload.read()])
    metrics["sampling_s"] = time.perf_counter() - sample_start
    metrics["first_loss"], metrics["last_loss"] = first_loss, last_loss

    metrics["flops_per_step"] = flops.train_step_flops(model_spec, train_spec.batch_size)
    metrics.update(stats.steady_state(samples_ms, train_spec.batch_size,
                                      metrics["flops_per_step"]))
    metrics["peak_rss_mib"] = peak_rss_mib()
    peak = adapter.peak_memory_bytes(cell.device)
    metrics["peak_device_mib"] = peak / 2**20 if peak is not None else None
    probes = speedprobe.per_step(block_probes, block_sizes)
    matmuls = speedprobe.per_step(block_matmuls, block_sizes, "mean")
    metrics["probe_median_ms"] = statistics.median(probes)
    metrics["matmul_probe_median_ms"] = statistics.median(matmuls)
    metrics["matmul_probe_version"] = speedprobe.MATMUL_PROBE_VERSION
    # The machine while the cell sampled: other processes' share of its CPU time, the
    # hypervisor's steal, and whether either was past its limit (`loaded`).
    metrics.update({f"load_{k}" if k != "loaded" else k: v for k, v in load.items()})
    facts["threadpools"] = helper_threadpools()
    return metrics, facts, samples_ms, {"loss": losses, "warmup_ms": warm_ms, "probe_ms": probes,
                                        "matmul_probe_ms": matmuls}


def skeleton(cell: Cell, run_id: str | None, repeat: int, status: str = "ok",
             error: str | None = None) -> dict[str, Any]:
    """A cell record with nothing measured yet: what every record of SCHEMA holds."""
    model_spec, train_spec = cell.specs()
    return {"schema": SCHEMA, "run_id": run_id, "cell_id": cell.id, "repeat": repeat,
            "cell": cell.to_dict(), "status": status, "error": error,
            "spec": spec.to_dict(model_spec), "train": spec.to_dict(train_spec),
            "metrics": {}, "framework": {}, "samples_ms": []}


def cell_task(job: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """Measure the job's cell (run_id, repeat, cell, budget, tf32) and return its record;
    failures become a status and an error text, never a raise."""
    cell = Cell.from_dict(job["cell"])
    budget = Budget(**job.get("budget", {}))
    out = skeleton(cell, job.get("run_id"), job.get("repeat", 1))
    out.update({"budget": asdict(budget), "tf32": bool(job.get("tf32", False)),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "affinity": cpus.allowed(), "pid": os.getpid()})
    started = time.perf_counter()
    cache = compile_caches(cell.framework, job.get("compile_cache_dir"))
    try:
        out["metrics"], out["framework"], out["samples_ms"], curves = measure(
            cell, budget, out["tf32"], fault, cache)
        out["losses"], out["warmup_ms"] = curves["loss"], curves["warmup_ms"]
        out["probe_ms"] = curves["probe_ms"]  # the machine-speed probes of each timed step
        out["matmul_probe_ms"] = curves["matmul_probe_ms"]
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, by kind
        out["status"] = status_of(exc)
        out["error"] = f"{type(exc).__name__}: {exc}".strip()
        if out["status"] == "crash":
            out["error"] += "\n" + "".join(traceback.format_exc(limit=-6))
    out["wall_s"] = time.perf_counter() - started
    return out
