"""Running a data-parallel group: every member a bench.workers Job, started together;
when one fails (raises, crashes, is killed, times out) the others, which would wait for
it in their next collective until their own timeouts, are killed at once, process group
and all, so a failed cell costs at most its timeout and leaves no process behind. A
rendezvous port taken meanwhile by another program is retried on fresh ports.

Written here, not taken from torchrun or a launcher library, because the group has to
run under the one worker protocol (logs, results, timeouts, stop signals) and for all
three frameworks alike; torchrun only launches torch, and jax and TensorFlow have no
launcher of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import workers
from bench.distributed import ADDRESS
from bench.workers import Job, Outcome

PORT_ATTEMPTS = 3
# What a rendezvous that could not bind its port says (torch/gloo, gRPC for the JAX
# coordinator and TensorFlow's workers).
PORT_TAKEN = ("address already in use", "eaddrinuse", "failed to add port", "errno 98")


@dataclass
class GroupOutcome:
    """What a group did: status "ok" or the status of the member that failed first for
    a reason of its own (not because the group stopped it), its error, and every
    member's Outcome (members stopped by the group are "killed")."""

    status: str
    members: list[Outcome]
    error: str | None = None
    failed_rank: int | None = None
    port: int = 0
    attempts: int = 1
    stopped_by_group: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def values(self) -> list[Any]:
        return [m.value for m in self.members]

    @property
    def wall_s(self) -> float:
        return max((m.wall_s for m in self.members), default=0.0)

    def describe(self) -> str:
        """The failing member's error and log, and what became of the others."""
        if self.ok:
            return ""
        lines = [f"process {self.failed_rank}: {self.members[self.failed_rank].describe()}"]
        if self.stopped_by_group:
            lines.append(f"processes {', '.join(map(str, self.stopped_by_group))} stopped by "
                         f"the group when process {self.failed_rank} failed")
        return "\n".join(lines)


def free_port(count: int = 1) -> int:
    """A port p on ADDRESS such that p .. p+count-1 are free now (TensorFlow's workers
    take one each)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ADDRESS, 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        if all(_free(base + i) for i in range(1, count)):
            return base
    raise OSError(f"no {count} consecutive free ports on {ADDRESS}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ADDRESS, port))
        except OSError:
            return False
    return True


def _port_taken(outcome: Outcome) -> bool:
    text = f"{outcome.error or ''}\n{outcome.traceback or ''}\n{outcome.log_tail}".lower()
    return any(marker in text for marker in PORT_TAKEN)


def run_once(jobs: list[Job], logs: list[Path]) -> GroupOutcome:
    """Run one group's jobs side by side; the first failure stops the rest."""
    lock = threading.Lock()
    procs: dict[int, subprocess.Popen] = {}
    stopped: set[int] = set()
    failures: list[int] = []  # in the order they were seen

    def stop_others(but: int) -> None:
        for rank, proc in procs.items():
            if rank != but and rank not in stopped and proc.poll() is None:
                stopped.add(rank)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def member(rank: int) -> Outcome:
        def started(proc: subprocess.Popen) -> None:
            with lock:
                procs[rank] = proc
                if failures:  # the group failed before this member started
                    stopped.add(rank)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)

        outcome = workers.run(jobs[rank], logs[rank], on_start=started)
        if not outcome.ok:
            with lock:
                if rank not in stopped:
                    failures.append(rank)
                stop_others(rank)
        return outcome

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        members = list(pool.map(member, range(len(jobs))))
    if not failures:
        return GroupOutcome("ok", members)
    # The cause: a member that died (crash, signal, timeout) before one that raised,
    # since a peer's death makes the others' collectives raise.
    dead = [r for r in failures if members[r].status != "error"]
    first = (dead or failures)[0]
    return GroupOutcome(members[first].status, members, members[first].error, first,
                        stopped_by_group=sorted(stopped))


def run_group(make_jobs: Callable[[int], list[Job]], log_dir: Path, name: str,
              ports: int = 1, attempts: int = PORT_ATTEMPTS) -> GroupOutcome:
    """Run the group `make_jobs(port)` builds, its logs `<log_dir>/<name>.p<rank>.log`;
    a rendezvous that found its port taken is retried on fresh ports, up to `attempts`
    times, and then reported as the failure it is."""
    log_dir = Path(log_dir)
    for attempt in range(1, attempts + 1):
        port = free_port(ports)
        jobs = make_jobs(port)
        logs = [log_dir / f"{name}.p{rank}.log" for rank in range(len(jobs))]
        outcome = run_once(jobs, logs)
        outcome.port, outcome.attempts = port, attempt
        if outcome.ok or not any(_port_taken(m) for m in outcome.members):
            return outcome
    return outcome
