"""`fwbench study`: a study from the course material (Genz, forecasting, sweep, and the
sequence studies charlm, seqclass, gradients) in every framework (bench/studies)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench import adapters, cpus, frameworks, results
from bench.cli.common import (
    UsageError,
    defaults_of,
    refuse_changes,
    refuse_defining_flags,
    study_dir,
)
from bench.progress import time_left
from bench.speed import cells
from bench.studies import STUDIES

EXAMPLES = {"study": """\
  fwbench study forecast --quick      the LSTM forecast of the CO2 series, minutes
  fwbench study sweep --frameworks torch,jax --seeds 0,1
  fwbench study genz --resume STUDY_ID
  fwbench study charlm --quick --tensorboard tb --histograms 50
                                      weight and gradient histograms every 50 steps"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("study", help="studies from the course material, in every framework: "
                       "genz (function approximation), forecast (LSTM on CO2), sweep "
                       "(architectures and optimizers on digits), charlm (next-character "
                       "LSTM/RNN), seqclass (digits as sequences), gradients (vanishing and "
                       "exploding gradients through time)")
    p.add_argument("name", choices=list(STUDIES), help="which study")
    p.add_argument("--quick", action="store_true", help="the smaller configuration (minutes)")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--seeds", default="", help="comma-separated seeds (default: the study's)")
    p.add_argument("--mode", default="", help="eager or compiled for every framework "
                   "(default: " + ", ".join(f"{f.name} {f.study_mode}"
                                            for f in frameworks.FRAMEWORKS.values()) + ")")
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads and CPU cores (default: every CPU allowed)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per framework process (s)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write every item's curves (loss, step times; the gradients "
                   "study's norms) as TensorBoard event files under DIR")
    p.add_argument("--histograms", type=int, default=None, metavar="N",
                   help="with --tensorboard: also per-layer weight and gradient histograms "
                   "every N training steps (an extra gradient computation each time, outside "
                   "the steps' timing)")
    p.add_argument("--id", default=None, help="study id (default: <name>-<UTC time>)")
    p.add_argument("--resume", default=None, metavar="STUDY",
                   help="finish an interrupted study (folder or id)")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: go on although the commit, packages, thread or "
                   "precision variables differ from the study's")
    p.set_defaults(func=command)
    DEFAULTS.update(defaults_of(p, STUDY_DEFINING))


# The flags that define a study, which --resume takes from the study.
STUDY_DEFINING = (("quick", "--quick"), ("frameworks", "--frameworks"), ("seeds", "--seeds"),
                  ("mode", "--mode"), ("threads", "--threads"), ("timeout", "--timeout"),
                  ("tensorboard", "--tensorboard"), ("histograms", "--histograms"), ("id", "--id"))
DEFAULTS: dict[str, object] = {}  # their defaults, filled in by add_parser


def command(args: argparse.Namespace) -> int:
    """A study from the course material in every framework (bench/studies)."""
    return execute(start(args))


def start(args: argparse.Namespace) -> Path:
    """The study's folder: the one to resume (checked), or a new one; nothing trained yet."""
    from bench import studies
    from bench.studies import runner

    try:
        if args.resume:
            refuse_defining_flags(args, STUDY_DEFINING, DEFAULTS, "study")
            folder = study_dir(args.resume)
            refuse_changes(runner.load_study(folder).get("environment", {}), folder, "study",
                           args.allow_changes)
        else:
            overrides = {}
            if args.seeds:
                overrides["seeds"] = list(cells.parse_ints(args.seeds, "--seeds", minimum=0))
            folder = runner.new_study(args.name, list(cells.parse_list(
                                          args.frameworks, adapters.FRAMEWORKS, "--frameworks")),
                                      args.quick, overrides, args.mode or None,
                                      args.threads or len(cpus.allowed()), args.timeout,
                                      str(Path(args.tensorboard).resolve()) if args.tensorboard
                                      else None, args.id, args.histograms)
    except results.ResultFileError:
        raise  # one line naming the file (bench.cli.main)
    except (studies.UnknownStudy, runner.StudyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    return folder


def execute(folder: Path) -> int:
    """Train the study's items that are not done yet, with progress; the exit status."""
    from bench import studies
    from bench.studies import runner

    study = runner.load_study(folder)
    module = studies.get(study["study"])
    total = len(module.items(study["config"]))
    print(f"study {study['study_id']}: {total} items x {len(study['frameworks'])} frameworks "
          f"({', '.join(f'{f} {m}' for f, m in study['modes'].items())}); {folder}",
          file=sys.stderr, flush=True)
    started = time.perf_counter()

    tty = sys.stderr.isatty()
    first: dict[str, tuple[float, int]] = {}  # framework -> (when, items done) first seen
    shown: dict[str, int] = {}

    def progress(framework: str, done: int, total: int, added: Any) -> None:
        now = time.perf_counter()
        elapsed = now - started
        if added is None:
            since, done_then = first.setdefault(framework, (now, done))
            # the pace of this invocation: items done before a --resume do not count
            left = time_left(now - since, done - done_then, total - done_then)
            line = (f"  {framework}: {done}/{total} items ({elapsed:.0f} s"
                    + (f", about {left:.0f} s left for {framework})" if left is not None else ")"))
            if tty:  # one line per framework, rewritten as items finish
                print(f"\r{line}", end="", file=sys.stderr, flush=True)
            elif shown.get(framework) != done:  # a log (CI, a notebook): a line per item
                shown[framework] = done
                print(line, file=sys.stderr, flush=True)
        else:
            bad = [r for r in added if r["status"] != "ok"]
            print(("\r" if tty else "") + f"  {framework}: {total}/{total} items, this time "
                  f"{len(added) - len(bad)} ok, {len(bad)} failed ({elapsed:.0f} s)",
                  file=sys.stderr, flush=True)
            for r in bad[:3]:
                print(f"    {r['item_id']}: {r['status']}: {(r['error'] or '').splitlines()[0]}",
                      file=sys.stderr)

    try:
        runner.execute(folder, progress)
    except KeyboardInterrupt as exc:
        print(f"\n{str(exc) or 'interrupted'}; finished items are kept. Resume with: "
              f"fwbench study {study['study']} --resume {folder}", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    frame = runner.load(folder)
    print(module.summary(frame))
    failed = frame[~frame["status"].isin(["ok", "skipped"])]
    print(f"{int((frame['status'] == 'ok').sum())} items trained, {len(failed)} failed, "
          f"{int((frame['status'] == 'skipped').sum())} skipped in "
          f"{time.perf_counter() - started:.0f} s; results in {folder}")
    if study.get("tensorboard"):
        print(f"tensorboard: tensorboard --logdir {study['tensorboard']}")
    return 1 if len(failed) else 0
