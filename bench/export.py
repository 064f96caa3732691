"""`fwbench export RUN --format F`: a run's cells in the formats other tools read.

    pytest-benchmark         the JSON of `pytest --benchmark-json` (with the raw samples as
                             `data`, in seconds): `pytest-benchmark compare FILE` lists the
                             cells, and `fwbench compare` reads it back
    github-action-benchmark  the `customSmallerIsBetter` JSON of benchmark-action/
                             github-action-benchmark: name, unit (ms), value (median step),
                             range (half the IQR), extra (what and where)
    csv                      one row per cell, numbers as numbers (milliseconds, seconds,
                             MiB, ratios as fractions), for pandas or a spreadsheet

Cells that did not measure (failed, skipped) have no samples: the two JSON formats leave
them out and `skipped_cells` says which; the CSV keeps them with their status.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from bench import results
from bench.compare.sides import gpu_names

FORMATS = ("pytest-benchmark", "github-action-benchmark", "csv")
# The CSV's columns: what the cell is, then its numbers (units in the names).
CSV_COLUMNS = ("run_id", "cell_id", "framework", "model", "mode", "preset", "device",
               "dtype", "batch_size", "seq_len", "threads", "replicas", "sweep_axis", "status",
               "median_ms", "iqr_ms", "p95_ms", "samples", "throughput", "flops_per_s",
               "compile_s", "first_step_s", "peak_mib", "repeats", "repeats_ok",
               "repeat_spread", "wall_s", "versions", "git_commit", "error")


def cell_name(row: Any) -> str:
    """framework/model/mode/b<batch>[/L<length>][/dp<replicas>/th<cores>], and the
    preset, device and dtype where they are not the defaults."""
    parts = [str(row["framework"]), str(row["model"]), str(row["mode"])]
    if _number(row.get("batch_size")) is not None:
        parts.append(f"b{int(row['batch_size'])}")
    if _number(row.get("seq_len")) is not None:
        parts.append(f"L{int(row['seq_len'])}")
    if _number(row.get("replicas")) is not None:  # a data-parallel cell: its group too
        parts += [f"dp{int(row['replicas'])}", f"th{int(row['threads'])}"]
    for key, default in (("preset", "small"), ("device", "cpu"), ("dtype", "float32")):
        if row.get(key) not in (None, default) and not _nan(row.get(key)):
            parts.append(str(row[key]))
    return "/".join(parts)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or _nan(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _measured(frame: Any) -> tuple[list[Any], list[str]]:
    rows, skipped = [], []
    for _, row in frame.iterrows():
        samples = list(row["samples_ms"]) if isinstance(row["samples_ms"], (list, np.ndarray)) else []
        (rows if samples else skipped).append(row if samples else
                                              f"{cell_name(row)} ({row['status']})")
    return rows, skipped


def pytest_benchmark(run_dir: Path) -> dict[str, Any]:
    """The run as a pytest-benchmark JSON document (times in seconds)."""
    run = results.read_document(Path(run_dir) / "run.json", results.RUN_SCHEMA)
    frame = results.load(run_dir)
    env = run.get("environment", {})
    rows, skipped = _measured(frame)
    try:
        from importlib import metadata

        version = metadata.version("pytest-benchmark")
    except Exception:  # not installed: the format's version this was written against
        version = "5.1.0"
    commit = env.get("git_commit") or ""
    return {
        "machine_info": {"node": "", "processor": env.get("cpu"), "machine": "",
                         "python_implementation": "CPython",
                         "python_version": env.get("python"), "system": env.get("platform", ""),
                         "release": "", "cpu": {"brand_raw": env.get("cpu"),
                                                "count": env.get("cpu_count")}},
        "commit_info": {"id": commit.removesuffix("-dirty"), "dirty": commit.endswith("-dirty"),
                        "project": "fwbench", "branch": None, "time": run.get("created")},
        "benchmarks": [_benchmark(row, run, env) for row in rows],
        "datetime": run.get("created"), "version": version,
        "skipped_cells": skipped,
    }


def _benchmark(row: Any, run: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    data = np.asarray(row["samples_ms"], float) / 1e3  # pytest-benchmark's unit: seconds
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    iqr = q3 - q1
    mean, std = float(data.mean()), float(data.std(ddof=1)) if data.size > 1 else 0.0
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = data[(data >= low) & (data <= high)]
    iqr_outliers = int(((data < low) | (data > high)).sum())
    stddev_outliers = int((np.abs(data - mean) > std).sum())
    name = cell_name(row)
    versions = dict(item.split(" ", 1) for item in str(row.get("versions") or "").split(", ")
                    if " " in item)
    return {
        "group": str(row["model"]), "name": f"fwbench[{name}]", "fullname": f"fwbench::{name}",
        "params": {"framework": row["framework"], "model": row["model"], "mode": row["mode"]},
        "param": f"{row['framework']}-{row['model']}-{row['mode']}",
        "extra_info": {
            "framework": row["framework"], "model": row["model"], "mode": row["mode"],
            "preset": row["preset"], "device": row["device"], "dtype": row["dtype"],
            "batch_size": row.get("batch_size"), "seq_len": row.get("seq_len"),
            "cell_id": row["cell_id"], "run_id": row["run_id"], "versions": versions,
            "processes": len(row["process_samples_ms"]),
            "environment": {"cpu": env.get("cpu"), "cpu_count": env.get("cpu_count"),
                            "gpus": gpu_names(env),
                            "device": row["device"], "threads": str(results.plain(row.get("threads"))),
                            "tf32": str(results.plain(row.get("tf32"))),
                            "onednn": (env.get("variables") or {}).get("TF_ENABLE_ONEDNN_OPTS",
                                                                       "unset")}},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 1,
                    "max_time": None, "min_time": None, "warmup": True},
        "stats": {"min": float(data.min()), "max": float(data.max()), "mean": mean,
                  "stddev": std, "rounds": int(data.size), "median": float(median),
                  "iqr": float(iqr), "q1": float(q1), "q3": float(q3),
                  "iqr_outliers": iqr_outliers, "stddev_outliers": stddev_outliers,
                  "outliers": f"{stddev_outliers};{iqr_outliers}",
                  "ld15iqr": float(inside.min()) if inside.size else float(data.min()),
                  "hd15iqr": float(inside.max()) if inside.size else float(data.max()),
                  "ops": 1 / mean, "total": float(data.sum()), "iterations": 1,
                  "data": data.tolist()},
    }


def github_action_benchmark(run_dir: Path) -> list[dict[str, Any]]:
    """The run in github-action-benchmark's customSmallerIsBetter format."""
    frame = results.load(run_dir)
    rows, _ = _measured(frame)
    out = []
    for row in rows:
        extra = [f"{len(row['process_samples_ms'])} process(es), "
                 f"{int(row['samples'])} steps" if _number(row.get("samples")) else "",
                 str(row.get("versions") or ""), f"run {row['run_id']}",
                 f"commit {row.get('git_commit')}" if row.get("git_commit") else ""]
        out.append({"name": cell_name(row), "unit": "ms", "value": float(row["median_ms"]),
                    "range": f"± {float(row['iqr_ms']) / 2:.4g}"
                    if _number(row.get("iqr_ms")) is not None else "",
                    "extra": "; ".join(e for e in extra if e)})
    return out


def csv_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One dict per cell, CSV_COLUMNS, numbers as numbers (None where absent)."""
    frame = results.load(run_dir)
    out = []
    for _, row in frame.iterrows():
        out.append({c: results.plain(row.get(c)) for c in CSV_COLUMNS})
    return out


def export(run_dir: Path, fmt: str, output: Path) -> tuple[Path, list[str]]:
    """Write `run_dir` to `output` in `fmt` (FORMATS); returns the file and the cells left
    out (not measured)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    if fmt == "csv":
        rows = csv_rows(run_dir)
        tmp = output.with_name(output.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(output)
        return output, skipped
    if fmt == "pytest-benchmark":
        document: Any = pytest_benchmark(run_dir)
        skipped = document["skipped_cells"]
    else:
        document = github_action_benchmark(run_dir)
        skipped = _measured(results.load(run_dir))[1]
    results.write_json(output, document)
    return output, skipped


def default_output(run_dir: Path, fmt: str) -> Path:
    suffix = ".csv" if fmt == "csv" else ".json"
    return Path(run_dir) / "export" / f"{fmt}{suffix}"
