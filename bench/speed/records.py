"""One cell's repeats (one process each) combined into one record.

The steady-state statistics come from every repeat's samples pooled together; the
medians of the repeats are kept too, and their spread is the between-process noise
(what a single process cannot show: a slow minute on the machine, a different memory
layout). One-off costs (compile, first step) are the median over repeats; peak memory is
the largest. A repeat that failed makes the cell's status that failure, with its error,
and the cell keeps whatever its successful repeats measured.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.speed import stats

# Metrics that are a property of one process, combined by the median over repeats.
PER_PROCESS = ("import_s", "rss_after_import_mib", "build_s", "compile_s", "first_step_s",
               "time_to_first_step_s", "warmup_steps", "warmup_s", "sampling_s",
               "first_loss", "last_loss", "preload_calls_s")
PEAKS = ("peak_rss_mib", "peak_device_mib")
# The machine's load while a process sampled (bench.speed.machineload): the worst repeat's.
WORST_LOAD = ("load_other_cpu_share", "load_steal_share", "load_involuntary_switches_per_s",
              "load_loadavg_1min_max")


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A record of the same shape as one repeat's, for all of `records` (one cell)."""
    if not records:
        raise ValueError("no records to combine")
    records = sorted(records, key=lambda r: r.get("repeat", 1))
    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]
    out = dict(ok[0] if ok else records[0])
    out["repeats"] = len(records)
    out["repeats_ok"] = len(ok)
    # the commits its processes ran at (more than one only in a resume with --allow-changes)
    out["commits"] = sorted({(r.get("ran_under") or {}).get("git_commit") for r in records}
                            - {None})
    if failed:
        first = failed[0]
        out["status"] = first["status"]
        prefix = f"repeat {first.get('repeat', 1)} of {len(records)}: " if len(records) > 1 else ""
        out["error"] = prefix + (first.get("error") or "")
    if not ok:
        return out
    pooled = [s for r in ok for s in r["samples_ms"]]
    out["samples_ms"] = pooled
    out["process_samples_ms"] = [r["samples_ms"] for r in ok]  # per repeat, for compare
    # The machine-speed probe of each of those samples (bench.speed.speedprobe); [] in records
    # made before the probe existed.
    out["process_probe_ms"] = [r.get("probe_ms", []) for r in ok]
    out["process_matmul_probe_ms"] = [r.get("matmul_probe_ms", []) for r in ok]
    out["wall_s"] = sum(r.get("wall_s") or 0.0 for r in records)
    metrics = dict(ok[0]["metrics"])
    for key in PER_PROCESS:
        metrics[key] = _median([r["metrics"].get(key) for r in ok])
    for key in (*PEAKS, *WORST_LOAD):
        present = [r["metrics"][key] for r in ok if r["metrics"].get(key) is not None]
        metrics[key] = max(present) if present else None
    # Which repeats sampled on a loaded machine (None: recorded before the counters).
    out["process_loaded"] = [r["metrics"].get("loaded") for r in ok]
    known = [v for v in out["process_loaded"] if v is not None]
    metrics["loaded_repeats"] = sum(map(bool, known)) if known else None
    metrics["loaded"] = metrics["loaded_repeats"] > 0 if known else None
    metrics.update(stats.steady_state(pooled, out["train"]["batch_size"],
                                      metrics["flops_per_step"]))
    repeat_medians = [r["metrics"]["median_ms"] for r in ok]
    metrics["repeat_medians_ms"] = repeat_medians
    # (slowest - fastest repeat) / pooled median: 0 with one repeat
    metrics["repeat_spread"] = (max(repeat_medians) - min(repeat_medians)) / metrics["median_ms"]
    out["metrics"] = metrics
    return out
