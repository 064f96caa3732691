"""Summaries of raw timing samples: robust statistics, because step times have a long
right tail (a context switch, a garbage collection) that a mean would follow."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, quartiles, IQR, 5th/95th percentiles, mean, min and count of `samples`."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    return {"n": int(x.size), "median": float(median), "q1": float(q1), "q3": float(q3),
            "iqr": float(q3 - q1), "p5": float(np.percentile(x, 5)),
            "p95": float(np.percentile(x, 95)), "mean": float(x.mean()), "min": float(x.min())}


def steady_state(samples_ms: Sequence[float], batch_size: int,
                 flops_per_step: float) -> dict[str, float | int]:
    """The step-time metrics of a cell from its raw per-step samples (ms): the summary
    as median_ms, q1_ms, ..., samples (the count), then throughput (samples/s at the
    median step) and achieved FLOP/s at the median step."""
    summary = summarize(samples_ms)
    median_s = summary["median"] / 1e3
    return {**{f"{k}_ms" if k != "n" else "samples": v for k, v in summary.items()},
            "throughput": batch_size / median_s, "flops_per_s": flops_per_step / median_s}


def relative_iqr(samples: Sequence[float]) -> float:
    """IQR over median: the noise of a cell as a fraction of its typical value."""
    s = summarize(samples)
    return s["iqr"] / s["median"] if s["median"] > 0 else float("nan")
