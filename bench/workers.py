"""The one protocol by which fwbench runs work in a process of its own: speed cells,
parity workers, the graph study's workers and study processes.

    python -m bench.workers JOB_JSON RESULT_PICKLE

The parent describes the job as data (Job): the task to call ("package.module:function"),
its arguments (JSON data), the compute threads, the CPU cores, the device, extra
environment variables, a timeout, and optionally a Fault to inject. `run` writes the job
to a file beside the process's log, starts the worker in a session of its own, waits for
it, and reads back its one result file:

- the worker pins itself to the job's cores, holds NumPy's BLAS pool to one thread
  before any framework is imported (quiet_helper_pools), calls the task, and writes
  {"ok", "value"} or {"ok", "error", "traceback"} atomically, with the task's seconds;
- whatever ends the worker before it writes (a segfault, the OOM killer, os._exit, the
  timeout) is told apart by the parent from the exit status: Outcome.status "crash",
  "killed" or "timeout", with the tail of the log;
- a timeout or an interrupt of the parent (Ctrl-C) kills the worker's whole process
  group: torch.compile's compile workers and any other helper go with it.

The result is a pickle (parity's raw results are NumPy arrays under tuple keys), read
once and removed. The job file stays beside the log: `python -m bench.workers <job file>
out.pkl` reruns it by hand. A job with `preload` set runs in a child forked from its
framework's fork server (bench.forkserver), the framework imported once per run.

Written by hand because no library does this: multiprocessing and concurrent.futures
fork after the parent's threads exist or keep workers alive between tasks (what one cell
leaves in its framework would reach the next), and neither kills a task's process group.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import cpus
from bench.faults import FAULTS, Fault, WorkerError, strike  # noqa: F401 - their home before
from bench.threads import device_env, thread_env

ROOT = Path(__file__).resolve().parent.parent  # the folder holding bench/ and impls/
LOG_TAIL_LINES = 20

@dataclass(frozen=True)
class Job:
    """One process's work. `task` names a function `f(args, fault)` in a module of this
    project; `args` must be JSON data. `cores`: the CPUs the process is pinned to (None
    leaves it where the parent is: parity's workers run side by side)."""

    task: str
    args: Mapping[str, Any]
    threads: int = 1
    device: str = "cpu"
    cores: tuple[int, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 300.0
    fault: Fault | None = None
    preload: str | None = None  # a framework (or module): run forked from its fork server
    compiles: bool = False  # it compiles: its server also makes the framework's compile_preload

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "args": dict(self.args), "env": dict(self.env),
                "cores": list(self.cores) if self.cores is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Job":
        fault = Fault(**data["fault"]) if data.get("fault") else None
        cores = tuple(data["cores"]) if data.get("cores") is not None else None
        return cls(**{**data, "fault": fault, "cores": cores})


@dataclass(frozen=True)
class Outcome:
    """What came back from a worker. status: "ok" (the task returned `value`), "error"
    (the task raised: `error` is its message, `traceback` its traceback), "crash" (the
    process exited without a result), "killed" (by a signal), "timeout" (killed at the
    job's timeout). `error` says what happened in one line; `log_tail` is the end of
    the process's output."""

    status: str
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    returncode: int | None = None
    wall_s: float = 0.0          # the process, from start to exit
    task_s: float | None = None  # the task inside it
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        """The error with the log's tail, for a record: what a user needs to see why."""
        if self.status == "error":
            return f"{self.error}\n{self.traceback or ''}".strip()
        return f"{self.error}; log tail:\n{self.log_tail}"


# Workers running now, from any thread (parity runs its frameworks' workers side by side):
# a stop signal kills every one of their process groups. Reentrant, because the signal
# handler runs in the main thread, which may hold the lock when the signal arrives.
_live: set[subprocess.Popen] = set()
_live_lock = threading.RLock()
_stopped_by: int | None = None  # the signal this process was stopped by, once it was
# Processes stopped by another signal than SIGKILL: fwbench commands (ab's sides), which
# on SIGTERM kill their own workers (in sessions of their own) before they exit.
_stop_signal: dict[subprocess.Popen, int] = {}
STOP_GRACE_S = 10.0
STOP_SIGNALS = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s))


class Stopped(KeyboardInterrupt):
    """This process was asked to stop (SIGINT, SIGTERM or SIGHUP) and has killed its
    workers. A KeyboardInterrupt, so Ctrl-C's handlers take it; exit with exit_status."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def stop_workers() -> None:
    """Signal the process group of every worker running now: SIGKILL, or its own stop
    signal (run_command then kills it after STOP_GRACE_S)."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, _stop_signal.get(proc, signal.SIGKILL))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGINT, SIGTERM and SIGHUP kill every worker's process group (their
    own sessions keep them from the terminal's signals), then raise Stopped in the main
    thread, so the command keeps what finished and says how to resume. The previous
    handlers come back on leaving. Outside the main thread (signal handlers cannot be set
    there) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        global _stopped_by
        _stopped_by = signum
        stop_workers()
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        global _stopped_by
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stopped_by = None


def affinity(threads: int) -> list[int]:
    """The first `threads` CPUs this process may run on: every measured process gets the
    same ones."""
    allowed = cpus.allowed()
    if threads > len(allowed):
        raise WorkerError(f"--threads {threads}: only {len(allowed)} CPUs are available to "
                          f"this process ({allowed})")
    return allowed[:threads]


def process_env(threads: int, device: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a worker: the same thread caps and device settings for every
    framework, quiet framework logs, unbuffered output (the log is read after a kill)."""
    return {**os.environ, **thread_env(threads), **device_env(device),
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1",
            **(extra or {})}


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the process's group: its gentler stop signal first, if any (unless
    stop_workers sent it), then SIGKILL if it has not ended within STOP_GRACE_S."""
    gentle = _stop_signal.get(proc, signal.SIGKILL)
    if gentle != signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            if _stopped_by is None:
                os.killpg(proc.pid, gentle)
            proc.wait(timeout=STOP_GRACE_S)
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_command(cmd: list[str], log: Path, env: Mapping[str, str], timeout_s: float,
                cwd: Path = ROOT, stop_signal: int = signal.SIGKILL,
                on_start: Callable[[subprocess.Popen], None] | None = None
                ) -> tuple[int | None, float]:
    """Run `cmd` in a session of its own, output in `log`, tracked for stop signals, its
    group killed at `timeout_s`; returns its exit status (None after a timeout) and wall
    seconds. The lifecycle of every process fwbench starts: `run` for a Job, and fwbench
    ab for a side's `fwbench run` (stop_signal SIGTERM: it stops its own workers first).
    `on_start` gets the process once it runs (a data-parallel group kills its members'
    groups when one of them fails: bench.distributed.group)."""
    started = time.perf_counter()
    with open(log, "w") as log_file, _live_lock:
        if _stopped_by is not None:  # stopped while this thread was getting here
            raise Stopped(_stopped_by)
        # A session of its own, so that a timeout kills the process's helpers too.
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd,
                                env=dict(env), start_new_session=True)
        try:
            _live.add(proc)
            if stop_signal != signal.SIGKILL:
                _stop_signal[proc] = stop_signal
            if _stopped_by is not None:  # the main thread was stopped meanwhile
                raise Stopped(_stopped_by)
            if on_start is not None:
                on_start(proc)
        except BaseException:
            _kill_group(proc)
            raise
    try:
        returncode: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        returncode = None
    except BaseException:  # a stop signal or Ctrl-C: stop the worker, record nothing
        _kill_group(proc)
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
            _stop_signal.pop(proc, None)
    return returncode, time.perf_counter() - started


def run(job: Job, log: Path,
        on_start: Callable[[subprocess.Popen], None] | None = None) -> Outcome:
    """Run `job` in a process of its own, its output in `log` and the job beside it
    (<log>.job.json); never raises for anything the worker does (an interrupt of this
    process kills the worker, then goes on up). `on_start`: as for run_command; a job
    with it runs fresh, not forked from a fork server (whose children it cannot hold)."""
    log = Path(log).resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    job_path = log.with_name(log.stem + ".job.json")
    result_path = log.with_name(log.stem + ".result.pkl")
    job_path.write_text(json.dumps(job.to_dict(), indent=1))
    result_path.unlink(missing_ok=True)
    env = process_env(job.threads, job.device, job.env)
    ran = None
    if job.preload and on_start is None:
        from bench import forkserver

        if forkserver.usable():
            ran = forkserver.run(job.preload, env, job_path, result_path, log, job.timeout_s,
                                 job.compiles)
    cmd = [sys.executable, "-m", "bench.workers", str(job_path), str(result_path)]
    returncode, wall_s = (ran if ran is not None else
                          run_command(cmd, log, env, job.timeout_s, on_start=on_start))
    if returncode is not None and result_path.exists():
        with open(result_path, "rb") as f:
            payload = pickle.load(f)
        result_path.unlink()
        if payload["ok"]:
            return Outcome("ok", payload["value"], returncode=returncode, wall_s=wall_s,
                           task_s=payload["task_s"])
        return Outcome("error", error=payload["error"], traceback=payload["traceback"],
                       returncode=returncode, wall_s=wall_s, task_s=payload["task_s"],
                       log_tail=log_tail(log))
    tail = log_tail(log)
    if returncode is None:
        return Outcome("timeout", error=f"no result after the {job.timeout_s:.0f} s timeout",
                       wall_s=wall_s, log_tail=tail)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (SIGKILL: often the kernel's OOM killer)" if name == "SIGKILL" else ""
        return Outcome("killed", error=f"killed by {name}{hint}", returncode=returncode,
                       wall_s=wall_s, log_tail=tail)
    return Outcome("crash", error=f"exited with status {returncode} and no result",
                   returncode=returncode, wall_s=wall_s, log_tail=tail)


def quiet_helper_pools() -> None:
    """Hold the BLAS pools loaded so far (NumPy's OpenBLAS, before any framework is
    imported) to one thread, for the life of this process.

    OpenBLAS's workers spin for 2^28 cycles (about 0.1 s here) after each call before
    they sleep: woken by the harness's own NumPy work (building the batches, the
    canonical weights), they compete with the framework's threads for the process's
    cores. With one thread NumPy computes on the calling thread and has no worker to
    wake. The thread variables (OPENBLAS_NUM_THREADS, ...) stay the job's: they are the
    frameworks' settings too (torch's BLAS on ARM is OpenBLAS)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def task_function(task: str) -> Any:
    """The function a task names ("package.module:function")."""
    module_name, _, name = task.partition(":")
    if not module_name or not name:
        raise WorkerError(f"task {task!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module_name), name)


def _write(path: Path, payload: dict[str, Any]) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        pickle.dump(payload, f)
    os.replace(part, path)


def main(argv: list[str]) -> int:
    job_path, result_path = argv
    job = Job.from_dict(json.loads(Path(job_path).read_text()))
    if job.cores is not None:
        cpus.pin(job.cores)  # before any framework starts its threads (Linux only)
    quiet_helper_pools()  # before any framework is imported: only NumPy's pool is affected
    started = time.perf_counter()
    try:
        payload = {"ok": True, "value": task_function(job.task)(job.args, job.fault)}
    except Exception as exc:  # noqa: BLE001 - the parent records it, by kind
        payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip(),
                   "traceback": traceback.format_exc(limit=-6)}
    payload["task_s"] = time.perf_counter() - started
    _write(Path(result_path), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
