"""Result files: versioned JSON, written atomically under results/."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.speed import records

RESULTS_DIR = Path(os.environ.get("FWBENCH_RESULTS", "results"))


def plain(obj: Any) -> Any:
    """JSON has no NaN or infinity: they are written as null. NumPy arrays and scalars
    become lists and numbers."""
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


class ResultFileError(ValueError):
    """A results file that cannot be read (missing, truncated, corrupt, of an unknown
    schema) or written (a full disk): the message names the file."""


# Record schemas this version reads; a record of another schema is refused, not guessed at.
CELL_SCHEMA = "fwbench.cell/1"
RUN_SCHEMA = "fwbench.run/1"
PARITY_SCHEMA = "fwbench.parity/1"


# A run, study or graph-study name: one folder name, nothing that leaves the results folder.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(name: str, what: str, error: type[Exception] = ValueError) -> str:
    """`name` if it can name a folder under results/ (letters, digits, . _ + -, not
    starting with a dot, no path separator, at most 128 characters); `error` otherwise."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise error(f"{what} name {name!r} is not allowed: use letters, digits and . _ + - "
                    f"(no path separators, no '..', not starting with '.' or '-')")
    return name


def new_folder(parent: Path, name: str | None, stem: str, marker: str, what: str,
               error: type[Exception] = ValueError) -> Path:
    """A fresh folder under `parent` for a new run, study or graph study: `name` if given
    (checked; `error` if a `marker` file says it is taken), else `stem` (a UTC time),
    made by an atomic mkdir, so that two started in the same second get `stem`-2, -3..."""
    if name is not None:
        check_name(name, what, error)
        folder = Path(parent) / name
        if (folder / marker).exists():
            raise error(f"{what} {name!r} exists already ({folder}); resume it or pick a name")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    Path(parent).mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        folder = Path(parent) / (stem if k == 1 else f"{stem}-{k}")
        try:
            folder.mkdir()  # atomic: of two processes, one gets each name
            return folder
        except FileExistsError:
            continue
    raise error(f"no free {what} name for {stem} under {parent}")


def new_file(parent: Path, stem: str, suffix: str = ".json") -> Path:
    """A path under `parent` that no other process has: <stem><suffix>, or <stem>-2... if
    taken, reserved by an exclusive create (the caller then writes it with write_json)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        path = Path(parent) / f"{stem if k == 1 else f'{stem}-{k}'}{suffix}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            continue
    raise ResultFileError(f"no free file name for {stem}{suffix} under {parent}")


@contextlib.contextmanager
def exclusive(folder: Path, what: str, error: type[Exception] = ValueError) -> Iterator[None]:
    """Hold `folder`'s lock (<folder>/.lock) while inside: a second fwbench process that
    would write the same run or study at the same time is refused (`error`) instead of
    interleaving its records with this one's."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / ".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise error(f"{what} {folder.name!r} is being written by another fwbench process "
                    f"({folder}); wait for it, or stop it first") from None
    try:
        yield
    finally:
        lock.release()


def write_json(path: Path, payload: Any) -> Path:
    """Write `payload` to `path` atomically (a reader never sees half a file). A write
    that fails (a full disk) leaves the file as it was and no temporary file behind."""
    path = Path(path)
    text = json.dumps(plain(payload), indent=1)  # before touching the disk
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ResultFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        raise
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A results file's JSON object; ResultFileError, naming the file, if it is missing,
    not JSON (truncated, corrupt, empty) or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path}: not readable JSON ({exc.msg}; line {exc.lineno}, "
                              f"column {exc.colno}): truncated or corrupt") from exc
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{path}: not readable JSON (not UTF-8 text): corrupt") from exc
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not isinstance(doc, dict):
        raise ResultFileError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


def read_document(path: Path, schema: str) -> dict[str, Any]:
    """A results file checked to be of `schema` (ResultFileError, naming the file and
    the schema it has, for any other: a newer version's file is refused, not guessed at)."""
    doc = read_json(path)
    if doc.get("schema") != schema:
        raise ResultFileError(f"{path}: schema {doc.get('schema')!r}, but this version "
                              f"reads {schema!r} here")
    return doc


def read_cell_record(path: Path) -> dict[str, Any]:
    """A cell record, checked to be of the schema this version reads."""
    return read_document(path, CELL_SCHEMA)


def read_folder_file(folder: Path, name: str, schema: str, error: type[Exception],
                     what: str) -> dict[str, Any]:
    """`folder`/`name`, checked to be of `schema`; `error` names what is wrong otherwise
    (`what`: "run", "study", ...)."""
    path = Path(folder) / name
    if not path.exists():
        raise error(f"{folder} is not a {what} folder (no {name})")
    doc = read_json(path)
    if doc.get("schema") != schema:
        raise error(f"{path}: schema {doc.get('schema')!r}, expected {schema!r}")
    return doc


# Columns of `load()`'s DataFrame that describe the cell; every metric follows them.
CELL_COLUMNS = ("run_id", "cell_id", "status", "error", "framework", "model", "preset",
                "mode", "device", "dtype", "batch_size", "seq_len", "threads", "replicas")


def _run_dirs(path: Path) -> list[Path]:
    """Run folders at or under `path` (a run folder, or a folder holding run folders)."""
    path = Path(path)
    if (path / "run.json").exists():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a run folder or a folder of runs")
    return sorted(p.parent for p in path.glob("**/run.json"))


def _row(record: dict[str, Any], run: dict[str, Any],
         sweep_axes: dict[str, str]) -> dict[str, Any]:
    model_spec, train_spec = record.get("spec", {}), record.get("train", {})
    cell = record["cell"]
    row: dict[str, Any] = {
        "run_id": record.get("run_id"), "cell_id": record["cell_id"],
        "status": record["status"], "error": record.get("error"),
        **{k: cell.get(k) for k in CELL_COLUMNS[4:]},
    }
    # The batch size and length actually trained (the cell leaves them None for the preset's).
    row["batch_size"] = train_spec.get("batch_size", row["batch_size"])
    row["seq_len"] = model_spec.get("seq_len", row["seq_len"])
    row.update(record.get("metrics", {}))
    # The peak memory that matters per device: what the framework took on the GPU, the
    # process's resident memory on the CPU (`fwbench show`'s "peak MiB", the report's figure).
    row["peak_mib"] = row.get("peak_device_mib") if row.get("device") == "gpu" else row.get("peak_rss_mib")
    row["samples_ms"] = record.get("samples_ms", [])
    row["process_samples_ms"] = record.get("process_samples_ms", [row["samples_ms"]])
    row["process_probe_ms"] = record.get("process_probe_ms", [record.get("probe_ms", [])])
    row["process_matmul_probe_ms"] = record.get("process_matmul_probe_ms",
                                                [record.get("matmul_probe_ms", [])])
    row["process_loaded"] = record.get("process_loaded", [record.get("metrics", {}).get("loaded")])
    row["wall_s"] = record.get("wall_s")
    row["repeats"], row["repeats_ok"] = record.get("repeats", 1), record.get("repeats_ok")
    fw = record.get("framework", {})
    row["versions"] = ", ".join(f"{k} {v}" for k, v in fw.get("versions", {}).items()) or None
    row["compile_api"] = fw.get("compile_api")
    # a data-parallel cell's runtime: its backend, world size and processes (None otherwise)
    runtime, group = fw.get("runtime") or {}, fw.get("group") or {}
    row["dp_backend"] = runtime.get("backend") if group else None
    row["dp_world_size"] = runtime.get("world_size") if group else None
    row["dp_processes"] = group.get("processes")
    # how the cell's process started and what compile cache it had (None: before recorded)
    row["process"], row["compile_cache"] = fw.get("process"), fw.get("compile_cache")
    # machine probes its fork server made before forking it (preload_calls_s: their time)
    row["preload_calls"] = ", ".join(fw.get("preload_calls", [])) or None
    row["tf32"] = record.get("tf32", run.get("tf32"))
    # The axis a scaling-sweep point varies (batch_size or seq_len); None for matrix cells.
    row["sweep_axis"] = sweep_axes.get(record["cell_id"])
    env = run.get("environment", {})
    # The commit(s) the cell's processes ran at (a resumed run's may differ from the
    # run's), or the run's for records older than that stamp.
    commits = record.get("commits") or [(record.get("ran_under") or {}).get("git_commit")]
    row.update(cpu=env.get("cpu"),
               git_commit=", ".join(c for c in commits if c) or env.get("git_commit"),
               python=env.get("python"), run_created=run.get("created"))
    return row


def load(paths: Any = None) -> "pandas.DataFrame":  # noqa: F821 - pandas is imported lazily
    """Every cell record under `paths` as one pandas DataFrame, one row per cell.

    `paths`: a run folder, a folder holding runs, or a list of them; default every run
    under results/runs. Columns: CELL_COLUMNS, then the metrics (median_ms, iqr_ms,
    p95_ms, samples, throughput, flops_per_s, compile_s, first_step_s, peak_rss_mib, ...),
    samples_ms (the raw per-step times, a list per row), process_samples_ms (the same,
    one list per repeat's process), process_probe_ms and process_matmul_probe_ms (the
    machine-speed probes of each of those samples, bench.speed.speedprobe), versions and environment keys,
    sweep_axis (batch_size or seq_len for a scaling-sweep point, None for matrix cells).
    The repeats of a cell (one process each) are combined into its row by
    bench.speed.records.combine: pooled samples, repeat_medians_ms and repeat_spread. Cells
    that failed have their status and error and whatever their other repeats measured.
    """
    import pandas as pd

    if paths is None:
        paths = [RESULTS_DIR / "runs"]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    rows = []
    for run_dir in (d for p in paths for d in _run_dirs(Path(p))):
        run = read_document(run_dir / "run.json", RUN_SCHEMA)
        sweep_axes = {p["cell_id"]: p["axis"] for p in run.get("sweep", [])}
        order = {cell_id: i for i, cell_id in enumerate([*run.get("cell_ids", []), *sweep_axes])}
        by_cell: dict[str, list[dict[str, Any]]] = {}
        for f in (run_dir / "cells").glob("*.json"):
            record = read_cell_record(f)
            by_cell.setdefault(record["cell_id"], []).append(record)
        # Matrix order (framework, model, mode, ...), as the run measured them.
        for cell_id in sorted(by_cell, key=lambda c: (order.get(c, len(order)), c)):
            rows.append(_row(records.combine(by_cell[cell_id]), run, sweep_axes))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*CELL_COLUMNS, "median_ms", "samples_ms"])
    return frame
