"""The main job's phases, in order: the speed matrix and its scaling sweep, then the
graph study and the float32 parity checks on the run's frameworks, then the report.

Each phase that fails is said on stderr and makes the exit status 1; none loses
another's results, which are on disk before the next phase starts.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

from bench import adapters, results, workers
from bench.cli.common import format_table, latest, study_inputs
from bench.cli.parity import run_checks
from bench.cli.parity import summary as parity_summary
from bench.cli.show import print_runs
from bench.graphs import RETRACE_MODEL
from bench.speed import show
from bench.speed.cells import Cell


class Progress:
    """A progress line for the matrix: redrawn in place on a terminal, one line per
    finished cell otherwise (CI logs)."""

    def __init__(self, total: int, done: int = 0, repeats: int = 1, stream: Any = None) -> None:
        self.total, self.done_before, self.repeats = total, done, repeats
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()

    def _bar(self, done: int) -> str:
        width = 24
        filled = round(width * done / self.total) if self.total else width
        return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{self.total}"

    def __call__(self, i: int, n: int, cell: Cell, repeat: int,
                 record: dict[str, Any] | None) -> None:
        done = self.done_before + i
        elapsed = time.perf_counter() - self.started
        label = cell.id + (f" r{repeat}" if self.repeats > 1 else "")
        if record is None:
            if self.tty:
                self.stream.write(f"\r\033[K{self._bar(done)} {elapsed:4.0f} s  {label} ...")
                self.stream.flush()
            return
        m = record.get("metrics", {})
        result = (f"{m['median_ms']:.3g} ms/step (IQR {m['iqr_ms']:.2g}, n {m['samples']})"
                  if record["status"] == "ok"
                  else f"{record['status'].upper()}: {show.first_line(record.get('error'), 100)}")
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}{self._bar(done)} {elapsed:4.0f} s  {label}  {result}\n")
        self.stream.flush()


def main_job(run_dir: Path, graphs: bool = True, parity: bool = True, report: bool = True,
             retry_failed: bool = False, tensorboard: str | None = None,
             fault: workers.Fault | None = None) -> int:
    """Run (or finish) the run in `run_dir`, then the phases asked for; the exit status.
    `fault` (tests only) goes to the speed cells' jobs. Stopped (Ctrl-C, SIGTERM,
    SIGHUP) in any phase, it keeps what finished and says how to resume."""
    try:
        return _main_job(run_dir, graphs, parity, report, retry_failed, tensorboard, fault)
    except KeyboardInterrupt as exc:
        why = str(exc) or "interrupted"
        print(f"\n{why}; finished cells are kept. Resume with: "
              f"fwbench run --resume {run_dir}", file=sys.stderr)
        return getattr(exc, "exit_status", 130)


def _main_job(run_dir: Path, graphs: bool, parity: bool, report: bool, retry_failed: bool,
              tensorboard: str | None, fault: workers.Fault | None) -> int:
    from bench.speed import harness

    run = harness.load_run(run_dir)
    repeats = run.get("repeats", 1)
    total = harness.process_count(run)
    todo = harness.pending(run_dir, run, retry_failed)
    sweep_note = f" + {len(run['sweep'])} scaling points" if run.get("sweep") else ""
    print(f"run {run_dir.name}: {len(todo)} of {total} cell processes to run "
          f"({len(run['cells'])} cells x {repeats} repeats, round-robin{sweep_note}; {run_dir})",
          file=sys.stderr)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    harness.execute(run_dir, retry_failed, Progress(total, total - len(todo), repeats), fault)
    seconds["speed"] = time.perf_counter() - started
    if tensorboard:
        from bench import tensorboard as tb

        written = tb.write_run(run_dir, Path(tensorboard))
        print(f"tensorboard: {len(written)} cell processes' loss and step-time curves; "
              f"tensorboard --logdir {tensorboard}", file=sys.stderr)
    frame = results.load(run_dir)
    print_runs(frame, [run_dir])
    failed = frame[~frame["status"].isin(["ok", "skipped"])]
    print(f"{int((frame['status'] == 'ok').sum())} cells measured, {len(failed)} failed, "
          f"{int((frame['status'] == 'skipped').sum())} skipped; results in {run_dir}")
    problems = [f"{len(failed)} cell(s) failed"] if len(failed) else []
    nothing = nothing_measured(frame)
    if nothing:
        problems.append(nothing)
    graphs_path = parity_path = None
    matrix_cells = [Cell.from_dict(c) for c in run["cells"]]
    frameworks = list(dict.fromkeys(c.framework for c in matrix_cells
                                    if adapters.installed(c.framework)))
    study = run.get("data_parallel")
    if graphs and frameworks and study:
        print("graphs: not part of a data-parallel run (`fwbench graphs` studies one device)",
              file=sys.stderr)
    elif graphs and frameworks:
        started = time.perf_counter()
        graphs_path = graphs_phase(run_dir, run, matrix_cells, frameworks, problems)
        seconds["graphs"] = time.perf_counter() - started
    if parity and frameworks:
        started = time.perf_counter()
        parity_path = parity_phase(run, frameworks, matrix_cells[0].device, problems,
                                   sorted({c.model for c in matrix_cells}) if study else None,
                                   study["devices"] if study else None)
        seconds["parity"] = time.perf_counter() - started
    if report:
        started = time.perf_counter()
        report_phase(run_dir, graphs_path, parity_path, problems)
        seconds["report"] = time.perf_counter() - started
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
          + f"; total {sum(seconds.values()):.0f} s")
    for line in problems:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if problems else 0


def nothing_measured(frame: Any) -> str | None:
    """Why a run measured no cell at all (each distinct reason once), or None."""
    if frame.empty:
        return "nothing was measured: no cell has a record"
    if (frame["status"] == "ok").any():
        return None
    why = sorted({re.sub(r"^repeat \d+ of \d+: ", "", show.first_line(e, 200))
                  for e in frame["error"].dropna() if e})
    return "nothing was measured: " + ("; ".join(why) or "the run has no cells")


def graphs_phase(run_dir: Path, run: dict[str, Any], matrix_cells: list[Cell],
                 frameworks: list[str], problems: list[str]) -> Path | None:
    """The graph study for the main job: its compile table from this run's cells where the
    run holds them all (the default matrix does), then retracing and control flow.
    Eager == compiled is left to the parity phase, which checks the same (mode_* rows)."""
    from bench.graphs import study as graphstudy

    existing = graphstudy.graphs_dir() / run["run_id"] / "graphs.json"
    if existing.exists():  # a resumed main job whose study had finished
        print(f"graphs: reusing {existing}", file=sys.stderr)
        return existing
    first = matrix_cells[0]
    parts = ["retrace", "control_flow"]
    compile_needs = graphstudy.compile_matrix(frameworks, first.preset, first.threads)
    if not graphstudy.missing_cells(run, compile_needs):
        parts.insert(0, "compile")
    print(f"graphs: {', '.join(parts)} for {', '.join(frameworks)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        path = graphstudy.run(frameworks, parts, first.preset, first.threads,
                              RETRACE_MODEL, run_dir, ("float32",), 300.0,
                              f"{run['run_id']}", progress=lambda line: print(
                                  f"[{time.perf_counter() - started:5.0f} s] {line}",
                                  file=sys.stderr, flush=True))
    except Exception as exc:  # noqa: BLE001 - said, and the exit status says it too
        problems.append(f"graph study FAILED: {type(exc).__name__}: {exc}")
        return None
    doc = results.read_json(path)
    for title, rows, columns in show.graph_tables(doc["tables"]):
        print(title)
        print(format_table(rows, columns))
        print()
    problems += [f"graphs: {line}" for line in graphstudy.failures(doc)]
    return path


def parity_phase(run: dict[str, Any], frameworks: list[str], device: str,
                 problems: list[str], models: list[str] | None = None,
                 replicas: int | None = None) -> Path | None:
    """The float32 parity checks of the run's frameworks, on the run's device; for a
    data-parallel run (`replicas`), its data-parallel rows for the run's `models`."""
    what = (f"data-parallel checks ({replicas} replicas; {', '.join(models or [])})"
            if replicas else "checks")
    print(f"parity: float32 {what} of {', '.join(frameworks)} on {device} (the full set, "
          f"float64 too: `fwbench parity{f' --devices {replicas}' if replicas else ''}`)",
          file=sys.stderr, flush=True)
    cases = None
    if replicas:
        from bench import models as model_kinds
        from bench.distributed.parity import trained_cases

        cases = [c.name for c in trained_cases(None) if model_kinds.of(c.spec).name in models]
    try:
        rows, _, _, path = run_checks(frameworks, ("float32",), cases, 3,
                                      results.RESULTS_DIR / f"parity-{run['run_id']}.json",
                                      device, replicas)
    except Exception as exc:  # noqa: BLE001 - said, and the exit status says it too
        problems.append(f"parity FAILED: {type(exc).__name__}: {exc}")
        return None
    print(parity_summary(rows))
    bad = sum(not r.passed for r in rows)
    print(f"parity: {len(rows) - bad} passed, {bad} failed; results in {path}")
    if bad:
        problems.append(f"{bad} parity check(s) failed")
    return path


def report_phase(run_dir: Path, graphs_path: Path | None, parity_path: Path | None,
                 problems: list[str]) -> None:
    """results/report/ for this run, its graph study and parity file (else the latest)."""
    from bench import report

    try:  # the run's results are on disk already; a report failure loses none of them
        out = report.build([run_dir], graphs_path or latest("graphs/*/graphs.json"),
                           parity_path or latest("parity-*.json"),
                           study_paths=study_inputs("latest"), idioms_path=latest("idioms*.json"))
        print(f"report: {out / 'report.html'} (and report.md)")
    except Exception as exc:  # noqa: BLE001 - said, and the exit status says it too
        problems.append(f"report FAILED: {type(exc).__name__}: {exc}; rerun with "
                        f"`fwbench report {run_dir.name}`")
