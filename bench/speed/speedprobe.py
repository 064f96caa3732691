"""How fast is the machine right now? Probes timed between a cell's blocks of steps.

On the project's 2-core VM the same step runs at different speeds for spans of seconds
to tens of seconds, and a process that samples in a slow span reports a slower median.
So while a cell samples it times two probes between
blocks of steps (outside the timed steps): a pure-Python loop on every core it may use,
and a small NumPy float32 matmul loop, which also feels the caches and memory bandwidth
a neighbour shares (timed after 10 ms of the same loop, so that what the step did just
before does not show in it). Each step's record carries the slower Python probe around
its block and the mean matmul probe. `fwbench compare` can rescale each step by its
matmul probe ("normalized") or keep only the steps whose Python probe is within
FAST_MARGIN of the fastest seen ("fast"). Neither removes the code's own speed: 25% more
work in the step is 25% more on a fast or a slow machine.

A probe must leave nothing running when it returns. Until issue 8 the matmul probe ran
on NumPy's BLAS with the cell's thread cap: at 2 threads it woke OpenBLAS's worker,
which then spun for about 0.1 s (2^28 cycles) after each call on the cell's cores: busy
66-85% of the sampling time, it slowed the steps it was meant to calibrate (median of 3
processes: torch's eager MLP 1.43 ms without probes, 2.26 ms with them, IQR 0.13 to 6.9
ms; JAX's attention 10.2 to 15.9 ms; benchmarks/probe_interference.py, whose results
are in results/reference/probe-interference-cpu-2core/). With OPENBLAS_THREAD_TIMEOUT=4
(2^4 cycles of spinning) the same probe left torch's step alone (1.40 and 1.45 ms). The
measured process now holds NumPy's BLAS to one thread (bench.workers.quiet_helper_pools),
so the probe computes on the calling thread and has no worker to wake: with the probes
so held, the cells' medians were 0.98-1.03x those without any probe, inside the noise
between processes (sd of log medians 0.003-0.07). The probes now run every BLOCK_S =
0.5 s instead of 0.1 s, so that fewer steps follow one. benchmarks/harness_overhead.py
checks the result in every cell against a hand-written loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

PROBE_LOOPS = 10_000      # pure-Python loop iterations: about 0.5 ms on a 2.4 GHz EPYC core
BLOCK_S = 0.5             # steps between two probes, at least this long (s): a probe takes
#                           ~11 ms, so ~2% of the sampling; and fewer steps follow a probe
FAST_MARGIN = 1.25        # fast state: probe within 25% of the fastest (the slow one is ~1.8x)
FAST_LEVEL_PERCENTILE = 2  # the fastest probe, robust to a lucky outlier
MIN_FAST_SAMPLES = 10     # steps in the fast state for a process to count
MATMUL_SIZE = 128         # the matmul probe: float32 square matrices of this size ...
MATMUL_REPEATS = 8        # ... multiplied this many times: about 0.5 ms on one EPYC core
# Untimed matmuls before the timed ones (s). What ran just before changes the probe for
# milliseconds: after a pure-Python spin the same matmul ran 15-25% slower for its
# first ~5 ms and reached the steady speed after ~10 ms (torch and TF attention cells,
# 1 thread). Unsettled, the probe read a slowdown injected as a spin as a slower machine
# and normalized a quarter of it away; after 10 ms of settling, probes after steps with
# and without the spin agreed within 0-5%.
MATMUL_SETTLE_S = 0.010
# Bumped when the matmul probe's meaning changes: `fwbench compare` normalizes only
# between records of the same version (1: no settling, BLOCK_S 0.05; 2: settled; 3: on
# one BLAS thread whatever the cell's threads, see above).
MATMUL_PROBE_VERSION = 3


def _loop() -> float:
    """One probe on the current core (ms): integer arithmetic in the interpreter."""
    started = time.perf_counter()
    total = 0
    for i in range(PROBE_LOOPS):
        total += i * i
    return (time.perf_counter() - started) * 1e3


def probe(cores: Sequence[int] | None = None) -> float:
    """The slowest probe over `cores` (ms): the calling thread visits each core in turn
    and comes back to its affinity. A multi-threaded step is as slow as its slowest
    core, so a step counts as fast only if every core it may use is."""
    if not cores or len(cores) == 1:
        return _loop()
    home = os.sched_getaffinity(0)
    try:
        timings = []
        for core in cores:
            os.sched_setaffinity(0, {core})
            timings.append(_loop())
        return max(timings)
    finally:
        os.sched_setaffinity(0, home)


_matmul_operands: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def matmul_probe() -> float:
    """A NumPy float32 matmul loop (ms), timed after MATMUL_SETTLE_S of the same loop:
    unlike the Python loop it also feels the caches and memory a neighbour shares. In a
    measured process NumPy's BLAS is held to one thread, so it runs on this thread."""
    global _matmul_operands
    if _matmul_operands is None:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32)
        _matmul_operands = (a, a.T.copy(), np.empty_like(a))
    a, b, out = _matmul_operands
    settled = time.perf_counter() + MATMUL_SETTLE_S
    while time.perf_counter() < settled:
        np.matmul(a, b, out=out)
    started = time.perf_counter()
    for _ in range(MATMUL_REPEATS):
        np.matmul(a, b, out=out)
    return (time.perf_counter() - started) * 1e3


def per_step(block_probes: Sequence[float], block_sizes: Sequence[int],
             combine: str = "max") -> list[float]:
    """Each step's probe from the probes before and after its block: the slower of the
    two ("max": a state change inside the block shows in one of them) or their mean
    ("mean"). len(block_probes) == len(block_sizes) + 1."""
    if len(block_probes) != len(block_sizes) + 1:
        raise ValueError(f"{len(block_probes)} probes for {len(block_sizes)} blocks: "
                         f"need one more probe than blocks")
    pick = max if combine == "max" else (lambda x, y: (x + y) / 2)
    out: list[float] = []
    for i, size in enumerate(block_sizes):
        out.extend([pick(block_probes[i], block_probes[i + 1])] * size)
    return out


def fast_level(probes: Sequence[Sequence[float]]) -> float:
    """The fast state's probe time (ms) over several processes' probes: a low percentile."""
    present = [np.asarray(p, float) for p in probes if len(p)]
    if not present:
        raise ValueError("no probes")
    pooled = np.concatenate(present)
    return float(np.percentile(pooled, FAST_LEVEL_PERCENTILE))


def normalized(samples: Sequence[float], probes: Sequence[float], reference: float) -> list[float]:
    """The samples rescaled to a machine whose matmul probe takes `reference` ms: each
    step times reference / its block's probe. A change in the code's own work keeps its
    size; a change in the machine's speed that the probe feels cancels."""
    if len(samples) != len(probes):
        raise ValueError(f"{len(samples)} samples but {len(probes)} probes")
    return [s * reference / p for s, p in zip(samples, probes)]


def fast_samples(samples: Sequence[float], probes: Sequence[float], level: float) -> list[float]:
    """The samples taken in the fast state (probe <= FAST_MARGIN x level)."""
    if len(samples) != len(probes):
        raise ValueError(f"{len(samples)} samples but {len(probes)} probes")
    limit = FAST_MARGIN * level
    return [s for s, p in zip(samples, probes) if p <= limit]
