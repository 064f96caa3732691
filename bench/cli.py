"""The `fwbench` command line."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import adapters, cells, environment, models, results, show
from bench.cells import Cell, MatrixError
from bench.spec import DTYPES, MODELS, PRESETS
from bench.studies import STUDIES

PARITY_SCHEMA = "fwbench.parity/1"


class UsageError(Exception):
    """A flag value that cannot work; reported before anything runs."""


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    cells = [[str(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _fmt(x: float) -> str:
    return "n/a" if x != x else ("0" if x == 0 else f"{x:.1e}")


def _parity_job(frameworks: Sequence[str], dtypes: Sequence[str],
                case_names: Sequence[str] | None, jobs: int, output: Path | None,
                device: str = "cpu") -> tuple[list[Any], dict[str, Any], float, Path]:
    """Run the parity checks on `device` and write their JSON; returns (rows, meta,
    seconds, path)."""
    from bench import parity

    started = time.perf_counter()
    rows, meta = parity.run(frameworks, dtypes, case_names, jobs=jobs, device=device)
    seconds = time.perf_counter() - started
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = output or results.RESULTS_DIR / f"parity-{stamp}.json"
    results.write_json(path, {
        "schema": PARITY_SCHEMA, "created": stamp, "seconds": seconds, "device": device,
        "environment": environment.describe(), "frameworks": meta,
        "tolerances": {f"{c}/{d}": {"value": t.value, "why": t.why}
                       for (c, d), t in parity.tolerances.TOLERANCES.items()},
        "records": [dataclasses.asdict(r) for r in rows]})
    return rows, meta, seconds, path


def _parity_summary(rows: list[Any]) -> str:
    from bench import parity

    summary = [dict(r, **{"max error": _fmt(r["max error"]), "tolerance": _fmt(r["tolerance"])})
               for r in parity.summarize(rows)]
    return format_table(summary, ["check", "framework", "dtype", "rows", "failed",
                                  "worst model", "max error", "tolerance"])


def cmd_parity(args: argparse.Namespace) -> int:
    from bench import parity

    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    dtypes = cells.parse_list(args.dtypes, DTYPES, "--dtypes")
    case_names = (cells.parse_list(args.cases, [c.name for c in parity.cases()], "--cases")
                  if args.cases else None)
    rows, meta, seconds, path = _parity_job(frameworks, dtypes, case_names, args.jobs,
                                            args.output, args.device)
    table = [{"check": r.check, "framework": r.framework, "model": r.model, "dtype": r.dtype,
              "max error": _fmt(r.error), "tolerance": _fmt(r.tolerance),
              "pass": "yes" if r.passed else "NO", "note": r.note} for r in rows]
    shown = [t for t in table if t["pass"] == "NO"] if args.failures_only else table
    print(format_table(shown, ["check", "framework", "model", "dtype", "max error", "tolerance",
                               "pass", "note"]))
    print("\nSummary: the row closest to its tolerance, per check, framework and dtype")
    print(_parity_summary(rows))
    print()
    for fw, m in meta.items():
        if m.get("alignments"):
            print(f"Aligned against {fw}'s defaults (installed {m.get('versions')}):")
            print(format_table(m["alignments"], ["thing", "default", "fwbench"]))
            print()
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"({seconds:.0f} s); results in {path}")
    return 1 if failed else 0


def _matrix(args: argparse.Namespace) -> tuple[list[Cell], list[tuple[str, Cell]]]:
    """The cells the flags ask for and the scaling sweep's (axis, cell) points (none with
    --no-scaling); every bad value is a UsageError before anything runs."""
    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    models = cells.parse_list(args.models, MODELS, "--models")
    modes = (cells.parse_list(args.modes, cells.all_modes(adapters.FRAMEWORKS), "--modes")
             if args.modes else None)
    batch_sizes = cells.parse_ints(args.batch_sizes, "--batch-sizes") if args.batch_sizes else None
    seq_lens = cells.parse_ints(args.seq_lens, "--seq-lens") if args.seq_lens else None
    threads = args.threads or len(os.sched_getaffinity(0))
    from bench import harness

    harness.affinity(threads)  # more threads than CPUs is an error now, not in every cell
    matrix = cells.expand(frameworks, models, modes, args.preset, args.device, args.dtype,
                          threads, batch_sizes, seq_lens)
    sweep = (cells.scaling_cells(frameworks, models, args.preset, args.device, args.dtype,
                                 threads) if args.scaling else [])
    return matrix, sweep


def _budget(args: argparse.Namespace) -> Any:
    from bench.measure import Budget

    for flag, value in (("--sample-seconds", args.sample_seconds),
                        ("--sample-max-seconds", args.sample_max_seconds),
                        ("--warmup-seconds", args.warmup_seconds), ("--timeout", args.timeout)):
        if not value > 0:
            raise UsageError(f"{flag} {value}: must be > 0")
    if args.min_samples < 1:
        raise UsageError(f"--min-samples {args.min_samples}: must be >= 1")
    return Budget(warmup_s=args.warmup_seconds, sample_s=args.sample_seconds,
                  min_samples=args.min_samples, sample_max_s=args.sample_max_seconds)


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


def _show(frame: Any, run_dirs: Sequence[Path]) -> int:
    """Print the speed table of each run in `frame` (results.load of `run_dirs`)."""
    if frame.empty:
        print(f"no cell records in {', '.join(map(str, run_dirs))}")
        return 1
    from bench import scaling

    matrix = scaling.split(frame)[0]
    curves = scaling.points(frame)
    for run_id, part in matrix.groupby("run_id", sort=False):
        print(f"run {run_id}: {show.describe_cells(part)}")
        print(format_table(show.speed_rows(part), show.COLUMNS))
        note = show.loaded_note(part)
        if note:
            print(f"warning: {note}")
        print()
        points = curves[curves["run_id"] == run_id]
        if not points.empty:
            print(f"scaling curves of run {run_id} (median ms per step at each size)")
            print(format_table(show.scaling_rows(points), show.SCALING_COLUMNS))
            print()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the speed matrix and its scaling sweep, then (each optional) the graph
    study and the float32 parity checks on the same frameworks, then the report. Each phase
    that fails is said and makes the exit status 1; no phase loses another's results."""
    from bench import harness

    if args.resume:
        run_dir = _run_dir(args.resume)
    else:
        (matrix, sweep), budget = _matrix(args), _budget(args)
        missing = sorted({c.framework for c in matrix if not adapters.installed(c.framework)})
        for fw in missing:
            print(f"note: {fw} is not installed; its cells are recorded as skipped "
                  f"(pip install 'fwbench[{adapters.REGISTRY[fw][3]}]')", file=sys.stderr)
        run_dir = harness.new_run(matrix, budget, args.timeout, args.tf32, args.name,
                                  args.repeats, sweep)
    run = harness.load_run(run_dir)
    repeats = run.get("repeats", 1)
    total = harness.process_count(run)
    todo = harness.pending(run_dir, run, args.retry_failed)
    sweep_note = f" + {len(run['sweep'])} scaling points" if run.get("sweep") else ""
    print(f"run {run_dir.name}: {len(todo)} of {total} cell processes to run "
          f"({len(run['cells'])} cells x {repeats} repeats, round-robin{sweep_note}; {run_dir})",
          file=sys.stderr)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    try:
        harness.execute(run_dir, args.retry_failed,
                        Progress(total, total - len(todo), repeats))
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished cells are kept. Resume with: "
              f"fwbench run --resume {run_dir}", file=sys.stderr)
        return 130
    seconds["speed"] = time.perf_counter() - started
    if args.tensorboard:
        from bench import tensorboard

        written = tensorboard.write_run(run_dir, Path(args.tensorboard))
        print(f"tensorboard: {len(written)} cell processes' loss and step-time curves; "
              f"tensorboard --logdir {args.tensorboard}", file=sys.stderr)
    frame = results.load(run_dir)
    _show(frame, [run_dir])
    failed = frame[~frame["status"].isin(["ok", "skipped"])]
    print(f"{int((frame['status'] == 'ok').sum())} cells measured, {len(failed)} failed, "
          f"{int((frame['status'] == 'skipped').sum())} skipped; results in {run_dir}")
    problems = [f"{len(failed)} cell(s) failed"] if len(failed) else []
    graphs_path = parity_path = None
    matrix_cells = [Cell.from_dict(c) for c in run["cells"]]
    frameworks = list(dict.fromkeys(c.framework for c in matrix_cells
                                    if adapters.installed(c.framework)))
    if args.graphs and frameworks:
        started = time.perf_counter()
        graphs_path = _run_graphs_phase(run_dir, run, matrix_cells, frameworks, problems)
        seconds["graphs"] = time.perf_counter() - started
    if args.parity and frameworks:
        started = time.perf_counter()
        device = matrix_cells[0].device  # a run's matrix has one device
        print(f"parity: float32 checks of {', '.join(frameworks)} on {device} (the full set, "
              f"float64 too: `fwbench parity`)", file=sys.stderr, flush=True)
        try:
            rows, _, _, parity_path = _parity_job(
                frameworks, ("float32",), None, 3,
                results.RESULTS_DIR / f"parity-{run['run_id']}.json", device)
            print(_parity_summary(rows))
            bad = sum(not r.passed for r in rows)
            print(f"parity: {len(rows) - bad} passed, {bad} failed; results in {parity_path}")
            if bad:
                problems.append(f"{bad} parity check(s) failed")
        except Exception as exc:  # noqa: BLE001 - said, and the exit status says it too
            problems.append(f"parity FAILED: {type(exc).__name__}: {exc}")
        seconds["parity"] = time.perf_counter() - started
    if args.report:
        from bench import report

        started = time.perf_counter()
        try:  # the run's results are on disk already; a report failure loses none of them
            out = report.build([run_dir], graphs_path or _latest("graphs/*/graphs.json"),
                               parity_path or _latest("parity-*.json"),
                               study_paths=_study_inputs("latest"))
            print(f"report: {out / 'report.html'} (and report.md)")
        except Exception as exc:  # noqa: BLE001 - said, and the exit status says it too
            problems.append(f"report FAILED: {type(exc).__name__}: {exc}; rerun with "
                            f"`fwbench report {run_dir.name}`")
        seconds["report"] = time.perf_counter() - started
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
          + f"; total {sum(seconds.values()):.0f} s")
    for line in problems:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if problems else 0


def _run_graphs_phase(run_dir: Path, run: dict[str, Any], matrix_cells: list[Cell],
                      frameworks: list[str], problems: list[str]) -> Path | None:
    """The graph study for the main job: its compile table from this run's cells where the
    run holds them all (the default matrix does), then retracing and control flow.
    Eager == compiled is left to the parity phase, which checks the same (mode_* rows)."""
    from bench import graphstudy

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
        path = graphstudy.run(frameworks, parts, first.preset, first.threads, "attention",
                              run_dir, ("float32",), 300.0, f"{run['run_id']}",
                              progress=lambda line: print(
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


def _run_dir(name: str) -> Path:
    """A run given as a folder, a run id under results/runs, or 'latest'."""
    from bench import harness

    if name == "latest":
        return harness.latest_run()
    for candidate in (Path(name), harness.runs_dir() / name):
        if (candidate / "run.json").exists():
            return candidate
    raise UsageError(f"run {name!r} not found (neither a folder with run.json nor a run id "
                     f"under {harness.runs_dir()})")


def cmd_show(args: argparse.Namespace) -> int:
    run_dirs = [_run_dir(r) for r in (args.runs or ["latest"])]
    return _show(results.load(run_dirs), run_dirs)


def cmd_graphs(args: argparse.Namespace) -> int:
    from bench import graphs, graphstudy

    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    parts = cells.parse_list(args.parts, graphs.PARTS, "--parts")
    dtypes = cells.parse_list(args.parity_dtypes, DTYPES, "--parity-dtypes")
    if args.preset not in PRESETS:
        raise UsageError(f"--preset {args.preset!r}: known presets are {', '.join(PRESETS)}")
    sequence_models = [name for name, kind in models.KINDS.items() if kind.sequence]
    if args.retrace_model not in sequence_models:
        raise UsageError(f"--retrace-model {args.retrace_model!r}: a sequence model, one of "
                         f"{', '.join(sequence_models)}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: must be > 0")
    threads = args.threads or len(os.sched_getaffinity(0))
    from bench import harness

    harness.affinity(threads)
    compile_run = None
    if "compile" in parts:
        matrix = graphstudy.compile_matrix(frameworks, args.preset, threads)
        if args.from_run == "auto":
            compile_run = graphstudy.finished_run_with(matrix)
            print("compile costs: " + (f"from the cells of run {compile_run} (--from-run none "
                                       f"measures them afresh)" if compile_run else
                                       f"measuring {len(matrix)} harness cells (no finished run "
                                       f"holds them all)"), file=sys.stderr)
        elif args.from_run != "none":
            compile_run = _run_dir(args.from_run)
            missing = graphstudy.missing_cells(harness.load_run(compile_run), matrix)
            if missing:
                raise UsageError(f"--from-run {args.from_run}: the run lacks {len(missing)} of "
                                 f"the {len(matrix)} cells the compile table needs, e.g. "
                                 f"{missing[0]}")
    for fw in frameworks:
        if not adapters.installed(fw):
            print(f"note: {fw} is not installed; its rows are recorded as skipped "
                  f"(pip install 'fwbench[{adapters.REGISTRY[fw][3]}]')", file=sys.stderr)
    started = time.perf_counter()
    path = graphstudy.run(frameworks, parts, args.preset, threads, args.retrace_model,
                          compile_run, dtypes, args.timeout, args.name,
                          progress=lambda line: print(
                              f"[{time.perf_counter() - started:5.0f} s] {line}",
                              file=sys.stderr, flush=True))
    doc = results.read_json(path)
    for title, rows, columns in show.graph_tables(doc["tables"]):
        print(title)
        print(format_table(rows, columns))
        print()
    problems = graphstudy.failures(doc)
    for line in problems:
        print(f"FAILED: {line}")
    print(f"graphs study in {time.perf_counter() - started:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in doc['seconds'].items())}); results in {path}")
    return 1 if problems else 0


def _latest(pattern: str) -> Path | None:
    found = sorted(results.RESULTS_DIR.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _inputs(value: str, pattern: str, flag: str) -> list[Path]:
    """'latest' (the newest file matching `pattern`, if any), 'none', or comma-separated
    paths, each of which must exist."""
    if value == "none":
        return []
    if value == "latest":
        found = _latest(pattern)
        return [found] if found else []
    paths = [Path(v.strip()) for v in value.split(",") if v.strip()]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{flag} {path}: no such file or folder")
    return paths


def cmd_report(args: argparse.Namespace) -> int:
    from bench import report

    # "none": a report of the other inputs only (e.g. studies without a speed run).
    run_dirs = [] if args.runs == ["none"] else [_run_dir(r) for r in (args.runs or ["latest"])]
    graphs_paths = _inputs(args.graphs, "graphs/*/graphs.json", "--graphs")
    parity_paths = _inputs(args.parity, "parity-*.json", "--parity")
    study_paths = _study_inputs(args.studies)
    out = report.build(run_dirs, graphs_paths, parity_paths, args.out, merge=args.merge,
                       study_paths=study_paths)
    studies = [(p if p.is_dir() else p.parent).name for p in graphs_paths]
    print(f"report of {', '.join(d.name for d in run_dirs) or 'no speed run'}"
          + (" (merged)" if args.merge and len(run_dirs) > 1 else "")
          + (f", graph study {', '.join(studies)}" if studies else "")
          + (f", parity {', '.join(p.name for p in parity_paths)}" if parity_paths else "")
          + (f", studies {', '.join(p.name for p in study_paths)}" if study_paths else "")
          + f": {out / 'report.html'} and {out / 'report.md'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench import compare

    try:
        current = compare.load(_resolve_run(args.current))
        base_source = (compare.stored_baseline(current) if args.baseline == "stored"
                       else _resolve_run(args.baseline))
        base = compare.load(base_source)
        table = compare.compare(base, current, args.threshold, args.alpha, args.allow_env_diff,
                                steps=args.steps)
    except compare.CompareError as exc:
        raise UsageError(str(exc)) from None
    text = compare.markdown(table, base, current, args.threshold, args.alpha,
                            compare.environment_differences(base, current))
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:  # append: $GITHUB_STEP_SUMMARY collects steps
            f.write(text + "\n")
    return 1 if (table["verdict"] == "slower").any() else 0


def _resolve_run(name: str) -> str:
    """'latest' as the newest run folder; anything else as given."""
    return str(_run_dir("latest")) if name == "latest" else name


def cmd_baseline(args: argparse.Namespace) -> int:
    from bench import compare

    if args.action == "save":
        try:
            folder = compare.save_baseline(_run_dir(args.run or "latest"), args.force)
        except compare.CompareError as exc:
            raise UsageError(str(exc)) from None
        print(f"baseline saved: {folder} (commit it to keep it)")
        return 0
    side = compare.load(_run_dir(args.run or "latest"))
    print(compare.baselines_dir() / compare.environment_key(side.environment))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """A study from the course material (Genz, forecasting, sweep) in every framework."""
    from bench import studies
    from bench.studies import runner

    try:
        if args.resume:
            folder = _study_dir(args.resume)
        else:
            overrides = {}
            if args.seeds:
                overrides["seeds"] = list(cells.parse_ints(args.seeds, "--seeds", minimum=0))
            folder = runner.new_study(args.name, list(cells.parse_list(
                                          args.frameworks, adapters.FRAMEWORKS, "--frameworks")),
                                      args.quick, overrides, args.mode or None,
                                      args.threads or len(os.sched_getaffinity(0)), args.timeout,
                                      str(Path(args.tensorboard).resolve()) if args.tensorboard
                                      else None, args.id)
    except (studies.UnknownStudy, runner.StudyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    study = runner.load_study(folder)
    module = studies.get(study["study"])
    total = len(module.items(study["config"]))
    print(f"study {study['study_id']}: {total} items x {len(study['frameworks'])} frameworks "
          f"({', '.join(f'{f} {m}' for f, m in study['modes'].items())}); {folder}",
          file=sys.stderr, flush=True)
    started = time.perf_counter()

    def progress(framework: str, done: int, total: int, added: Any) -> None:
        elapsed = time.perf_counter() - started
        if added is None:  # "\r": one line per framework, rewritten as items finish
            print(f"\r  {framework}: {done}/{total} items ({elapsed:.0f} s)", end="",
                  file=sys.stderr, flush=True)
        else:
            bad = [r for r in added if r["status"] != "ok"]
            print(f"\r  {framework}: {total}/{total} items, this time {len(added) - len(bad)} ok, "
                  f"{len(bad)} failed ({elapsed:.0f} s)", file=sys.stderr, flush=True)
            for r in bad[:3]:
                print(f"    {r['item_id']}: {r['status']}: {(r['error'] or '').splitlines()[0]}",
                      file=sys.stderr)

    try:
        runner.execute(folder, progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished items are kept. Resume with: fwbench study "
              f"{study['study']} --resume {folder}", file=sys.stderr)
        return 130
    frame = runner.load(folder)
    print(module.summary(frame))
    failed = frame[~frame["status"].isin(["ok", "skipped"])]
    print(f"{int((frame['status'] == 'ok').sum())} items trained, {len(failed)} failed, "
          f"{int((frame['status'] == 'skipped').sum())} skipped in "
          f"{time.perf_counter() - started:.0f} s; results in {folder}")
    if study.get("tensorboard"):
        print(f"tensorboard: tensorboard --logdir {study['tensorboard']}")
    return 1 if len(failed) else 0


def _study_inputs(value: str) -> list[Path]:
    """'latest' (the newest study of each kind), 'none', or comma-separated study folders
    or ids."""
    from bench.studies import STUDIES, runner

    if value == "none":
        return []
    if value == "latest":
        return [p for p in (runner.latest(kind) for kind in STUDIES) if p is not None]
    return [_study_dir(v.strip()) for v in value.split(",") if v.strip()]


def _study_dir(name: str) -> Path:
    from bench.studies import runner

    path = Path(name)
    if (path / "study.json").exists():
        return path
    if (runner.studies_dir() / name / "study.json").exists():
        return runner.studies_dir() / name
    raise UsageError(f"no study {name!r} (looked for {path} and {runner.studies_dir() / name})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fwbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="check that the frameworks compute the same thing")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: float32, float64")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--jobs", type=int, default=3, help="framework workers run at once")
    p.add_argument("--device", default="cpu", choices=adapters.DEVICES,
                   help="cpu or gpu: where the frameworks compute (the float64 NumPy reference "
                        "is always on the host; on gpu, TF32 is off)")
    p.add_argument("--failures-only", action="store_true", help="print only failed checks")
    p.add_argument("--output", type=lambda s: results.Path(s), default=None,
                   help="JSON file to write (default: results/parity-<time>.json)")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("run", help="measure training speed: one process per cell of a matrix")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated, from: " + ", ".join(MODELS))
    p.add_argument("--modes", default="",
                   help="comma-separated (default: every mode each framework has): "
                   + ", ".join(cells.all_modes(adapters.FRAMEWORKS)))
    p.add_argument("--device", default="cpu", help="cpu or gpu")
    p.add_argument("--preset", default="small", help="model sizes: " + ", ".join(PRESETS))
    p.add_argument("--dtype", default="float32", help=", ".join(DTYPES))
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads and CPU cores per cell (default: every CPU allowed)")
    p.add_argument("--batch-sizes", default="", help="comma-separated (default: the preset's)")
    p.add_argument("--seq-lens", default="",
                   help="comma-separated sequence lengths (default: the preset's)")
    p.add_argument("--sample-seconds", type=float, default=1.5,
                   help="time each cell process keeps taking step-time samples (s)")
    p.add_argument("--warmup-seconds", type=float, default=0.5,
                   help="untimed steps after the first, at least this long (s)")
    p.add_argument("--min-samples", type=int, default=10, help="timed steps per cell, at least")
    p.add_argument("--sample-max-seconds", type=float, default=10.0,
                   help="past this much sampling (s), 3 timed steps are enough: slow eager "
                   "steps (seconds each) need not reach --min-samples")
    p.add_argument("--repeats", type=int, default=2,
                   help="processes per cell, run round-robin over the matrix; their samples "
                   "are pooled and their spread reported")
    p.add_argument("--timeout", type=float, default=300.0, help="per cell process (s)")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 float32 matmuls on GPU in every framework (default off)")
    p.add_argument("--name", default=None, help="run id (default: the UTC time)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="finish an interrupted run (folder, run id or 'latest'); "
                   "the matrix flags are then taken from the run")
    p.add_argument("--retry-failed", action="store_true",
                   help="with --resume: measure failed cells again")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write every cell process's loss curve and step times as "
                   "TensorBoard event files under DIR/<run id>/")
    p.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure scaling curves: step time vs batch size (MLP) and "
                   "sequence length (LSTM, attention) at 1/4, 2 and 4 times the preset's, "
                   "compiled mode, one process per point")
    p.add_argument("--graphs", action=argparse.BooleanOptionalAction, default=True,
                   help="then run the static-vs-dynamic graph study (fwbench graphs) on "
                   "this run's frameworks, reusing its cells")
    p.add_argument("--parity", action=argparse.BooleanOptionalAction, default=True,
                   help="then run the float32 parity checks (fwbench parity) of its frameworks")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="end by writing results/report/ (fwbench report) for this run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("graphs", help="static vs dynamic graphs: compile cost, retracing, "
                       "control flow, eager == compiled")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--parts", default="compile,retrace,control_flow,modes",
                   help="comma-separated parts of the study to run")
    p.add_argument("--preset", default="small", help="model sizes: " + ", ".join(PRESETS))
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads and CPU cores per process (default: every CPU allowed)")
    p.add_argument("--retrace-model", default="attention",
                   help="sequence model fed varying lengths: " + ", ".join(
                       name for name, kind in models.KINDS.items() if kind.sequence))
    p.add_argument("--from-run", default="auto", metavar="RUN",
                   help="where the compile costs come from: a `fwbench run` (folder, id or "
                   "'latest'), 'none' (measure them now), or 'auto' (default: the newest "
                   "finished run that has every cell needed, else measure)")
    p.add_argument("--parity-dtypes", default="float32",
                   help="dtypes of the eager == compiled checks: float32, float64")
    p.add_argument("--timeout", type=float, default=300.0, help="per process (s)")
    p.add_argument("--name", default=None, help="study id (default: the UTC time)")
    p.set_defaults(func=cmd_graphs)

    p = sub.add_parser("report", help="write results/report/: Markdown, HTML, figures, CSV")
    p.add_argument("runs", nargs="*", help="run folders or ids (default: the latest run; "
                   "'none': no speed sections)")
    p.add_argument("--graphs", default="latest",
                   help="graph studies (graphs.json or its folder; comma-separated ones are "
                   "merged), 'latest' (default) or 'none'")
    p.add_argument("--parity", default="latest",
                   help="parity results JSON (comma-separated ones are merged), 'latest' "
                   "(default) or 'none'")
    p.add_argument("--studies", default="latest",
                   help="study folders or ids (comma-separated), 'latest' (default: the newest "
                   "of each study) or 'none'")
    p.add_argument("--merge", action="store_true",
                   help="treat the runs as one result set (e.g. one run per framework) "
                   "instead of comparing them")
    p.add_argument("--out", type=Path, default=None, help="folder (default: results/report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="per cell: slower, faster or no clear change, "
                       "beyond the noise; exit status 1 on a regression")
    p.add_argument("baseline", help="run folder or id, baseline folder, pytest-benchmark "
                   "JSON, or 'stored' (the committed baseline for CURRENT's environment)")
    p.add_argument("current", help="run folder or id, 'latest', or pytest-benchmark JSON")
    from bench.compare import DEFAULT_ALPHA, DEFAULT_STEPS, DEFAULT_THRESHOLD, STEP_CHOICES

    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="minimum slowdown that counts, as a fraction (default %(default)s, "
                   "calibrated on a 2-core VM: see the README)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="significance level of the Mann-Whitney test (default %(default)s)")
    p.add_argument("--allow-env-diff", action="store_true",
                   help="compare results from different environments anyway")
    p.add_argument("--steps", choices=STEP_CHOICES, default=DEFAULT_STEPS,
                   help="which steps to compare: fast, those taken while the machine ran in "
                   "its fast state; normalized, every step rescaled by the machine-speed "
                   "matmul probe; all, every step as measured (default %(default)s; "
                   "bench.speedprobe)")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also append the Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("baseline", help="save a run as this environment's baseline, or "
                       "print where it lives")
    p.add_argument("action", choices=["save", "path"])
    p.add_argument("run", nargs="?", default=None, help="run folder or id (default: latest)")
    p.add_argument("--force", action="store_true", help="replace an existing baseline")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("study", help="studies from the course material, in every framework: "
                       "genz (function approximation), forecast (LSTM on CO2), sweep "
                       "(architectures and optimizers on digits)")
    p.add_argument("name", choices=list(STUDIES), help="which study")
    p.add_argument("--quick", action="store_true", help="the smaller configuration (minutes)")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: the study's)")
    p.add_argument("--mode", default="", help="eager or compiled for every framework "
                   "(default: tf compiled, torch eager, jax compiled)")
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads and CPU cores (default: every CPU allowed)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per framework process (s)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write every item's loss curve and step times as TensorBoard "
                   "event files under DIR")
    p.add_argument("--id", default=None, help="study id (default: <name>-<UTC time>)")
    p.add_argument("--resume", default=None, metavar="STUDY",
                   help="finish an interrupted study (folder or id)")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("show", help="print the speed table of one or more runs")
    p.add_argument("runs", nargs="*", help="run folders or ids (default: the latest run)")
    p.set_defaults(func=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, MatrixError) as exc:
        parser.error(str(exc))  # exits with status 2 and the usage line
    return 2


if __name__ == "__main__":
    sys.exit(main())
