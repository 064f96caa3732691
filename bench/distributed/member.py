"""Joining a data-parallel group that another launcher started: torchrun on each
machine, Slurm's srun, or a shell per machine.

    python -m bench.distributed.member FRAMEWORK [--models mlp,lstm] [--dtypes float32]

Each process reads where it stands from the variables its launcher set, starts its
framework's distributed runtime (impls/<name>/distributed.py, the multi-host form) and
trains the data-parallel parity items on it (bench.distributed.parity: every model
kind's tiny preset, SGD and Adam, 20 steps on a global batch of 8); every process also
trains on one device on the same batches and checks its own run against that (the
data_parallel rows), so each process prints its own verdict. Exit status 1 when a row
fails, 2 for bad input (a missing variable, an unknown framework), in one line.

Where a process stands:
- its rank and the process count: RANK and WORLD_SIZE (torchrun), else SLURM_PROCID and
  SLURM_NTASKS (srun);
- process 0's address and port, the rendezvous of torch and the coordinator of JAX:
  MASTER_ADDR and MASTER_PORT (torchrun sets them; under Slurm the batch script does);
- TensorFlow: TF_CONFIG, its own description of the cluster (every worker's host:port,
  this one's index), read by MultiWorkerMirroredStrategy; its rank and count come
  from there.
One replica per process (on a GPU machine, run one process per GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.distributed import World

FRAMEWORKS = ("torch", "jax", "tf")


class MemberError(ValueError):
    """The launcher's variables do not say where this process stands."""


def _int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        if env.get(name, "").strip():
            try:
                return int(env[name])
            except ValueError:
                raise MemberError(f"{name}={env[name]!r} is not a whole number") from None
    return None


def world_from_env(framework: str, env: Mapping[str, str], device: str = "cpu") -> World:
    """This process's World from its launcher's variables; MemberError saying which
    variable is missing."""
    if framework not in FRAMEWORKS:
        raise MemberError(f"framework {framework!r} not known; allowed: {', '.join(FRAMEWORKS)}")
    if framework == "tf":
        if "TF_CONFIG" not in env:
            raise MemberError("TF_CONFIG is not set: TensorFlow's workers find each other "
                              "through it (cluster.worker: every host:port; task.index: this one)")
        try:
            config = json.loads(env["TF_CONFIG"])
            workers, rank = config["cluster"]["worker"], int(config["task"]["index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MemberError(f"TF_CONFIG is not a cluster description ({exc})") from None
        port = int(str(workers[0]).rsplit(":", 1)[-1])
        return World(framework, "multi-host", len(workers), len(workers), rank, device, port,
                     str(workers[0]).rsplit(":", 1)[0])
    rank = _int(env, "RANK", "SLURM_PROCID")
    processes = _int(env, "WORLD_SIZE", "SLURM_NTASKS")
    port = _int(env, "MASTER_PORT")
    missing = [name for name, value in (("RANK or SLURM_PROCID", rank),
                                        ("WORLD_SIZE or SLURM_NTASKS", processes),
                                        ("MASTER_PORT", port)) if value is None]
    if not env.get("MASTER_ADDR"):
        missing.append("MASTER_ADDR")
    if missing:
        raise MemberError(f"{', '.join(missing)} not set: the launcher (torchrun, srun, or "
                          f"the shell) says where each process stands through them")
    if not 0 <= rank < processes:
        raise MemberError(f"rank {rank} is not one of the {processes} processes")
    return World(framework, "multi-host", processes, processes, rank, device, port,
                 env["MASTER_ADDR"])


def torch_variables(world: World, env: Mapping[str, str]) -> dict[str, str]:
    """What torch's env:// rendezvous and DataParallel read, filled in from Slurm's
    variables where torchrun did not set them."""
    return {"RANK": str(world.rank), "WORLD_SIZE": str(world.processes),
            "LOCAL_RANK": env.get("LOCAL_RANK") or env.get("SLURM_LOCALID") or "0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed.member",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("framework", help=", ".join(FRAMEWORKS))
    parser.add_argument("--models", default="", help="comma-separated model kinds (default all)")
    parser.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="how long a collective may wait for the other processes (s)")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="also write this process's rows as JSON ({rank} in the name "
                        "becomes its rank)")
    args = parser.parse_args(argv)
    try:
        world = world_from_env(args.framework, os.environ, args.device)
        rows = run(world, args)
    except MemberError as exc:
        print(f"member: {exc}", file=sys.stderr)
        return 2
    from bench.cli.common import fmt, format_table

    print(format_table([{"check": r.check, "model": r.model, "dtype": r.dtype,
                         "max error": fmt(r.error), "tolerance": fmt(r.tolerance),
                         "pass": "yes" if r.passed else "NO", "note": r.note} for r in rows],
                       ["check", "model", "dtype", "max error", "tolerance", "pass", "note"]))
    failed = sum(not r.passed for r in rows)
    print(f"process {world.rank} of {world.processes} ({world.framework}): "
          f"{len(rows) - failed} passed, {failed} failed")
    if args.output:
        Path(args.output.replace("{rank}", str(world.rank))).write_text(json.dumps(
            {"world": world.to_dict(), "rows": [dataclasses.asdict(r) for r in rows]},
            indent=1, default=str))
    return 1 if failed or not rows else 0


def run(world: World, args: argparse.Namespace) -> list[Any]:
    """Train the parity items in this process's group; its data_parallel rows."""
    from bench.distributed import parity
    from bench.speed.cells import parse_list

    names = [c.name for c in parity.trained_cases(None)]
    try:
        cases = tuple(parse_list(args.models, names, "--models")) if args.models else None
        dtypes = tuple(parse_list(args.dtypes, ("float32", "float64"), "--dtypes"))
    except ValueError as exc:
        raise MemberError(str(exc)) from None
    if parity.BATCH % world.replicas:
        raise MemberError(f"{world.replicas} processes do not split the global batch of "
                          f"{parity.BATCH} evenly")
    if world.framework == "torch":
        os.environ.update(torch_variables(world, os.environ))
    from bench.distributed import replica

    value = replica.train_task({
        "world": world.to_dict(), "items": parity.items(world.framework, dtypes, cases),
        "steps": parity.STEPS, "batch_size": parity.BATCH, "timeout_s": args.timeout,
        "baseline": "every"})
    raws = {(world.framework, world.form): {"members": [value]}}
    return [r for r in parity.compare(raws, dtypes, cases, world.replicas)
            if r.check == "data_parallel"]


if __name__ == "__main__":
    sys.exit(main())
