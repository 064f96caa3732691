"""Scaling efficiency and the cost of communication, from the cells of a data-parallel
run (`fwbench run --devices N`, bench.distributed.scaling) and the roles its run.json
gives them. Per framework x model x mode and replica count r, with t the median step
time (ms):

- strong scaling (global batch B): speed-up t(1, B) / t(r, B), efficiency speed-up / r;
- weak scaling (B per replica): efficiency t(1, B) / t(r, r B) (1 when r replicas do r
  times the work in the same time);
- communication: t(r) - t(control), the r-replica step minus one replica alone doing
  one replica's share on one replica's cores, in ms and as a share of t(r). Negative
  values mean the control was the slower (noise, or a replica alone losing the cache
  its peers shared); they are shown as measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLUMNS = ["framework", "model", "mode", "batch", "replicas", "strong ms", "speed-up", "efficiency",
           "comm ms", "comm share", "weak ms", "weak efficiency", "weak comm ms"]


def split(frame: Any) -> tuple[Any, Any]:
    """(single-device cells, data-parallel cells) of a results.load frame."""
    if frame.empty or "replicas" not in frame:
        return frame, frame.iloc[0:0]
    parallel = frame["replicas"].notna()
    return frame[~parallel], frame[parallel]


def _median(frame: Any, cell_id: str | None) -> float | None:
    if cell_id is None:
        return None
    row = frame[(frame["cell_id"] == cell_id) & (frame["status"] == "ok")]
    return float(row["median_ms"].iloc[0]) if len(row) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def rows(frame: Any, points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per framework x model x mode x replica count of one run: `frame` is that
    run's results.load, `points` its run.json data_parallel points. A cell that failed
    leaves its figures None."""
    if frame.empty:
        return []
    by_id = frame.set_index("cell_id")
    groups: dict[tuple[str, str, str], dict[tuple[str, int], str]] = {}
    for p in points:
        if p["cell_id"] not in by_id.index:
            continue
        cell = by_id.loc[p["cell_id"]]
        # a control's cell is a group of one: it belongs to the scaling point it serves
        groups.setdefault((cell["framework"], cell["model"], cell["mode"]), {})[
            (p["role"], p["replicas"])] = p["cell_id"]
    out = []
    for (fw, model, mode), roles in groups.items():
        base = _median(frame, roles.get(("strong", 1)))
        for r in sorted({r for _, r in roles}):
            strong = _median(frame, roles.get(("strong", r)))  # global batch B
            weak = _median(frame, roles.get(("weak", r)))
            comm = _minus(strong, _median(frame, roles.get(("control-strong", r))))
            speedup = _ratio(base, strong)
            strong_id = roles.get(("strong", r))
            out.append({
                "framework": fw, "model": model, "mode": mode,
                "batch": int(by_id.loc[strong_id]["batch_size"]) if strong_id else None,
                "replicas": r,
                "strong ms": strong, "speed-up": speedup,
                "efficiency": speedup / r if speedup is not None else None,
                "comm ms": comm if r > 1 else None,
                "comm share": _ratio(comm, strong) if r > 1 else None,
                "weak ms": weak, "weak efficiency": _ratio(base, weak),
                "weak comm ms": (_minus(weak, _median(frame, roles.get(("control-weak", r))))
                                 if r > 1 else None)})
    return out


def formatted(table: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The rows as text: ms to 3 significant figures, ratios to 2 decimals, shares in %."""
    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key in ("speed-up", "efficiency", "weak efficiency"):
            return f"{value:.2f}"
        if key == "comm share":
            return f"{100 * value:.0f}%"
        if key.endswith("ms"):
            return f"{value:.3g}"
        return str(value)

    return [{k: cell(k, v) for k, v in row.items()} for row in table]
