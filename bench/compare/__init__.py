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
    steps: which steps are compared (see cell_statistics). Where cells are paired
    (fwbench ab), a column "paired" says which rows used the pairing."""
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
    keys = list(dict.fromkeys([*base.cells, *current.cells]))
    # Nothing to compare: no cell the baseline measured is in the current result. (One the
    # current run planned and lost is a row, "failed" or "missing": a failure, exit 1.)
    if not any(base.cells[k].processes for k in keys if k in base.cells and k in current.cells):
        raise CompareError(f"no cell was measured in both {base.name} and {current.name}")
    rows = [_row(base.cells.get(key), current.cells.get(key), threshold, alpha, steps)
            for key in keys]
    table = pd.DataFrame(rows)
    paired = any(c.paired for side in (base, current) for c in side.cells.values())
    return table if paired else table.drop(columns="paired")


def _row(a: Cell | None, b: Cell | None, threshold: float, alpha: float,
         steps: str) -> dict[str, Any]:
    """One cell's row. A cell that did not measure on a side (absent, failed in every
    repeat, never recorded) gets verdict "missing" or "failed" and says which side and
    why; `lost` marks the ones the baseline measured and the current run did not (a
    failure of the comparison). A cell with some failed repeats is compared on the others
    and `detail` says so."""
    label = (b or a).label
    blank = {"base ms": math.nan, "current ms": math.nan, "ratio": math.nan, "low": math.nan,
             "high": math.nan, "p slower": math.nan, "p faster": math.nan}
    processes = f"{len(a.processes) if a else 0}/{len(b.processes) if b else 0}"
    gone = [(side, c) for side, c in (("baseline", a), ("current", b))
            if c is None or not c.processes]
    if gone:
        cell = gone[-1][1]  # the current run's side when it lacks the cell
        what = "missing" if cell is None or cell.status == "missing" else "failed"
        why = "; ".join(f"{side}: not in the run" if c is None else
                        f"{side}: {c.status}: {_first_line(c.error)}" for side, c in gone)
        return {**label, **blank, "processes": processes, "loaded": "", "verdict": what,
                "from": "", "steps": "", "paired": False, "lost": bool(a and a.processes),
                "detail": why}
    found = cell_statistics(a, b, steps)
    used = found.pop("steps")
    partial = [f"{side}: {len(c.processes)} of {c.repeats} processes measured ({c.status}: "
               f"{_first_line(c.error)})" for side, c in (("baseline", a), ("current", b))
               if c.status != "ok"]
    return {**label, **found, "processes": processes,
            # processes sampled on a loaded machine, baseline/current
            "loaded": f"{sum(bool(v) for v in a.loaded)}/{sum(bool(v) for v in b.loaded)}",
            "verdict": verdict(found["ratio"], found["low"], found["high"],
                               found["p slower"], found["p faster"], threshold, alpha),
            "from": "summary stats" if a.summary_only or b.summary_only else "samples",
            "steps": used, "lost": False, "detail": "; ".join(partial)}


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def failing(table: "pandas.DataFrame", allow_missing: bool = False) -> "pandas.DataFrame":  # noqa: F821
    """The rows that make a comparison fail: slower, and (unless `allow_missing`) cells
    the baseline measured that the current run lost (failed or missing)."""
    bad = table["verdict"] == "slower"
    if not allow_missing:
        bad |= table["lost"]
    return table[bad]


# --- output ---------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:.3g}"
    return "" if value is None else str(value)


def markdown(table: "pandas.DataFrame", base: Side, current: Side,  # noqa: F821
             threshold: float, alpha: float, differences: Sequence[str] = (),
             title: str | None = None,
             calibrated: tuple[int, int] = CALIBRATED_PROCESSES) -> str:
    """A Markdown summary for a CI job: the counts, the slower cells first, then all.
    title: the heading (default: fwbench compare's); calibrated: the processes per cell
    (baseline, current) the default threshold was calibrated for."""
    counts = table["verdict"].value_counts()
    slower = table[table["verdict"] == "slower"]
    lost = table[table["lost"]] if "lost" in table else table.iloc[:0]
    unmeasured = (f", **{counts.get('failed', 0)} failed**, **{counts.get('missing', 0)} "
                  f"missing**" if counts.get("failed", 0) or counts.get("missing", 0) else "")
    head = (f"### {title or f'fwbench compare: {current.name} against {base.name}'}\n\n"
            f"{len(table)} cells: **{counts.get('slower', 0)} slower**, "
            f"{counts.get('faster', 0)} faster, {counts.get('no clear change', 0)} no clear "
            f"change{unmeasured} (threshold {threshold:.0%}, alpha {alpha}).\n")
    notes = []
    if differences and title:  # fwbench ab: the differences are the point
        notes.append("Differences between the sides: " + "; ".join(differences) + ".")
    elif differences:
        notes.append("Environments differ (compared anyway): " + "; ".join(differences) + ".")
    changes = version_changes(base, current)
    if changes and not title:
        notes.append("Versions changed: " + "; ".join(changes) + ".")
    if threshold == DEFAULT_THRESHOLD and base.kind == "fwbench":
        fewer = [p for p in table["processes"] if _fewer_than_calibrated(p, calibrated)]
        if fewer:
            base_is, current_is = ("A", "B") if title else ("baseline", "current")
            notes.append(f"The default threshold was calibrated for "
                         f"{calibrated[0]} {base_is} and {calibrated[1]} {current_is} "
                         f"processes per cell; {len(fewer)} of {len(table)} cells here have "
                         f"fewer ({base_is}/{current_is}: {', '.join(sorted(set(fewer)))}), "
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
    columns = [c for c in table.columns if c not in ("p faster", "lost")]
    if len(lost):
        notes.append("Not measured in the current run although the baseline measured them: "
                     + "; ".join(f"{_name(r)} ({r['verdict']}: {r['detail']})"
                                 for _, r in lost.iterrows()) + ".")
    ordered = table.assign(_o=table["verdict"].map(
        {"failed": 0, "missing": 0, "slower": 1, "faster": 2}).fillna(3)) \
        .sort_values(["_o", "ratio"], ascending=[True, False]).drop(columns="_o")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |"
              for row in ordered[columns].itertuples(index=False)]
    body = "\n".join(lines)
    regressions = ""
    if len(slower):
        regressions = "\nRegressions: " + ", ".join(
            f"{_name(r, sizes=False)} {r['ratio']:.2f}x" for _, r in slower.iterrows()) + "\n"
    return head + "".join(f"\n{n}\n" for n in notes) + regressions + "\n" + body + "\n"


def _name(row: Any, sizes: bool = True) -> str:
    """A cell's short name in a table row: framework/model/mode[/batch/length] (or the
    test's name)."""
    keys = ("framework", "model", "mode", *(("batch_size", "seq_len") if sizes else ()), "test")
    return "/".join(_fmt(int(row[c]) if isinstance(row[c], float) and float(row[c]).is_integer()
                         else row[c]) for c in keys
                    if c in row and row[c] is not None and str(row[c]) not in ("", "nan"))


def _fewer_than_calibrated(processes: str,
                           calibrated: tuple[int, int] = CALIBRATED_PROCESSES) -> bool:
    """Whether a 'baseline/current' process count is under `calibrated`."""
    base, current = (int(n) for n in processes.split("/"))
    return base < calibrated[0] or current < calibrated[1]


VERDICT_SCHEMA = "fwbench.verdict/1"


def verdict_document(command: str, table: "pandas.DataFrame", base: Side,  # noqa: F821
                     current: Side, threshold: float, alpha: float, steps: str,
                     exit_status: int, differences: Sequence[str] = (),
                     allow_missing: bool = False, **extra: Any) -> dict[str, Any]:
    """The machine-readable verdict (--json): the settings, the counts, every cell's row
    with numbers as numbers, the cells that fail it, and the exit status with what it
    means."""
    def names(rows: "pandas.DataFrame") -> list[str]:  # noqa: F821
        return [_name(r) for _, r in rows.iterrows()]

    counts = {str(k): int(v) for k, v in table["verdict"].value_counts().items()}
    return {"schema": VERDICT_SCHEMA, "command": command, "exit_status": exit_status,
            "meaning": EXIT_MEANINGS[exit_status], "base": base.name, "current": current.name,
            "threshold": threshold, "alpha": alpha, "steps": steps,
            "differences": list(differences), "versions_changed": version_changes(base, current),
            "counts": counts, "slower": names(table[table["verdict"] == "slower"]),
            "lost": names(table[table["lost"]]),
            "failing": names(failing(table, allow_missing)),
            # NaN and NumPy scalars become null and numbers when written (results.plain)
            "cells": table.to_dict(orient="records"), **extra}


# What each exit status of a verdict (compare, ab, parity) means.
EXIT_MEANINGS = {0: "no regression, every check passed",
                 1: "a regression, a lost cell or a failed check",
                 2: "bad input: could not compare or check"}



