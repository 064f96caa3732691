"""A stored baseline's history: one entry per saved baseline (its commit, date, versions
and every cell's median step time with a 95% interval), appended to
results/baselines/<environment key>/history.jsonl, so that a baseline replaced by a newer
one still shows where each cell stood, like asv's graphs (the report draws them).

The baseline folder itself holds only the newest run's records (compare needs the raw
samples of one baseline); the history keeps the numbers, not the samples, so it stays
small enough to commit: about 2 KB per entry for the 9 cells of the perf matrix."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import results
from bench.compare.sides import Side, _from_run

SCHEMA = "fwbench.baseline-history/1"
FILE = "history.jsonl"


def entry(run_dir: Path, backfilled: bool = False) -> dict[str, Any]:
    """The history entry of a baseline run: when, which commit and versions, and per
    measured cell its median step time (ms) with a 95% interval and its process count.
    backfilled: the entry of a baseline saved before histories were kept; its save time
    is unknown, so "saved" is when its run was created, and the entry says so."""
    from bench.compare.stats import median_interval

    run = results.read_document(Path(run_dir) / "run.json", results.RUN_SCHEMA)
    side: Side = _from_run(Path(run_dir))
    cells = []
    for cell in side.cells.values():
        if not cell.processes:
            continue
        median, low, high = median_interval(cell.processes)
        cells.append({**{k: cell.label.get(k) for k in ("framework", "model", "mode", "preset",
                                                        "device", "dtype", "batch_size",
                                                        "seq_len")},
                      "median_ms": median, "low_ms": low, "high_ms": high,
                      "processes": len(cell.processes)})
    env = run.get("environment", {})
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"schema": SCHEMA, "run_id": run.get("run_id"), "created": run.get("created"),
            "saved": (run.get("created") or now) if backfilled else now,
            "backfilled": backfilled, "git_commit": env.get("git_commit"),
            "versions": side.versions, "cells": cells}


def append(baseline: Path, item: dict[str, Any]) -> Path:
    """Add `item` to the baseline folder's history (one JSON line, appended: a history
    is never rewritten)."""
    path = Path(baseline) / FILE
    with open(path, "a") as f:
        f.write(json.dumps(item, sort_keys=True) + "\n")
    return path


def read(baseline: Path) -> list[dict[str, Any]]:
    """The entries of a baseline folder's history, oldest first ([] without one). A line
    that is not an entry is a ResultFileError naming the file and line."""
    path = Path(baseline) / FILE
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise results.ResultFileError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or item.get("schema") != SCHEMA:
            raise results.ResultFileError(f"{path}, line {number}: not a {SCHEMA} entry")
        out.append(item)
    return out


def frame(baseline: Path) -> "pandas.DataFrame":  # noqa: F821
    """The history as one row per (entry, cell): entry (0, 1, ...), saved, git_commit,
    the cell's keys, median_ms, low_ms, high_ms, processes."""
    import pandas as pd

    rows = [{"entry": i, "saved": e.get("saved"), "created": e.get("created"),
             "git_commit": e.get("git_commit"), "run_id": e.get("run_id"), **cell}
            for i, e in enumerate(read(baseline)) for cell in e.get("cells", [])]
    return pd.DataFrame(rows)

