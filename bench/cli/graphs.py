"""`fwbench graphs`: the static-vs-dynamic graph study (bench/graphs/study.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench import adapters, cpus, models, results, workers
from bench.cli.common import UsageError, format_table, note_missing, run_dir
from bench.graphs import RETRACE_MODEL
from bench.spec import DTYPES, PRESETS
from bench.speed import cells, show


def _sequence_models() -> list[str]:
    return [name for name, kind in models.KINDS.items() if kind.sequence]


EXAMPLES = {"graphs": """\
  fwbench graphs                      compile costs, retracing and control flow, every framework
  fwbench graphs --frameworks torch,jax --parts retrace --retrace-model lstm"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("graphs", help="static vs dynamic graphs: compile cost, retracing, "
                       "control flow, eager == compiled")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--parts", default="compile,retrace,control_flow,modes",
                   help="comma-separated parts of the study to run")
    p.add_argument("--preset", default="small", help="model sizes: " + ", ".join(PRESETS))
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads and CPU cores per process (default: every CPU allowed)")
    p.add_argument("--retrace-model", default=RETRACE_MODEL,
                   help="sequence model fed varying lengths: " + ", ".join(_sequence_models()))
    p.add_argument("--from-run", default="auto", metavar="RUN",
                   help="where the compile costs come from: a `fwbench run` (folder, id or "
                   "'latest'), 'none' (measure them now), or 'auto' (default: the newest "
                   "finished run that has every cell needed, else measure)")
    p.add_argument("--parity-dtypes", default="float32",
                   help="dtypes of the eager == compiled checks: float32, float64")
    p.add_argument("--timeout", type=float, default=300.0, help="per process (s)")
    p.add_argument("--name", default=None, help="study id (default: the UTC time)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    return execute(args)[0]


def execute(args: argparse.Namespace) -> tuple[int, Path]:
    """Run the graph study the flags ask for; (exit status, its graphs.json)."""
    from bench import graphs
    from bench.graphs import study as graphstudy
    from bench.speed import harness

    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    parts = cells.parse_list(args.parts, graphs.PARTS, "--parts")
    dtypes = cells.parse_list(args.parity_dtypes, DTYPES, "--parity-dtypes")
    if args.preset not in PRESETS:
        raise UsageError(f"--preset {args.preset!r}: known presets are {', '.join(PRESETS)}")
    if args.retrace_model not in _sequence_models():
        raise UsageError(f"--retrace-model {args.retrace_model!r}: a sequence model, one of "
                         f"{', '.join(_sequence_models())}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: must be > 0")
    threads = args.threads or len(cpus.allowed())
    workers.affinity(threads)
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
            compile_run = run_dir(args.from_run)
            missing = graphstudy.missing_cells(harness.load_run(compile_run), matrix)
            if missing:
                raise UsageError(f"--from-run {args.from_run}: the run lacks {len(missing)} of "
                                 f"the {len(matrix)} cells the compile table needs, e.g. "
                                 f"{missing[0]}")
    note_missing(frameworks, "rows are")
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
    return (1 if problems else 0), path
