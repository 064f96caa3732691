"""Was anything else using the machine while a cell measured? Counters that cost nothing.

A measured process must not do work of its own beside the step it times (issue 8: a
NumPy matmul probe between blocks of steps woke OpenBLAS's worker thread, which then
spun on the cores the framework computes on: torch's MLP step went from 1.43 to 2.26 ms
and its IQR from 0.13 to 6.9 ms). So whether anything *else* used the machine is not
probed with work either: the harness reads counters the kernel keeps anyway, once
before a cell samples and once after (a read takes about 0.02 ms):

- /proc/stat, the machine's CPU time by kind (USER_HZ ticks, 10 ms): its busy time
  minus this process's own (getrusage) is what *other* processes used while the cell
  sampled; its steal time is what the hypervisor gave to other guests;
- getrusage(RUSAGE_SELF): this process's CPU time, and its involuntary context switches
  (a thread of the step taken off its core for another task);
- /proc/loadavg: runnable tasks, averaged over a minute (recorded, not judged).

pyperf warns about an unstable system the same way (it reads the load and the CPU
settings, then measures). No library reads these per block for us: psutil would read
the same files with more overhead and one more dependency.

On a system without /proc (macOS, Windows) `read` returns the process's own counters
only, and the machine's share is unknown (None), never a guess.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# A cell is flagged as measured on a loaded machine when other processes used more than
# this share of the machine's CPU time while it sampled. On the quiet 2-core VM the
# harness's parent, the shell and the kernel used 0-1.7% while a cell sampled (18 processes of 6 cells,
# benchmarks/probe_interference.py); one other busy process on 2 cores is 50%.
LOADED_SHARE = 0.10
# ... or when the hypervisor stole more than this share of it (0-0.2% there).
STOLEN_SHARE = 0.05


@dataclass(frozen=True)
class Reading:
    """Counters at one moment. Times in seconds."""

    t: float                    # time.perf_counter()
    machine_busy_s: float | None  # CPU time of every process and the kernel, all CPUs
    machine_steal_s: float | None  # CPU time the hypervisor gave to other guests
    own_cpu_s: float            # this process's user + system time, all its threads
    involuntary_switches: int   # this process's threads taken off a core by the kernel
    loadavg_1min: float | None


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _proc_stat() -> tuple[float | None, float | None]:
    """(busy, steal) CPU seconds summed over the machine's CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None, None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (proc(5));
    # guest time is counted in user already
    ticks = [int(v) for v in fields[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq) * _TICK_S, steal * _TICK_S


def _loadavg() -> float | None:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def read() -> Reading:
    """The counters now."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy, steal = _proc_stat()
    return Reading(time.perf_counter(), busy, steal, usage.ru_utime + usage.ru_stime,
                   usage.ru_nivcsw, _loadavg())


def cpu_count() -> int:
    """CPUs the machine's /proc/stat totals are summed over."""
    return os.cpu_count() or 1


def summary(readings: Sequence[Reading], cpus: int | None = None) -> dict[str, Any]:
    """What happened on the machine between the first and last reading.

    other_cpu_share: CPU time of other processes (and the kernel) as a share of all the
    machine's CPU time over the span; steal_share: the hypervisor's likewise; both None
    where /proc/stat is not there. involuntary_switches_per_s: this process's.
    `loaded` says whether either share passed its limit (LOADED_SHARE, STOLEN_SHARE)."""
    if len(readings) < 2:
        raise ValueError(f"{len(readings)} readings: a span needs two")
    first, last = readings[0], readings[-1]
    span_s = last.t - first.t
    capacity_s = span_s * (cpus or cpu_count())
    other = steal = None
    if first.machine_busy_s is not None and last.machine_busy_s is not None and capacity_s > 0:
        # /proc/stat counts in 10 ms ticks: a span shorter than a second reads coarse
        other = max(0.0, (last.machine_busy_s - first.machine_busy_s
                          - (last.own_cpu_s - first.own_cpu_s)) / capacity_s)
        steal = max(0.0, (last.machine_steal_s - first.machine_steal_s) / capacity_s)
    loads = [r.loadavg_1min for r in readings if r.loadavg_1min is not None]
    return {
        "span_s": span_s,
        "other_cpu_share": other,
        "steal_share": steal,
        "own_cpu_share": (last.own_cpu_s - first.own_cpu_s) / capacity_s if capacity_s > 0 else None,
        "involuntary_switches_per_s": ((last.involuntary_switches - first.involuntary_switches)
                                       / span_s if span_s > 0 else None),
        "loadavg_1min_max": max(loads) if loads else None,
        "loaded": is_loaded(other, steal),
    }


def is_loaded(other_cpu_share: float | None, steal_share: float | None) -> bool:
    """Whether these shares say the machine was not the cell's alone."""
    return ((other_cpu_share is not None and other_cpu_share > LOADED_SHARE)
            or (steal_share is not None and steal_share > STOLEN_SHARE))


def per_block(readings: Sequence[Reading]) -> list[dict[str, Any]]:
    """The readings as plain dicts, for a cell record (one per block boundary)."""
    return [asdict(r) for r in readings]
