"""Per cell: the ratio of medians with a hierarchical bootstrap interval, the one-sided
Mann-Whitney tests, which steps to compare (fast state, normalized by the matmul probe,
or all), and the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.compare.policy import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DEFAULT_STEPS, STEP_CHOICES
from bench.compare.sides import Cell, CompareError


# --- statistics -----------------------------------------------------------------------
def _bootstrap_medians(processes: Sequence[np.ndarray], resamples: int,
                       rng: np.random.Generator, chosen: np.ndarray | None = None) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of the pooled samples: with several
    processes, each resample picks that many processes with replacement (hierarchical),
    then resamples the steps within each pick. `chosen` (resamples x processes): the
    picks, when the caller shares them between two sides (paired). Vectorised: one
    NaN-padded matrix."""
    k = len(processes)
    sizes = [p.size for p in processes]
    width = max(sizes)
    if chosen is None:
        chosen = rng.integers(0, k, (resamples, k)) if k > 1 else np.zeros((resamples, 1), int)
    pooled = np.full((resamples, k * width), np.nan)
    for slot in range(k):
        for i, samples in enumerate(processes):
            rows = np.nonzero(chosen[:, slot] == i)[0]
            if rows.size:
                draws = samples[rng.integers(0, sizes[i], (rows.size, sizes[i]))]
                pooled[rows[:, None], slot * width + np.arange(sizes[i])] = draws
    return np.nanmedian(pooled, axis=1)


def ratio_interval(base: Sequence[Sequence[float]], current: Sequence[Sequence[float]],
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                   paired: bool = False) -> tuple[float, float, float]:
    """median(current) / median(base) over pooled samples, and its 95% bootstrap interval
    (hierarchical where a side has several processes).

    paired: process i of one side ran next to process i of the other (`fwbench ab`
    interleaves them), so a resample picks the same pairs on both sides: whatever slowed
    the machine for a pair's minute slows both of its processes and cancels in the ratio
    instead of widening the interval. Needs as many processes on each side."""
    a = [np.asarray(p, float) for p in base if len(p)]
    b = [np.asarray(p, float) for p in current if len(p)]
    if not a or not b:
        raise CompareError("a side has no samples")
    if paired and len(a) != len(b):
        raise CompareError(f"a paired interval needs as many processes on each side, not "
                           f"{len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    chosen = None
    if paired and len(a) > 1:
        chosen = rng.integers(0, len(a), (resamples, len(a)))
    ratios = (_bootstrap_medians(b, resamples, rng, chosen)
              / _bootstrap_medians(a, resamples, rng, chosen))
    low, high = np.percentile(ratios, [2.5, 97.5])
    ratio = float(np.median(np.concatenate(b)) / np.median(np.concatenate(a)))
    return ratio, float(low), float(high)


def _probed(processes: Sequence[Sequence[float]], probes: Sequence[Sequence[float]]) -> bool:
    """Whether every process has one probe per sample (records from before the probes
    have none)."""
    return len(probes) == len(processes) and all(
        len(p) == len(s) and len(p) for s, p in zip(processes, probes))


def fast_state_processes(base: Cell, current: Cell) -> tuple[list[list[float]], list[list[float]]] | None:
    """Each side's processes cut down to their fast-state steps (bench.speed.speedprobe), the
    fast level taken over both sides' probes; processes with fewer than
    MIN_FAST_SAMPLES such steps are left out. None if a process has no probes, or if a
    side keeps fewer than half its processes: then every step is compared."""
    from bench.speed import speedprobe

    cells = (base, current)
    if not all(_probed(c.processes, c.probes) for c in cells):
        return None
    level = speedprobe.fast_level([p for c in cells for p in c.probes])
    out = []
    for c in cells:
        kept = [fast for fast in (speedprobe.fast_samples(s, p, level)
                                  for s, p in zip(c.processes, c.probes))
                if len(fast) >= speedprobe.MIN_FAST_SAMPLES]
        if 2 * len(kept) < len(c.processes):
            return None
        out.append(kept)
    return out[0], out[1]


def normalized_processes(base: Cell, current: Cell) -> tuple[list[list[float]], list[list[float]]] | None:
    """Each side's processes with every step rescaled by its block's matmul probe to the
    median probe of both sides (bench.speed.speedprobe.normalized); None if a process has no
    matmul probes or the two sides' probes are of different versions (their times
    differ by design)."""
    from bench.speed import speedprobe

    cells = (base, current)
    if not all(_probed(c.processes, c.matmul_probes) for c in cells):
        return None
    if base.matmul_probe_version != current.matmul_probe_version:
        return None
    reference = float(np.median(np.concatenate([p for c in cells for p in c.matmul_probes])))
    return tuple([speedprobe.normalized(s, p, reference) for s, p in zip(c.processes, c.matmul_probes)]
                 for c in cells)




def one_sided_p(base: Sequence[float], current: Sequence[float], slower: bool) -> float:
    """Mann-Whitney U: p of 'current is stochastically larger (slower) than base', or of
    'smaller' with slower=False."""
    from scipy.stats import mannwhitneyu

    alternative = "greater" if slower else "less"
    return float(mannwhitneyu(current, base, alternative=alternative).pvalue)


def verdict(ratio: float, low: float, high: float, p_slower: float, p_faster: float,
            threshold: float, alpha: float) -> str:
    if ratio > 1 + threshold and low > 1 and p_slower < alpha:
        return "slower"
    if ratio < 1 / (1 + threshold) and high < 1 and p_faster < alpha:
        return "faster"
    return "no clear change"


def cell_statistics(a: Cell, b: Cell, steps: str = DEFAULT_STEPS,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """What verdict() needs for one cell: ratio, low, high, p slower, p faster, the
    medians compared (normalized ms where normalized), and which steps they came from.
    steps: "fast", the fast-state
    steps where both sides have enough; "normalized", every step rescaled by the matmul
    probe; "all", every step as measured. Where the probes needed are missing, "all".
    Where both cells are `paired` (process i of each ran next to the other's: fwbench
    ab) and the steps chosen kept every process, the interval is paired
    (ratio_interval); "paired" in the result says whether it was."""
    if steps not in STEP_CHOICES:
        raise CompareError(f"steps {steps!r}: expected one of {', '.join(STEP_CHOICES)}")
    chosen = (fast_state_processes(a, b) if steps == "fast" else
              normalized_processes(a, b) if steps == "normalized" else None)
    pa_list, pb_list = chosen if chosen else (a.processes, b.processes)
    paired = (a.paired and b.paired
              and len(pa_list) == len(pb_list) == len(a.processes) == len(b.processes))
    ratio, low, high = ratio_interval(pa_list, pb_list, resamples=resamples, paired=paired)
    pooled_a, pooled_b = np.concatenate(pa_list), np.concatenate(pb_list)
    mismatch = (steps == "normalized" and not chosen
                and a.matmul_probe_version != b.matmul_probe_version)
    used = (f"all (matmul probe versions {a.matmul_probe_version} and "
            f"{b.matmul_probe_version})" if mismatch else
            "all" if not chosen else "normalized" if steps == "normalized" else
            f"fast state ({len(pa_list)}/{len(a.processes)}, {len(pb_list)}/{len(b.processes)} "
            f"processes)")
    return {"base ms": float(np.median(pooled_a)), "current ms": float(np.median(pooled_b)),
            "ratio": ratio, "low": low, "high": high,
            "p slower": one_sided_p(pooled_a, pooled_b, slower=True),
            "p faster": one_sided_p(pooled_a, pooled_b, slower=False), "steps": used,
            "paired": paired}


def median_interval(processes: Sequence[Sequence[float]], resamples: int = 500,
                    seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """The median of the pooled samples and its 95% hierarchical bootstrap interval
    (processes, then steps): a baseline history's point and error bar."""
    kept = [np.asarray(p, float) for p in processes if len(p)]
    if not kept:
        raise CompareError("no samples")
    medians = _bootstrap_medians(kept, resamples, np.random.default_rng(seed))
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(np.concatenate(kept))), float(low), float(high)
