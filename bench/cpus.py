"""The CPUs a process may run on, and pinning a process to some of them, where the
operating system allows it.

Linux has `os.sched_getaffinity` and `os.sched_setaffinity`; macOS and Windows have
neither (macOS has no user-settable CPU affinity at all). There, every CPU counts as
allowed, nothing is pinned, and each cell is held to its cores by the thread variables
alone; `describe()` says so, and the run's environment records it for the report's
methodology.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def allowed() -> list[int]:
    """The CPUs this process may run on: its affinity mask where the OS has one, every
    CPU otherwise."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        return sorted(getter(0))
    return list(range(os.cpu_count() or 1))


def can_pin() -> bool:
    """Whether a process can be pinned to chosen CPUs here."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def pin(cores: Iterable[int]) -> bool:
    """Pin this process to `cores`; False (and nothing changed) where the OS cannot."""
    if not can_pin():
        return False
    os.sched_setaffinity(0, set(cores))
    return True


def describe() -> str:
    """What pinning the measured processes get on this platform, for the methodology."""
    if can_pin():
        return "each measured process is pinned to the same CPU cores (sched_setaffinity)"
    return ("CPU pinning is not available on this platform (no sched_setaffinity): "
            "measured processes are held to their threads by the thread variables only, "
            "and the operating system may move them between cores")
