"""Fork servers (bench/forkserver.py): a job with `preload` runs in a child forked from a
server that imported the module once, with the same protocol as a fresh worker: the
result, the log, every way the child can end, the timeout killing its process group, and
a fresh process when no server can start. Framework-free but for one slow test of
torch's server (its machine probe): the others preload standard modules; the real
frameworks' servers run in every speed cell (tests/test_harness.py)."""

from __future__ import annotations

import os
import sys
import time

import pytest

from bench import adapters, forkserver, workers
from bench.workers import Fault, Job
from tests.worker_tasks import ended

pytestmark = pytest.mark.skipif(not forkserver.usable(), reason="fork servers are Linux-only")


@pytest.fixture(autouse=True)
def _fresh_servers():
    forkserver.close_all()
    yield
    forkserver.close_all()


def _run(tmp_path, name="w", preload="json", **job):
    args = job.pop("args", {})
    return workers.run(Job("tests.worker_tasks:family", args, preload=preload, **job),
                       tmp_path / f"{name}.log")


def test_a_preloaded_job_runs_in_a_child_of_its_server_with_a_session_and_log_of_its_own(tmp_path):
    first = _run(tmp_path, "a", args={"say": "one", "env_keys": ["OMP_NUM_THREADS", "EXTRA"]},
                 threads=1, env={"EXTRA": "yes"}, cores=(workers.affinity(1)[0],))
    second = _run(tmp_path, "b", args={"say": "two", "env_keys": ["EXTRA"]}, threads=1,
                  env={"EXTRA": "yes"}, cores=(workers.affinity(1)[0],))
    assert first.ok and second.ok, (first, second)
    a, b = first.value, second.value
    # forked by one server (the same parent), which is not this process; each child
    # leads its own session, as a fresh worker does
    assert a["ppid"] == b["ppid"] != os.getpid() and a["pid"] != b["pid"]
    assert a["pgid"] == a["sid"] == a["pid"]
    assert a["preloaded"]["framework"] == "json" and a["preloaded"]["import_s"] >= 0
    assert a["env"] == {"OMP_NUM_THREADS": "1", "EXTRA": "yes"}
    assert a["cores"] == workers.affinity(1)
    assert (tmp_path / "a.log").read_text().strip() == "task says one"
    assert (tmp_path / "b.log").read_text().strip() == "task says two"
    assert not (tmp_path / "a.result.pkl").exists()


def test_another_environment_gets_another_server(tmp_path):
    one = _run(tmp_path, "a", env={"EXTRA": "1"}).value
    two = _run(tmp_path, "b", env={"EXTRA": "2"}).value
    assert one["ppid"] != two["ppid"]


@pytest.mark.parametrize("kind, status", [("raise", "error"), ("exit", "crash"),
                                          ("kill", "killed")])
def test_a_forked_child_ends_every_way_a_fresh_worker_does(tmp_path, kind, status):
    out = _run(tmp_path, args={"id": "x"}, fault=Fault(kind))
    assert out.status == status, out
    if kind == "raise":
        assert "injected fault" in out.error
    # the server survives its child's end and serves the next job
    assert _run(tmp_path, "next").ok


def test_the_timeout_kills_the_childs_group_and_the_server_goes_on(tmp_path):
    pid_file = tmp_path / "helper.pid"
    started = time.perf_counter()
    out = workers.run(Job("tests.worker_tasks:spawn_and_hang", {"pid_file": str(pid_file)},
                          timeout_s=3, preload="json"), tmp_path / "h.log")
    assert out.status == "timeout" and time.perf_counter() - started < 30
    helper = int(pid_file.read_text())
    assert ended(helper), f"the child's helper {helper} outlived the timeout"
    assert _run(tmp_path, "after").ok


def test_a_server_that_cannot_start_leaves_its_jobs_to_fresh_processes(tmp_path):
    out = _run(tmp_path, preload="no_such_module_anywhere")
    assert out.ok and out.value["ppid"] == os.getpid() and out.value["preloaded"] is None
    log = (tmp_path / "forkserver-no_such_module_anywhere.log").read_text()
    assert "ModuleNotFoundError" in log


def test_fork_servers_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("FWBENCH_FORKSERVER", "0")
    out = _run(tmp_path)
    assert out.ok and out.value["ppid"] == os.getpid()


def test_close_all_ends_every_server(tmp_path):
    server_pid = _run(tmp_path).value["ppid"]
    forkserver.close_all()
    assert ended(server_pid), f"fork server {server_pid} still runs after close_all"
    assert sys.modules["bench.forkserver"]._servers == {}


@pytest.mark.slow
@pytest.mark.skipif(not adapters.installed("torch"), reason="torch is not installed")
def test_torchs_server_probes_the_cpu_once_and_its_children_inherit_the_answer(tmp_path):
    """Inductor checks the CPU's vector instructions before a process's first compiled
    kernel (3-19 s here): torch's fork server does it once, timed apart, so that a cell's
    compile time is its model's."""
    outs = [workers.run(Job("tests.worker_tasks:inductor_isa_probed", {}, preload="torch",
                            threads=1, compiles=compiles), tmp_path / f"{i}.log")
            for i, compiles in enumerate((True, True, False))]
    assert all(out.ok for out in outs), outs
    first, second, eager = (out.value for out in outs)
    assert first["preloaded"]["calls"] == ["torch._inductor.cpu_vec_isa:valid_vec_isa_list"]
    assert first["preloaded"]["calls_s"] > 0
    assert first["isa_probes_cached"] == second["isa_probes_cached"] == 1
    assert first["preloaded"] == second["preloaded"]  # probed once, by the one server
    assert "torch._inductor.compile_fx" in first["modules"]
    # an eager job's server holds nothing it would not load itself
    assert eager["preloaded"]["calls"] == [] and eager["isa_probes_cached"] == 0
    assert "torch._inductor.compile_fx" not in eager["modules"]
