"""Fork servers: one process per framework (and thread, device and environment setting)
that imports the framework once and forks a fresh worker for each job.

Importing TensorFlow takes 4-9 s on a 2-core VM and torch or JAX about 2 s, in every
process: in the main job's 92 cell processes that was more time than the sampling. A
fork server pays it once per run. A job whose `preload` names its framework (bench.workers
.Job) is run like this:

    parent (fwbench)                    server (python -m bench.forkserver FRAMEWORK ...)
    starts the server with the job's    pins nothing, holds NumPy's BLAS pool to one
    environment, waits for "ready"      thread, imports the framework's adapter, says
                                        {"ready", "import_s"}
    writes the job file, sends          forks; the child: a session of its own, its output
    {"job", "result", "log"}            into the log, then bench.workers.main (pin to the
                                        job's cores, the task, the result file), _exit
    tracks the child's pid for stop     replies {"pid"} at once, and {"returncode"} once
    signals; kills its process group    the child has ended
    at the timeout

The child is the process a fresh `python -m bench.workers` would be, with the framework
already imported, and the modules its bench.frameworks record preloads (ones each of its
processes imports anyway: torch.optim imports TorchDynamo when an optimizer is made), and
for a job that compiles, the record's compile_preload: the compiler's modules, and probes
of the machine a framework keeps in memory for the process's life (torch Inductor's check
of the CPU's vector instructions, 3-19 s before a process's first compiled kernel), timed
apart, so that a child's compile is its model's own.
Its threads, runtime and device are configured by the task, after the fork
(bench.speed.measure records import_s as the server's import time). Only the
import may happen before the fork: no framework starts its runtime or its thread pools
on import (TensorFlow, torch and JAX were checked), and forking after that is what each
documents as safe (torch's DataLoader workers do it; JAX warns only once a backend
exists). The job's environment must be the server's, so servers are keyed by framework,
threads, device and the job's extra variables.

Written by hand because the standard library's forkserver (multiprocessing) is one per
interpreter with one preload list and one environment, started from the parent's own;
fwbench needs one per framework and thread setting, each child in a session of its own
with its output in a log, and a timeout that kills the child's process group. Linux only
(fork after importing Apple's frameworks is unsafe on macOS); FWBENCH_FORKSERVER=0 turns
it off, and a job whose server cannot start runs in a fresh process as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
READY_TIMEOUT_S = 300.0  # importing TensorFlow on a loaded 2-core runner takes up to ~20 s
# Set in a fork server before it forks: {"framework", "import_s"}; a child inherits it.
PRELOADED: dict[str, Any] | None = None


def usable() -> bool:
    """Whether jobs with a `preload` go through fork servers here."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork")
            and os.environ.get("FWBENCH_FORKSERVER", "1") != "0")


def preloaded_import_s(framework: str) -> float | None:
    """Seconds the fork server took to import `framework`, in a child it forked; else None."""
    if PRELOADED and PRELOADED.get("framework") == framework:
        return float(PRELOADED["import_s"])
    return None


def preloaded_calls(framework: str) -> tuple[list[str], float] | None:
    """The probes the fork server made after importing `framework` (the "module:function"
    entries of its record's compile_preload) and their seconds, in a child it forked;
    else None."""
    if PRELOADED and PRELOADED.get("framework") == framework and PRELOADED.get("calls"):
        return list(PRELOADED["calls"]), float(PRELOADED["calls_s"])
    return None


# --- the parent's side -------------------------------------------------------------------
class _Child:
    """A forked worker, tracked by bench.workers' stop-signal handling like a Popen (its
    pid is its process group's: it starts a session of its own)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


class ServerLost(RuntimeError):
    """The fork server ended or broke its protocol."""


class Server:
    """One fork server: a process with `framework` imported under `env` (and, if
    `compiles`, its record's compile_preload made)."""

    def __init__(self, framework: str, env: dict[str, str], log: Path,
                 compiles: bool = False) -> None:
        self.framework, self.env, self.log, self.compiles = framework, env, log, compiles
        self.lock = threading.Lock()  # one job at a time per server
        self.proc: subprocess.Popen | None = None
        self.import_s: float | None = None
        self._buffer = b""

    def start(self) -> bool:
        """Start the server and wait for it to have imported the framework; False (and
        the reason in its log) if it could not."""
        from bench import workers

        requests_r, self._requests = os.pipe()
        self._replies, replies_w = os.pipe()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.forkserver", self.framework,
                 "compiles" if self.compiles else "eager", str(requests_r), str(replies_w)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=workers.ROOT, env=self.env, pass_fds=(requests_r, replies_w),
                start_new_session=True)
        os.close(requests_r)
        os.close(replies_w)
        with workers._live_lock:
            workers._live.add(self.proc)
        try:
            ready = self._receive(READY_TIMEOUT_S)
        except ServerLost:
            ready = None
        if not ready or not ready.get("ready"):
            self.close()
            return False
        self.import_s = ready["import_s"]
        return True

    def run(self, job_path: Path, result_path: Path, log: Path,
            timeout_s: float) -> tuple[int | None, float]:
        """Run the job in a child of the server; its exit status (None after a timeout:
        its process group is killed) and wall seconds. Raises ServerLost if the server
        ended before the child's status came back."""
        from bench import workers

        started = time.perf_counter()
        self._send({"job": str(job_path), "result": str(result_path), "log": str(log)})
        forked = self._receive(READY_TIMEOUT_S)
        if forked is None:
            raise ServerLost(f"the {self.framework} fork server did not fork (log: {self.log})")
        child = _Child(forked["pid"])
        with workers._live_lock:
            workers._live.add(child)
        try:
            reply = self._receive(max(0.0, timeout_s - (time.perf_counter() - started)))
            if reply is None:  # the timeout: kill the child's group, take its status
                self._kill(child)
                self._receive(READY_TIMEOUT_S)
                return None, time.perf_counter() - started
            return reply["returncode"], time.perf_counter() - started
        except BaseException:  # a stop signal, Ctrl-C or a lost server: no child is left
            self._kill(child)
            raise
        finally:
            with workers._live_lock:
                workers._live.discard(child)

    def close(self) -> None:
        """End the server (it exits when its request pipe closes; killed if it does not)."""
        from bench import workers

        with contextlib.suppress(OSError):
            os.close(self._requests)
        with contextlib.suppress(OSError):
            os.close(self._replies)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            with workers._live_lock:
                workers._live.discard(self.proc)

    @staticmethod
    def _kill(child: _Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            os.write(self._requests, json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise ServerLost(f"the {self.framework} fork server is gone ({exc})") from exc

    def _receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message, or None if none came within `timeout_s`."""
        deadline = time.perf_counter() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                return None
            chunk = os.read(self._replies, 4096)
            if not chunk:
                raise ServerLost(f"the {self.framework} fork server ended (log: {self.log})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


_servers: dict[tuple, Server | None] = {}  # None: it failed to start; not tried again
_servers_lock = threading.Lock()


def _compile_preload(framework: str) -> tuple[str, ...]:
    from bench import frameworks

    record = frameworks.FRAMEWORKS.get(framework)
    return record.compile_preload if record is not None else ()


def server_for(framework: str, env: dict[str, str], log_dir: Path,
               compiles: bool = False) -> Server | None:
    """The running server for `framework` under `env`, started if need be (its log in
    `log_dir`); None if it cannot start. Jobs that compile get a server of their own
    only where the framework has a compile_preload."""
    compiles = compiles and bool(_compile_preload(framework))
    key = (framework, compiles, tuple(sorted(env.items())))
    with _servers_lock:
        if key not in _servers:
            name = f"forkserver-{framework}{'-compiles' if compiles else ''}.log"
            server = Server(framework, env, Path(log_dir) / name, compiles)
            _servers[key] = server if server.start() else None
        return _servers[key]


def run(framework: str, env: dict[str, str], job_path: Path, result_path: Path, log: Path,
        timeout_s: float, compiles: bool = False) -> tuple[int | None, float] | None:
    """Run a job file through `framework`'s server (the one for jobs that compile if
    `compiles`): (exit status or None after a timeout, wall seconds), or None if no
    server could be had (run it fresh instead)."""
    server = server_for(framework, env, log.parent, compiles)
    if server is None:
        return None
    with server.lock:
        try:
            return server.run(job_path, result_path, log, timeout_s)
        except ServerLost:
            with _servers_lock:
                _servers.pop(next(k for k, v in _servers.items() if v is server), None)
            server.close()
            return 1, 0.0  # the child's status is lost with its server: a crash (its log says)


def close_all() -> None:
    """End every fork server (the speed phase's end, and this process's exit)."""
    with _servers_lock:
        servers = [s for s in _servers.values() if s is not None]
        _servers.clear()
    for server in servers:
        server.close()


# --- the server's side -------------------------------------------------------------------
def _say(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, json.dumps(message).encode() + b"\n")


def _child(request: dict[str, Any], fds: tuple[int, int]) -> None:
    """In the forked child: become the worker bench.workers would have started. Never
    returns."""
    code = 1
    try:
        os.setsid()  # its own process group, killed as one at a timeout
        # killed with its server (a stop signal kills servers), so no child outlives both
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in fds:
            os.close(fd)
        out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        from bench import workers

        code = workers.main([request["job"], request["result"]])
    except BaseException:  # noqa: BLE001 - said in the log; the parent sees no result
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(framework: str, compiles: bool, requests: int, replies: int) -> int:
    """The server: import `framework`'s adapter (and if `compiles`, make its
    compile_preload), then fork one child per request until the request pipe closes."""
    global PRELOADED
    from bench import adapters, frameworks, workers

    workers.quiet_helper_pools()  # as a fresh worker does, before the framework's import
    started = time.perf_counter()
    try:  # a framework's adapter and its record's preload, or (tests) any module
        calls: list[str] = []
        if framework in adapters.REGISTRY:
            adapters.get(framework)
            record = frameworks.get(framework)
            for entry in (*record.preload, *(record.compile_preload if compiles else ())):
                if ":" in entry:
                    calls.append(entry)  # made after every import, timed apart
                else:
                    importlib.import_module(entry)
        else:
            importlib.import_module(framework)
        import_s = time.perf_counter() - started
        started = time.perf_counter()
        for call in calls:
            module, name = call.split(":")
            getattr(importlib.import_module(module), name)()
        calls_s = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - the parent runs its jobs fresh, which say why
        traceback.print_exc()
        _say(replies, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    PRELOADED = {"framework": framework, "import_s": import_s, "calls": calls,
                 "calls_s": calls_s}
    _say(replies, {"ready": True, "import_s": import_s})
    with os.fdopen(requests, "rb", buffering=0) as pipe:
        for line in iter(pipe.readline, b""):
            request = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request, (requests, replies))
            _say(replies, {"pid": pid})
            _, status = os.waitpid(pid, 0)
            _say(replies, {"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    # through the imported module, not __main__: children read bench.forkserver.PRELOADED
    from bench import forkserver

    sys.exit(forkserver.serve(sys.argv[1], sys.argv[2] == "compiles", int(sys.argv[3]),
                              int(sys.argv[4])))
