"""Calibrate `fwbench compare`'s threshold on this machine: false alarms and detection.

Measures the perf session's cells (compiled mode, 3 frameworks x 3 models) many times,
each time in a fresh process, alternating two conditions over the whole session so the
machine's drift hits both alike:

    same   the code as it is
    slow   the same, with every timed step made 25% slower (a bench.workers.Fault "slow": the
           step spins on the CPU for 0.25 x the median step of the warm-up's second
           half, inside the timing)

with the perf session's settings (1 thread, 3 s of samples per process).

Then it forms comparisons the way the perf session makes them (a baseline of B processes
per cell against a current run of R processes per cell; B = --baseline-processes, the
stored baseline's repeats, R = --per-side, the perf session's --repeats):

    false alarm  baseline and current both from `same` (disjoint processes); a comparison
                 is a false alarm if `fwbench compare` calls ANY of its cells slower
    detection    baseline from `same`, current from `slow`; a cell is detected if called
                 slower, and a comparison if every one of its cells is

for each threshold in --thresholds and each way compare can pick the steps (--steps
normalized, fast, all), with compare's own statistics (bench.compare). The
comparisons are drawn at random from the measured processes, so they share processes:
the rates are estimates from a finite pool, not independent trials (the JSON says how
many processes and comparisons there were).

    python benchmarks/calibrate_compare.py [--processes 20] [--per-side 4] [--baseline-processes 8]
    python benchmarks/calibrate_compare.py --reuse --runs results/calibration-runs   # re-analyse only
    python benchmarks/calibrate_compare.py --processes 20 --conditions same   # grow the pool
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import compare, environment, results, workers  # noqa: E402
from bench.speed import cells, harness  # noqa: E402
from bench.speed.measure import Budget  # noqa: E402

CONDITIONS = ("same", "slow")
DEFAULT_THRESHOLDS = (0.03, 0.05, 0.07, 0.10, 0.12, 0.15, 0.17, 0.20, 0.22, 0.25)
BAR_FALSE_ALARM = 0.01
BAR_DETECTION = 0.95
# The perf session's matrix settings (noxfile.py, perf): one thread pinned to one core,
# the other core left to the OS and the harness, and 3 s of samples per process; its
# current run has PERF_REPEATS processes per cell, the stored baseline BASELINE_REPEATS
# (recorded once, so it can afford more: README, "The threshold, calibrated on this VM").
PERF_THREADS = 1
PERF_SAMPLE_S = 3.0
BASELINE_REPEATS, PERF_REPEATS = compare.CALIBRATED_PROCESSES


def collect(folder: Path, frameworks: list[str], models: list[str], processes: int,
            slowdown: float, threads: int, sample_s: float,
            conditions: tuple[str, ...] = CONDITIONS) -> None:
    """`processes` runs per condition under `folder`, alternating the conditions; each
    run is one process per cell (the harness, as `fwbench run` uses it). Runs already
    there are kept, so a pool can be grown later (e.g. more `same` runs only)."""
    matrix = cells.expand(frameworks, models, ["compiled"], "small", threads=threads)
    budget = Budget(warmup_s=0.5, sample_s=sample_s, min_samples=10)
    os.environ["FWBENCH_RESULTS"] = str(folder)
    results.RESULTS_DIR = folder
    started = time.perf_counter()
    for i in range(processes):
        for condition in conditions:
            name = f"{condition}-{i:02d}"
            if (harness.runs_dir() / name / "run.json").exists():
                run_dir = harness.runs_dir() / name
            else:
                run_dir = harness.new_run(matrix, budget, 300.0, False, name)
            fault = workers.Fault("slow", fraction=slowdown) if condition == "slow" else None
            records = harness.execute(run_dir, fault=fault)
            bad = [r["cell_id"] for r in records if r["status"] != "ok"]
            print(f"[{time.perf_counter() - started:6.0f} s] {name}: {len(records)} processes"
                  + (f", FAILED: {bad}" if bad else ""), flush=True)


def load(folder: Path) -> dict[str, list[compare.Side]]:
    """The runs of each condition, as compare.Side objects (one process per cell each)."""
    out: dict[str, list[compare.Side]] = {c: [] for c in CONDITIONS}
    for run_json in sorted((folder / "runs").glob("*/run.json")):
        condition = run_json.parent.name.split("-")[0]
        if condition in out:
            out[condition].append(compare._from_run(run_json.parent))
    return out


def merged(sides: list[compare.Side], name: str) -> compare.Side:
    """Several one-process runs as one run with a process per side entry (repeats)."""
    out = compare.Side(name, "fwbench", sides[0].environment, sides[0].versions)
    for side in sides:
        for key, cell in side.cells.items():
            entry = out.cells.setdefault(key, compare.Cell(key, cell.label, []))
            entry.processes.extend(cell.processes)
            entry.probes.extend(cell.probes)
            entry.matmul_probes.extend(cell.matmul_probes)
            entry.loaded.extend(cell.loaded)
            entry.matmul_probe_version = cell.matmul_probe_version
    return out


def evaluate(runs: dict[str, list[compare.Side]], per_side: int, thresholds: list[float],
             comparisons: int, steps: str, seed: int = 0,
             baseline_processes: int | None = None) -> dict:
    """False-alarm and detection rates per threshold over random comparisons, comparing
    the steps compare.cell_statistics picks for `steps` (fast, normalized or all). The
    baseline has `baseline_processes` processes per cell (default: per_side), the
    current run per_side."""
    rng = np.random.default_rng(seed)
    same, slow = runs["same"], runs["slow"]
    base_n = baseline_processes or per_side
    if len(same) < base_n + per_side or len(slow) < per_side:
        raise SystemExit(f"need >= {base_n + per_side} 'same' and >= {per_side} 'slow' runs, "
                         f"have {len(same)} and {len(slow)}")
    draws = {"false_alarm": [], "detection": []}
    for _ in range(comparisons):
        picked = rng.permutation(len(same))
        base = merged([same[i] for i in picked[:base_n]], "base")
        again = merged([same[i] for i in picked[base_n:base_n + per_side]], "again")
        slower = merged([slow[i] for i in rng.permutation(len(slow))[:per_side]], "slow")
        draws["false_alarm"].append(_cell_stats(base, again, steps))
        draws["detection"].append(_cell_stats(base, slower, steps))
    table = []
    for threshold in thresholds:
        row = {"threshold": threshold}
        for kind, trials in draws.items():
            calls = [[compare.verdict(*cell[:5], threshold, compare.DEFAULT_ALPHA) == "slower"
                      for cell in trial] for trial in trials]
            cells_called = [c for trial in calls for c in trial]
            row[f"{kind}_cell_rate"] = float(np.mean(cells_called))
            row[f"{kind}_comparison_rate"] = float(np.mean(
                [any(t) for t in calls] if kind == "false_alarm" else [all(t) for t in calls]))
        table.append(row)
    ratios = {kind: [cell[0] for trial in trials for cell in trial]
              for kind, trials in draws.items()}
    used = float(np.mean([cell[5] for trials in draws.values() for trial in trials
                          for cell in trial]))
    return {"rows": table, "steps_used": used,
            "ratio_quantiles": {kind: dict(zip(("p1", "p5", "p50", "p95", "p99"),
                                               np.percentile(v, [1, 5, 50, 95, 99]).tolist()))
                                for kind, v in ratios.items()}}


def _cell_stats(base: compare.Side, current: compare.Side, steps: str) -> list[tuple]:
    """(ratio, low, high, p_slower, p_faster) per shared cell: what verdict() needs, from
    compare's own cell_statistics."""
    out = []
    for key in current.cells:
        a, b = base.cells.get(key), current.cells[key]
        if a is None:
            continue
        found = compare.cell_statistics(a, b, steps, resamples=400)
        out.append((found["ratio"], found["low"], found["high"], found["p slower"],
                    found["p faster"], not found["steps"].startswith("all")))
    return out


def _print(title: str, found: dict) -> None:
    print(f"{title} (as asked in {found['steps_used']:.0%} of cell comparisons, else every step)")
    print("threshold  false alarm (cell, comparison)  detection of +25% (cell, comparison)")
    for r in found["rows"]:
        print(f"{r['threshold']:9.2f}  {r['false_alarm_cell_rate']:8.4f} "
              f"{r['false_alarm_comparison_rate']:10.4f}            "
              f"{r['detection_cell_rate']:8.4f} {r['detection_comparison_rate']:10.4f}")
    print("ratio quantiles:", {k: {q: round(v, 3) for q, v in d.items()}
                               for k, d in found["ratio_quantiles"].items()})


def _choices(parser: argparse.ArgumentParser, flag: str, text: str,
             allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated flag value as a tuple; a parser error naming what is not known."""
    chosen = tuple(text.split(","))
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        parser.error(f"{flag}: {', '.join(unknown)} not known; choose from {', '.join(allowed)}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=20,
                        help="runs per condition (default %(default)s: the comparisons need "
                             "baseline + current processes of 'same' that do not overlap)")
    parser.add_argument("--per-side", type=int, default=PERF_REPEATS,
                        help="processes per cell of the current run (default %(default)s, "
                             "the perf session's --repeats)")
    parser.add_argument("--baseline-processes", type=int, default=BASELINE_REPEATS,
                        help="processes per cell of the baseline (default %(default)s, the "
                             "stored baseline's --repeats)")
    parser.add_argument("--slowdown", type=float, default=0.25)
    parser.add_argument("--frameworks", default="tf,torch,jax")
    parser.add_argument("--models", default="mlp,lstm,attention")
    parser.add_argument("--threads", type=int, default=PERF_THREADS,
                        help="threads per cell (default %(default)s, as the perf session)")
    parser.add_argument("--sample-seconds", type=float, default=PERF_SAMPLE_S,
                        help="sampling per process (default %(default)s s, as the perf session)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help="which conditions to measure (default %(default)s); e.g. "
                             "'same' to add baseline-like runs to an existing pool")
    parser.add_argument("--steps", default=",".join(compare.STEP_CHOICES),
                        help="which of compare's --steps choices to evaluate (default "
                             "%(default)s)")
    parser.add_argument("--comparisons", type=int, default=400)
    parser.add_argument("--thresholds", default=",".join(map(str, DEFAULT_THRESHOLDS)))
    parser.add_argument("--runs", type=Path, default=ROOT / "results" / "calibration-runs",
                        help="where the measured runs go (kept: rerun with --reuse)")
    parser.add_argument("--reuse", action="store_true", help="analyse --runs, measure nothing")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "calibration.json")
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    step_choices = _choices(parser, "--steps", args.steps, compare.STEP_CHOICES)
    conditions = _choices(parser, "--conditions", args.conditions, CONDITIONS)
    started = time.perf_counter()
    if not args.reuse:
        collect(args.runs, args.frameworks.split(","), args.models.split(","), args.processes,
                args.slowdown, args.threads, args.sample_seconds, conditions)
    measured_s = time.perf_counter() - started
    runs = load(args.runs)
    base_n = args.baseline_processes
    found = {steps: evaluate(runs, args.per_side, thresholds, args.comparisons, steps,
                             baseline_processes=base_n)
             for steps in step_choices}
    choice = {}
    for statistic, part in found.items():
        passing = [r for r in part["rows"] if r["false_alarm_comparison_rate"] < BAR_FALSE_ALARM
                   and r["detection_cell_rate"] >= BAR_DETECTION]
        choice[statistic] = passing[0]["threshold"] if passing else None
    doc = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "environment": environment.describe(), "slowdown": args.slowdown,
           "threads": args.threads, "sample_s": args.sample_seconds,
           "runs_per_condition": {k: len(v) for k, v in runs.items()},
           "cells_per_run": len(runs["same"][0].cells) if runs["same"] else 0,
           # processes that sampled on a loaded machine (bench.speed.machineload), per condition
           "loaded_processes": {k: sum(bool(v) for side in sides for c in side.cells.values()
                                       for v in c.loaded) for k, sides in runs.items()},
           "per_side": args.per_side, "baseline_processes": base_n,
           "comparisons": args.comparisons,
           "alpha": compare.DEFAULT_ALPHA,
           "measure_s": None if args.reuse else measured_s,  # None: re-analysed only
           "bars": {"false_alarm_comparison_rate_below": BAR_FALSE_ALARM,
                    "detection_cell_rate_at_least": BAR_DETECTION},
           "smallest_threshold_meeting_both": choice, **found}
    results.write_json(args.output, doc)
    print(f"{doc['runs_per_condition']} runs of {doc['cells_per_run']} cells; comparisons of "
          f"{base_n} (baseline) vs {args.per_side} processes per cell, {args.comparisons} drawn; "
          f"alpha {compare.DEFAULT_ALPHA}")
    for steps in step_choices:
        _print(f"--steps {steps}" + (" (compare's default)" if steps == compare.DEFAULT_STEPS
                                     else ""), found[steps])
    print(f"smallest threshold meeting both bars: {choice}; written to {args.output}")
    return 0 if any(threshold is not None for threshold in choice.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
