"""`fwbench report`: results/report/ (Markdown, HTML, figures, CSV) from runs, graph
studies, parity files and studies (bench/report/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.common import UsageError, inputs, run_dir, study_inputs

EXAMPLES = {"report": """\
  fwbench report                      the latest run, graph study, parity file and studies
  fwbench report RUN_A RUN_B --out results/two-runs
  fwbench report none --studies latest   the studies only"""}


def add_parser(sub: Any) -> None:
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
    p.add_argument("--idioms", default="latest",
                   help="an idiom audit (benchmarks/idioms.py's JSON), 'latest' (default: "
                   "the newest results/idioms*.json) or 'none'")
    p.add_argument("--merge", action="store_true",
                   help="treat the runs as one result set (e.g. one run per framework) "
                   "instead of comparing them")
    p.add_argument("--out", type=Path, default=None, help="folder (default: results/report)")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    execute(args)
    return 0


def execute(args: argparse.Namespace) -> Path:
    """Write the report the flags ask for; its folder."""
    from bench import report

    # "none": a report of the other inputs only (e.g. studies without a speed run).
    run_dirs = [] if args.runs == ["none"] else [run_dir(r) for r in (args.runs or ["latest"])]
    graphs_paths = inputs(args.graphs, "graphs/*/graphs.json", "--graphs")
    parity_paths = inputs(args.parity, "parity-*.json", "--parity")
    study_paths = study_inputs(args.studies)
    idioms_paths = inputs(args.idioms, "idioms*.json", "--idioms")
    if len(idioms_paths) > 1:
        raise UsageError(f"--idioms {args.idioms}: one audit file, not {len(idioms_paths)}")
    out = report.build(run_dirs, graphs_paths, parity_paths, args.out, merge=args.merge,
                       study_paths=study_paths, idioms_path=idioms_paths[0] if idioms_paths else None)
    studies = [(p if p.is_dir() else p.parent).name for p in graphs_paths]
    print(f"report of {', '.join(d.name for d in run_dirs) or 'no speed run'}"
          + (" (merged)" if args.merge and len(run_dirs) > 1 else "")
          + (f", graph study {', '.join(studies)}" if studies else "")
          + (f", parity {', '.join(p.name for p in parity_paths)}" if parity_paths else "")
          + (f", studies {', '.join(p.name for p in study_paths)}" if study_paths else "")
          + (f", idiom audit {idioms_paths[0].name}" if idioms_paths else "")
          + f": {out / 'report.html'} and {out / 'report.md'}")
    return out
