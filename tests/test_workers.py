"""The one worker protocol (bench/workers.py): a job in, one result out, every way a
process can end told apart, the process group killed on a timeout. Framework-free: the
tasks are tests/worker_tasks.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import workers
from bench.workers import Fault, Job
from tests.worker_tasks import ended

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, task="echo", args=None, **job):
    return workers.run(Job(f"tests.worker_tasks:{task}", args or {}, **job), tmp_path / "w.log")


def test_a_task_returns_its_value_and_the_job_stays_beside_the_log(tmp_path):
    out = _run(tmp_path, args={"id": "a", "env_keys": ["OMP_NUM_THREADS", "EXTRA"]},
               threads=1, env={"EXTRA": "yes"}, cores=(workers.affinity(1)[0],))
    assert out.ok and out.returncode == 0 and out.error is None
    assert out.value["args"]["id"] == "a" and out.value["pid"] != os.getpid()
    assert out.value["cores"] == workers.affinity(1)  # pinned before the task ran
    assert out.value["env"] == {"OMP_NUM_THREADS": "1", "EXTRA": "yes"}
    assert 0 <= out.task_s <= out.wall_s
    # the job file reruns the same work by hand; the result file was read and removed
    assert Job.from_dict(json.loads((tmp_path / "w.job.json").read_text())) == \
        Job("tests.worker_tasks:echo", out.value["args"], threads=1, env={"EXTRA": "yes"},
            cores=(workers.affinity(1)[0],))
    assert not (tmp_path / "w.result.pkl").exists()


@pytest.mark.parametrize("kind, status, text", [
    ("raise", "error", "RuntimeError: injected fault (raise, on x-lstm-y)"),
    ("exit", "crash", "exited with status 3 and no result"),
    ("kill", "killed", "killed by SIGKILL"),
])
def test_every_way_a_process_ends_is_told_apart(tmp_path, kind, status, text):
    out = _run(tmp_path, args={"id": "x-lstm-y"}, fault=Fault(kind, "lstm"))
    assert out.status == status and not out.ok and out.value is None
    assert text in out.error and text in out.describe()
    if kind == "raise":
        assert "Traceback" in out.traceback and "strike" in out.describe()


def test_a_fault_hits_only_its_target_and_leaves_nan_and_slow_to_the_task(tmp_path):
    assert _run(tmp_path, args={"id": "x-mlp-y"}, fault=Fault("raise", "lstm")).ok
    assert _run(tmp_path, args={"id": "x"}, fault=Fault("nan")).value["left"] == "nan"
    out = _run(tmp_path, args={"id": "x"}, fault=Fault("slow", fraction=0.5))
    assert out.value["left"] == "slow"


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "helper.pid"
    started = time.perf_counter()
    out = _run(tmp_path, "spawn_and_hang", {"pid_file": str(pid_file)}, timeout_s=3.0)
    assert out.status == "timeout" and "no result after the 3 s timeout" in out.error
    assert time.perf_counter() - started < 30
    helper = int(pid_file.read_text())
    for _ in range(50):  # the helper was killed with the group; reaped by init shortly
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            break
        if open(f"/proc/{helper}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the worker's helper process {helper} outlived the timeout")


def test_a_result_that_cannot_be_sent_is_a_crash_with_the_reason_in_the_log(tmp_path):
    out = _run(tmp_path, "unpicklable")
    assert out.status == "crash" and "exited with status 1" in out.error
    assert "pickle" in out.log_tail.lower()


def test_an_unknown_task_is_an_error_naming_it(tmp_path):
    out = _run(tmp_path, "no_such_task")
    assert out.status == "error" and "no_such_task" in out.error
    out = workers.run(Job("no-colon", {}), tmp_path / "v.log")
    assert out.status == "error" and "expected 'package.module:function'" in out.error


@pytest.mark.parametrize("text, fault", [
    ("raise", Fault("raise")),
    ("hang:-lstm-", Fault("hang", "-lstm-")),
    ("slow=0.25", Fault("slow", "", 0.25)),
    ("slow=1:torch-mlp", Fault("slow", "torch-mlp", 1.0)),
])
def test_faults_parse_from_a_flag(text, fault):
    assert Fault.parse(text) == fault


@pytest.mark.parametrize("text, message", [
    ("explode", "fault 'explode' not known: allowed raise, exit, kill, hang, nan, slow"),
    ("slow", "fault 'slow' needs a fraction > 0"),
    ("slow=lots", "the slowdown 'lots' is not a number"),
])
def test_bad_faults_are_refused_naming_the_problem(text, message):
    with pytest.raises(workers.WorkerError, match=message):
        Fault.parse(text)


def test_fault_targets_match_substrings_of_item_ids():
    assert Fault("nan", "lstm-tiny").hits("torch-lstm-tiny-eager-cpu")
    assert not Fault("nan", "lstm-tiny").hits("torch-mlp-tiny-eager-cpu")
    assert Fault("nan").hits("anything")
    assert workers.strike(None, "x") is None
    assert workers.strike(Fault("raise", "lstm"), "mlp") is None


STOPPABLE_PARENT = """if True:
    import sys
    from pathlib import Path
    from bench import workers
    try:
        with workers.stop_on_signals():
            workers.run(workers.Job("tests.worker_tasks:spawn_and_hang",
                                    {"pid_file": sys.argv[1]}), Path(sys.argv[2]))
    except workers.Stopped as exc:
        print(exc, flush=True)
        sys.exit(exc.exit_status)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_kills_every_worker_group_then_stops_the_parent(tmp_path, sig):
    pid_file = tmp_path / "helper.pid"
    parent = subprocess.Popen([sys.executable, "-c", STOPPABLE_PARENT, str(pid_file),
                               str(tmp_path / "w.log")], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    helper = int(pid_file.read_text())
    parent.send_signal(sig)
    out, _ = parent.communicate(timeout=30)
    assert parent.returncode == 128 + sig
    assert f"stopped by {signal.Signals(sig).name}" in out
    assert ended(helper), f"the worker's helper {helper} outlived its stopped parent"


def test_signal_handlers_come_back_after_the_command():
    before = {s: signal.getsignal(s) for s in workers.STOP_SIGNALS}
    with workers.stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in workers.STOP_SIGNALS} == before


def test_a_command_with_a_gentle_stop_signal_gets_it_before_sigkill(tmp_path):
    """fwbench ab's sides are fwbench commands: at a timeout (or a stop) they get SIGTERM,
    so that they can stop their own workers, before SIGKILL."""
    import signal as signals

    marker = tmp_path / "marker"
    # Fork servers started by earlier tests in this process stay in _live until they end.
    live_before = set(workers._live)
    script = ("import signal, sys, time, pathlib\n"
              f"def stop(*_): pathlib.Path({str(marker)!r}).write_text('TERM'); sys.exit(143)\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")
    status, wall_s = workers.run_command([sys.executable, "-c", script], tmp_path / "log",
                                         workers.process_env(1, "cpu"), timeout_s=2,
                                         stop_signal=signals.SIGTERM)
    assert status is None and wall_s < 30
    assert marker.read_text() == "TERM"
    assert not workers._stop_signal and workers._live == live_before
