"""The report's findings in words: who is fastest where and by how much, said only where
the data supports it (a bootstrap interval of the ratio that excludes 1), and what a
merged report put together."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 1000  # for the speed-up intervals
BOOTSTRAP_SEED = 0


def ratio_interval(base: Sequence[float], other: Sequence[float], spread: float = 0.0,
                   resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float, float]:
    """median(base) / median(other), with a 95% bootstrap interval from the raw samples,
    widened by the factor (1 + spread).

    The bootstrap only knows the noise between steps of the same processes. Two
    processes of the same cell differ by more (see the README: a median 13% on a small
    VM), so `spread`, the larger relative spread between the two cells' repeat medians,
    widens the interval on both sides: a difference smaller than the noise between
    processes is not claimed."""
    a, b = np.asarray(base, float), np.asarray(other, float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    ratios = [np.median(rng.choice(a, a.size)) / np.median(rng.choice(b, b.size))
              for _ in range(resamples)]
    low, high = np.percentile(ratios, [2.5, 97.5])
    widen = 1.0 + (spread if spread == spread else 0.0)  # NaN (one repeat): no widening
    return float(np.median(a) / np.median(b)), float(low / widen), float(high * widen)


def process_spread(*rows: Any) -> float:
    values = [getattr(r, "repeat_spread", float("nan")) for r in rows]
    values = [v for v in values if v == v and v is not None]
    return max(values) if values else 0.0


def fastest(frame: Any) -> list[dict[str, Any]]:
    """Per model: each framework's fastest measured mode, best first, and whether the
    best is clearly ahead of the runner-up (95% bootstrap interval of their ratio of
    medians above 1) or not."""
    out = []
    ok = frame[frame["status"] == "ok"]
    for model, part in ok.groupby("model", sort=False):
        best = part.loc[part.groupby("framework")["median_ms"].idxmin()].sort_values("median_ms")
        if best.empty:
            continue
        rows = list(best.itertuples())
        entry: dict[str, Any] = {"model": model, "order": [(r.framework, r.mode, r.median_ms)
                                                           for r in rows]}
        if len(rows) > 1:
            ratio, low, high = ratio_interval(rows[1].samples_ms, rows[0].samples_ms,
                                              process_spread(rows[0], rows[1]))
            entry.update(ratio=ratio, low=low, high=high, clear=low > 1.0)
        out.append(entry)
    return out


def compiled_speedups(frame: Any) -> Any:
    """Per framework, model and compiled mode: eager median / compiled median with its
    interval (ratio_interval), from the measured cells of one run."""
    import pandas as pd

    rows = []
    ok = frame[frame["status"] == "ok"]
    for (fw, model), part in ok.groupby(["framework", "model"], sort=False):
        eager = part[part["mode"] == "eager"]
        if eager.empty:
            continue
        base = next(eager.itertuples())
        for r in part[part["mode"] != "eager"].itertuples():
            ratio, low, high = ratio_interval(base.samples_ms, r.samples_ms, process_spread(base, r))
            rows.append({"framework": fw, "model": model, "mode": r.mode, "speedup": ratio,
                         "low": low, "high": high, "eager_ms": base.median_ms})
    return pd.DataFrame(rows, columns=["framework", "model", "mode", "speedup", "low", "high",
                                       "eager_ms"])


def summary_lines(frame: Any) -> list[str]:
    """Who is fastest where and by how much, saying so only where the data supports it."""
    lines = []
    for f in fastest(frame):
        (fw1, mode1, ms1), *rest = f["order"]
        if not rest:
            lines.append(f"{f['model']}: only {fw1} was measured ({ms1:.3g} ms/step, {mode1}).")
            continue
        fw2, mode2, ms2 = rest[0]
        span = f"{f['ratio']:.2f}x (interval {f['low']:.2f}-{f['high']:.2f})"
        if f["clear"]:
            lines.append(f"{f['model']}: {fw1} ({mode1}, {ms1:.3g} ms/step) is fastest, {span} "
                         f"ahead of {fw2} ({mode2}, {ms2:.3g} ms/step).")
        else:
            lines.append(f"{f['model']}: no clear difference between {fw1} ({mode1}, "
                         f"{ms1:.3g} ms/step) and {fw2} ({mode2}, {ms2:.3g} ms/step): "
                         f"{span}, an interval that includes 1.")
    return lines


def merge_note(run_dirs: Sequence[Path]) -> str:
    """What --merge put together, and every environment key in which the runs differ."""
    from bench import compare

    sides = [compare.load(d) for d in run_dirs]
    differences = sorted({d for other in sides[1:]
                          for d in compare.environment_differences(sides[0], other)})
    names = ", ".join(s.name for s in sides)
    return (f"Runs {names} are merged (--merge): cells of the same framework, model and "
            f"mode from different runs are compared with each other, "
            + (f"although the environments differ ({'; '.join(differences)})."
               if differences else "all from one environment."))
