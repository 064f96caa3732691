"""Tasks for tests/test_workers.py: framework-free functions a bench.workers process can
call ("tests.worker_tasks:<name>")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import workers


def echo(args: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """Strikes `fault` on args["id"], then returns what the process saw."""
    left = workers.strike(fault, args.get("id", ""))
    return {"args": args, "left": left, "pid": os.getpid(),
            "cores": sorted(os.sched_getaffinity(0)),
            "env": {k: os.environ.get(k) for k in args.get("env_keys", [])}}


def spawn_and_hang(args: dict[str, Any], fault: workers.Fault | None = None) -> None:
    """Starts a helper process (as torch.compile starts its compile workers), writes its
    pid to args["pid_file"], then hangs."""
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
    Path(args["pid_file"]).write_text(str(helper.pid))
    time.sleep(1000)


def unpicklable(args: dict[str, Any], fault: workers.Fault | None = None) -> Any:
    return lambda: None


def family(args: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """Who ran the task: its pid, its parent's, its process group and session, whether
    the fork server's preload is in it, and what it printed (to its log)."""
    from bench import forkserver

    print(f"task says {args.get('say', 'hello')}", flush=True)
    workers.strike(fault, args.get("id", ""))
    return {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
            "sid": os.getsid(0), "preloaded": forkserver.PRELOADED,
            "cores": sorted(os.sched_getaffinity(0)),
            "env": {k: os.environ.get(k) for k in args.get("env_keys", [])}}


def ended(pid: int, within_s: float = 5.0) -> bool:
    """Whether process `pid` has ended (gone, or a zombie) within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def inductor_isa_probed(args: dict[str, Any], fault: workers.Fault | None = None) -> dict[str, Any]:
    """What the fork server preloaded, which of torch Inductor's modules this process
    holds, and whether Inductor's CPU-ISA probe is already cached in it (1) or would run
    at its first compiled kernel (0)."""
    import sys

    from bench import forkserver

    modules = sorted(m for m in sys.modules if m.startswith("torch._inductor"))
    from torch._inductor import cpu_vec_isa

    return {"preloaded": forkserver.PRELOADED, "modules": modules,
            "isa_probes_cached": cpu_vec_isa.valid_vec_isa_list.cache_info().currsize}


def group_member(args: dict[str, Any], fault: workers.Fault | None = None) -> int:
    """A member of a test group (tests/test_distributed.py): writes its pid to
    args["pid_dir"]/<rank>, then does args["behave"][rank]: "ok" (returns its rank),
    "raise", "raise-port" (raises as a rendezvous on a taken port does), "exit" (os._exit)
    or "hang" (as a replica waiting in a collective for a dead peer)."""
    rank = args["rank"]
    Path(args["pid_dir"], str(rank)).write_text(str(os.getpid()))
    behave = args["behave"][rank]
    if behave == "raise":
        raise RuntimeError("replica failed")
    if behave == "raise-port":
        raise RuntimeError("The server socket has failed to listen: EADDRINUSE, address already in use")
    if behave == "exit":
        time.sleep(0.5)
        os._exit(3)
    if behave == "hang":
        time.sleep(1000)
    return rank
