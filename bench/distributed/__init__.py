"""Data-parallel training on each framework's own distributed runtime.

N replicas train one model on a global batch split N ways, the gradients averaged
across replicas by the framework's own engine, never by fwbench:

- PyTorch: `torch.distributed` and `DistributedDataParallel`, one process per replica,
  started with the rendezvous variables `torchrun` sets (MASTER_ADDR/PORT, RANK,
  WORLD_SIZE, LOCAL_RANK, ...); gloo on CPU, NCCL on GPU.
- JAX: one controller, a `jax.sharding.Mesh` over a "data" axis, the batch sharded over
  it (`NamedSharding`) and the parameters replicated, under `jax.jit` (XLA's SPMD
  partitioner inserts the all-reduce); on CPU the devices come from
  `--xla_force_host_platform_device_count`.
- TensorFlow: `tf.distribute.MirroredStrategy` over N devices (logical CPU devices on a
  CPU), a custom loop: `strategy.run`, the loss scaled by the global batch.

Two forms (FORMS): "one-host", every replica of one host as its framework runs them there
(JAX and TensorFlow: one process; torch: one process per replica, as torchrun
--nproc-per-node N starts them), and "multi-host", one process per stand-in host as on
several machines (torch over TCP rendezvous with --nnodes N; jax.distributed.initialize
with a coordinator and gloo CPU collectives; MultiWorkerMirroredStrategy with TF_CONFIG).
On one machine the hosts are processes on localhost.

This package is framework-free: World says where one process stands in its group,
launch.py gives each process the variables its framework's launcher would set, group.py
runs the group through bench.workers (one member failing stops the others), replica.py
is the task each process runs, parity.py the data-parallel parity rows. The framework
code is impls/<name>/distributed.py.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from typing import Any

from bench import cpus

FORMS = ("one-host", "multi-host")
ADDRESS = "127.0.0.1"  # the stand-in hosts' rendezvous address on one machine
# The modes each framework's data parallelism runs in: JAX's is jax.jit over a Mesh
# (no op-by-op form); torch's DDP and TensorFlow's strategies run eagerly too.
DP_MODES = {"torch": ("eager", "compiled"), "tf": ("eager", "compiled"), "jax": ("compiled",)}


class DevicesUnavailable(ValueError):
    """More replicas were asked for than the machine has devices (refused before anything
    runs)."""


@dataclass(frozen=True)
class World:
    """One process's place in a data-parallel group."""

    framework: str
    form: str            # one of FORMS
    replicas: int        # N: the global batch is split N ways
    processes: int       # processes in the group (1 for JAX/TF one-host)
    rank: int            # this process's index in the group
    device: str = "cpu"  # cpu or gpu
    port: int = 0        # the rendezvous / coordinator port (the first of `processes`)
    address: str = ADDRESS  # the rendezvous / coordinator host (process 0's)

    @property
    def local_replicas(self) -> int:
        return self.replicas // self.processes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def processes_for(framework: str, form: str, replicas: int) -> int:
    """How many processes a group of `replicas` replicas has: torch always one per
    replica (DDP's design); JAX and TensorFlow one for a host, one per host otherwise."""
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not valid: allowed one of {', '.join(FORMS)}")
    return replicas if framework == "torch" or form == "multi-host" else 1


def available_devices(device: str) -> int:
    """Devices replicas can be given: GPUs visible to this process (their /dev nodes,
    narrowed by CUDA_VISIBLE_DEVICES), or on a CPU the cores this process may run on,
    one replica per core (a CPU's replicas are logical devices; more of them than cores
    would measure only the cores' sharing)."""
    if device == "cpu":
        return len(cpus.allowed())
    found = len(glob.glob("/dev/nvidia[0-9]*"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = min(found, len([d for d in visible.split(",") if d.strip()]))
    return found


def check_devices(replicas: int, device: str) -> None:
    """Refuse `replicas` larger than the devices available, saying what is available."""
    if replicas < 1:
        raise DevicesUnavailable(f"--devices {replicas}: need at least 1 replica")
    have = available_devices(device)
    if replicas > have:
        what = (f"{have} CPU core{'s' if have != 1 else ''} (one replica per core)"
                if device == "cpu" else f"{have} GPU{'s' if have != 1 else ''}")
        raise DevicesUnavailable(f"--devices {replicas}: this machine has {what} for "
                                 f"{device} replicas; use --devices {max(have, 1)} or fewer")
