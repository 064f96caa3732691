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
    steps     which steps (bench.speed.speedprobe: every cell probes the machine's speed between
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
from collections.abc import Sequence
from typing import Any

from bench.compare.policy import (  # noqa: F401
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CALIBRATED_PROCESSES,
    DEFAULT_ALPHA,
    DEFAULT_STEPS,
    DEFAULT_THRESHOLD,
    STEP_CHOICES,
)
from bench.compare.sides import (  # noqa: F401
    ENV_KEYS,
    MATCH_KEYS,
    SCHEMA_BASELINE,
    Cell,
    CompareError,
    Side,
    _from_run,
    baselines_dir,
    environment_differences,
    environment_key,
    load,
    save_baseline,
    stored_baseline,
    version_changes,
)
from bench.compare.stats import (  # noqa: F401
    cell_statistics,
    fast_state_processes,
    normalized_processes,
    one_sided_p,
    ratio_interval,
    verdict,
)


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
        from bench.speed import machineload

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


