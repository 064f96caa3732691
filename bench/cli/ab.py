"""`fwbench ab`: the same cells under two sides (commits, interpreters, variables), their
processes interleaved on this machine, and compare's verdict per cell (bench/compare/ab.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench import adapters, workers
from bench.cli.common import UsageError, write_verdict
from bench.spec import DTYPES, MODELS, PRESETS
from bench.speed import cells

EXAMPLES = {"ab": """\
  fwbench ab --a-commit origin/main --b-commit HEAD --frameworks torch
  fwbench ab --a-python old/bin/python --b-python .venv/bin/python
  fwbench ab --a-env TF_ENABLE_ONEDNN_OPTS=1 --b-env TF_ENABLE_ONEDNN_OPTS=0 --frameworks tf"""}


def add_parser(sub: Any) -> None:
    from bench.compare import DEFAULT_ALPHA, DEFAULT_STEPS, STEP_CHOICES
    from bench.compare.policy import AB_PROCESSES, AB_THRESHOLD

    p = sub.add_parser(
        "ab", help="measure the same cells under two sides (git commits, Python "
        "environments, variables), interleaved on this machine, and say per cell whether B "
        "is slower than A; exit status 1 on a regression",
        description="Each side is a git commit of this project (default: the working tree), "
        "a Python interpreter (default: this one) and variables on top.")
    for side in ("a", "b"):
        s = side.upper()
        p.add_argument(f"--{side}-commit", default=None, metavar="REF",
                       help=f"side {s}'s code: a git commit, branch or tag, run from a "
                       f"temporary worktree (default: the working tree as it is)")
        p.add_argument(f"--{side}-python", default=None, metavar="PYTHON",
                       help=f"side {s}'s interpreter, with fwbench's dependencies and the "
                       f"frameworks installed (default: this one)")
        p.add_argument(f"--{side}-env", action="append", default=[], metavar="NAME=VALUE",
                       help=f"a variable set for side {s}'s processes (repeatable)")
        # Calibration and tests only: a bench.workers fault given to every cell of the side.
        p.add_argument(f"--{side}-fault", default=None, help=argparse.SUPPRESS)
    p.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS),
                   help="comma-separated, from: " + ", ".join(adapters.FRAMEWORKS))
    p.add_argument("--models", default="mlp,lstm,attention",
                   help="comma-separated, from: " + ", ".join(MODELS))
    p.add_argument("--modes", default="compiled",
                   help="comma-separated (default %(default)s): "
                   + ", ".join(cells.all_modes(adapters.FRAMEWORKS)))
    p.add_argument("--preset", default="small", help="model sizes: " + ", ".join(PRESETS))
    p.add_argument("--device", default="cpu", help="cpu or gpu")
    p.add_argument("--dtype", default="float32", help=", ".join(DTYPES))
    p.add_argument("--threads", type=int, default=1,
                   help="compute threads and cores per process (default %(default)s: leaves a "
                   "core to the OS)")
    p.add_argument("--processes", type=int, default=AB_PROCESSES,
                   help="processes per cell and side (default %(default)s, calibrated on a 2-core "
                   "VM: README)")
    p.add_argument("--sample-seconds", type=float, default=3.0,
                   help="step-time sampling per process (default %(default)s s)")
    p.add_argument("--warmup-seconds", type=float, default=0.5, help="untimed steps (s)")
    p.add_argument("--min-samples", type=int, default=10, help="timed steps, at least")
    p.add_argument("--timeout", type=float, default=300.0, help="per process (s)")
    p.add_argument("--seed", type=int, default=None,
                   help="of the interleaving order (default: random, recorded)")
    p.add_argument("--name", default=None, help="session id (default: the UTC time)")
    p.add_argument("--resume", default=None, metavar="ID",
                   help="finish an interrupted session (folder or id under results/ab/); "
                   "its sides and cells are taken from it")
    p.add_argument("--threshold", type=float, default=AB_THRESHOLD,
                   help="minimum slowdown that counts, as a fraction (default %(default)s)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="significance level of the Mann-Whitney test")
    p.add_argument("--steps", choices=STEP_CHOICES, default=DEFAULT_STEPS,
                   help="which steps to compare (see fwbench compare --help)")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also append the Markdown verdict to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the verdict as JSON to FILE (exit status included)")
    p.add_argument("--allow-missing", action="store_true",
                   help="exit 0 although cells side A measured failed on side B")
    p.set_defaults(func=command)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    for flag, value in (("--sample-seconds", args.sample_seconds),
                        ("--warmup-seconds", args.warmup_seconds), ("--timeout", args.timeout)):
        if not value > 0:
            raise UsageError(f"{flag} {value}: must be > 0")
    return {"preset": args.preset, "device": args.device, "dtype": args.dtype,
            "threads": args.threads, "sample_seconds": args.sample_seconds,
            "warmup_seconds": args.warmup_seconds, "min_samples": args.min_samples,
            "timeout": args.timeout}


def _session(args: argparse.Namespace) -> Any:
    """A new session's folder from the flags, or the one --resume names."""
    from bench.compare import ab

    if args.resume:
        from pathlib import Path

        for candidate in (Path(args.resume), ab.ab_dir() / args.resume):
            if (candidate / "ab.json").exists():
                for spec in ab.load_session(candidate)["sides"].values():
                    if spec.get("python"):  # still there, still able to run fwbench
                        ab.check_python(spec["python"])
                return candidate
        raise UsageError(f"--resume {args.resume}: no ab session there or under {ab.ab_dir()}")
    frameworks = cells.parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
    models = cells.parse_list(args.models, MODELS, "--models")
    modes = cells.parse_list(args.modes, cells.all_modes(adapters.FRAMEWORKS), "--modes")
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be >= 1")
    matrix = cells.expand(frameworks, models, modes, args.preset, args.device, args.dtype,
                          args.threads)
    sides = {}
    for label in ("A", "B"):
        side = label.lower()
        python = getattr(args, f"{side}_python")
        sides[label] = ab.SideSpec(
            commit=getattr(args, f"{side}_commit"),
            python=ab.check_python(python) if python else None,
            env=ab.parse_env(getattr(args, f"{side}_env")),
            fault=getattr(args, f"{side}_fault"))
        if sides[label].commit:
            ab.resolve_commit(sides[label].commit)  # a bad ref: said now, not after a slot
    return ab.new_session(matrix, sides, args.processes, _settings(args), args.seed, args.name)


def command(args: argparse.Namespace) -> int:
    from bench import compare
    from bench.compare import ab
    from bench.compare.policy import AB_PROCESSES

    try:
        folder = _session(args)
        session = ab.load_session(folder)
        print(f"fwbench ab {folder.name}: A = {ab.SideSpec(**session['sides']['A']).describe()}; "
              f"B = {ab.SideSpec(**session['sides']['B']).describe()}; "
              f"{len(session['cells'])} cells x {session['processes']} processes per side, "
              f"interleaved (seed {session['seed']}); results in {folder}", file=sys.stderr)
        try:
            ab.execute(folder, on_slot=_progress)
        except workers.Stopped:
            print(f"\nfinish it with: fwbench ab --resume {folder.name}", file=sys.stderr)
            raise
        a, b, envs = ab.sides(folder)
        table = compare.compare(a, b, args.threshold, args.alpha, allow_env_diff=True,
                                steps=args.steps)
    except compare.CompareError as exc:
        raise UsageError(str(exc)) from None
    differences = ab.differences(envs)
    text = compare.markdown(table, a, b, args.threshold, args.alpha, differences,
                            title=f"fwbench ab {folder.name}: B against A",
                            calibrated=(AB_PROCESSES, AB_PROCESSES))
    text += (f"\nA: {a.name}\n\nB: {b.name}\n\nOrder: pairs of processes (A then B, or B "
             f"then A, half each way) round-robin over the cells, seed {session['seed']}.\n")
    status = 1 if len(compare.failing(table, args.allow_missing)) else 0
    print(text)
    (folder / "verdict.md").write_text(text)
    document = compare.verdict_document("ab", table, a, b, args.threshold, args.alpha,
                                        args.steps, status, differences,
                                        args.allow_missing, session=folder.name,
                                        sides=session["sides"], seed=session["seed"],
                                        environments=envs)
    write_verdict(folder / "verdict.json", document)
    if args.json:
        write_verdict(args.json, document)
    if args.markdown:
        with open(args.markdown, "a") as f:  # append: $GITHUB_STEP_SUMMARY collects steps
            f.write(text + "\n")
    return status


def _progress(done: int, total: int, label: str, side: str, wall_s: float | None) -> None:
    if wall_s is None:
        print(f"[{done + 1}/{total}] {label} ...", end="", flush=True, file=sys.stderr)
    else:
        print(f" {wall_s:.0f} s", file=sys.stderr)
