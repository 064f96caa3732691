"""How fast is the machine right now? A probe timed between a cell's steps.

On the project's 2-core VM the cores switch between two speeds, for spans of a fraction
of a second to several seconds, whatever runs on them (measured: a fixed pure-Python loop
takes 0.9-1.1 ms in the fast state and 1.6-1.9 ms in the slow one, in every framework's
process alike; a host neighbour sharing the physical core would do this). A process that
happens to sample mostly in the slow state reports a median step up to 1.4x longer, which
is most of the noise between processes of one cell (benchmarks/calibrate_compare.py).

So while a cell samples, it times this probe on every core it may use, between blocks of
steps (outside the timed steps), and records for every step the slowest probe around its
block. A step whose probe is within FAST_MARGIN of the fastest probe seen counts as taken
in the fast state. `fwbench compare` compares those steps (where both sides have enough of
them), which removes the machine's state from the comparison but not the code's speed: an
extra 25% of work in the step is as slow in the fast state as anywhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

PROBE_LOOPS = 10_000      # pure-Python loop iterations: about 0.5 ms on a 2.4 GHz EPYC core
BLOCK_S = 0.05            # steps between two probes, at least this long (s): overhead ~2%
FAST_MARGIN = 1.25        # fast state: probe within 25% of the fastest (the slow one is ~1.8x)
FAST_LEVEL_PERCENTILE = 2  # the fastest probe, robust to a lucky outlier
MIN_FAST_SAMPLES = 10     # steps in the fast state for a process to count


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


def per_step(block_probes: Sequence[float], block_sizes: Sequence[int]) -> list[float]:
    """Each step's probe: the slower of the probes before and after its block (a state
    change inside the block shows in one of the two). len(block_probes) ==
    len(block_sizes) + 1."""
    if len(block_probes) != len(block_sizes) + 1:
        raise ValueError(f"{len(block_probes)} probes for {len(block_sizes)} blocks: "
                         f"need one more probe than blocks")
    out: list[float] = []
    for i, size in enumerate(block_sizes):
        out.extend([max(block_probes[i], block_probes[i + 1])] * size)
    return out


def fast_level(probes: Sequence[Sequence[float]]) -> float:
    """The fast state's probe time (ms) over several processes' probes: a low percentile."""
    present = [np.asarray(p, float) for p in probes if len(p)]
    if not present:
        raise ValueError("no probes")
    pooled = np.concatenate(present)
    return float(np.percentile(pooled, FAST_LEVEL_PERCENTILE))


def fast_samples(samples: Sequence[float], probes: Sequence[float], level: float) -> list[float]:
    """The samples taken in the fast state (probe <= FAST_MARGIN x level)."""
    if len(samples) != len(probes):
        raise ValueError(f"{len(samples)} samples but {len(probes)} probes")
    limit = FAST_MARGIN * level
    return [s for s, p in zip(samples, probes) if p <= limit]
