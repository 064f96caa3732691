"""Repeatability: does the same `fwbench run`, done twice, say the same thing?

Runs the default matrix (or the one the extra flags ask for) twice, back to back, and
reports, in one JSON file and a table:

- the wall time of each run (the bar: the default matrix under 10 minutes on 2 cores);
- for every compiled cell (every mode but eager), run B's median over run A's (the bar:
  within 10%, i.e. 1/1.1 <= ratio <= 1.1);
- per model, the ranking of frameworks by their fastest compiled mode in each run (the
  bar: the same order);
- beside the bar, the same ratio for the medians of the steps normalized by the
  machine-speed matmul probe, as `fwbench compare --steps normalized` does: how much of
  the difference is the machine changing speed.

    python benchmarks/repeatability.py [--output results/repeatability.json] [-- fwbench run flags]

What it would take on this machine: `--from-pool RUN` reads a run made with many
repeats per cell (`fwbench run --modes compiled,xla --repeats 8 ...`: round-robin, so
repeat order is time order), cuts each cell's processes into consecutive disjoint
groups of `--group-sizes` processes, treats each group as one run, and reports for every
pair of groups how far apart the pooled medians of the compiled cells are. From the
spread of those ratios it estimates how many processes per cell two runs would need
for every compiled cell to land within 10% with 80% probability, assuming that spread
falls as 1/sqrt(processes). `--window S` keeps only each process's first S seconds of
steps, to ask what a shorter --sample-seconds would have given.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import compare, environment, results  # noqa: E402

BAR_RATIO = 1.10      # medians of the same compiled cell within 10%
BAR_WALL_S = 600.0    # the default matrix in under 10 minutes


def _run(name: str, flags: list[str]) -> tuple[float, Path]:
    # The speed matrix alone: the main job's later phases (scaling sweep, graph study,
    # parity, report) are timed by the job itself and are not what this bar is about.
    cmd = [sys.executable, "-m", "bench.cli", "run", "--name", name, "--no-scaling",
           "--no-graphs", "--no-parity", "--no-report", "--no-limits", *flags]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=os.environ, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    print(proc.stdout, flush=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"fwbench run {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall_s, results.RESULTS_DIR / "runs" / name


def normalized_medians(samples_a: list, probes_a: list, samples_b: list,
                       probes_b: list) -> tuple[float, float] | None:
    """Each run's median of its steps rescaled by their matmul probes, as `fwbench
    compare --steps normalized` rescales them; None where a process has no probes."""
    cells = [compare.Cell("", {}, [list(s) for s in samples], matmul_probes=[list(p) for p in probes])
             for samples, probes in ((samples_a, probes_a), (samples_b, probes_b))]
    sides = compare.normalized_processes(*cells)
    if sides is None:
        return None
    return float(np.median(np.concatenate(sides[0]))), float(np.median(np.concatenate(sides[1])))


def compiled_cells(frame: "pandas.DataFrame") -> "pandas.DataFrame":  # noqa: F821
    """The rows of the cells the bar is about: measured, in a mode other than eager."""
    return frame[(frame["status"] == "ok") & (frame["mode"] != "eager")]


def first_seconds(samples_ms: list[float], window_s: float | None) -> list[float]:
    """The steps of a process taken within its first `window_s` seconds of stepping
    (at least one); all of them when window_s is None."""
    if window_s is None:
        return list(samples_ms)
    elapsed = np.cumsum(samples_ms)
    return list(samples_ms[:max(1, int(np.searchsorted(elapsed, window_s * 1e3, "right")))])


def pool_estimate(processes: dict[str, list[list[float]]], group_size: int,
                  window_s: float | None = None) -> dict[str, Any]:
    """Runs of `group_size` processes per cell, made from consecutive disjoint groups of
    each cell's processes (`processes`: cell id -> per-process step times, in time
    order), compared pair by pair as the bar compares two runs' medians.

    Returns: groups, pairs, comparisons (cell x pair), within_bar (how many of them
    within 10%), pairs_all_within (pairs where every cell was), log_ratio_sd (the root
    mean square of log(median ratio)) and worst_ratio (>= 1)."""
    groups = min(len(p) for p in processes.values()) // group_size
    if groups < 2:
        raise ValueError(f"groups of {group_size} processes need at least {2 * group_size} "
                         f"processes per cell; the pool has "
                         f"{min(len(p) for p in processes.values())}")
    medians = {cell: [float(np.median(np.concatenate(
        [first_seconds(s, window_s) for s in procs[g * group_size:(g + 1) * group_size]])))
        for g in range(groups)] for cell, procs in processes.items()}
    logs, pairs_all_within = [], 0
    for a, b in itertools.combinations(range(groups), 2):
        pair = [np.log(m[b] / m[a]) for m in medians.values()]
        logs.extend(pair)
        pairs_all_within += all(abs(x) <= np.log(BAR_RATIO) for x in pair)
    logs_array = np.abs(np.array(logs))
    return {"group_size": group_size, "groups": groups, "pairs": groups * (groups - 1) // 2,
            "comparisons": len(logs), "within_bar": int((logs_array <= np.log(BAR_RATIO)).sum()),
            "pairs_all_within": pairs_all_within,
            "log_ratio_sd": float(np.sqrt(np.mean(logs_array ** 2))),
            "worst_ratio": float(np.exp(logs_array.max()))}


def processes_needed(log_ratio_sd: float, group_size: int, cells: int,
                     probability: float = 0.8) -> int:
    """Processes per cell per run for all `cells` ratios to fall within 10% together
    with `probability`, from a log-ratio spread measured at `group_size` processes and
    falling as 1/sqrt(processes)."""
    per_cell = probability ** (1 / cells)
    allowed_sd = np.log(BAR_RATIO) / NormalDist().inv_cdf((1 + per_cell) / 2)
    return max(1, int(np.ceil(group_size * (log_ratio_sd / allowed_sd) ** 2)))


def from_pool(run_dir: Path, group_sizes: list[int], window_s: float | None) -> dict[str, Any]:
    compiled = compiled_cells(results.load(run_dir))
    if compiled.empty:
        raise SystemExit(f"{run_dir}: no compiled cell measured")
    processes = dict(zip(compiled["cell_id"], compiled["process_samples_ms"]))
    rows = []
    for size in group_sizes:
        try:
            found = pool_estimate(processes, size, window_s)
        except ValueError as exc:
            print(f"groups of {size}: {exc}")
            continue
        found["processes_needed"] = processes_needed(found["log_ratio_sd"], size, len(processes))
        rows.append(found)
        print(f"{size} process(es) per cell per run: {found['within_bar']}/{found['comparisons']} "
              f"cell ratios within 10%, {found['pairs_all_within']}/{found['pairs']} pairs of runs "
              f"with every cell within; log-ratio sd {found['log_ratio_sd']:.3f}, worst "
              f"{found['worst_ratio']:.3f}x; for all {len(processes)} cells within 10% with 80% "
              f"probability: about {found['processes_needed']} processes per cell")
    return {"schema": "fwbench.repeatability-pool/1", "run": str(run_dir), "window_s": window_s,
            "cells": len(processes), "rows": rows}


def ranking(frame: "pandas.DataFrame") -> dict[str, list[str]]:  # noqa: F821
    """Per model, frameworks from fastest to slowest by their fastest compiled mode."""
    best = compiled_cells(frame).groupby(["model", "framework"])["median_ms"].min().reset_index()
    return {model: list(part.sort_values("median_ms")["framework"])
            for model, part in best.groupby("model")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("results/repeatability.json"))
    parser.add_argument("--from-pool", type=Path, default=None, metavar="RUN",
                        help="measure nothing: estimate from RUN's repeats (see above)")
    parser.add_argument("--group-sizes", default="1,2,4", help="with --from-pool")
    parser.add_argument("--window", type=float, default=None, metavar="S",
                        help="with --from-pool: each process's first S seconds of steps only")
    parser.add_argument("flags", nargs="*", help="passed to both fwbench runs")
    args = parser.parse_args(argv)
    if args.from_pool is not None:
        try:
            sizes = [int(x) for x in args.group_sizes.split(",")]
        except ValueError:
            parser.error(f"--group-sizes {args.group_sizes!r}: expected whole numbers like 1,2,4")
        if not sizes or min(sizes) < 1:
            parser.error(f"--group-sizes {args.group_sizes!r}: every size must be >= 1")
        if args.window is not None and args.window <= 0:
            parser.error(f"--window {args.window}: must be > 0")
        results.write_json(args.output, {**from_pool(args.from_pool, sizes, args.window),
                                         "environment": environment.describe()})
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    wall_a, dir_a = _run(f"repeat-{stamp}-a", args.flags)
    wall_b, dir_b = _run(f"repeat-{stamp}-b", args.flags)
    a, b = results.load(dir_a), results.load(dir_b)
    keys = ["framework", "model", "mode", "batch_size", "seq_len"]
    both = a.merge(b, on=keys, suffixes=("_a", "_b"))
    both = both[(both["status_a"] == "ok") & (both["status_b"] == "ok")
                & (both["mode"] != "eager")]
    rows = []
    for _, r in both.iterrows():
        ratio = r["median_ms_b"] / r["median_ms_a"]
        norm = normalized_medians(r["process_samples_ms_a"], r["process_matmul_probe_ms_a"],
                                  r["process_samples_ms_b"], r["process_matmul_probe_ms_b"])
        norm_ratio = norm[1] / norm[0] if norm else None
        rows.append({"framework": r["framework"], "model": r["model"], "mode": r["mode"],
                     "median_ms_a": r["median_ms_a"], "median_ms_b": r["median_ms_b"],
                     "iqr_ms_a": r["iqr_ms_a"], "iqr_ms_b": r["iqr_ms_b"], "ratio": ratio,
                     "within_bar": 1 / BAR_RATIO <= ratio <= BAR_RATIO,
                     "normalized_median_ms": norm, "normalized_ratio": norm_ratio})
        print(f"{r['framework']:6} {r['model']:10} {r['mode']:9} A {r['median_ms_a']:9.3f} ms"
              f"  B {r['median_ms_b']:9.3f} ms  B/A {ratio:.3f}"
              f"{'' if rows[-1]['within_bar'] else '  OUTSIDE 10%'}"
              + (f"   normalized B/A {norm_ratio:.3f}" if norm_ratio else "   (no probes)"))
    rank_a, rank_b = ranking(a), ranking(b)
    same_ranking = rank_a == rank_b
    for model in rank_a:
        print(f"ranking {model:10} A {' < '.join(rank_a[model])}   "
              f"B {' < '.join(rank_b.get(model, []))}")
    failed = [r for r in rows if not r["within_bar"]]
    norm = [r["normalized_ratio"] for r in rows if r["normalized_ratio"]]
    norm_within = sum(1 / BAR_RATIO <= x <= BAR_RATIO for x in norm)
    print(f"probe-normalized medians: {norm_within}/{len(norm)} compiled cells within 10%"
          + (f" (worst {max(max(x, 1 / x) for x in norm):.3f}x)" if norm else ""))
    worst = max((max(r["ratio"], 1 / r["ratio"]) for r in rows), default=float("nan"))
    print(f"wall time A {wall_a:.0f} s, B {wall_b:.0f} s (bar {BAR_WALL_S:.0f} s); "
          f"{len(rows) - len(failed)}/{len(rows)} compiled cells within 10% "
          f"(worst {worst:.3f}x); same ranking: {same_ranking}")
    results.write_json(args.output, {
        "schema": "fwbench.repeatability/1", "runs": [dir_a.name, dir_b.name],
        "flags": args.flags, "wall_s": [wall_a, wall_b], "rows": rows,
        "ranking": {"a": rank_a, "b": rank_b}, "same_ranking": same_ranking,
        "worst_ratio": worst, "normalized": {"cells": len(norm), "within_bar": norm_within},
        "environment": environment.describe()})
    ok = not failed and same_ranking and rows and max(wall_a, wall_b) < BAR_WALL_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
