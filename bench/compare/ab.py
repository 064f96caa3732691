"""`fwbench ab`: the same cells measured under two sides, A and B, on one machine in one
command, their processes interleaved, and a verdict per cell with compare's statistics.

A stored baseline compares well only on the machine that recorded it. A hosted CI runner
is a different machine every job, so the question "did this change slow training down?"
has to be answered inside one job: both sides measured there, close together in time.
This is what `asv continuous --interleave-processes` and Google Benchmark's random
interleaving do; both interleave their own benchmarks and cannot run another tool's
processes, so the order and its loop are written here by hand (the statistics are
compare's).

A side is the project's code from a git commit (a temporary worktree; none: the working
tree as it is), a Python interpreter (a venv with fwbench's dependencies and the
frameworks; none: this one), and environment variables on top (TF_ENABLE_ONEDNN_OPTS=0,
say). Each process of a side is that side's own `fwbench run` of one cell with one
repeat: the command line is the interface that stays the same across commits, where the
worker protocol's task arguments may not (bench.workers.run_command runs it, so a timeout
or a stop signal ends it like any worker).

Order: every cell gets `processes` pairs; each pair is A then B or B then A, half of the
pairs each way, shuffled with a recorded seed (A B B A ...), and the pairs go round-robin
over the cells (pair 1 of every cell, then pair 2, ...) like the harness's repeats. The
two processes of a pair run one after the other, so the pair is the unit of the
bootstrap: a resample picks the same pairs on both sides (bench.compare.stats,
ratio_interval(paired=True)), and a slow minute of the machine that slows both processes
of a pair cancels.

    results/ab/<id>/ab.json                  the sides, the cells, the order, the settings
    results/ab/<id>/a/runs/<slot>/           side A's `fwbench run` of one cell (slot:
    results/ab/<id>/b/runs/<slot>/           c<cell>-p<pair>, e.g. c01-p03), record and log
    results/ab/<id>/logs/<side>-<slot>.log   that command's own output
    results/ab/<id>/verdict.md, verdict.json the verdict (also `--markdown`, `--json`)
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import environment, results, workers
from bench.compare.sides import Cell, CompareError, Side, match_key, match_label

SCHEMA = "fwbench.ab/1"
SIDES = ("A", "B")
# Environment keys whose differences between the sides are listed (all of them: the
# machine's are the same by construction, the rest may be the point of the comparison).
LISTED_KEYS = ("git_commit", "python", "numpy", "packages", "variables", "platform")
# The settings each side's `fwbench run` gets, as flags (dest, flag).
RUN_FLAGS = (("preset", "--preset"), ("device", "--device"), ("dtype", "--dtype"),
             ("threads", "--threads"), ("sample_seconds", "--sample-seconds"),
             ("warmup_seconds", "--warmup-seconds"), ("min_samples", "--min-samples"),
             ("timeout", "--timeout"))
# How a side's `fwbench run` is started: the code it runs is whatever `bench` its
# working directory holds, in any version that has bench.cli.main.
BOOT = "import sys; from bench.cli import main; sys.exit(main())"


def ab_dir() -> Path:
    return results.RESULTS_DIR / "ab"


@dataclass(frozen=True)
class SideSpec:
    """What one side runs: `commit` (a git revision of this project; None: the working
    tree), `python` (an interpreter; None: this one), `env` (variables set on top) and
    `fault` (a bench.workers.Fault in its flag form, given to every cell: calibration and
    tests only)."""

    commit: str | None = None
    python: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    fault: str | None = None

    def describe(self) -> str:
        parts = [f"commit {self.commit}" if self.commit else "the working tree",
                 f"python {self.python}" if self.python else "this python"]
        parts += [f"{k}={v}" for k, v in sorted(self.env.items())]
        if self.fault:
            parts.append(f"injected fault {self.fault}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "env": dict(self.env)}


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """NAME=VALUE items of --a-env / --b-env."""
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name or not name.replace("_", "").isalnum():
            raise CompareError(f"environment variable {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def pair_orders(processes: int, seed: int) -> list[str]:
    """For each pair, "AB" or "BA": half each way (one more "AB" when odd, if the coin
    says so), in a random order from `seed`."""
    rng = random.Random(seed)
    orders = ["AB", "BA"] * (processes // 2)
    if processes % 2:
        orders.append(rng.choice(["AB", "BA"]))
    rng.shuffle(orders)
    return orders


def new_session(cells: Sequence[Any], sides: Mapping[str, SideSpec], processes: int,
                settings: Mapping[str, Any], seed: int | None = None,
                name: str | None = None) -> Path:
    """Create results/ab/<id>/ with the plan (ab.json); returns the folder."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise CompareError(f"--processes {processes!r}: must be a whole number >= 1")
    if not cells:
        raise CompareError("no cells to measure")
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    folder = results.new_folder(ab_dir(), name,
                                datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"),
                                "ab.json", "ab session", CompareError)
    rng = random.Random(seed)
    results.write_json(folder / "ab.json", {
        "schema": SCHEMA, "id": folder.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sides": {label: spec.to_dict() for label, spec in sides.items()},
        "cells": [c.to_dict() for c in cells], "processes": processes, "seed": seed,
        # per cell, per pair: which side runs first
        "orders": [pair_orders(processes, rng.randrange(2**31)) for _ in cells],
        "settings": dict(settings),
    })
    return folder


def load_session(folder: Path) -> dict[str, Any]:
    return results.read_folder_file(Path(folder), "ab.json", SCHEMA, CompareError, "ab session")


def slots(session: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    """(cell index, pair, side) in the order they run: pair 1 of every cell (its two
    sides in the pair's order), then pair 2, ..."""
    return [(i, pair, side) for pair in range(session["processes"])
            for i in range(len(session["cells"]))
            for side in session["orders"][i][pair]]


def slot_name(cell_index: int, pair: int) -> str:
    return f"c{cell_index + 1:02d}-p{pair + 1:02d}"


# --- the sides' code and interpreters ----------------------------------------------------
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(workers.ROOT), *args], capture_output=True,
                          text=True, timeout=120)


def resolve_commit(ref: str) -> str:
    """The full hash of `ref` in this project's repository (CompareError if it is none)."""
    try:
        out = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompareError(f"commit {ref!r}: git could not be run ({exc})") from None
    if out.returncode != 0:
        raise CompareError(f"commit {ref!r}: not a commit of the repository at "
                           f"{workers.ROOT} (is it a git checkout, and was the commit fetched?)")
    return out.stdout.strip()


def check_python(python: str) -> str:
    """`python` as an absolute path, checked to run (CompareError if it does not)."""
    found = shutil.which(python) or (python if Path(python).exists() else None)
    if not found:
        raise CompareError(f"python {python!r}: no such interpreter")
    try:
        out = subprocess.run([found, "-c", "import numpy, pandas, scipy"], capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompareError(f"python {python!r}: cannot be run ({exc})") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise CompareError(f"python {python!r}: lacks fwbench's dependencies ({last}); "
                           f"install them there with pip install -e '.[all]'")
    return str(Path(found).absolute())


@contextmanager
def checkouts(sides: Mapping[str, Mapping[str, Any]]) -> Iterator[dict[str, Path]]:
    """Each side's source folder: a temporary git worktree of its commit, or this
    checkout; the worktrees are removed on leaving."""
    made: list[Path] = []
    roots = {}
    try:
        for label, spec in sides.items():
            if not spec.get("commit"):
                roots[label] = workers.ROOT
                continue
            commit = resolve_commit(spec["commit"])
            where = Path(tempfile.mkdtemp(prefix=f"fwbench-ab-{label.lower()}-"))
            out = _git("worktree", "add", "--detach", "--force", str(where), commit)
            if out.returncode != 0:
                shutil.rmtree(where, ignore_errors=True)
                raise CompareError(f"side {label}: git worktree add {spec['commit']} failed: "
                                   f"{out.stderr.strip()}")
            made.append(where)
            roots[label] = where
        yield roots
    finally:
        for where in made:
            _git("worktree", "remove", "--force", str(where))
            shutil.rmtree(where, ignore_errors=True)


# --- running ---------------------------------------------------------------------------
def side_command(python: str, cell: Mapping[str, Any], settings: Mapping[str, Any],
                 name: str, fault: str | None, limits_flag: bool = True) -> list[str]:
    """The side's `fwbench run` of one cell, one process, nothing after it."""
    cmd = [python, "-c", BOOT, "run", "--frameworks", cell["framework"], "--models",
           cell["model"], "--modes", cell["mode"], "--repeats", "1", "--name", name,
           "--no-scaling", "--no-graphs", "--no-parity", "--no-report"]
    if limits_flag:  # a side from before the machine's limits were measured has no flag
        cmd.append("--no-limits")
    for dest, flag in RUN_FLAGS:
        cmd += [flag, str(settings[dest])]
    if fault:
        cmd += ["--inject-fault", fault]
    return cmd


def slot_run(folder: Path, side: str, cell_index: int, pair: int) -> Path:
    return Path(folder) / side.lower() / "runs" / slot_name(cell_index, pair)


def _done(run: Path) -> bool:
    return any((run / "cells").glob("*.json")) if (run / "run.json").exists() else False


def execute(folder: Path,
            on_slot: Callable[[int, int, str, str, float | None], None] | None = None) -> None:
    """Run every slot of the session that has no record yet, in order. A side whose
    `fwbench run` refuses its flags (exit 2, no run folder) stops the session with
    CompareError: every one of its slots would do the same. `on_slot(done, total,
    label, side, wall_s)` is called before each slot (wall_s None) and after it."""
    folder = Path(folder)
    session = load_session(folder)
    sides = session["sides"]
    # the interpreters were checked when the session was made or resumed (check_python)
    pythons = {label: spec.get("python") or sys.executable for label, spec in sides.items()}
    with results.exclusive(folder, "ab session", CompareError):
        todo = [s for s in slots(session) if not _done(slot_run(folder, s[2], s[0], s[1]))]
        if todo:
            _run_slots(folder, session, todo, pythons, on_slot)


def _run_slots(folder: Path, session: Mapping[str, Any], todo: Sequence[tuple[int, int, str]],
               pythons: Mapping[str, str],
               on_slot: Callable[[int, int, str, str, float | None], None] | None) -> None:
    sides, settings = session["sides"], session["settings"]
    with checkouts(sides) as roots:
        for done, (i, pair, side) in enumerate(todo):
            cell = session["cells"][i]
            label = f"{cell['framework']}/{cell['model']}/{cell['mode']} pair {pair + 1} {side}"
            if on_slot:
                on_slot(done, len(todo), label, side, None)
            run = slot_run(folder, side, i, pair)
            shutil.rmtree(run, ignore_errors=True)  # a slot cut short before: measured again
            env = {**_plain_env(), "FWBENCH_RESULTS": str(run.parent.parent.resolve()),
                   "PYTHONPATH": str(roots[side]), **sides[side].get("env", {})}
            log = folder / "logs" / f"{side.lower()}-{slot_name(i, pair)}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            cmd = side_command(pythons[side], cell, settings, slot_name(i, pair),
                               sides[side].get("fault"),
                               (Path(roots[side]) / "bench" / "speed" / "limits.py").exists())
            # the side's own per-cell timeout, plus its start and its environment capture
            # SIGTERM on a stop: the side's fwbench run then stops its own worker
            status, wall_s = workers.run_command(cmd, log, env, settings["timeout"] + 120,
                                                 cwd=roots[side], stop_signal=signal.SIGTERM)
            if status == 2 and not (run / "run.json").exists():
                raise CompareError(f"side {side} ({_describe(sides[side])}) cannot run this "
                                   f"cell: its fwbench run said: {_last_line(log)}")
            if on_slot:
                on_slot(done + 1, len(todo), label, side, wall_s)


def _plain_env() -> dict[str, str]:
    """This process's environment without the variables that would hand a side this
    checkout's code or results instead of its own."""
    import os

    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "FWBENCH_RESULTS", "PYTHONHOME")}


def _describe(spec: Mapping[str, Any]) -> str:
    return SideSpec(spec.get("commit"), spec.get("python"), spec.get("env") or {},
                    spec.get("fault")).describe()


def _last_line(log: Path) -> str:
    lines = [line for line in workers.log_tail(log).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


# --- reading back ---------------------------------------------------------------------
def sides(folder: Path) -> tuple[Side, Side, dict[str, dict[str, Any]]]:
    """Side A and side B as compare's Sides, each cell's processes in pair order; and
    each side's recorded environment. A pair whose process failed or is missing on either
    side is left out of both (the pairing needs both halves); the cell's `detail` says so."""
    from bench.compare import sides as loading

    folder = Path(folder)
    session = load_session(folder)
    out = {label: Side(name=f"{label} ({_describe(session['sides'][label])})",
                       kind="fwbench", environment={}, versions={}) for label in SIDES}
    envs: dict[str, dict[str, Any]] = {label: {} for label in SIDES}
    for i, data in enumerate(session["cells"]):
        per_side: dict[str, list[Cell | None]] = {label: [] for label in SIDES}
        for pair in range(session["processes"]):
            for label in SIDES:
                run = slot_run(folder, label, i, pair)
                if not _done(run):
                    per_side[label].append(None)
                    continue
                side = loading.load(run)
                if not envs[label]:
                    envs[label] = results.read_json(run / "run.json").get("environment", {})
                    out[label].environment, out[label].versions = side.environment, side.versions
                per_side[label].append(next(iter(side.cells.values()), None))
        for label in SIDES:
            out[label].cells[_key(data, per_side)] = _merged(data, per_side, label)
    return out["A"], out["B"], envs


def _key(data: Mapping[str, Any], per_side: Mapping[str, list[Cell | None]]) -> str:
    found = next((c for cells in per_side.values() for c in cells if c is not None), None)
    return found.key if found else match_key(match_label(data.get))


def _merged(data: Mapping[str, Any], per_side: Mapping[str, list[Cell | None]],
            label: str) -> Cell:
    """One side's cell from its slots, its processes in pair order; its status the
    first failure, if any. Paired where every pair measured on both sides; otherwise
    each side keeps whatever measured, unpaired (the pairs no longer line up)."""
    mine = per_side[label]
    found = next((c for c in mine if c is not None), None)
    cell_label = found.label if found else match_label(data.get)
    whole = all(c is not None and c.processes for cells in per_side.values() for c in cells)
    cell = Cell(key=_key(data, per_side), label=cell_label, processes=[], repeats=len(mine),
                paired=whole)
    for slot in mine:
        if slot is None or not slot.processes:
            continue
        cell.processes += slot.processes
        cell.probes += slot.probes or [[] for _ in slot.processes]
        cell.matmul_probes += slot.matmul_probes or [[] for _ in slot.processes]
        cell.loaded += slot.loaded or [None for _ in slot.processes]
        cell.matmul_probe_version = slot.matmul_probe_version
    failures = [(i, c) for i, c in enumerate(mine)
                if c is None or c.status != "ok" or not c.processes]
    if failures:
        i, c = failures[0]
        cell.status = "missing" if c is None else (c.status if c.status != "ok" else "crash")
        cell.error = (f"pair {i + 1}: " + ("no record (interrupted? fwbench ab --resume)"
                                           if c is None else (c.error or c.status))
                      + (f"; {len(failures)} of {len(mine)} processes did not measure"
                         if len(failures) > 1 else ""))
    return cell


def differences(envs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every difference between the sides' recorded environments, 'key: A -> B'."""
    return environment.differences(envs.get("A", {}), envs.get("B", {}), LISTED_KEYS)
