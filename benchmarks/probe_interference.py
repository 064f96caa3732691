"""What does work done between timed steps do to the steps? The experiment behind issue 8.

Every (framework, model, mode, variant) runs in fresh processes of its own, with the
thread variables and CPU affinity of a `fwbench run` cell. Each process builds the
cell's trainer as `bench.speed.measure` does, warms it up, then times steps one by one in
blocks of BLOCK_S seconds and, between blocks (outside the timed steps), does what the
variant says:

    none        nothing: the step alone
    python      speedprobe.probe(cores), the pure-Python loop on each core in turn
    matmul      speedprobe.matmul_probe(), NumPy's BLAS with the cell's thread cap
    matmul-1    the same matmul probe with NumPy's BLAS held to one thread (threadpoolctl)
    both        python + matmul, what bench.speed.measure did until issue 8
    both-1      python + matmul-1: the probes with NumPy's BLAS held to one thread
    counters    reading /proc/stat, /proc/loadavg and getrusage (bench.speed.machineload)

For the probing variants the probes' readings are kept too, so that the script can say
whether a harmless probe still tells a slow machine from slow code: across a cell's
processes, the spread of the median step (sd of its log) is printed as measured and
divided by the process's median matmul probe.

Besides the step times, each process records the CPU time (from /proc/self/task/<tid>/stat,
in 10 ms ticks) that every thread of the process used while the steps were sampled,
with the threads that `import numpy` started (OpenBLAS's worker pool) counted apart:
a pool that spins after the probe has woken it shows as CPU time where no BLAS call is
made. OPENBLAS_THREAD_TIMEOUT=<n> (2^n cycles of spinning before a worker sleeps; 28 by
default) can be passed with --openblas-timeout to test that mechanism.

    python benchmarks/probe_interference.py [--frameworks torch] [--models mlp]
        [--modes compiled] [--variants none,matmul,matmul-1] [--processes 3]
        [--seconds 3] [--threads 2] [--openblas-timeout N] [--output FILE]
"""

from __future__ import annotations

import os
import sys


def _task_ids() -> set[str]:
    return set(os.listdir("/proc/self/task"))


# The threads the BLAS under NumPy starts when it is loaded: read before anything
# imports NumPy (the worker path below runs before `bench` is imported).
_BEFORE_NUMPY = _task_ids()
import numpy as np  # noqa: E402

_BLAS_THREADS = _task_ids() - _BEFORE_NUMPY

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("none", "python", "matmul", "matmul-1", "both", "both-1", "counters")
BLOCK_S = 0.1     # as bench.speed.measure's blocks between probes (s)
WARMUP_S = 1.0    # untimed steps before sampling (s)


def _cpu_ticks() -> dict[str, int]:
    """utime + stime of every thread of this process (clock ticks, 10 ms)."""
    out = {}
    for tid in _task_ids():
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
        except OSError:  # the thread ended meanwhile
            continue
    return out


def _between_blocks(variant: str, cores: list[int]):
    from bench.speed import speedprobe

    if variant == "none":
        return lambda: None
    if variant == "python":
        return lambda: speedprobe.probe(cores)
    if variant == "matmul":
        return speedprobe.matmul_probe
    if variant in ("matmul-1", "both-1"):
        from threadpoolctl import threadpool_limits

        def one_thread() -> float:
            with threadpool_limits(1, user_api="blas"):
                return speedprobe.matmul_probe()
        if variant == "matmul-1":
            return one_thread
        return lambda: (speedprobe.probe(cores), one_thread())
    if variant == "both":
        return lambda: (speedprobe.probe(cores), speedprobe.matmul_probe())
    if variant == "counters":
        from bench.speed import machineload
        return machineload.read
    raise ValueError(f"unknown variant {variant!r}; allowed {VARIANTS}")


def worker(cell_data: dict[str, Any], variant: str, seconds: float) -> dict[str, Any]:
    """In this process: the cell's steps, timed in blocks with `variant` between them."""
    from bench import adapters, canonical, data
    from bench.speed.cells import Cell

    cell = Cell.from_dict(cell_data)
    model_spec, train_spec = cell.specs()
    adapter = adapters.get(cell.framework)
    adapter.configure(cell.device, cell.threads, False)
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    model = adapter.build(model_spec, params, dtype=cell.dtype, device=cell.device)
    trainer = adapter.trainer(model, train_spec.optimizer, train_spec.loss, cell.mode)
    batches = [trainer.put(*data.batch(model_spec, train_spec.batch_size, train_spec.loss,
                                       train_spec.seed, i)) for i in range(4)]
    trainer.compile(batches[0])
    cores = sorted(os.sched_getaffinity(0))
    between = _between_blocks(variant, cores)
    step = 0
    warm_end = time.perf_counter() + WARMUP_S
    while time.perf_counter() < warm_end or step < 3:
        trainer.value(trainer.step(batches[step % 4]))
        step += 1
    between()
    ticks_before = _cpu_ticks()
    samples, blocks, readings = [], [], []
    block = 0
    start = block_start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 10:
        t = time.perf_counter()
        trainer.value(trainer.step(batches[step % 4]))
        samples.append((time.perf_counter() - t) * 1e3)
        blocks.append(block)
        step += 1
        if time.perf_counter() - block_start >= BLOCK_S:
            readings.append(between())
            block += 1
            block_start = time.perf_counter()
    wall_s = time.perf_counter() - start
    ticks_after = _cpu_ticks()
    used = {tid: ticks_after[tid] - ticks_before.get(tid, 0) for tid in ticks_after}
    main = str(os.getpid())
    blas = sum(v for tid, v in used.items() if tid in _BLAS_THREADS)
    others = sum(v for tid, v in used.items() if tid not in _BLAS_THREADS and tid != main)
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    q1, _, q3 = statistics.quantiles(samples, n=4)
    # the matmul probe's time (ms) where the variant times one
    matmul = [r[1] if isinstance(r, tuple) else r for r in readings
              if variant in ("matmul", "matmul-1", "both", "both-1")]
    load = None
    if variant == "counters":  # what the counters saw over the sampled blocks
        from bench.speed import machineload
        load = machineload.summary(readings)
    return {"variant": variant, "samples_ms": samples, "blocks": blocks, "machine_load": load,
            "matmul_probe_median_ms": statistics.median(matmul) if matmul else None,
            "median_ms": statistics.median(samples), "iqr_ms": q3 - q1, "wall_s": wall_s,
            "blas_threads": len(_BLAS_THREADS),
            "cpu_s": {"main": used.get(main, 0) / ticks_per_s, "blas_pool": blas / ticks_per_s,
                      "framework_threads": others / ticks_per_s}}


def _run_worker(cell: Any, variant: str, seconds: float, timeout_env: dict[str, str]) -> dict[str, Any]:
    from bench.speed.harness import cell_env
    from bench.workers import affinity

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, __file__, "--worker", json.dumps(cell.to_dict()), variant,
               str(seconds), str(out)]
        env = {**cell_env(cell), **timeout_env}
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=900, preexec_fn=lambda: os.sched_setaffinity(
                                  0, affinity(cell.threads)))
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{cell.id} {variant} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", default="torch")
    parser.add_argument("--models", default="mlp")
    parser.add_argument("--modes", default="compiled")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--openblas-timeout", type=int, default=None,
                        help="OPENBLAS_THREAD_TIMEOUT for the workers (4-30)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        cell_json, variant, seconds, out = args.worker
        from bench import results
        results.write_json(Path(out), worker(json.loads(cell_json), variant, float(seconds)))
        return 0

    from bench import environment, results
    from bench.speed.cells import Cell

    timeout_env = ({"OPENBLAS_THREAD_TIMEOUT": str(args.openblas_timeout)}
                   if args.openblas_timeout is not None else {})
    variants = args.variants.split(",")
    rows = []
    for fw in args.frameworks.split(","):
        for model in args.models.split(","):
            for mode in args.modes.split(","):
                cell = Cell(fw, model, args.preset, mode, threads=args.threads)
                found: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
                # Round-robin over the variants, so that a slow minute hits them alike.
                for _ in range(args.processes):
                    for variant in variants:
                        found[variant].append(_run_worker(cell, variant, args.seconds, timeout_env))
                for variant, procs in found.items():
                    medians = [p["median_ms"] for p in procs]
                    row = {"cell": cell.id, "variant": variant, "medians_ms": medians,
                           "iqrs_ms": [p["iqr_ms"] for p in procs],
                           "sd_log_median": float(np.std(np.log(medians), ddof=1))
                           if len(medians) > 1 else None,
                           "cpu_s": [p["cpu_s"] for p in procs],
                           "machine_load": [p["machine_load"] for p in procs],
                           "wall_s": [p["wall_s"] for p in procs],
                           "first_samples_ms": procs[0]["samples_ms"][:40]}
                    probes = [p["matmul_probe_median_ms"] for p in procs]
                    if len(medians) > 1 and all(probes):
                        row["sd_log_median_normalized"] = float(np.std(
                            np.log(np.asarray(medians) / np.asarray(probes)), ddof=1))
                    rows.append(row)
                    blas = statistics.mean(c["blas_pool"] / w for c, w in
                                           zip(row["cpu_s"], row["wall_s"]))
                    print(f"{cell.id:45} {variant:9} median "
                          f"{' '.join(f'{m:7.3f}' for m in medians)} ms  IQR "
                          f"{' '.join(f'{q:6.3f}' for q in row['iqrs_ms'])} ms  "
                          f"BLAS pool busy {blas:5.1%} of the wall"
                          + (f"  sd(log median) {row['sd_log_median']:.3f}"
                             if row["sd_log_median"] is not None else "")
                          + (f", matmul-normalized {row['sd_log_median_normalized']:.3f}"
                             if "sd_log_median_normalized" in row else ""), flush=True)
    if args.output:
        results.write_json(args.output, {
            "schema": "fwbench.probe_interference/1", "threads": args.threads,
            "seconds": args.seconds, "openblas_thread_timeout": args.openblas_timeout,
            "environment": environment.describe(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
