"""Faults injected on purpose into worker processes: test and calibration hooks that
nothing in a normal run sets. bench.workers gives a job's Fault to its task, which calls
`strike` where the failure belongs (a speed cell: after its compile call)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

# What a Fault can do to the item it hits. Test and calibration hooks: nothing in a
# normal run sets one.
FAULTS = {
    "raise": "the task raises RuntimeError",
    "exit": "the process exits at once with status 3, writing nothing (like a segfault)",
    "kill": "the process sends itself SIGKILL (like the OOM killer)",
    "hang": "the process sleeps until its timeout",
    "nan": "the training loss becomes NaN",
    "slow": "every timed step of a speed cell takes `fraction` more time (CPU spin)",
}


class WorkerError(ValueError):
    """A job or fault that cannot be run as given."""


@dataclass(frozen=True)
class Fault:
    """A failure injected on purpose into the items whose id contains `target` (every
    item when it is empty): `kind` is one of FAULTS; `fraction` is the slowdown of
    "slow"."""

    kind: str
    target: str = ""
    fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise WorkerError(f"fault {self.kind!r} not known: allowed {', '.join(FAULTS)}")
        if self.kind == "slow" and not self.fraction > 0:
            raise WorkerError(f"fault 'slow' needs a fraction > 0, not {self.fraction!r}")

    def hits(self, item_id: str) -> bool:
        return self.target in item_id

    @classmethod
    def parse(cls, text: str) -> "Fault":
        """KIND or KIND:TARGET or slow=FRACTION[:TARGET], the form of a command-line flag."""
        kind, _, target = text.partition(":")
        fraction = 0.0
        if kind.startswith("slow="):
            kind, value = kind.split("=", 1)
            try:
                fraction = float(value)
            except ValueError:
                raise WorkerError(f"fault {text!r}: the slowdown {value!r} is not a number")
        return cls(kind, target, fraction)


def strike(fault: Fault | None, item_id: str) -> str | None:
    """Carry out `fault` on the item `item_id` if it hits it: raise, exit, kill this
    process or hang here. Returns the kind the caller must apply itself ("nan",
    "slow"), or None."""
    if fault is None or not fault.hits(item_id):
        return None
    if fault.kind == "raise":
        raise RuntimeError(f"injected fault (raise, on {item_id})")
    if fault.kind == "exit":
        os._exit(3)
    if fault.kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault.kind == "hang":
        time.sleep(10**6)
    return fault.kind
