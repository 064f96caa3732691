"""The data-parallel speed matrix of `fwbench run --devices N`: which cells measure
strong and weak scaling and the cost of communication, and how one such cell runs.

Per framework x model x mode, with B the global batch of the matrix cell (the preset's,
or --batch-sizes) and T its cores (--threads, default all):

- strong scaling: r replicas (r = 1, 2, 4, ... up to N) on the global batch B;
- weak scaling: r replicas on r x B, each replica keeping B;
- communication controls (no-communication runs): for each r > 1, one replica alone
  doing what one of the r replicas does, on T / r cores: B / r rows (strong) or B rows
  (weak). The step time of the r-replica cell minus its control's is what running as
  a group costs beyond the replica's own compute: the all-reduce, and the runtime's
  coordination around it. On a GPU each replica has a GPU and the control one GPU.

r = 1 through the data-parallel runtime (a group of one) is the base of both curves.
On a CPU the replicas are the machine's cores: r replicas share what one replica would
have, so these cells measure the frameworks' distribution overhead, not a speed-up.

Every cell is a bench.speed.cells.Cell with `replicas` set, measured in a group of its
framework's one-host form (bench.distributed.group) running replica:measure_task; its
record is a cell record like any other, with what every process of the group reported
(runtime, backend, world size, devices and cores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import cpus, workers
from bench.distributed import DP_MODES, group, launch, processes_for
from bench.speed.cells import Cell, MatrixError

FORM = "one-host"  # how the speed cells run: each framework's own form for one machine
MEASURE_TASK = "bench.distributed.replica:measure_task"
ROLES = ("strong", "weak", "control-strong", "control-weak")
COLLECTIVE_GRACE_S = 60.0


@dataclass(frozen=True)
class Point:
    """One role a cell plays in the study: a scaling point at `replicas` replicas, or
    the no-communication control of that point."""

    role: str      # one of ROLES
    replicas: int  # the scaling point's replica count (a control's cell has 1)
    cell_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "replicas": self.replicas, "cell_id": self.cell_id}


def replica_counts(devices: int) -> list[int]:
    """1, 2, 4, ... below `devices`, then `devices` itself."""
    counts = [r for r in (2 ** k for k in range(16)) if r < devices]
    return [*counts, devices]


def plan(base: Sequence[Cell], devices: int) -> tuple[list[Cell], list[Point]]:
    """The data-parallel cells (each once, in run order) and their roles, from the
    single-device matrix cells `base`; MatrixError for a cell that cannot be split."""
    cells: dict[str, Cell] = {}
    points: list[Point] = []
    for cell in base:
        if cell.mode not in DP_MODES[cell.framework]:
            continue  # e.g. JAX op by op: its data parallelism is jax.jit over a Mesh
        batch = cell.specs()[1].batch_size
        for r in replica_counts(devices):
            if batch % r:
                raise MatrixError(f"--devices {devices}: the {cell.model}'s global batch of "
                                  f"{batch} does not split {r} ways; choose --batch-sizes "
                                  f"that {r} divides")
            threads = cell.threads if cell.device == "gpu" else cell.threads // r
            if threads < 1:
                raise MatrixError(f"--devices {devices}: {r} replicas need at least {r} "
                                  f"cores (one each), --threads is {cell.threads}")
            wanted = [("strong", replace(cell, batch_size=batch, replicas=r)),
                      ("weak", replace(cell, batch_size=batch * r, replicas=r))]
            if r > 1:
                wanted += [("control-strong", replace(cell, batch_size=batch // r,
                                                      threads=threads, replicas=1)),
                           ("control-weak", replace(cell, batch_size=batch, threads=threads,
                                                    replicas=1))]
            for role, c in wanted:
                cells.setdefault(c.id, c)
                points.append(Point(role, r, c.id))
    if not cells:
        raise MatrixError("no cell has a data-parallel form: data parallelism runs in modes "
                          + "; ".join(f"{fw} {', '.join(m)}" for fw, m in DP_MODES.items()))
    return list(cells.values()), points


def member_cores(cell: Cell) -> tuple[list[tuple[int, ...]], int]:
    """The cores each process of the cell's group is pinned to (one share per process:
    torch's replicas each get theirs, a one-process group all of them) and the compute
    threads of each; on a GPU every process keeps the cell's threads."""
    cores = workers.affinity(cell.threads)
    n = processes_for(cell.framework, FORM, cell.replicas or 1)
    if cell.device == "gpu" or not cpus.can_pin():
        return [tuple(cores)] * n, cell.threads
    share = len(cores) // n
    return [tuple(cores[i * share:(i + 1) * share]) for i in range(n)], share


def run_cell(run_dir: Path, run: dict[str, Any], cell: Cell, repeat: int,
             fault: workers.Fault | None = None) -> dict[str, Any]:
    """Measure a data-parallel cell in a group of its own and return its record (a
    failed group's status is that of its first failing member)."""
    from bench.speed import machineload, measure

    replicas = cell.replicas or 1
    cores, threads = member_cores(cell)
    # A collective waits longer than the cell's timeout: a member that hangs is then
    # reported as the timeout it is, not as its peers' collective giving up first.
    args = {"run_id": run["run_id"], "repeat": repeat, "cell": cell.to_dict(),
            "budget": run["budget"], "tf32": run["tf32"],
            "timeout_s": run["timeout_s"] + COLLECTIVE_GRACE_S}
    outcome = group.run_group(
        lambda port: launch.group_jobs(cell.framework, FORM, replicas, port, args,
                                       device=cell.device, threads=threads,
                                       timeout_s=run["timeout_s"], fault=fault, cores=cores,
                                       task=MEASURE_TASK),
        Path(run_dir) / "logs", f"{cell.id}.r{repeat}", ports=replicas)
    if not outcome.ok:
        record = measure.skeleton(cell, run["run_id"], repeat, failure_status(outcome),
                                  outcome.describe())
        record["wall_s"] = outcome.wall_s
        return record
    lead = outcome.values[0]
    lead["framework"]["group"] = {
        "form": FORM, "processes": len(outcome.values), "port_attempts": outcome.attempts,
        "members": [{**v["member"], "cores": list(c)} for v, c in zip(outcome.values, cores)]}
    metrics = lead["metrics"]
    # every process's own median: the slowest replica sets the group's pace
    metrics["member_median_ms"] = [v["metrics"]["median_ms"] for v in outcome.values]
    # the machine's load beyond the group: the other members' CPU time is the cell's own
    peers = sum(v["metrics"].get("load_own_cpu_share") or 0.0 for v in outcome.values[1:])
    if metrics.get("load_other_cpu_share") is not None:
        metrics["load_peers_cpu_share"] = peers
        metrics["load_other_cpu_share"] = max(0.0, metrics["load_other_cpu_share"] - peers)
        metrics["loaded"] = machineload.is_loaded(metrics["load_other_cpu_share"],
                                                   metrics.get("load_steal_share"))
    lead["wall_s"] = outcome.wall_s
    return lead


def failure_status(outcome: group.GroupOutcome) -> str:
    """A failed group's cell status, from its first failing member: a task that raised
    is classified by its exception as bench.speed.measure classifies a cell's (nan, oom,
    unavailable, crash); a process that died is killed, timeout or crash."""
    if outcome.status != "error":
        return {"timeout": "timeout", "killed": "killed"}.get(outcome.status, "crash")
    from bench.speed import measure

    return measure.status_of_error(outcome.error or "")
