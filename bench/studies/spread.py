"""Seed-to-seed spread and the frameworks' agreement, for the studies that repeat each
item over seeds (seqclass, charlm).

The same seed gives every framework the same data, initial weights and batches, so two
frameworks' means over seeds differ by what float32 rounding and their kernels make of
the training trajectories. They agree where that difference is no larger than the
pooled seed-to-seed standard deviation: the spread that the choice of seed alone gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def over_seeds(ok: "pd.DataFrame", keys: Sequence[str], value: str) -> "pd.DataFrame":
    """One row per (keys..., framework): seeds, mean, sd (ddof 1; nan for one seed), min
    and max of `value`."""
    grouped = ok.groupby([*keys, "framework"], sort=False)[value]
    out = grouped.agg(seeds="size", mean="mean", min="min", max="max")
    out["sd"] = grouped.std(ddof=1)
    return out.reset_index()[[*keys, "framework", "seeds", "mean", "sd", "min", "max"]]


def agreement(table: "pd.DataFrame", keys: Sequence[str]) -> "pd.DataFrame":
    """Per `keys` of an over_seeds table: the largest gap between two frameworks' means,
    the pooled seed-to-seed sd (root mean of the frameworks' variances) and whether the
    gap is within it (None with fewer than two seeds)."""
    import pandas as pd

    rows = []
    for key, part in table.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        gap = float(part["mean"].max() - part["mean"].min())
        sd = part["sd"].dropna()
        pooled = float(np.sqrt((sd ** 2).mean())) if len(sd) else float("nan")
        rows.append({**dict(zip(keys, key)), "frameworks": len(part), "largest_gap": gap,
                     "pooled_sd": pooled,
                     "agree": bool(gap <= pooled) if pooled == pooled and len(part) > 1 else None})
    return pd.DataFrame(rows)


def paired_gaps(ok: "pd.DataFrame", keys: Sequence[str], value: str) -> "pd.DataFrame":
    """Per `keys` and pair of frameworks: the largest and the mean difference (first minus
    second) of `value` seed by seed. The same seed is the same data and initial weights,
    so this separates a framework that differs consistently from one whose runs only
    scatter like another seed's."""
    import pandas as pd

    rows = []
    for key, part in ok.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        wide = part.pivot_table(index="seed", columns="framework", values=value)
        names = [f for f in dict.fromkeys(part["framework"]) if f in wide.columns]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                diff = (wide[a] - wide[b]).dropna()
                if len(diff):
                    rows.append({**dict(zip(keys, key)), "pair": f"{a} - {b}", "seeds": len(diff),
                                 "largest_gap": float(diff.abs().max()),
                                 "mean_difference": float(diff.mean())})
    return pd.DataFrame(rows)
