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
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

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
           "--no-graphs", "--no-parity", "--no-report", *flags]
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


def ranking(frame: "pandas.DataFrame") -> dict[str, list[str]]:  # noqa: F821
    """Per model, frameworks from fastest to slowest by their fastest compiled mode."""
    compiled = frame[(frame["status"] == "ok") & (frame["mode"] != "eager")]
    best = compiled.groupby(["model", "framework"])["median_ms"].min().reset_index()
    return {model: list(part.sort_values("median_ms")["framework"])
            for model, part in best.groupby("model")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("results/repeatability.json"))
    parser.add_argument("flags", nargs="*", help="passed to both fwbench runs")
    args = parser.parse_args(argv)
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
