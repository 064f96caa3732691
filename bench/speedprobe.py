"""How fast is the machine right now? A probe timed between a cell's steps.

On the project's 2-core VM the machine changes speed for spans of a fraction of a second
to tens of seconds, whatever runs on it (measured: a 20,000-iteration pure-Python loop
takes 0.9-1.1 ms in one state and 1.6-1.9 ms in the other, in every framework's process
alike; within one 40 s process, 2 s medians of a TensorFlow MLP step ranged 3.7-5.1 ms).
A host neighbour sharing the physical core, caches or memory would do this. A process
that happens to sample in a slow span reports a median step up to 1.6x longer: that was
most of the noise between processes of one cell (benchmarks/calibrate_compare.py).

So while a cell samples it times two probes between blocks of steps (outside the timed
steps): a pure-Python loop on every core it may use, and a small NumPy float32 matmul
loop, which also feels the caches and memory bandwidth a neighbour shares (timed after
10 ms of the same loop, so that what the step did just before does not show in it). Each step's
record carries the slower Python probe around its block and the mean matmul probe.
`fwbench compare` rescales each step by its matmul probe by default ("normalized": on
this VM a process's median step and its median matmul probe correlate at 0.88-0.98
across processes, and the rescaled medians vary 2-5% between processes instead of
7-18%). It can also keep only the steps whose Python probe is within FAST_MARGIN of the
fastest seen ("fast"). Neither removes the code's own speed: 25% more work in the step
is 25% more on a fast or a slow machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

PROBE_LOOPS = 10_000      # pure-Python loop iterations: about 0.5 ms on a 2.4 GHz EPYC core
BLOCK_S = 0.1             # steps between two probes, at least this long (s): overhead ~12%
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
# between records of the same version (1: no settling, BLOCK_S 0.05; 2: settled).
MATMUL_PROBE_VERSION = 2


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
    """A NumPy float32 matmul loop (ms), on NumPy's BLAS with the cell's thread cap,
    timed after MATMUL_SETTLE_S of the same loop: unlike the Python loop it also feels
    the caches and memory a neighbour shares."""
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
