"""Data-parallel training (bench/distributed/): what each process is given, the group's
lifecycle (one member failing stops the rest, no process left behind, a taken port
retried), refusing more replicas than devices, and data-parallel parity per framework."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench import workers
from bench.distributed import (
    DevicesUnavailable,
    World,
    available_devices,
    check_devices,
    group,
    launch,
    processes_for,
)
from bench.distributed import parity as dp_parity
from bench.faults import Fault
from tests.conftest import FRAMEWORKS
from tests.worker_tasks import ended


def test_processes_per_form():
    assert processes_for("torch", "one-host", 4) == 4  # DDP: one process per replica
    assert processes_for("jax", "one-host", 4) == 1
    assert processes_for("tf", "one-host", 4) == 1
    assert processes_for("jax", "multi-host", 4) == 4
    with pytest.raises(ValueError, match="form="):
        processes_for("jax", "two-host", 2)


def test_torch_gets_torchruns_variables():
    one = launch.torch_env(World("torch", "one-host", 2, 2, 1, port=29999))
    assert one == {**one, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999", "RANK": "1",
                   "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "0"}
    hosts = launch.torch_env(World("torch", "multi-host", 2, 2, 1, port=29999))
    assert (hosts["LOCAL_RANK"], hosts["LOCAL_WORLD_SIZE"], hosts["GROUP_RANK"]) == ("0", "1", "1")


def test_tf_config_lists_every_worker():
    config = json.loads(launch.tf_env(World("tf", "multi-host", 2, 2, 1, port=4000))["TF_CONFIG"])
    assert config == {"cluster": {"worker": ["127.0.0.1:4000", "127.0.0.1:4001"]},
                      "task": {"type": "worker", "index": 1}}
    assert launch.tf_env(World("tf", "one-host", 2, 1, 0)) == {}


def test_jax_device_count_comes_first_in_xla_flags():
    # XLA stops reading XLA_FLAGS at the thread settings' word without dashes
    flags = launch.jax_env(World("jax", "one-host", 2, 1, 0), threads=1)["XLA_FLAGS"].split()
    assert flags[0] == "--xla_force_host_platform_device_count=2"
    hosts = launch.jax_env(World("jax", "multi-host", 2, 2, 1), threads=1)["XLA_FLAGS"]
    assert "--xla_force_host_platform_device_count=1" in hosts


def test_more_replicas_than_devices_is_refused():
    have = available_devices("cpu")
    check_devices(have, "cpu")
    with pytest.raises(DevicesUnavailable, match=f"this machine has {have} CPU core"):
        check_devices(have + 1, "cpu")
    with pytest.raises(DevicesUnavailable, match="at least 1"):
        check_devices(0, "cpu")


def test_parity_devices_refused_in_one_line(capsys):
    from bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["parity", "--devices", str(available_devices("cpu") + 1)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fwbench parity: error: --devices") and "Traceback" not in "".join(err)


def _group(tmp_path: Path, behave: list[str], timeout_s: float = 60.0) -> list[workers.Job]:
    return [workers.Job("tests.worker_tasks:group_member",
                        {"rank": r, "behave": behave, "pid_dir": str(tmp_path)}, timeout_s=timeout_s)
            for r in range(len(behave))]


def _pids(tmp_path: Path, n: int) -> list[int]:
    """The pids the members wrote; a member the group killed before its task began wrote
    none."""
    return [int((tmp_path / str(r)).read_text()) for r in range(n) if (tmp_path / str(r)).exists()]


def _leftovers(marker: str) -> list[int]:
    """Processes whose command line names `marker` (the group's log folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def test_a_group_that_succeeds_returns_every_members_value(tmp_path):
    outcome = group.run_group(lambda port: _group(tmp_path, ["ok", "ok", "ok"]), tmp_path, "g")
    assert outcome.ok and outcome.values == [0, 1, 2] and outcome.attempts == 1


@pytest.mark.parametrize("death", ["exit", "raise"])
def test_one_member_failing_stops_the_others_at_once(tmp_path, death):
    started = time.perf_counter()
    outcome = group.run_group(lambda port: _group(tmp_path, ["hang", death, "hang"], 120.0),
                              tmp_path, "g")
    assert time.perf_counter() - started < 30  # not the members' 120 s timeout
    assert outcome.status == ("crash" if death == "exit" else "error")
    assert outcome.failed_rank == 1 and outcome.stopped_by_group == [0, 2]
    assert [m.status for m in outcome.members] == ["killed", outcome.status, "killed"]
    assert "process 1" in outcome.describe() and "stopped by the group" in outcome.describe()
    assert all(ended(pid) for pid in _pids(tmp_path, 3))
    assert _leftovers(str(tmp_path)) == []


def test_a_taken_port_is_retried_on_a_fresh_one(tmp_path):
    calls: list[int] = []

    def make(port: int) -> list[workers.Job]:
        calls.append(port)
        return _group(tmp_path, ["raise-port", "hang"] if len(calls) == 1 else ["ok", "ok"])

    outcome = group.run_group(make, tmp_path, "g")
    assert outcome.ok and outcome.attempts == 2 and len(calls) == 2


def test_a_port_that_stays_taken_is_reported(tmp_path):
    outcome = group.run_group(lambda port: _group(tmp_path, ["raise-port", "ok"]), tmp_path, "g",
                              attempts=2)
    assert outcome.status == "error" and outcome.attempts == 2
    assert "address already in use" in outcome.describe()


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_data_parallel_parity_rows_pass_in_both_forms(framework):
    rows, meta = dp_parity.run((framework,), ("float32",), ("mlp",), 2)
    assert set(meta) == {f"{framework} (one-host)", f"{framework} (multi-host)"}
    assert all("fatal" not in m for m in meta.values()), meta
    failed = [r for r in rows if not r.passed]
    assert not failed, failed
    checks = {(r.check, r.framework) for r in rows}
    assert ("data_parallel", f"{framework} (one-host)") in checks
    assert ("dp_replicas", f"{framework} (multi-host)") in checks
    # every process reported its framework's runtime and devices
    assert all(len(m["runtime"]) >= 1 for m in meta.values())


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_replica_killed_mid_run_fails_the_cell_and_leaves_no_process(framework, tmp_path):
    args = {"items": [{"case": "mlp", "dtype": "float32", "optimizer": "sgd", "mode": "compiled"}],
            "steps": 20, "batch_size": 8, "timeout_s": 120, "baseline": False}
    started = time.perf_counter()
    outcome = group.run_group(
        lambda port: launch.group_jobs(framework, "multi-host", 2, port, args, timeout_s=120,
                                       fault=Fault("kill", "p1/step5")),
        tmp_path, "killed", ports=2)
    assert outcome.status == "killed" and outcome.failed_rank == 1, outcome.describe()
    assert "SIGKILL" in outcome.describe()
    assert time.perf_counter() - started < 120
    assert outcome.members[0].status == "killed" or outcome.members[0].status == "error"
    time.sleep(0.5)
    assert _leftovers(str(tmp_path)) == []


def test_parity_refuses_replicas_that_do_not_split_its_batch(capsys, monkeypatch):
    import bench.distributed
    from bench.cli import main

    monkeypatch.setattr(bench.distributed, "available_devices", lambda device: 8)
    with pytest.raises(SystemExit) as exc:
        main(["parity", "--devices", "3"])
    assert exc.value.code == 2
    assert "does not split evenly 3 ways" in capsys.readouterr().err


# bench.distributed.member: joining a group another launcher started

def test_member_reads_torchruns_and_slurms_variables():
    from bench.distributed.member import torch_variables, world_from_env

    torchrun = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "node0", "MASTER_PORT": "29500",
                "LOCAL_RANK": "0"}
    world = world_from_env("torch", torchrun)
    assert (world.rank, world.processes, world.replicas, world.address, world.port,
            world.form) == (1, 2, 2, "node0", 29500, "multi-host")
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
             "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    world = world_from_env("jax", slurm)
    assert (world.rank, world.processes) == (3, 4)
    assert torch_variables(world, slurm) == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}


def test_member_reads_tf_config():
    from bench.distributed.member import world_from_env

    config = {"cluster": {"worker": ["host0:12345", "host1:12345"]},
              "task": {"type": "worker", "index": 1}}
    world = world_from_env("tf", {"TF_CONFIG": json.dumps(config)})
    assert (world.rank, world.processes, world.address, world.port) == (1, 2, "host0", 12345)


@pytest.mark.parametrize("framework,env,message", [
    ("torch", {}, "RANK or SLURM_PROCID, WORLD_SIZE or SLURM_NTASKS, MASTER_PORT, MASTER_ADDR not set"),
    ("jax", {"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"},
     "rank 2 is not one of the 2 processes"),
    ("torch", {"RANK": "x"}, "RANK='x' is not a whole number"),
    ("tf", {}, "TF_CONFIG is not set"),
    ("tf", {"TF_CONFIG": "{"}, "TF_CONFIG is not a cluster description"),
    ("mxnet", {}, "framework 'mxnet' not known"),
])
def test_member_says_in_one_line_what_is_missing(framework, env, message):
    from bench.distributed.member import MemberError, world_from_env

    with pytest.raises(MemberError, match=message.replace("(", r"\(")):
        world_from_env(framework, env)


def test_member_without_a_launcher_exits_2_in_one_line():
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID")}
    proc = subprocess.run([sys.executable, "-m", "bench.distributed.member", "torch"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=workers.ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("member: ") and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_members_started_by_hand_train_together_and_pass(framework, tmp_path):
    """Two processes started the way a shell on each of two machines would start them
    (torchrun's variables, or TF_CONFIG), each checking its run against one device."""
    import os
    import subprocess
    import sys

    port = group.free_port(2)
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
               "TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}",
                                                              f"127.0.0.1:{port + 1}"]},
                                        "task": {"type": "worker", "index": rank}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bench.distributed.member", framework, "--models", "mlp",
             "--output", str(tmp_path / "rows-{rank}.json")],
            env=env, cwd=workers.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for rank in range(2):
        doc = json.loads((tmp_path / f"rows-{rank}.json").read_text())
        assert doc["world"]["rank"] == rank and len(doc["rows"]) >= 2
        assert all(r["passed"] and r["check"] == "data_parallel" for r in doc["rows"])
