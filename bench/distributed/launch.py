"""What each process of a data-parallel group is given to start: the variables its
framework's own launcher sets (torchrun's rendezvous variables, the JAX coordinator,
TensorFlow's TF_CONFIG), set in the process's environment before the framework is
imported, and the group's Jobs. The README's recipes for real machines set the same
variables by hand or through torchrun and Slurm."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bench.distributed import World, processes_for
from bench.threads import thread_env
from bench.workers import Fault, Job

TASK = "bench.distributed.replica:train_task"


def torch_env(world: World) -> dict[str, str]:
    """torchrun's variables: one-host is `--nproc-per-node N` on one node, multi-host
    `--nnodes N --nproc-per-node 1` (each process its own node, GROUP_RANK its index)."""
    local = world.processes if world.form == "one-host" else 1
    return {"MASTER_ADDR": world.address, "MASTER_PORT": str(world.port),
            "RANK": str(world.rank), "WORLD_SIZE": str(world.processes),
            "LOCAL_RANK": str(world.rank % local), "LOCAL_WORLD_SIZE": str(local),
            "GROUP_RANK": str(world.rank // local), "ROLE_RANK": str(world.rank),
            "ROLE_WORLD_SIZE": str(world.processes)}


def jax_env(world: World, threads: int) -> dict[str, str]:
    """JAX on a CPU: each process's devices are host devices split from the CPU
    (--xla_force_host_platform_device_count, read once when XLA starts, so set before
    import). The coordinator of the multi-host form is in the World (replica.py calls
    jax.distributed.initialize with it)."""
    if world.device != "cpu":
        return {}
    # First: XLA stops reading XLA_FLAGS at a word without dashes (the thread settings'
    # intra_op_parallelism_threads=N is one), ignoring every flag after it.
    flags = thread_env(threads)["XLA_FLAGS"]
    return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={world.local_replicas} {flags}"}


def tf_env(world: World) -> dict[str, str]:
    """TF_CONFIG for MultiWorkerMirroredStrategy: every worker's address, this one's
    index. The one-host form needs none (MirroredStrategy over local devices)."""
    if world.form == "one-host":
        return {}
    workers = [f"{world.address}:{world.port + i}" for i in range(world.processes)]
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                     "task": {"type": "worker", "index": world.rank}})}


def member_env(world: World, threads: int) -> dict[str, str]:
    if world.framework == "torch":
        return torch_env(world)
    if world.framework == "jax":
        return jax_env(world, threads)
    return tf_env(world)


def group_jobs(framework: str, form: str, replicas: int, port: int, args: Mapping[str, Any],
               device: str = "cpu", threads: int = 1, timeout_s: float = 600.0,
               env: Mapping[str, str] | None = None, fault: Fault | None = None,
               cores: list[tuple[int, ...]] | None = None, task: str = TASK) -> list[Job]:
    """One Job per process of the group, running `task`; `args` go to every member
    beside its World; `cores[i]`: what member i is pinned to (None: unpinned, as
    parity's workers)."""
    n = processes_for(framework, form, replicas)
    jobs = []
    for rank in range(n):
        world = World(framework, form, replicas, n, rank, device, port)
        jobs.append(Job(task, {**args, "world": world.to_dict()}, threads=threads, device=device,
                        cores=cores[rank] if cores else None, timeout_s=timeout_s, fault=fault,
                        env={**(env or {}), **member_env(world, threads)}))
    return jobs
