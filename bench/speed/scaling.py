"""Scaling curves: step time against batch size and sequence length.

The points of a curve are the run's scaling-sweep cells (bench.speed.cells.scaling_cells,
measured once each) plus the matrix cell of the same framework, model and mode at the
preset's default size, so a curve passes through the figure the rest of the report shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.speed.cells import SCALING_AXES, SCALING_MODE

POINT_COLUMNS = ["run_id", "framework", "model", "mode", "axis", "value", "median_ms", "q1_ms",
                 "q3_ms", "throughput", "status", "error"]


def split(frame: "pandas.DataFrame") -> tuple[Any, Any]:  # noqa: F821
    """(matrix cells, scaling-sweep points) of a results.load() frame."""
    if "sweep_axis" not in frame:
        return frame, frame.iloc[0:0]
    is_sweep = frame["sweep_axis"].notna()
    return frame[~is_sweep], frame[is_sweep]


def points(frame: "pandas.DataFrame") -> "pandas.DataFrame":  # noqa: F821
    """Every point of every curve, sorted along its axis; failed points keep their status."""
    import pandas as pd

    matrix, sweep = split(frame)
    rows = []
    for (run_id, fw, model), part in sweep.groupby(["run_id", "framework", "model"], sort=False):
        axis = part["sweep_axis"].iloc[0]
        default = matrix[(matrix["run_id"] == run_id) & (matrix["framework"] == fw)
                         & (matrix["model"] == model) & (matrix["mode"] == part["mode"].iloc[0])
                         & (matrix["preset"] == part["preset"].iloc[0])]
        # The matrix may hold several sizes (--batch-sizes); the preset default's is the one
        # whose other axis matches the sweep's (the sweep varies one axis only).
        other = "seq_len" if axis == "batch_size" else "batch_size"
        if other in default and not part[other].isna().all():
            default = default[default[other].isin(part[other].dropna().unique())]
        for _, r in pd.concat([part, default]).iterrows():
            rows.append({"run_id": run_id, "framework": fw, "model": model, "mode": r["mode"],
                         "axis": axis, "value": int(r[axis]),
                         **{k: r.get(k) for k in POINT_COLUMNS[6:10]},
                         "status": r["status"], "error": r["error"]})
    if not rows:
        return pd.DataFrame(columns=POINT_COLUMNS)
    out = pd.DataFrame(rows, columns=POINT_COLUMNS).drop_duplicates(
        ["run_id", "framework", "model", "axis", "value"])
    return out.sort_values(["run_id", "model", "framework", "value"]).reset_index(drop=True)


def exponents(curve_points: "pandas.DataFrame") -> "pandas.DataFrame":  # noqa: F821
    """Per curve: the least-squares slope k of log(median step) on log(size), i.e. step
    time ~ size^k over the measured range (k near 0: launch-bound, near 1: work grows
    linearly and the step with it), and the step time at the largest over the smallest
    size. Curves with fewer than two measured points are left out."""
    import pandas as pd

    rows = []
    ok = curve_points[curve_points["status"] == "ok"]
    for (run_id, fw, model, axis), part in ok.groupby(["run_id", "framework", "model", "axis"],
                                                       sort=False):
        if len(part) < 2:
            continue
        x, y = np.log(part["value"].astype(float)), np.log(part["median_ms"].astype(float))
        slope = float(np.polyfit(x, y, 1)[0])
        first, last = part.iloc[0], part.iloc[-1]
        rows.append({"run_id": run_id, "framework": fw, "model": model, "axis": axis,
                     "from": int(first["value"]), "to": int(last["value"]),
                     "ms at smallest": float(first["median_ms"]),
                     "ms at largest": float(last["median_ms"]),
                     "time ratio": float(last["median_ms"] / first["median_ms"]),
                     "size ratio": float(last["value"] / first["value"]),
                     "exponent k": slope})
    return pd.DataFrame(rows)


def describe() -> str:
    """What the sweep varies, for the report's methodology."""
    axes = ", ".join(f"{model}: {axis.replace('_', ' ')}" for model, axis in SCALING_AXES.items())
    return (f"Scaling curves vary one axis per model ({axes}) in the {SCALING_MODE} mode of "
            f"every framework; each point other than the preset's default is one process.")
