"""The two sides of a comparison: a fwbench run, a stored baseline or a pytest-benchmark
file, read into cells of raw per-step samples; the environment both must share; the
committed baselines, one per environment key."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import results

SCHEMA_BASELINE = "fwbench.baseline/1"
# What identifies the same cell in two fwbench runs.
MATCH_KEYS = ("framework", "model", "mode", "preset", "device", "dtype", "batch_size", "seq_len")
# A data-parallel cell (`fwbench run --devices N`) is also told apart by its replicas and
# its group's cores: its no-communication controls differ from the 1-replica cell in
# cores only. Single-device cells leave both out (their threads are the environment's).
GROUP_KEYS = ("replicas", "threads")


def match_label(get: Any) -> dict[str, Any]:
    """The label a cell is matched by, from `get(key)` (a row's or a cell dict's)."""
    label = {k: get(k) for k in MATCH_KEYS}
    if get("replicas") is not None:
        label.update({k: get(k) for k in GROUP_KEYS})
    return label


def match_key(label: dict[str, Any]) -> str:
    """The label as one string: single-device cells keep the key they always had."""
    return "/".join(str(label.get(k)) for k in (*MATCH_KEYS, *(k for k in GROUP_KEYS if k in label)))
# Environment keys that must agree for a comparison to mean anything.
ENV_KEYS = ("cpu", "cpu_count", "gpus", "device", "threads", "tf32", "onednn", "python")



class CompareError(ValueError):
    """Inputs that cannot be compared (unreadable, different environments, nothing shared)."""


@dataclass
class Cell:
    """One measured thing on one side: its processes' raw step times (ms)."""

    key: str                        # how cells are matched across sides
    label: dict[str, Any]           # framework, model, mode, ... for the table
    processes: list[list[float]]    # raw samples per process (one list per repeat)
    summary_only: bool = False      # pytest-benchmark JSON without raw data: see _from_stats
    probes: list[list[float]] = field(default_factory=list)  # speed probe per sample, per process
    matmul_probes: list[list[float]] = field(default_factory=list)  # the matmul probe, likewise
    matmul_probe_version: int = 1   # bench.speed.speedprobe.MATMUL_PROBE_VERSION of those probes
    # Per process: whether it sampled on a loaded machine (bench.speed.machineload); None where
    # the record is older than the load counters.
    loaded: list[bool | None] = field(default_factory=list)
    # "ok", or the cell's failure: a status of bench.speed.harness.STATUSES (some of its
    # repeats may still have measured: `processes`), or "missing" (planned, never recorded)
    status: str = "ok"
    error: str | None = None
    repeats: int = 1                # processes planned for the cell
    # Whether processes[i] ran right next to processes[i] of the other side's cell
    # (fwbench ab's pairs): the bootstrap then resamples pairs (bench.compare.stats).
    paired: bool = False


@dataclass
class Side:
    name: str
    kind: str                       # "fwbench" or "pytest-benchmark"
    environment: dict[str, Any]     # ENV_KEYS values
    versions: dict[str, str]
    cells: dict[str, Cell] = field(default_factory=dict)


# --- loading --------------------------------------------------------------------------
def load(source: str | Path) -> Side:
    """A run folder or id, a baseline folder, or a pytest-benchmark JSON file."""
    path = Path(source)
    if path.is_file():
        doc = results.read_json(path)
        if "benchmarks" in doc and "machine_info" in doc:
            try:
                return _from_pytest_benchmark(path, doc)
            except (TypeError, KeyError, AttributeError, ValueError) as exc:
                raise CompareError(f"{path}: a pytest-benchmark file this version cannot "
                                   f"read ({type(exc).__name__}: {exc})") from exc
        raise CompareError(f"{path}: neither a fwbench run folder nor pytest-benchmark JSON "
                           f"(no 'benchmarks' and 'machine_info')")
    if not (path / "run.json").exists():
        from bench.speed import harness

        candidate = harness.runs_dir() / str(source)
        if not (candidate / "run.json").exists():
            raise CompareError(f"{source}: not a run folder, a run id under "
                               f"{harness.runs_dir()}, a baseline folder or a JSON file")
        path = candidate
    return _from_run(path)


def _from_run(run_dir: Path) -> Side:
    """A run's measured cells from results.load (the common DataFrame), with the raw
    samples of each repeat's process kept apart."""
    run = results.read_document(run_dir / "run.json", results.RUN_SCHEMA)
    frame = results.load(run_dir)
    side = Side(name=run.get("run_id", run_dir.name), kind="fwbench",
                environment={}, versions={})
    for text in frame["versions"].dropna().unique() if "versions" in frame else []:
        for item in str(text).split(", "):
            name, _, version = item.partition(" ")
            side.versions[name] = version
    repeats = run.get("repeats", 1)
    for _, row in frame.iterrows():
        label = match_label(lambda k: None if _missing(row.get(k)) else _plain(row.get(k)))
        key = match_key(label)
        planned = repeats if row.get("sweep_axis") in (None, "") or _missing(
            row.get("sweep_axis")) else 1
        kept = [(samples, probes, matmuls) for samples, probes, matmuls in
                zip(row["process_samples_ms"], _probes_of(row, "process_probe_ms"),
                    _probes_of(row, "process_matmul_probe_ms")) if len(samples)]
        version = row.get("matmul_probe_version")  # absent before version 2
        loaded = [None if _missing(v) else bool(v) for v in _listed(row.get("process_loaded"))]
        if row["status"] != "ok" and not row.get("repeats_ok"):
            kept, loaded = [], []  # a failed process's record has no samples to compare
        recorded = int(row["repeats"]) if not _missing(row.get("repeats")) else 1
        status, error = row["status"], None if _missing(row["error"]) else row["error"]
        if status == "ok" and recorded < planned:  # interrupted between its repeats
            status, error = "missing", f"{planned - recorded} of {planned} repeats not recorded"
        side.cells[key] = Cell(key, label, [[float(v) for v in s] for s, _, _ in kept],
                               probes=[[float(v) for v in p] for _, p, _ in kept],
                               matmul_probes=[[float(v) for v in m] for _, _, m in kept],
                               matmul_probe_version=1 if _missing(version) else int(version),
                               loaded=loaded, status=status, error=error, repeats=planned)
    for label, planned in _planned(run):
        key = match_key(label)
        if key not in side.cells:
            side.cells[key] = Cell(key, label, [], status="missing", repeats=planned,
                                   error="no record: the run did not measure it "
                                         "(interrupted? `fwbench run --resume`)")
    env = run.get("environment", {})
    side.environment = {
        "cpu": env.get("cpu"), "cpu_count": env.get("cpu_count"),
        "gpus": gpu_names(env), "device": _joined(frame, "device"),
        "threads": _joined(frame, "threads"),
        "tf32": _joined(frame, "tf32"),
        "onednn": (env.get("variables") or {}).get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "python": env.get("python")}
    return side


def _planned(run: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """(label, processes) of every cell the run planned: its matrix, each `repeats` times,
    and its scaling sweep's points, once each."""
    from bench.speed import cells, measure

    out = []
    points = [(c, run.get("repeats", 1)) for c in run.get("cells", [])]
    points += [(p["cell"], 1) for p in run.get("sweep", [])]
    for data, processes in points:
        record = measure.skeleton(cells.Cell.from_dict(data), None, 1)
        label = match_label(data.get)
        label["batch_size"] = record["train"].get("batch_size")
        label["seq_len"] = record["spec"].get("seq_len")
        out.append((label, processes))
    return out


def _probes_of(row: Any, column: str) -> list[list[float]]:
    """The row's per-process probes, [] for each process recorded without them."""
    probes = row.get(column)
    probes = list(probes) if isinstance(probes, (list, tuple, np.ndarray)) else []
    return [list(p) for p in probes] + [[]] * (len(row["process_samples_ms"]) - len(probes))


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else []


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """NumPy scalars from the DataFrame as plain ints and strings (for keys and tables)."""
    if isinstance(value, (np.integer, float)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value


def _joined(frame: Any, column: str) -> str:
    if column not in frame:
        return ""
    return "/".join(sorted({str(_plain(v)) for v in frame[column].dropna()}))


def _from_pytest_benchmark(path: Path, doc: dict[str, Any]) -> Side:
    machine = doc.get("machine_info", {})
    cpu = machine.get("cpu") or {}
    benchmarks = doc.get("benchmarks", [])
    extra = next((b.get("extra_info") or {} for b in benchmarks), {})
    env = extra.get("environment") or {}
    side = Side(name=path.name, kind="pytest-benchmark", environment={
        "cpu": env.get("cpu") or cpu.get("brand_raw") or machine.get("processor"),
        "cpu_count": env.get("cpu_count") or cpu.get("count"),
        "gpus": env.get("gpus", "none"), "device": env.get("device", "cpu"),
        "threads": str(env.get("threads", "?")), "tf32": str(env.get("tf32", False)),
        "onednn": env.get("onednn", "unset"),
        "python": machine.get("python_version")}, versions=dict(extra.get("versions") or {}))
    for b in benchmarks:
        stats = b.get("stats") or {}
        label = {"framework": (b.get("extra_info") or {}).get("framework", ""),
                 "model": (b.get("extra_info") or {}).get("model", ""),
                 "mode": (b.get("extra_info") or {}).get("mode", ""), "test": b.get("name")}
        key = b.get("fullname") or b.get("name")
        if stats.get("data"):
            side.cells[key] = Cell(key, label, [[1e3 * float(v) for v in stats["data"]]])
        elif stats.get("median") is not None:
            side.cells[key] = Cell(key, label, [_from_stats(stats)], summary_only=True)
    return side


def _from_stats(stats: dict[str, Any]) -> list[float]:
    """Without raw data (pytest-benchmark's --benchmark-save-data not given), a stand-in
    sample with the same median, quartiles and count: the quartile points repeated. Its
    bootstrap then reflects the stated IQR and round count; the table marks such rows."""
    n = max(int(stats.get("rounds") or 1), 4)
    q1, med, q3 = (1e3 * float(stats[k]) for k in ("q1", "median", "q3"))
    return sorted([q1] * (n // 4) + [med] * (n - 2 * (n // 4)) + [q3] * (n // 4))


def environment_differences(base: Side, current: Side) -> list[str]:
    """'key: base value != current value' for every environment key that differs."""
    out = []
    for key in ENV_KEYS:
        a, b = base.environment.get(key), current.environment.get(key)
        if str(a) != str(b):
            out.append(f"{key}: {a!r} != {b!r}")
    return out


def version_changes(base: Side, current: Side) -> list[str]:
    return [f"{k} {base.versions.get(k, '-')} -> {current.versions.get(k, '-')}"
            for k in sorted(set(base.versions) | set(current.versions))
            if base.versions.get(k) != current.versions.get(k)]


# --- baselines ------------------------------------------------------------------------
def gpu_names(env: dict[str, Any]) -> str:
    """The GPUs of a recorded environment (bench.environment.describe), as compare's
    environment holds them: names joined, or "none"."""
    return ", ".join(g.get("name", "?") for g in env.get("gpus") or []) or "none"


def baseline_folder(env: dict[str, Any]) -> Path:
    """results/baselines/<key> for a recorded environment (a run.json's), without
    loading the run's records."""
    return baselines_dir() / environment_key({"cpu": env.get("cpu"),
                                              "cpu_count": env.get("cpu_count"),
                                              "gpus": gpu_names(env)})


def environment_key(environment: dict[str, Any]) -> str:
    """A folder name for an environment: CPU model, core count and GPU, e.g.
    amd-epyc-7b13-2c or amd-epyc-7b13-16c-nvidia-h100-80gb-hbm3."""
    parts = [str(environment.get("cpu") or "unknown-cpu"), f"{environment.get('cpu_count')}c"]
    if environment.get("gpus") not in (None, "none", ""):
        parts.append(str(environment["gpus"]).split(",")[0])
    slug = "-".join(parts).lower()
    slug = re.sub(r"\(r\)|\(tm\)|processor|cpu @.*?(?=-\d+c)|\d+-core", "", slug)
    return re.sub(r"[^a-z0-9]+", "-", slug).strip("-")


def baselines_dir() -> Path:
    return results.RESULTS_DIR / "baselines"


def stored_baseline(current: Side) -> Path:
    """The committed baseline for `current`'s environment (CompareError if none)."""
    folder = baselines_dir() / environment_key(current.environment)
    if not (folder / "run.json").exists():
        known = sorted(p.parent.name for p in baselines_dir().glob("*/run.json"))
        raise CompareError(f"no stored baseline for this environment ({folder}); save one "
                           f"with `fwbench baseline save RUN`"
                           + (f"; stored: {', '.join(known)}" if known else ""))
    return folder


def save_baseline(run_dir: Path, force: bool = False, allow_incomplete: bool = False) -> Path:
    """Copy a finished run's run.json and cell records (not its logs) to
    results/baselines/<environment key>/. Refuses to overwrite unless `force`, and a run
    with failed or missing cells unless `allow_incomplete` (a baseline without a cell
    never catches that cell's regression). The new baseline is complete on disk before
    the old one is removed."""
    import shutil

    from bench.compare import history

    side = _from_run(run_dir)
    if not any(c.processes for c in side.cells.values()):
        raise CompareError(f"{run_dir}: no measured cell to keep as a baseline")
    incomplete = [c for c in side.cells.values() if c.status != "ok"]
    if incomplete and not allow_incomplete:
        listed = "; ".join(f"{'/'.join(str(c.label[k]) for k in ('framework', 'model', 'mode'))}"
                           f": {c.status}" for c in incomplete[:5])
        raise CompareError(
            f"{run_dir}: {len(incomplete)} cell(s) failed or are missing ({listed}"
            f"{'; ...' if len(incomplete) > 5 else ''}); a baseline without them never "
            f"catches their regressions. Finish the run (fwbench run --resume RUN "
            f"--retry-failed) or pass --allow-incomplete")
    folder = baselines_dir() / environment_key(side.environment)
    if folder.exists() and not force:
        raise CompareError(f"a baseline exists for this environment ({folder}); pass "
                           f"--force to replace it")
    new, old = folder.with_name(folder.name + ".new"), folder.with_name(folder.name + ".old")
    for leftover in (new, old):  # from a save that was cut short
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        (new / "cells").mkdir(parents=True)
        shutil.copy2(run_dir / "run.json", new / "run.json")
        for f in (run_dir / "cells").glob("*.json"):
            shutil.copy2(f, new / "cells" / f.name)
        # The history goes with the folder: the old baseline's entry first if it has none
        # (a baseline saved before histories were kept), then the new one's.
        if (folder / history.FILE).exists():
            shutil.copy2(folder / history.FILE, new / history.FILE)
        elif (folder / "run.json").exists():
            history.append(new, history.entry(folder, backfilled=True))
        history.append(new, history.entry(new))
    except BaseException:  # a full disk, an interrupt: the old baseline stays as it was
        shutil.rmtree(new, ignore_errors=True)
        raise
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder
