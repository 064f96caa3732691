"""Calibrate `fwbench ab` on this machine: false alarms with A = B, detection of a 25%
slowdown on one side, for several processes per side.

Measures two `fwbench ab` sessions of the perf matrix (3 frameworks x 3 models,
compiled) with ab's default settings (1 thread, 3 s of samples per process):

    same   A = B = the working tree, --pairs pairs of processes per cell
    slow   A = the working tree, B = the same with every timed step made 25% slower (the
           bench.workers fault "slow=0.25", ab's hidden --b-fault), --slow-pairs pairs

Then, for each K in --per-side, it draws comparisons of K pairs per cell the way
`fwbench ab --processes K` makes them (paired bootstrap, Mann-Whitney, threshold; the
verdicts of bench.compare on the chosen pairs):

    false alarm  K of the `same` session's pairs (A and B swapped at random within a pair:
                 they run the same code); a comparison is a false alarm if ANY of its 9
                 cells is called slower (what fails a CI job)
    detection    K of the `slow` session's pairs; a cell is detected if called slower, a
                 comparison if all 9 are

Draws share pairs, so they are not independent trials; the table also counts the
disjoint comparisons (pairs split into blocks of K), which are. And it measures what
interleaving removes: per cell, the ratio between the unslowed side A of the two sessions
(two jobs on this machine, minutes apart) and against the committed baseline of this
environment (another job, another day), next to the A = B ratios within one session.

    python benchmarks/calibrate_ab.py [--pairs 8] [--slow-pairs 6] [--per-side 2,3,4,6]
    python benchmarks/calibrate_ab.py --reuse       # analyse the sessions already measured
    python benchmarks/calibrate_ab.py --pairs 4 --slow-pairs 4 --sessions more   # grow it:
    python benchmarks/calibrate_ab.py --reuse --more-sessions more    # ... analysed as one pool

The two sessions run one after the other, so the slowed session's pairs are later than the
A = B session's; within each, A and B alternate pair by pair.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cli, compare, environment, results  # noqa: E402
from bench.compare import ab  # noqa: E402
from bench.compare.sides import Cell  # noqa: E402

SLOWDOWN = "slow=0.25"
BAR_FALSE_ALARM = 0.01
BAR_DETECTION = 0.95


def measure(folder: Path, name: str, pairs: int, b_fault: str | None, seed: int,
            overrides: list[str] = ()) -> Path:
    """One ab session of the default cells under `folder` (kept if already there:
    finished slots are not measured again); `overrides`: ab flags for a quick try."""
    from bench.cli.ab import _settings
    from bench.speed import cells

    os.environ["FWBENCH_RESULTS"] = str(folder)
    results.RESULTS_DIR = folder
    session = ab.ab_dir() / name
    if not (session / "ab.json").exists():
        args = cli.build_parser().parse_args(["ab", *overrides])
        matrix = cells.expand(args.frameworks.split(","), args.models.split(","),
                              args.modes.split(","), args.preset, args.device, args.dtype,
                              args.threads)
        sides = {"A": ab.SideSpec(), "B": ab.SideSpec(fault=b_fault)}
        session = ab.new_session(matrix, sides, pairs, _settings(args), seed, name)
    started = time.perf_counter()
    ab.execute(session, on_slot=lambda done, total, label, side, wall: print(
        f"  {name} [{done + (wall is not None)}/{total}] {label}"
        + (f" {wall:.0f} s" if wall is not None else ""), flush=True)
        if wall is not None else None)
    print(f"{name}: measured in {time.perf_counter() - started:.0f} s", flush=True)
    return session


def _subset(cell: Cell, pairs: list[int], swap: list[bool] | None, other: Cell) -> Cell:
    """`cell` cut to the processes of `pairs`; where swap[i], pair i's process comes from
    `other` instead (A = B: the two halves of a pair are exchangeable)."""
    take = [(other if swap and swap[j] else cell, p) for j, p in enumerate(pairs)]
    return Cell(cell.key, cell.label, [src.processes[p] for src, p in take],
                probes=[src.probes[p] for src, p in take],
                matmul_probes=[src.matmul_probes[p] for src, p in take],
                matmul_probe_version=cell.matmul_probe_version,
                loaded=[src.loaded[p] if src.loaded else None for src, p in take],
                paired=True)


def cell_verdict(a: Cell, b: Cell, threshold: float, alpha: float, steps: str,
                 need_interval: bool = False) -> tuple[str, float, float]:
    """(verdict, ratio, log width of the interval or nan). The bootstrap is skipped where
    the ratio alone rules out slower and faster (the verdict needs all three)."""
    chosen = (compare.normalized_processes(a, b) if steps == "normalized" else
              compare.fast_state_processes(a, b) if steps == "fast" else None)
    pa, pb = chosen if chosen else (a.processes, b.processes)
    ratio = float(np.median(np.concatenate(pb)) / np.median(np.concatenate(pa)))
    if not need_interval and 1 / (1 + threshold) <= ratio <= 1 + threshold:
        return "no clear change", ratio, math.nan
    found = compare.cell_statistics(a, b, steps)
    verdict = compare.verdict(found["ratio"], found["low"], found["high"], found["p slower"],
                              found["p faster"], threshold, alpha)
    return verdict, found["ratio"], math.log(found["high"] / found["low"])


def draws(total: int, k: int, count: int, rng: np.random.Generator) -> list[list[int]]:
    """`count` sets of k pair indices out of `total` (all of them when there are fewer)."""
    from itertools import combinations

    every = math.comb(total, k)
    if every <= count:
        return [list(c) for c in combinations(range(total), k)]
    seen: set[tuple[int, ...]] = set()
    while len(seen) < count:
        seen.add(tuple(sorted(rng.choice(total, k, replace=False).tolist())))
    return [list(c) for c in sorted(seen)]


def union(folders: list[Path]) -> tuple["compare.Side", "compare.Side"]:
    """Sides A and B of several sessions of the same cells, their pairs one after the
    other (a pool grown by measuring more sessions)."""
    a, b, _ = ab.sides(folders[0])
    for folder in folders[1:]:
        more_a, more_b, _ = ab.sides(folder)
        for side, more in ((a, more_a), (b, more_b)):
            for key, cell in side.cells.items():
                extra = more.cells[key]
                cell.processes += extra.processes
                cell.probes += extra.probes
                cell.matmul_probes += extra.matmul_probes
                cell.loaded += extra.loaded
                cell.paired = cell.paired and extra.paired
    return a, b


def analyse(same: list[Path], slow: list[Path], per_side: list[int], count: int,
            threshold: float, alpha: float, steps: str, slow_count: int = 20,
            widths: int = 5) -> dict:
    same_a, same_b = union(same)
    slow_a, slow_b = union(slow)
    keys = list(same_a.cells)
    p_same = min(len(same_a.cells[k].processes) for k in keys)
    p_slow = min(len(slow_a.cells[k].processes) for k in slow_a.cells)
    rng = np.random.default_rng(0)
    rows = []
    for k in per_side:
        row = {"per_side": k, "threshold": threshold}
        if k <= p_same:
            chosen = draws(p_same, k, count, rng)
            flagged, cell_flags, ratios, spans = 0, 0, [], {"paired": [], "unpaired": []}
            for j, pairs in enumerate(chosen):
                swap = rng.random(k) < 0.5
                any_slower = False
                for key in keys:
                    a = _subset(same_a.cells[key], pairs, list(swap), same_b.cells[key])
                    b = _subset(same_b.cells[key], pairs, list(swap), same_a.cells[key])
                    verdict, ratio, width = cell_verdict(a, b, threshold, alpha, steps,
                                                         need_interval=j < widths)
                    ratios.append(ratio)
                    if j < widths:  # what the pairing does to the interval, on a few draws
                        spans["paired"].append(width)
                        a.paired = b.paired = False
                        spans["unpaired"].append(cell_verdict(a, b, threshold, alpha, steps,
                                                               need_interval=True)[2])
                    cell_flags += verdict == "slower"
                    any_slower |= verdict == "slower"
                flagged += any_slower
            blocks = [list(range(s, s + k)) for s in range(0, p_same - k + 1, k)]
            disjoint = sum(any(cell_verdict(_subset(same_a.cells[key], blk, None, same_b.cells[key]),
                                            _subset(same_b.cells[key], blk, None, same_a.cells[key]),
                                            threshold, alpha, steps)[0] == "slower"
                               for key in keys) for blk in blocks)
            row.update({
                "same_comparisons": len(chosen), "same_flagged": flagged,
                "false_alarm_per_comparison": flagged / len(chosen),
                "false_alarm_per_cell": cell_flags / (len(chosen) * len(keys)),
                "same_disjoint_comparisons": len(blocks), "same_disjoint_flagged": disjoint,
                "same_ratio_p1_p99": [float(np.percentile(ratios, 1)),
                                      float(np.percentile(ratios, 99))],
                "interval_log_width_paired": float(np.nanmean(spans["paired"])),
                "interval_log_width_unpaired": float(np.nanmean(spans["unpaired"]))})
        if k <= p_slow:
            chosen = draws(p_slow, k, slow_count, rng)
            caught, cells_caught, ratios = 0, 0, []
            for pairs in chosen:
                hits = 0
                for key in slow_a.cells:
                    a = _subset(slow_a.cells[key], pairs, None, slow_b.cells[key])
                    b = _subset(slow_b.cells[key], pairs, None, slow_a.cells[key])
                    verdict, ratio, _ = cell_verdict(a, b, threshold, alpha, steps)
                    ratios.append(ratio)
                    hits += verdict == "slower"
                cells_caught += hits
                caught += hits == len(slow_a.cells)
            row.update({
                "slow_comparisons": len(chosen),
                "detected_per_comparison": caught / len(chosen),
                "detected_per_cell": cells_caught / (len(chosen) * len(slow_a.cells)),
                "slow_disjoint_comparisons": p_slow // k,
                "slow_ratio_p1_p99": [float(np.percentile(ratios, 1)),
                                      float(np.percentile(ratios, 99))]})
        rows.append(row)
        print(row, flush=True)
    return {"rows": rows, "between_jobs": between_jobs(same_a, slow_a, same_b, steps),
            "pool": {"same_pairs": p_same, "slow_pairs": p_slow, "cells": len(keys)}}


def between_jobs(first: "compare.Side", second: "compare.Side", first_b: "compare.Side",
                 steps: str) -> dict:
    """Per cell, the ratio (normalized medians) of: B over A within the A = B sessions
    (interleaved, one job); the slowed sessions' A over the A = B sessions' A (two jobs
    on this machine); the A = B sessions' A over the committed baseline of this
    environment (another day); and the RMS of |log ratio| of each over the cells."""
    out: dict[str, dict[str, float]] = {}
    folder = ROOT / "results" / "baselines" / compare.environment_key(first.environment)
    stored = compare.load(folder) if (folder / "run.json").exists() else None

    def ratio(a: Cell, b: Cell) -> float:
        return compare.cell_statistics(a, b, steps)["ratio"]

    for key, cell in first.cells.items():
        row = {"within_job_interleaved": ratio(cell, first_b.cells[key])}
        if key in second.cells:
            row["between_jobs_same_machine"] = ratio(cell, second.cells[key])
        match = stored and next((c for c in stored.cells.values()
                                 if c.label["framework"] == cell.label["framework"]
                                 and c.label["model"] == cell.label["model"]
                                 and c.label["mode"] == cell.label["mode"]), None)
        if match and match.processes:
            row["vs_stored_baseline"] = ratio(match, cell)
        out["/".join(str(cell.label[k]) for k in ("framework", "model"))] = row

    def spread(name: str) -> float | None:
        values = [abs(math.log(r[name])) for r in out.values() if name in r]
        return float(np.sqrt(np.mean(np.square(values)))) if values else None

    return {"cells": out, "rms_abs_log_ratio": {name: spread(name) for name in (
        "within_job_interleaved", "between_jobs_same_machine", "vs_stored_baseline")},
        "stored_baseline": stored.name if stored else None}


def table(report: dict) -> str:
    lines = ["| processes per side | A = B: flagged per comparison | per cell | disjoint "
             "comparisons flagged | +25% caught per comparison | per cell | A = B ratios, "
             "1st-99th percentile | interval width, paired / unpaired |", "|" + "---|" * 8]
    for r in report["rows"]:
        def pct(x: float | None) -> str:
            return "" if x is None else f"{100 * x:.1f}%"
        same = ("" if "same_comparisons" not in r else
                f"{pct(r['false_alarm_per_comparison'])} ({r['same_flagged']} of "
                f"{r['same_comparisons']})")
        lines.append(
            f"| {r['per_side']} | {same} | {pct(r.get('false_alarm_per_cell'))} | "
            + (f"{r['same_disjoint_flagged']} of {r['same_disjoint_comparisons']}"
               if "same_disjoint_comparisons" in r else "") + " | "
            + (f"{pct(r['detected_per_comparison'])} ({r['slow_comparisons']} draws, "
               f"{r['slow_disjoint_comparisons']} disjoint)" if "slow_comparisons" in r else "")
            + f" | {pct(r.get('detected_per_cell'))} | "
            + ("{:.3f}-{:.3f}".format(*r["same_ratio_p1_p99"]) if "same_ratio_p1_p99" in r else "")
            + " | " + (f"{r['interval_log_width_paired']:.3f} / "
                       f"{r['interval_log_width_unpaired']:.3f}"
                       if "interval_log_width_paired" in r else "") + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="pairs per cell, A = B session")
    parser.add_argument("--slow-pairs", type=int, default=6, help="pairs per cell, slowed session")
    parser.add_argument("--per-side", default="2,3,4,6", help="processes per side to evaluate")
    parser.add_argument("--draws", type=int, default=100,
                        help="A = B comparisons drawn per setting")
    parser.add_argument("--slow-draws", type=int, default=20,
                        help="slowed comparisons drawn per setting (each needs the bootstrap "
                        "of all 9 cells: seconds)")
    parser.add_argument("--widths", type=int, default=5,
                        help="A = B draws on which the paired and unpaired intervals are "
                        "both computed")
    parser.add_argument("--threshold", type=float, default=compare.DEFAULT_THRESHOLD)
    parser.add_argument("--steps", default=compare.DEFAULT_STEPS, choices=compare.STEP_CHOICES)
    parser.add_argument("--sessions", type=Path, default=ROOT / "results" / "calibration-ab",
                        help="where the two sessions are measured (kept for --reuse)")
    parser.add_argument("--more-sessions", type=Path, nargs="*", default=[],
                        help="with --reuse: folders of further sessions of the same cells, "
                        "analysed as more pairs (a grown pool)")
    parser.add_argument("--reuse", action="store_true", help="analyse only")
    parser.add_argument("--ab-flags", default="", help="fwbench ab flags instead of its "
                        "defaults, for a quick try (e.g. '--frameworks jax --sample-seconds 0.5')")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "calibration-ab.json")
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc)
    if args.reuse:
        same, slow = (args.sessions / "ab" / n for n in ("same", "slow"))
    else:
        flags = args.ab_flags.split()
        same = measure(args.sessions, "same", args.pairs, None, 1, flags)
        slow = measure(args.sessions, "slow", args.slow_pairs, SLOWDOWN, 2, flags)
    same = [same, *(d / "ab" / "same" for d in args.more_sessions)]
    slow = [slow, *(d / "ab" / "slow" for d in args.more_sessions)]
    report = analyse(same, slow, [int(k) for k in args.per_side.split(",")], args.draws,
                     args.threshold, compare.DEFAULT_ALPHA, args.steps, args.slow_draws,
                     args.widths)
    report.update({"threshold": args.threshold, "alpha": compare.DEFAULT_ALPHA,
                   "steps": args.steps, "slowdown": SLOWDOWN, "analysed": started.isoformat(),
                   "environment": environment.describe(),
                   "sessions": {"same": [str(d) for d in same], "slow": [str(d) for d in slow]}})
    results.write_json(args.output, report)
    print(table(report))
    print(report["between_jobs"]["rms_abs_log_ratio"])
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
