"""`fwbench graphs`: runs the static-vs-dynamic study's parts (bench/graphs/__init__.py) and
writes them as one versioned results file, results/graphs/<id>/graphs.json:

    {"schema": "fwbench.graphs/1", "id", "created", "environment", "settings",
     "seconds": {part: s}, "tables": {"compile": [...], "retrace": [...],
     "control_flow": [...], "modes": [...]}}

Every table is a list of flat records (one row each), so `load()` gives one pandas
DataFrame per table, and the report renders them like any other result.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import environment, forkserver, frameworks, graphs, parity, results
from bench.progress import time_left
from bench.spec import MODELS
from bench.speed import cells, harness
from bench.speed.measure import Budget

# The harness's budget for the compile part: compile time and first step are measured
# once per process whatever the budget; the steady-state figure only has to be good
# enough for a speed-up, so it samples for less time than `fwbench run` does.
COMPILE_BUDGET = Budget(warmup_steps=1, warmup_s=0.2, warmup_max_s=1.0, min_samples=3,
                        sample_s=0.3)
MODE_CASES = MODELS  # parity cases compared across modes: every kind at its tiny preset
# Modes of the control-flow part, known without importing a framework (bench.frameworks);
# the first ones are the adapter's modes, then other ways to get a graph that students meet.
CF_MODES: dict[str, tuple[str, ...]] = {
    f.name: f.control_flow_modes for f in frameworks.FRAMEWORKS.values()}
Progress = Callable[[str], None]


class _JobCounter:
    """The progress callback for lines that each finish a job: adds the count and an
    estimate of the time left (the pace so far, over the jobs left)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self.started = time.perf_counter()

    def __call__(self, line: str) -> None:
        self.done += 1
        left = time_left(time.perf_counter() - self.started, self.done, self.total)
        self.progress(f"{line} [{self.done}/{self.total} jobs"
                      + (f", about {left:.0f} s left]" if left is not None else "]"))


def graphs_dir() -> Path:
    return results.RESULTS_DIR / "graphs"


def run(frameworks: Sequence[str], parts: Sequence[str] = graphs.PARTS, preset: str = "small",
        threads: int = 1, retrace_model: str = graphs.RETRACE_MODEL,
        compile_run: Path | None = None, parity_dtypes: Sequence[str] = ("float32",),
        timeout_s: float = 300.0, name: str | None = None,
        progress: Progress = lambda _: None) -> Path:
    """Run `parts` of the study; returns the path of the graphs.json written."""
    folder = results.new_folder(graphs_dir(), name,
                                datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"),
                                "graphs.json", "graph study", cells.MatrixError)
    study_id = folder.name
    order = graphs.retrace_order()
    doc: dict[str, Any] = {
        "schema": graphs.SCHEMA, "id": study_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment.describe(),
        "settings": {"frameworks": list(frameworks), "parts": list(parts), "preset": preset,
                     "threads": threads, "retrace_model": retrace_model,
                     "retrace_lengths": list(graphs.RETRACE_LENGTHS), "retrace_order": order,
                     "parity_dtypes": list(parity_dtypes), "timeout_s": timeout_s},
        "seconds": {}, "tables": {}}
    # Each part says one line per job it finishes: a harness cell (or one line when it
    # reuses a run's), a retrace setting, a framework's control flow, the modes checks.
    jobs = {"compile": 1 if compile_run else len(compile_matrix(frameworks, preset, threads)),
            "retrace": sum(len(graphs.RETRACE_SETTINGS[fw]) for fw in frameworks),
            "control_flow": len(frameworks), "modes": 1}
    finished = _JobCounter(progress, sum(jobs[part] for part in parts))
    steps = {"compile": lambda: _compile(frameworks, preset, threads, compile_run, study_id,
                                         timeout_s, doc, finished),
             "retrace": lambda: _retrace(frameworks, preset, threads, retrace_model, order,
                                         folder, timeout_s, finished),
             "control_flow": lambda: _control_flow(frameworks, threads, folder, timeout_s,
                                                   finished),
             "modes": lambda: _modes(frameworks, parity_dtypes, finished)}
    try:
        _run_parts(parts, steps, doc, folder, progress)
    finally:
        forkserver.close_all()  # the frameworks' fork servers, started by the first jobs
    return folder / "graphs.json"


def _run_parts(parts: Sequence[str], steps: dict[str, Any], doc: dict[str, Any], folder: Path,
               progress: Progress) -> None:
    for part in parts:
        started = time.perf_counter()
        progress(f"{part}: started")
        try:
            doc["tables"][part] = steps[part]()
        except Exception as exc:  # noqa: BLE001 - one part's failure loses no other part
            doc["tables"][part] = []
            doc.setdefault("errors", {})[part] = (f"{type(exc).__name__}: {exc}\n"
                                                  + traceback.format_exc(limit=-4))
            progress(f"{part}: FAILED: {type(exc).__name__}: {exc}")
        doc["seconds"][part] = time.perf_counter() - started
        results.write_json(folder / "graphs.json", doc)  # what is done so far survives


def load(path: Path) -> dict[str, "pandas.DataFrame"]:  # noqa: F821 - pandas is lazy
    """The tables of a graphs.json (or of the folder holding one) as DataFrames."""
    import pandas as pd

    return {part: pd.DataFrame(rows) for part, rows in read(path)["tables"].items()}


def read(path: Path) -> dict[str, Any]:
    """A graphs.json (or the folder holding one), with the compile rows' break-even
    steps derived again from their stored times (with_break_even)."""
    path = Path(path)
    doc = results.read_document(path / "graphs.json" if path.is_dir() else path, graphs.SCHEMA)
    if "compile" in doc["tables"]:
        doc["tables"]["compile"] = with_break_even(doc["tables"]["compile"])
    return doc


# --- 1. compile cost, from harness cells ------------------------------------------------
def compile_matrix(frameworks: Sequence[str], preset: str, threads: int) -> list[cells.Cell]:
    """The harness cells the compile table needs: every model and mode, CPU, float32."""
    return cells.expand(list(frameworks), list(MODELS), None, preset, "cpu", "float32", threads)


def missing_cells(run: dict[str, Any], matrix: Sequence[cells.Cell]) -> list[str]:
    """Ids of the cells of `matrix` that the run (its run.json) does not hold, sorted."""
    return sorted({c.id for c in matrix} - set(run.get("cell_ids", [])))


def finished_run_with(matrix: Sequence[cells.Cell]) -> Path | None:
    """The newest finished run (every process has a record) holding every cell of
    `matrix`, or None."""
    found = sorted(harness.runs_dir().glob("*/run.json"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    for path in found:
        try:
            run = harness.load_run(path.parent)
        except (cells.MatrixError, ValueError):
            continue
        if not missing_cells(run, matrix) and not harness.pending(path.parent, run):
            return path.parent
    return None


def _compile(frameworks: Sequence[str], preset: str, threads: int, compile_run: Path | None,
             study_id: str, timeout_s: float, doc: dict[str, Any],
             progress: Progress) -> list[dict[str, Any]]:
    matrix = compile_matrix(frameworks, preset, threads)
    if compile_run is None:
        compile_run = harness.new_run(matrix, COMPILE_BUDGET, timeout_s, False,
                                      f"graphs-{study_id}", repeats=1)
        harness.execute(compile_run, on_cell=lambda i, n, cell, _r, record: record and progress(
            f"compile: {i}/{n} {cell.id}: {record['status']}"))
    else:
        progress(f"compile: from the harness cells of run {compile_run}")
    doc["settings"]["compile_run"] = str(compile_run)
    frame = results.load(compile_run)
    missing = {c.id for c in matrix} - set(frame["cell_id"])
    if missing:
        raise cells.MatrixError(f"run {compile_run} has no record of {len(missing)} cells the "
                                f"compile table needs, e.g. {sorted(missing)[0]}")
    return compile_rows(frame[frame["cell_id"].isin({c.id for c in matrix})])


def compile_rows(frame: "pandas.DataFrame") -> list[dict[str, Any]]:  # noqa: F821
    """Per framework x model x mode: compile, first step, steady step, speed-up over eager."""
    rows = []
    ok = frame[frame["status"] == "ok"]
    eager = {(r["framework"], r["model"]): r["median_ms"]
             for _, r in ok[ok["mode"] == "eager"].iterrows()}
    for _, r in frame.iterrows():
        measured = r["status"] == "ok"
        base = eager.get((r["framework"], r["model"]))
        rows.append({
            "framework": r["framework"], "model": r["model"], "mode": r["mode"],
            "status": r["status"], "error": None if measured else r["error"],
            "compile_api": r.get("compile_api") if measured else None,
            "compile_s": r.get("compile_s") if measured else None,
            "first_step_s": r.get("first_step_s") if measured else None,
            "median_ms": r["median_ms"] if measured else None,
            "iqr_ms": r["iqr_ms"] if measured else None,
            "speedup_vs_eager": base / r["median_ms"] if measured and base else None,
            # steps of steady-state time that the compile and first step cost
            "break_even_steps": _break_even(r, base) if measured else None,
            "run_id": r["run_id"], "cell_id": r["cell_id"]})
    return rows


def _break_even(r: Any, eager_ms: float | None) -> float | None:
    """Steps after which compiling has paid for itself: (compile + first step - eager
    step) / (eager step - compiled step); None for eager or when compiling is slower."""
    if r["mode"] == "eager" or not eager_ms or r["median_ms"] >= eager_ms:
        return None
    # No separate compile call (torch.compile compiles inside the first step): NaN or None
    compile_s = r.get("compile_s")
    compile_s = compile_s if compile_s is not None and compile_s == compile_s else 0.0
    upfront_ms = 1e3 * (compile_s + r["first_step_s"]) - eager_ms
    return max(upfront_ms, 0.0) / (eager_ms - r["median_ms"])


def with_break_even(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compile rows with break-even steps derived again from their stored times: files
    written before torch's (no separate compile call) were counted have none for it."""
    eager = {(r["framework"], r["model"]): r["median_ms"] for r in rows
             if r["mode"] == "eager" and r["status"] == "ok"}
    return [{**r, "break_even_steps": _break_even(r, eager.get((r["framework"], r["model"])))}
            if r["status"] == "ok" else r for r in rows]


# --- 2. retracing -----------------------------------------------------------------------
def _retrace(frameworks: Sequence[str], preset: str, threads: int, model: str,
             order: list[int], folder: Path, timeout_s: float,
             progress: Progress) -> list[dict[str, Any]]:
    rows = []
    for fw in frameworks:
        for mode, setting, wrapped in graphs.RETRACE_SETTINGS[fw]:
            job = {"threads": threads, "preset": preset, "model": model, "mode": mode,
                   "setting": setting, "order": order}
            out = graphs.run_job(fw, "retrace", job, folder / "jobs",
                                 f"retrace-{fw}-{mode}-{setting}", timeout_s)
            row = retrace_row(fw, mode, setting, wrapped, model, out)
            progress(f"retrace: {fw} {mode} {setting}: "
                     + (f"{row['traces']} traces, {row['total_s']:.1f} s" if row["ok"]
                        else "ERROR " + str(row["error"]).splitlines()[0]))
            rows.append(row)
    return rows


def retrace_row(fw: str, mode: str, setting: str, wrapped: str, model: str,
                out: dict[str, Any]) -> dict[str, Any]:
    """One retracing table row from a worker's output."""
    row: dict[str, Any] = {"framework": fw, "mode": mode, "setting": setting,
                           "remedy": setting != "default", "wrapped": wrapped, "model": model,
                           "ok": bool(out.get("ok")), "skipped": bool(out.get("skipped")),
                           "error": out.get("error")}
    if not out.get("ok"):
        return row
    res = out["result"]
    steps = res["steps"]
    # a step traced when the counter rose during it
    rose = [s["traces"] > (steps[i - 1]["traces"] if i else 0) for i, s in enumerate(steps)]
    traced = [s for s, r in zip(steps, rose) if r]
    untraced = [s["seconds"] for s, r in zip(steps, rose) if not r]
    steady_ms = 1e3 * statistics.median(untraced) if untraced else None
    row.update({
        "distinct_lengths": len({s["length"] for s in steps}), "steps": len(steps),
        "traces": res["traces"], "retraces": res["traces"] - steps[0]["traces"],
        "compiles": res.get("compiles"), "compile_s": res.get("compile_s"),
        "total_s": sum(s["seconds"] for s in steps),
        "tracing_steps": len(traced), "tracing_steps_s": sum(s["seconds"] for s in traced),
        "steady_ms": steady_ms,
        # steps slower than 20x the steady median: compiles the counter may not see
        # (XLA compiles every new shape inside one tf.function trace)
        "slow_steps": (sum(s["seconds"] * 1e3 > 20 * steady_ms for s in steps)
                       if steady_ms else None),
        "padded_lengths": sorted({s["padded_to"] for s in steps}),
        "padding_error": res.get("padding_error"), "counter": res["counter"],
        "graph_breaks": res.get("graph_breaks"), "cache": res.get("cache"),
        "step_seconds": [s["seconds"] for s in steps], "lengths": [s["length"] for s in steps]})
    return row


# --- 3. control flow --------------------------------------------------------------------
def _control_flow(frameworks: Sequence[str], threads: int, folder: Path, timeout_s: float,
                  progress: Progress) -> list[dict[str, Any]]:
    problem = graphs.control_flow_problem()
    rows = []
    for fw in frameworks:
        # One process per framework: the verdicts are the finding here, and each variant
        # gets fresh compiled objects (and a Dynamo reset), so the modes do not share graphs.
        out = graphs.run_job(fw, "control_flow", {"threads": threads, "modes": CF_MODES[fw]},
                             folder / "jobs", f"control-flow-{fw}", timeout_s)
        if not out.get("ok"):
            rows.append({"framework": fw, "mode": "-", "variant": "-",
                         "verdict": "skipped" if out.get("skipped") else "error",
                         "max_error": None, "detail": out.get("error"), "ok": False})
            progress(f"control flow: {fw}: ERROR {str(out.get('error')).splitlines()[0]}")
            continue
        for res in out["result"]:
            what, err, detail = graphs.verdict(problem, res)
            rows.append({"framework": fw, "mode": res["mode"], "variant": res["variant"],
                         "verdict": what, "max_error": err, "detail": detail,
                         "median_ms": res.get("median_ms"), "traces": res.get("traces"),
                         "graph_breaks": res.get("graph_breaks"),
                         "warnings": res.get("warnings") or [], "ok": True})
        progress(f"control flow: {fw}: " + ", ".join(
            f"{r['mode']}/{r['variant']}: {r['verdict']}" for r in rows if r["framework"] == fw))
    return rows


# --- 4. eager == compiled ---------------------------------------------------------------
def _modes(frameworks: Sequence[str], dtypes: Sequence[str],
           progress: Progress) -> list[dict[str, Any]]:
    rows, _ = parity.run(tuple(frameworks), tuple(dtypes), MODE_CASES, jobs=len(frameworks),
                         scope="modes")
    progress(f"modes: {sum(r.passed for r in rows)} of {len(rows)} checks passed")
    return [dataclasses.asdict(r) for r in rows]


def failures(doc: dict[str, Any]) -> list[str]:
    """What went wrong in the study itself (not the findings): a part that raised,
    crashed workers, failed cells, failed eager-vs-compiled checks; skipped frameworks
    are not failures."""
    out = [f"part {part}: {text.splitlines()[0]}" for part, text in doc.get("errors", {}).items()]
    doc_tables = doc.get("tables", {})
    for r in doc_tables.get("compile", []):
        if r["status"] not in ("ok", "skipped"):
            out.append(f"compile cell {r['cell_id']}: {r['status']}")
    for r in doc_tables.get("retrace", []):
        if not r["ok"] and not r.get("skipped"):
            out.append(f"retrace {r['framework']} {r['mode']} {r['setting']}: "
                       f"{str(r['error']).splitlines()[0]}")
    for r in doc_tables.get("control_flow", []):
        if not r["ok"] and r["verdict"] != "skipped":
            out.append(f"control flow {r['framework']} {r['mode']}: "
                       f"{str(r['detail']).splitlines()[0]}")
    for r in doc_tables.get("modes", []):
        if not r["passed"] and "not installed" not in r["note"]:
            out.append(f"modes {r['check']} {r['framework']} {r['model']} {r['dtype']}: "
                       f"{r['note'] or 'error above tolerance'}")
    return out

