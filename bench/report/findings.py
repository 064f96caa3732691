"""The report's opening section, "What this run shows": statements generated from the
data given to the report, each with its numbers, and each stated only where the data
support it. A speed difference is claimed only when the 95% interval of its ratio
(bench.report.summary.ratio_interval: bootstrap over the raw samples, widened by the
spread between processes) excludes 1; where it does not, nothing is claimed and the
section ends by naming what stayed undecided. Counts (traces, checks, failures) are
stated as counted.

The functions take DataFrames and row lists, never files, so tests can give them any
data; `add_section` reads what `fwbench report` was given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report.summary import compiled_speedups, fastest


def _x(ratio: float, low: float, high: float) -> str:
    return f"{ratio:.2f}x [95% interval {low:.2f}-{high:.2f}]"


def speed_findings(frame: Any) -> tuple[list[str], list[str]]:
    """(findings, what stayed undecided) from the matrix cells of one run."""
    lines, undecided = [], []
    for f in fastest(frame):
        if len(f["order"]) < 2:
            continue
        (fw1, mode1, ms1), (fw2, mode2, ms2) = f["order"][:2]
        if f["clear"]:
            lines.append(f"{f['model']}: {fw1} is fastest ({mode1}, {ms1:.3g} ms/step), "
                         f"{_x(f['ratio'], f['low'], f['high'])} ahead of the next, {fw2} "
                         f"({mode2}, {ms2:.3g} ms/step).")
        else:
            undecided.append(f"the fastest framework for {f['model']} ({fw1} or {fw2}: "
                             f"{_x(f['ratio'], f['low'], f['high'])})")
    speedups = compiled_speedups(frame)
    faster = speedups[speedups["low"] > 1.0].sort_values("speedup", ascending=False)
    slower = speedups[speedups["high"] < 1.0]
    if len(faster):
        top, bottom = faster.iloc[0], faster.iloc[-1]
        lines.append(f"Compiling paid off in {len(faster)} of {len(speedups)} compiled cells"
                     + (f": most for {top['framework']} {top['model']} ({top['mode']}, "
                        f"{_x(top['speedup'], top['low'], top['high'])} over eager), least "
                        f"for {bottom['framework']} {bottom['model']} ({bottom['mode']}, "
                        f"{_x(bottom['speedup'], bottom['low'], bottom['high'])})"
                        if len(faster) > 1 else
                        f": {top['framework']} {top['model']} ({top['mode']}, "
                        f"{_x(top['speedup'], top['low'], top['high'])} over eager)") + ".")
        if len(faster) >= 4:
            rho = faster["eager_ms"].rank().corr(faster["speedup"].rank())
            if abs(rho) >= 0.7:
                lines.append(f"Compiling pays {'most' if rho > 0 else 'least'} where eager is "
                             f"slowest: across those {len(faster)} cells the speed-up's rank "
                             f"follows the eager step time's (Spearman {rho:.2f}).")
    for r in slower.itertuples():
        lines.append(f"{r.framework} {r.mode} is slower than eager for {r.model}: "
                     f"{_x(r.speedup, r.low, r.high)}, so its compile cost never pays back "
                     f"at this size.")
    lines += _break_even(frame)
    lines += _memory(frame)
    failed = frame[frame["status"] != "ok"]
    if len(failed):
        cells = ", ".join(f"{r.framework} {r.model} {r.mode} ({r.status})"
                          for r in failed.itertuples())
        lines.append(f"{len(failed)} cell(s) did not measure: {cells}; the report's 'Cells "
                     f"that did not measure' says why.")
    return lines, undecided


def _break_even(frame: Any) -> list[str]:
    """The range of break-even steps (compile and first step paid back) per framework."""
    from bench.graphs import study as graphstudy

    rows = [r for r in graphstudy.compile_rows(frame) if r["break_even_steps"] is not None]
    lines = []
    for fw in dict.fromkeys(r["framework"] for r in rows):
        mine = sorted((r for r in rows if r["framework"] == fw),
                      key=lambda r: r["break_even_steps"])
        low, high = mine[0], mine[-1]
        # whole steps, at least one: under one, the upfront cost is less than an eager step
        steps = [max(1, math.ceil(r["break_even_steps"])) for r in (low, high)]
        span = (f"{steps[0]} ({low['model']} {low['mode']}) to {steps[1]} steps "
                f"({high['model']} {high['mode']})" if len(mine) > 1 else
                f"{steps[0]} steps ({low['model']} {low['mode']})")
        lines.append(f"{fw}: compiling pays back its compile time and first step within {span}.")
    return lines


def _memory(frame: Any) -> list[str]:
    ok = frame[frame["status"] == "ok"]
    column = "peak_mib" if "peak_mib" in ok else "peak_rss_mib"
    lines = []
    for model, part in ok.dropna(subset=[column]).groupby("model", sort=False):
        if part["framework"].nunique() < 2:
            continue
        low, high = part.loc[part[column].idxmin()], part.loc[part[column].idxmax()]
        lines.append(f"{model}: peak memory per process from {low[column]:.0f} MiB "
                     f"({low['framework']} {low['mode']}) to {high[column]:.0f} MiB "
                     f"({high['framework']} {high['mode']}), {high[column] / low[column]:.1f}x.")
    return lines


def graph_findings(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Retracing and its remedies, and control flow that fails or silently goes wrong,
    from a graph study's tables (rows as stored)."""
    lines = []
    retrace = [r for r in tables.get("retrace", []) if r.get("ok")]
    for key in dict.fromkeys((r["framework"], r["mode"]) for r in retrace):
        mine = [r for r in retrace if (r["framework"], r["mode"]) == key]
        default = next((r for r in mine if not r["remedy"]), None)
        if default is None:
            continue
        text = (f"{key[0]} {key[1]}: {default['traces']} trace(s) for "
                f"{default['distinct_lengths']} sequence lengths by default")
        remedies = [r for r in mine if r["remedy"]]
        if remedies:
            text += "; " + ", ".join(f"{r['setting']} {r['traces']}" for r in remedies)
            best = min(remedies, key=lambda r: r["traces"])
            if best["traces"] < default["traces"]:
                text += f" (fewest: {best['setting']})"
        lines.append(text + ".")
    wrong = [r for r in tables.get("control_flow", [])
             if r.get("verdict") in ("fails", "silently specialises", "wrong results")]
    for fw in dict.fromkeys(r["framework"] for r in wrong):
        mine = [r for r in wrong if r["framework"] == fw]
        runs = sum(1 for r in tables["control_flow"] if r["framework"] == fw)
        lines.append(f"Data-dependent control flow, {fw}: {len(mine)} of {runs} ways do not "
                     f"give the right result: " + "; ".join(
                         f"{r['mode']} with {r['variant']} {r['verdict']}" for r in mine) + ".")
    return lines


def mode_findings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Eager == compiled: whether compiling changed results, from parity's mode rows."""
    if not rows:
        return []
    failed = [r for r in rows if not r["passed"]]
    if not failed:
        return [f"Compiling changed no result beyond its tolerance: {len(rows)} eager == "
                f"compiled checks pass."]
    return [f"Compiling changed results in {len(failed)} of {len(rows)} eager == compiled "
            f"checks: " + ", ".join(f"{r['framework']} {r['model']} {r['check']} "
                                    f"({r['error']:.2g} > {r['tolerance']:.2g})"
                                    for r in failed[:5]) + "."]


def parity_findings(records: Sequence[dict[str, Any]]) -> list[str]:
    if not records:
        return []
    from bench import adapters

    failed = [r for r in records if not r["passed"]]
    # rows name a framework, a pair ("tf vs torch") or a mode ("tf: compiled vs eager")
    named = {word.strip(":") for r in records for word in r["framework"].split()}
    frameworks = [fw for fw in adapters.FRAMEWORKS if fw in named]
    text = (f"Parity: {len(records) - len(failed)} of {len(records)} checks pass "
            f"({', '.join(frameworks)} against the float64 NumPy reference and each other)")
    if failed:
        text += "; failed: " + ", ".join(f"{r['check']} {r['framework']} {r['model']} "
                                         f"{r['dtype']}" for r in failed[:5])
    return [text + "."]


def study_findings(studies: Any) -> list[str]:
    """The studies' headline numbers: Genz's expected results as counted, the forecast's
    verdicts against the classical models, the sweep's best settings; and for each, how
    far apart the frameworks' results are item by item."""
    from bench.report.studies import framework_gap, genz_checks
    from bench.studies import forecast, sweep

    if studies is None or studies.empty:
        return []
    ok = studies[studies["status"] == "ok"]
    lines = []
    part = ok[ok["study"] == "genz"]
    if len(part):
        checks = genz_checks(part)
        (falls, curves, _), (harder, cases, _) = checks["falls_with_n"], checks["harder_in_high_d"]
        gap = framework_gap(part, "mean_abs_error", relative=True)
        lines.append(f"Genz: the error falls from the smallest to the largest n in {falls} of "
                     f"{curves} (framework, family, d) curves, and the highest d is harder than "
                     f"the lowest in {harder} of {cases} (framework, family, n) cases"
                     + (f"; item by item the frameworks' mean |error| differs by a median of "
                        f"{gap.median():.1%} (at most {gap.max():.0%})" if len(gap) else "") + ".")
    part = ok[ok["study"] == forecast.NAME]
    if len(part):
        lines += [f"Forecast, {line}"
                  for line in forecast.verdict_lines(forecast.horizon_table(part))]
    part = ok[(ok["study"] == "sweep") & (ok["layers"] == sweep.BASE["layers"])
              & (ok["width"] == sweep.BASE["width"])] if "layers" in ok else ok.iloc[0:0]
    if len(part):
        accuracy = part.groupby(["framework", "optimizer", "activation"])["test_accuracy"].mean()
        best = [f"{fw} {accuracy[fw].idxmax()[0]} + {accuracy[fw].idxmax()[1]} "
                f"({100 * accuracy[fw].max():.1f}%)"
                for fw in dict.fromkeys(part["framework"])]
        gap = 100 * framework_gap(ok[ok["study"] == "sweep"], "test_accuracy")
        lines.append("Sweep (digits): the best optimizer and activation per framework: "
                     + "; ".join(best)
                     + (f"; item by item the frameworks' test accuracy differs by a median "
                        f"of {gap.median():.2f} points (at most {gap.max():.2f})"
                        if len(gap) else "") + ".")
    from bench.studies import charlm, gradients, seqclass

    for module, title in ((charlm, "Character-level model"), (seqclass, "Sequence classification"),
                          (gradients, "Gradients through time")):
        part = ok[ok["study"] == module.NAME]
        if len(part):
            lines += [f"{title}: {line}" for line in module.finding_lines(part)]
    return lines


def findings(frames: Sequence[tuple[str, Any]] = (), graph_tables: dict[str, list] | None = None,
             parity_records: Sequence[dict[str, Any]] = (), studies: Any = None,
             limit_lines: Sequence[str] = ()) -> list[str]:
    """Every finding, in the section's order, ending with what stayed undecided. `frames`
    is (label, the matrix cells) per run: one, or one per run when several are compared
    (runs never mix; the label, "Run X: ", starts each of its lines)."""
    from bench.parity import MODE_CHECKS

    lines, undecided = [], []
    for label, frame in frames:
        speed, open_questions = speed_findings(frame)
        lines += [f"{label}{line}" for line in speed]
        undecided += [f"{label}{question}" for question in open_questions]
    lines += limit_lines  # the cells against the machine's limits (bench.report.limits)
    lines += graph_findings(graph_tables or {})
    # eager == compiled: the graph study's rows, else the same checks in the parity file
    lines += mode_findings((graph_tables or {}).get("modes")
                           or [r for r in parity_records if r["check"] in MODE_CHECKS])
    lines += parity_findings(parity_records)
    lines += study_findings(studies)
    if undecided:
        lines.append("Not claimed, because the interval includes 1: " + "; ".join(undecided)
                     + ".")
    return lines


def add_section(report: Any, frames: Sequence[tuple[str, Any]], graphs_path: Any,
                parity_path: Any, study_paths: Sequence[Path],
                limit_lines: Sequence[str] = ()) -> list[str]:
    """Put "What this run shows" at the top of `report`; `frames` is (label, the matrix
    cells) per run (one, or one per run when several are compared: runs never mix).
    Returns the findings."""
    from bench.report.checks import _graph_docs, _parity_records, _paths
    from bench.studies import runner

    tables: dict[str, list] = {}
    for doc in _graph_docs(graphs_path) if _paths(graphs_path) else []:
        for part, rows in doc["tables"].items():
            tables.setdefault(part, []).extend(rows)
    records = _parity_records(parity_path) if _paths(parity_path) else []
    studies = runner.load(list(study_paths)) if study_paths else None
    lines = findings(frames, tables, records, studies, limit_lines)
    report.blocks[0:0] = [
        ("h2", "What this run shows"),
        ("p", "Generated from this report's data; a speed difference is stated only where "
              "its 95% interval excludes 1." if lines else "Nothing was given to report."),
        ("list", lines)]
    return lines
