"""`fwbench compare BASELINE CURRENT`: did anything get slower, beyond the noise?

Either side is a fwbench run (folder or id), a stored baseline (results/baselines/<key>/)
or a pytest-benchmark JSON file. Cells are matched by what they measure (framework,
model, mode, preset, device, dtype, batch, length; for pytest-benchmark, the test's full
name). Per cell:

    ratio     median(current) / median(baseline), over the raw per-step samples pooled
              over each side's processes
    interval  95% bootstrap interval of that ratio. Where a side has several processes
              (repeats), the bootstrap resamples processes first and then the steps within
              them, so the noise between processes, the larger one on a small VM, is in
              the interval. With one process per side it knows only the step-to-step noise.
    p         one-sided Mann-Whitney U test on the raw samples (current slower / faster)
    steps     which steps (bench.speedprobe: every cell probes the machine's speed between
              its blocks of steps). By default ("normalized") every step, rescaled by its
              block's matmul probe to the median probe of both sides, so that the machine
              running slower for a while (a neighbour on the VM's host) cancels while
              extra work in the code does not. "fast": only the steps taken while a
              Python-loop probe says the cores ran at full speed. "all": every step as
              measured. Records without probes are compared with every step.
    verdict   slower: ratio > 1 + threshold, p < alpha and the interval above 1;
              faster: the mirror image; otherwise no clear change.

The threshold (minimum effect) is the knob that keeps a noisy 2-core runner from crying
wolf: its default is calibrated by benchmarks/calibrate_compare.py, which compares the
same commit with itself many times and against an injected 25% slowdown (README).

Runs from different environments (CPU, core count, GPU, threads, device, precision
settings, Python) are refused unless `allow_env_diff`; framework versions may differ (a
framework upgrade is what one wants to compare) and are listed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import results

# Calibrated on the project's 2-core VM by benchmarks/calibrate_compare.py, as the perf
# session compares (1 thread, 3 s of samples per process, a stored baseline of 8
# processes per cell against 4, steps normalized by the matmul probe; README, "The
# threshold, calibrated on this VM"): from a pool of 20 + 10 runs measured with issue 8's
# fixed harness, 0 of 200 same-commit comparisons of 9 cells flagged and 100% of cells
# slowed by 25% caught. 0.17 also met both bars there (1 of 200 flagged); 0.20 keeps a
# margin on false alarms, which have grown several-fold in noisy hours before.
DEFAULT_THRESHOLD = 0.20
# ... for comparisons of this many processes per cell: (baseline, current). Fewer make
# more false alarms at the same threshold (6 vs 3: 1.25% of same-commit comparisons).
CALIBRATED_PROCESSES = (8, 4)
DEFAULT_ALPHA = 0.01
DEFAULT_STEPS = "normalized"  # which steps compare() compares: see cell_statistics
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
SCHEMA_BASELINE = "fwbench.baseline/1"
# What identifies the same cell in two fwbench runs.
MATCH_KEYS = ("framework", "model", "mode", "preset", "device", "dtype", "batch_size", "seq_len")
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
    matmul_probe_version: int = 1   # bench.speedprobe.MATMUL_PROBE_VERSION of those probes
    # Per process: whether it sampled on a loaded machine (bench.machineload); None where
    # the record is older than the load counters.
    loaded: list[bool | None] = field(default_factory=list)


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
            return _from_pytest_benchmark(path, doc)
        raise CompareError(f"{path}: neither a fwbench run folder nor pytest-benchmark JSON "
                           f"(no 'benchmarks' and 'machine_info')")
    if not (path / "run.json").exists():
        from bench import harness

        candidate = harness.runs_dir() / str(source)
        if not (candidate / "run.json").exists():
            raise CompareError(f"{source}: not a run folder, a run id under "
                               f"{harness.runs_dir()}, a baseline folder or a JSON file")
        path = candidate
    return _from_run(path)


def _from_run(run_dir: Path) -> Side:
    """A run's measured cells from results.load (the common DataFrame), with the raw
    samples of each repeat's process kept apart."""
    run = results.read_json(run_dir / "run.json")
    frame = results.load(run_dir)
    side = Side(name=run.get("run_id", run_dir.name), kind="fwbench",
                environment={}, versions={})
    for text in frame["versions"].dropna().unique() if "versions" in frame else []:
        for item in str(text).split(", "):
            name, _, version = item.partition(" ")
            side.versions[name] = version
    for _, row in frame[frame["status"] == "ok"].iterrows():
        label = {k: (None if _missing(row[k]) else _plain(row[k])) for k in MATCH_KEYS}
        key = "/".join(str(label[k]) for k in MATCH_KEYS)
        kept = [(samples, probes, matmuls) for samples, probes, matmuls in
                zip(row["process_samples_ms"], _probes_of(row, "process_probe_ms"),
                    _probes_of(row, "process_matmul_probe_ms")) if len(samples)]
        version = row.get("matmul_probe_version")  # absent before version 2
        loaded = [None if _missing(v) else bool(v) for v in _listed(row.get("process_loaded"))]
        side.cells[key] = Cell(key, label, [[float(v) for v in s] for s, _, _ in kept],
                               probes=[[float(v) for v in p] for _, p, _ in kept],
                               matmul_probes=[[float(v) for v in m] for _, _, m in kept],
                               matmul_probe_version=1 if _missing(version) else int(version),
                               loaded=loaded)
    env = run.get("environment", {})
    side.environment = {
        "cpu": env.get("cpu"), "cpu_count": env.get("cpu_count"),
        "gpus": ", ".join(g.get("name", "?") for g in env.get("gpus") or []) or "none",
        "device": _joined(frame, "device"), "threads": _joined(frame, "threads"),
        "tf32": _joined(frame, "tf32"),
        "onednn": (env.get("variables") or {}).get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "python": env.get("python")}
    return side


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


# --- statistics -----------------------------------------------------------------------
def _bootstrap_medians(processes: Sequence[np.ndarray], resamples: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of the pooled samples: with several
    processes, each resample picks that many processes with replacement (hierarchical),
    then resamples the steps within each pick. Vectorised: one NaN-padded matrix."""
    k = len(processes)
    sizes = [p.size for p in processes]
    width = max(sizes)
    chosen = rng.integers(0, k, (resamples, k)) if k > 1 else np.zeros((resamples, 1), int)
    pooled = np.full((resamples, k * width), np.nan)
    for slot in range(k):
        for i, samples in enumerate(processes):
            rows = np.nonzero(chosen[:, slot] == i)[0]
            if rows.size:
                draws = samples[rng.integers(0, sizes[i], (rows.size, sizes[i]))]
                pooled[rows[:, None], slot * width + np.arange(sizes[i])] = draws
    return np.nanmedian(pooled, axis=1)


def ratio_interval(base: Sequence[Sequence[float]], current: Sequence[Sequence[float]],
                   resamples: int = BOOTSTRAP_RESAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """median(current) / median(base) over pooled samples, and its 95% bootstrap interval
    (hierarchical where a side has several processes)."""
    a = [np.asarray(p, float) for p in base if len(p)]
    b = [np.asarray(p, float) for p in current if len(p)]
    if not a or not b:
        raise CompareError("a side has no samples")
    rng = np.random.default_rng(seed)
    ratios = _bootstrap_medians(b, resamples, rng) / _bootstrap_medians(a, resamples, rng)
    low, high = np.percentile(ratios, [2.5, 97.5])
    ratio = float(np.median(np.concatenate(b)) / np.median(np.concatenate(a)))
    return ratio, float(low), float(high)


def _probed(processes: Sequence[Sequence[float]], probes: Sequence[Sequence[float]]) -> bool:
    """Whether every process has one probe per sample (records from before the probes
    have none)."""
    return len(probes) == len(processes) and all(
        len(p) == len(s) and len(p) for s, p in zip(processes, probes))


def fast_state_processes(base: Cell, current: Cell) -> tuple[list[list[float]], list[list[float]]] | None:
    """Each side's processes cut down to their fast-state steps (bench.speedprobe), the
    fast level taken over both sides' probes; processes with fewer than
    MIN_FAST_SAMPLES such steps are left out. None if a process has no probes, or if a
    side keeps fewer than half its processes: then every step is compared."""
    from bench import speedprobe

    cells = (base, current)
    if not all(_probed(c.processes, c.probes) for c in cells):
        return None
    level = speedprobe.fast_level([p for c in cells for p in c.probes])
    out = []
    for c in cells:
        kept = [fast for fast in (speedprobe.fast_samples(s, p, level)
                                  for s, p in zip(c.processes, c.probes))
                if len(fast) >= speedprobe.MIN_FAST_SAMPLES]
        if 2 * len(kept) < len(c.processes):
            return None
        out.append(kept)
    return out[0], out[1]


def normalized_processes(base: Cell, current: Cell) -> tuple[list[list[float]], list[list[float]]] | None:
    """Each side's processes with every step rescaled by its block's matmul probe to the
    median probe of both sides (bench.speedprobe.normalized); None if a process has no
    matmul probes or the two sides' probes are of different versions (their times
    differ by design)."""
    from bench import speedprobe

    cells = (base, current)
    if not all(_probed(c.processes, c.matmul_probes) for c in cells):
        return None
    if base.matmul_probe_version != current.matmul_probe_version:
        return None
    reference = float(np.median(np.concatenate([p for c in cells for p in c.matmul_probes])))
    return tuple([speedprobe.normalized(s, p, reference) for s, p in zip(c.processes, c.matmul_probes)]
                 for c in cells)


STEP_CHOICES = ("fast", "normalized", "all")


def one_sided_p(base: Sequence[float], current: Sequence[float], slower: bool) -> float:
    """Mann-Whitney U: p of 'current is stochastically larger (slower) than base', or of
    'smaller' with slower=False."""
    from scipy.stats import mannwhitneyu

    alternative = "greater" if slower else "less"
    return float(mannwhitneyu(current, base, alternative=alternative).pvalue)


def verdict(ratio: float, low: float, high: float, p_slower: float, p_faster: float,
            threshold: float, alpha: float) -> str:
    if ratio > 1 + threshold and low > 1 and p_slower < alpha:
        return "slower"
    if ratio < 1 / (1 + threshold) and high < 1 and p_faster < alpha:
        return "faster"
    return "no clear change"


def cell_statistics(a: Cell, b: Cell, steps: str = DEFAULT_STEPS,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """What verdict() needs for one cell: ratio, low, high, p slower, p faster, the
    medians compared (normalized ms where normalized), and which steps they came from.
    steps: "fast", the fast-state
    steps where both sides have enough; "normalized", every step rescaled by the matmul
    probe; "all", every step as measured. Where the probes needed are missing, "all"."""
    if steps not in STEP_CHOICES:
        raise CompareError(f"steps {steps!r}: expected one of {', '.join(STEP_CHOICES)}")
    chosen = (fast_state_processes(a, b) if steps == "fast" else
              normalized_processes(a, b) if steps == "normalized" else None)
    pa_list, pb_list = chosen if chosen else (a.processes, b.processes)
    ratio, low, high = ratio_interval(pa_list, pb_list, resamples=resamples)
    pooled_a, pooled_b = np.concatenate(pa_list), np.concatenate(pb_list)
    mismatch = (steps == "normalized" and not chosen
                and a.matmul_probe_version != b.matmul_probe_version)
    used = (f"all (matmul probe versions {a.matmul_probe_version} and "
            f"{b.matmul_probe_version})" if mismatch else
            "all" if not chosen else "normalized" if steps == "normalized" else
            f"fast state ({len(pa_list)}/{len(a.processes)}, {len(pb_list)}/{len(b.processes)} "
            f"processes)")
    return {"base ms": float(np.median(pooled_a)), "current ms": float(np.median(pooled_b)),
            "ratio": ratio, "low": low, "high": high,
            "p slower": one_sided_p(pooled_a, pooled_b, slower=True),
            "p faster": one_sided_p(pooled_a, pooled_b, slower=False), "steps": used}


def compare(base: Side, current: Side, threshold: float = DEFAULT_THRESHOLD,
            alpha: float = DEFAULT_ALPHA, allow_env_diff: bool = False,
            steps: str = DEFAULT_STEPS) -> "pandas.DataFrame":  # noqa: F821
    """One row per cell in both sides: medians, ratio, interval, p-values and verdict.
    steps: which steps are compared (see cell_statistics)."""
    import pandas as pd

    if not threshold >= 0:
        raise CompareError(f"threshold {threshold}: must be >= 0")
    if not 0 < alpha < 1:
        raise CompareError(f"alpha {alpha}: must be between 0 and 1")
    if base.kind != current.kind:
        raise CompareError(f"cannot match cells of a {base.kind} result with a {current.kind} "
                           f"result: compare fwbench runs with runs, pytest-benchmark JSON "
                           f"with pytest-benchmark JSON")
    differences = environment_differences(base, current)
    if differences and not allow_env_diff:
        raise CompareError("the two results come from different environments ("
                           + "; ".join(differences) + "); timings from different machines "
                           "or settings are not comparable. Pass --allow-env-diff to "
                           "compare anyway.")
    shared = [k for k in current.cells if k in base.cells]
    if not shared:
        raise CompareError(f"no cell was measured in both {base.name} and {current.name}")
    rows = []
    for key in shared:
        a, b = base.cells[key], current.cells[key]
        found = cell_statistics(a, b, steps)
        used = found.pop("steps")
        rows.append({**b.label, **found,
                     "processes": f"{len(a.processes)}/{len(b.processes)}",
                     # processes sampled on a loaded machine, baseline/current
                     "loaded": f"{sum(bool(v) for v in a.loaded)}/{sum(bool(v) for v in b.loaded)}",
                     "verdict": verdict(found["ratio"], found["low"], found["high"],
                                        found["p slower"], found["p faster"], threshold, alpha),
                     "from": "summary stats" if a.summary_only or b.summary_only else "samples",
                     "steps": used})
    return pd.DataFrame(rows)


# --- output ---------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:.3g}"
    return "" if value is None else str(value)


def markdown(table: "pandas.DataFrame", base: Side, current: Side,  # noqa: F821
             threshold: float, alpha: float, differences: Sequence[str] = ()) -> str:
    """A Markdown summary for a CI job: the counts, the slower cells first, then all."""
    counts = table["verdict"].value_counts()
    slower = table[table["verdict"] == "slower"]
    head = (f"### fwbench compare: {current.name} against {base.name}\n\n"
            f"{len(table)} cells in both: **{counts.get('slower', 0)} slower**, "
            f"{counts.get('faster', 0)} faster, {counts.get('no clear change', 0)} no clear "
            f"change (threshold {threshold:.0%}, alpha {alpha}).\n")
    notes = []
    if differences:
        notes.append("Environments differ (compared anyway): " + "; ".join(differences) + ".")
    changes = version_changes(base, current)
    if changes:
        notes.append("Versions changed: " + "; ".join(changes) + ".")
    if threshold == DEFAULT_THRESHOLD and base.kind == "fwbench":
        fewer = [p for p in table["processes"] if _fewer_than_calibrated(p)]
        if fewer:
            notes.append(f"The default threshold was calibrated for "
                         f"{CALIBRATED_PROCESSES[0]} baseline and {CALIBRATED_PROCESSES[1]} "
                         f"current processes per cell; {len(fewer)} of {len(table)} cells "
                         f"here have fewer (baseline/current: {', '.join(sorted(set(fewer)))}), "
                         f"so a same-commit difference is called slower more often.")
    loaded = table[table["loaded"] != "0/0"] if "loaded" in table else table.iloc[:0]
    if len(loaded):
        from bench import machineload

        notes.append(f"Warning: {len(loaded)} of {len(table)} cells have processes that sampled "
                     f"while other processes used more than {machineload.LOADED_SHARE:.0%} of "
                     f"the machine or the hypervisor took more than "
                     f"{machineload.STOLEN_SHARE:.0%} (column 'loaded', baseline/current): "
                     f"their ratios include that load, so measure them again on a quiet "
                     f"machine before believing a verdict.")
    if (table["from"] == "summary stats").any():
        notes.append("Rows marked 'summary stats' had no raw samples (pytest-benchmark without "
                     "--benchmark-save-data): their interval comes from the quartiles.")
    columns = [c for c in table.columns if c not in ("p faster",)]
    ordered = table.assign(_o=table["verdict"].map({"slower": 0, "faster": 1}).fillna(2)) \
        .sort_values(["_o", "ratio"], ascending=[True, False]).drop(columns="_o")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |"
              for row in ordered[columns].itertuples(index=False)]
    body = "\n".join(lines)
    regressions = ("\nRegressions: " + ", ".join(
        f"{'/'.join(str(r[c]) for c in ('framework', 'model', 'mode', 'test') if c in r and r[c])} "
        f"{r['ratio']:.2f}x" for _, r in slower.iterrows()) + "\n") if len(slower) else ""
    return head + "".join(f"\n{n}\n" for n in notes) + regressions + "\n" + body + "\n"


def _fewer_than_calibrated(processes: str) -> bool:
    """Whether a 'baseline/current' process count is under CALIBRATED_PROCESSES."""
    base, current = (int(n) for n in processes.split("/"))
    return base < CALIBRATED_PROCESSES[0] or current < CALIBRATED_PROCESSES[1]


# --- baselines ------------------------------------------------------------------------
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


def save_baseline(run_dir: Path, force: bool = False) -> Path:
    """Copy a finished run's run.json and cell records (not its logs) to
    results/baselines/<environment key>/; refuses to overwrite unless `force`."""
    import shutil

    side = _from_run(run_dir)
    if not side.cells:
        raise CompareError(f"{run_dir}: no measured cell to keep as a baseline")
    folder = baselines_dir() / environment_key(side.environment)
    if folder.exists():
        if not force:
            raise CompareError(f"a baseline exists for this environment ({folder}); pass "
                               f"--force to replace it")
        shutil.rmtree(folder)
    (folder / "cells").mkdir(parents=True)
    shutil.copy2(run_dir / "run.json", folder / "run.json")
    for f in (run_dir / "cells").glob("*.json"):
        shutil.copy2(f, folder / "cells" / f.name)
    return folder
