"""Progress of work done in worker processes, for commands that would otherwise print
nothing for minutes (parity's workers each compute every check of one framework).

A worker prints `fwbench-progress DONE TOTAL WHAT` lines to its stdout, which
bench.workers sends to the worker's log; the parent reads the last such line of each
log on a timer (`Ticker`) and prints one status line with an estimate of the time left:
the slowest worker's elapsed time scaled by what it has left. The log is the channel
because every worker already has one; nothing else crosses the process boundary.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MARK = "fwbench-progress"
EVERY_S = 15.0  # between status lines; a notebook or CI log gets a few per minute


def time_left(elapsed_s: float, done: int, total: int) -> float | None:
    """Seconds left at the pace so far (`done` items in `elapsed_s`); None before the
    first item or after the last."""
    if not 0 < done < total:
        return None
    return elapsed_s * (total - done) / done


def say(done: int, total: int, what: str = "") -> None:
    """In a worker: `done` of `total` items are finished (the last was `what`)."""
    print(f"{MARK} {done} {total} {what}", flush=True)


def last(log: Path) -> tuple[int, int] | None:
    """(done, total) of the last progress line in `log`, if it has one."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))  # the tail is enough: one line per item
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        if line.startswith(MARK):
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
                return int(parts[1]), int(parts[2])
    return None


def status(label: str, logs: Mapping[str, Path], elapsed_s: float) -> str:
    """One line: each worker's done/total and the time left (estimated when every worker
    has finished something)."""
    counts = {name: last(path) for name, path in logs.items()}
    parts = [f"{name} {c[0]}/{c[1]}" if c else f"{name} starting" for name, c in counts.items()]
    known = [c for c in counts.values() if c]
    left = ""
    if known and len(known) == len(counts) and all(done for done, _ in known):
        seconds = max(time_left(elapsed_s, done, total) or 0.0 for done, total in known)
        left = f"; about {seconds:.0f} s left" if seconds >= 1 else "; finishing"
    return f"{label}: {elapsed_s:.0f} s; " + ", ".join(parts) + left


class Ticker:
    """While inside: every `every_s`, print `line()` to `stream` (from a daemon thread)."""

    def __init__(self, line: Callable[[float], str], every_s: float = EVERY_S,
                 stream: Any = None) -> None:
        self.line, self.every_s = line, every_s
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self.every_s):
            print(self.line(time.perf_counter() - started), file=self.stream, flush=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
