"""`fwbench run`: the main job. Its flags become a matrix of cells and a budget here,
checked before anything runs; its phases are in bench/cli/pipeline.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import adapters, cpus, workers
from bench.cli import pipeline
from bench.cli.common import (
    UsageError,
    defaults_of,
    note_missing,
    refuse_all_missing,
    refuse_changes,
    refuse_defining_flags,
    run_dir,
)
from bench.spec import DTYPES, MODELS, PRESETS
from bench.speed import cells
from bench.speed.cells import Cell

EXAMPLES = {"run": """\
  fwbench run                         the main job: speed, scaling, graphs, parity, report
  fwbench run --frameworks torch,jax --models mlp --preset tiny --no-graphs --no-parity
  fwbench run --resume latest         finish an interrupted run
  fwbench run --devices 2 --models mlp,lstm,attention
                                      data-parallel speed and scaling at 1 and 2 replicas"""}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="measure training speed: one process per cell of a matrix")
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated, from: " + ", ".join(MODELS))
    p.add_argument("--modes", default="",
                   help="comma-separated (default: every mode each framework has): "
                   + ", ".join(cells.all_modes(adapters.FRAMEWORKS)))
    p.add_argument("--device", default="cpu", help="cpu or gpu")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="measure data-parallel training instead, on each framework's own "
                   "distributed runtime: strong and weak scaling at 1, 2, 4, ... N replicas "
                   "with no-communication controls (bench/distributed/scaling.py), compiled "
                   "mode unless --modes says otherwise; N <= the machine's devices (on a "
                   "CPU, its cores, shared by the replicas); parity then checks the "
                   "data-parallel rows")
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
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: go on although the commit, packages, thread or "
                   "precision variables differ from the run's (each cell records what it "
                   "ran under)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write every cell process's loss curve and step times as "
                   "TensorBoard event files under DIR/<run id>/")
    p.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure scaling curves: step time vs batch size (MLP) and "
                   "sequence length (the sequence models) at 1/4, 2 and 4 times the "
                   "preset's, compiled mode, one process per point")
    p.add_argument("--limits", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the machine's limits first (each framework's best matrix "
                   "product and memory bandwidth, a few seconds each), the report's "
                   "reference for every cell's FLOP/s")
    p.add_argument("--graphs", action=argparse.BooleanOptionalAction, default=True,
                   help="then run the static-vs-dynamic graph study (fwbench graphs) on "
                   "this run's frameworks, reusing its cells")
    p.add_argument("--parity", action=argparse.BooleanOptionalAction, default=True,
                   help="then run the float32 parity checks (fwbench parity) of its frameworks")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="end by writing results/report/ (fwbench report) for this run")
    # Tests only, so not in --help: a failure injected into the cells whose id contains
    # TARGET (bench.workers.FAULTS), to check that a run loses nothing else.
    p.add_argument("--inject-fault", type=fault_flag, default=None, metavar="KIND[:TARGET]",
                   help=argparse.SUPPRESS)
    p.set_defaults(func=command)
    DEFAULTS.update(defaults_of(p, RUN_DEFINING))


# The flags that define a run (its matrix and budget), which --resume takes from the run.
RUN_DEFINING = (("frameworks", "--frameworks"), ("models", "--models"), ("modes", "--modes"),
                ("device", "--device"), ("devices", "--devices"), ("preset", "--preset"),
                ("dtype", "--dtype"),
                ("threads", "--threads"), ("batch_sizes", "--batch-sizes"),
                ("seq_lens", "--seq-lens"), ("sample_seconds", "--sample-seconds"),
                ("warmup_seconds", "--warmup-seconds"), ("min_samples", "--min-samples"),
                ("sample_max_seconds", "--sample-max-seconds"), ("repeats", "--repeats"),
                ("timeout", "--timeout"), ("tf32", "--tf32"), ("name", "--name"),
                ("scaling", "--scaling/--no-scaling"), ("limits", "--limits/--no-limits"))
DEFAULTS: dict[str, object] = {}  # their defaults, filled in by add_parser


def fault_flag(text: str) -> workers.Fault:
    try:
        return workers.Fault.parse(text)
    except workers.WorkerError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def matrix(args: argparse.Namespace) -> tuple[list[Cell], list[tuple[str, Cell]], list[Any]]:
    """The cells the flags ask for, the scaling sweep's (axis, cell) points (none with
    --no-scaling or --devices) and, with --devices, the data-parallel cells' roles
    (bench.distributed.scaling.Point); every bad value is a UsageError before anything
    runs."""
    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    models = cells.parse_list(args.models, MODELS, "--models")
    modes = (cells.parse_list(args.modes, cells.all_modes(adapters.FRAMEWORKS), "--modes")
             if args.modes else None)
    batch_sizes = cells.parse_ints(args.batch_sizes, "--batch-sizes") if args.batch_sizes else None
    seq_lens = cells.parse_ints(args.seq_lens, "--seq-lens") if args.seq_lens else None
    threads = args.threads or len(cpus.allowed())

    workers.affinity(threads)  # more threads than CPUs is an error now, not in every cell
    if args.devices is not None:
        modes = modes or (cells.SCALING_MODE,)
    cells_ = cells.expand(frameworks, models, modes, args.preset, args.device, args.dtype,
                          threads, batch_sizes, seq_lens)
    if args.devices is not None:
        dp_cells, points = data_parallel_plan(cells_, args.devices, args.device)
        return dp_cells, [], points
    sweep = (cells.scaling_cells(frameworks, models, args.preset, args.device, args.dtype,
                                 threads) if args.scaling else [])
    return cells_, sweep, []


def data_parallel_plan(base: list[Cell], devices: int, device: str) -> tuple[list[Cell], list[Any]]:
    """The data-parallel cells and their roles for `--devices`, refused (UsageError)
    beyond the machine's devices."""
    from bench.distributed import DevicesUnavailable, check_devices, scaling

    try:
        check_devices(devices, device)
    except DevicesUnavailable as exc:
        raise UsageError(str(exc)) from None
    return scaling.plan(base, devices)


def budget(args: argparse.Namespace) -> Any:
    """The measurement budget of every cell, from the flags."""
    from bench.speed.measure import Budget

    for flag, value in (("--sample-seconds", args.sample_seconds),
                        ("--sample-max-seconds", args.sample_max_seconds),
                        ("--warmup-seconds", args.warmup_seconds), ("--timeout", args.timeout)):
        if not value > 0:
            raise UsageError(f"{flag} {value}: must be > 0")
    if args.min_samples < 1:
        raise UsageError(f"--min-samples {args.min_samples}: must be >= 1")
    return Budget(warmup_s=args.warmup_seconds, sample_s=args.sample_seconds,
                  min_samples=args.min_samples, sample_max_s=args.sample_max_seconds)


def command(args: argparse.Namespace) -> int:
    """The main job: the speed matrix and its scaling sweep, then (each optional) the graph
    study and the float32 parity checks on the same frameworks, then the report. Each phase
    that fails is said and makes the exit status 1; no phase loses another's results."""
    return pipeline.main_job(start(args), graphs=args.graphs, parity=args.parity,
                             report=args.report, retry_failed=args.retry_failed,
                             tensorboard=args.tensorboard, fault=args.inject_fault)


def start(args: argparse.Namespace) -> Path:
    """The run's folder: the one to resume (checked against the flags and this
    environment), or a new one for the flags' matrix; nothing is measured yet."""
    from bench.speed import harness

    if args.resume:
        refuse_defining_flags(args, RUN_DEFINING, DEFAULTS, "run")
        folder = run_dir(args.resume)
        refuse_changes(harness.load_run(folder).get("environment", {}), folder, "run",
                       args.allow_changes)
    else:
        if args.allow_changes or args.retry_failed:
            raise UsageError("--allow-changes and --retry-failed go with --resume")
        (cells_, sweep, points), budget_ = matrix(args), budget(args)
        refuse_all_missing(sorted({c.framework for c in cells_}))
        note_missing(sorted({c.framework for c in cells_}), "cells are")
        study = None
        if args.devices is not None:
            from bench.distributed import scaling

            study = {"devices": args.devices, "form": scaling.FORM,
                     "points": [p.to_dict() for p in points]}
        folder = harness.new_run(cells_, budget_, args.timeout, args.tf32, args.name,
                                 args.repeats, sweep, limits=args.limits, data_parallel=study)
    return folder
