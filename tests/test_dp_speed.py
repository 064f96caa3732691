"""`fwbench run --devices N`: the data-parallel speed matrix, its step plan, its
efficiency table, and (slow) real groups measured, shown and reported."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from bench import workers
from bench.distributed import available_devices, efficiency, group, replica, scaling
from bench.speed import measure
from bench.speed.cells import Cell, MatrixError
from bench.workers import Outcome
from tests.conftest import FRAMEWORKS
from tests.test_distributed import _leftovers


def test_replica_counts_double_up_to_the_devices():
    assert scaling.replica_counts(1) == [1]
    assert scaling.replica_counts(2) == [1, 2]
    assert scaling.replica_counts(4) == [1, 2, 4]
    assert scaling.replica_counts(6) == [1, 2, 4, 6]


def _cell(fw: str = "torch", mode: str = "compiled", batch: int = 32, threads: int = 2) -> Cell:
    return Cell(fw, "mlp", "small", mode, batch_size=batch, threads=threads)


def test_plan_has_strong_weak_and_control_cells_each_once():
    cells, points = scaling.plan([_cell()], 2)
    by_id = {c.id: c for c in cells}
    assert len(by_id) == len(cells) == 5  # r1 (strong = weak), r2 strong, r2 weak, 2 controls
    roles = {(p.role, p.replicas): by_id[p.cell_id] for p in points}
    assert roles[("strong", 1)] is roles[("weak", 1)]
    assert (roles[("strong", 2)].batch_size, roles[("strong", 2)].threads) == (32, 2)
    assert (roles[("weak", 2)].batch_size, roles[("weak", 2)].replicas) == (64, 2)
    # the controls: one replica alone, on one replica's cores, with one replica's rows
    assert (roles[("control-strong", 2)].batch_size, roles[("control-strong", 2)].threads,
            roles[("control-strong", 2)].replicas) == (16, 1, 1)
    assert (roles[("control-weak", 2)].batch_size, roles[("control-weak", 2)].threads) == (32, 1)
    assert all(c.id.endswith(f"-dp{c.replicas}") for c in cells)


def test_plan_skips_modes_a_framework_has_no_data_parallel_form_of():
    cells, _ = scaling.plan([_cell("jax", "eager"), _cell("jax", "compiled")], 2)
    assert {c.mode for c in cells} == {"compiled"}
    with pytest.raises(MatrixError, match="no cell has a data-parallel form"):
        scaling.plan([_cell("jax", "eager")], 2)


def test_plan_refuses_a_batch_or_cores_that_do_not_split():
    with pytest.raises(MatrixError, match="global batch of 5 does not split 2 ways"):
        scaling.plan([_cell(batch=5)], 2)
    with pytest.raises(MatrixError, match="2 replicas need at least 2 cores"):
        scaling.plan([_cell(threads=1)], 2)


def test_old_cells_keep_their_ids():
    assert _cell().id == "torch-mlp-small-compiled-cpu-float32-b32-th2"
    assert Cell.from_dict(_cell().to_dict()).replicas is None


@pytest.mark.parametrize("step_s", [1e-4, 2e-3, 0.05, 0.3, 1.0, 4.0, 30.0])
def test_step_counts_follow_the_single_device_rules(step_s):
    """Decided once for a group, the counts are those measure's step-by-step rules reach
    with steps of a constant length."""
    budget = measure.Budget(warmup_s=0.5, sample_s=1.5)
    warm = next(n for n in range(1, 10**6) if measure.warm_enough(n, n * step_s, budget))
    timed = next(n for n in range(1, 10**6)
                 if measure.sampled_enough(n, n * step_s, budget) or n == budget.max_samples)
    assert replica.step_counts(step_s, budget) == (warm, timed)


def test_members_are_pinned_to_their_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(workers, "affinity", lambda threads: list(range(threads)))
    monkeypatch.setattr(scaling.cpus, "can_pin", lambda: True)
    torch2 = Cell("torch", "mlp", "small", "compiled", threads=2, replicas=2)
    assert scaling.member_cores(torch2) == ([(0,), (1,)], 1)
    jax2 = Cell("jax", "mlp", "small", "compiled", threads=2, replicas=2)
    assert scaling.member_cores(jax2) == ([(0, 1)], 2)


def _outcome(status: str, error: str | None = None) -> group.GroupOutcome:
    members = [Outcome(status, error=error), Outcome("killed")]
    return group.GroupOutcome(status, members, error=error, failed_rank=0)


@pytest.mark.parametrize("status,error,expected", [
    ("error", "Diverged: training loss is nan at step 0", "nan"),
    ("error", "RuntimeError: CUDA out of memory", "oom"),
    ("error", "DeviceUnavailable: device gpu", "unavailable"),
    ("error", "RuntimeError: injected fault", "crash"),
    ("killed", "killed by SIGKILL", "killed"),
    ("timeout", "no result after the 5 s timeout", "timeout"),
    ("crash", "exited with status 3 and no result", "crash"),
])
def test_a_failed_group_gets_the_status_of_its_first_failure(status, error, expected):
    assert scaling.failure_status(_outcome(status, error)) == expected


def test_efficiency_rows_from_step_times():
    cells, points = scaling.plan([_cell()], 2)
    times = {("strong", 1): 10.0, ("strong", 2): 8.0, ("weak", 2): 16.0,
             ("control-strong", 2): 6.0, ("control-weak", 2): 11.0}
    ids = {(p.role, p.replicas): p.cell_id for p in points}
    frame = pd.DataFrame([{"run_id": "r", "cell_id": c.id, "status": "ok", "framework": c.framework,
                           "model": c.model, "mode": c.mode, "batch_size": c.batch_size,
                           "median_ms": next(t for k, t in times.items() if ids[k] == c.id)}
                          for c in cells])
    rows = efficiency.rows(frame, [p.to_dict() for p in points])
    one, two = rows
    assert (one["replicas"], one["speed-up"], one["comm ms"]) == (1, 1.0, None)
    assert two["speed-up"] == pytest.approx(10 / 8) and two["efficiency"] == pytest.approx(10 / 16)
    assert two["comm ms"] == pytest.approx(2.0) and two["comm share"] == pytest.approx(0.25)
    assert two["weak efficiency"] == pytest.approx(10 / 16)
    assert two["weak comm ms"] == pytest.approx(5.0)
    # a failed cell leaves its figures empty, not wrong
    frame.loc[frame["cell_id"] == ids[("control-strong", 2)], "status"] = "crash"
    assert efficiency.rows(frame, [p.to_dict() for p in points])[1]["comm ms"] is None


@pytest.mark.parametrize("flags,message", [
    (["--devices", str(available_devices("cpu") + 1)], "--devices"),
    (["--devices", "2", "--threads", "1"], "2 replicas need at least 2 cores"),
    (["--devices", "2", "--preset", "tiny", "--models", "mlp"], "does not split 2 ways"),
])
def test_run_devices_refused_in_one_line(capsys, results_dir, flags, message):
    from bench.cli import main

    if available_devices("cpu") < 2 and "--threads" in flags:
        pytest.skip("needs 2 cores to reach the thread check")
    with pytest.raises(SystemExit) as exc:
        main(["run", *flags, "--no-limits"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)
    assert not (results_dir / "runs").exists() or not any((results_dir / "runs").iterdir())


def _dp_run(framework: str, name: str, extra: list[str]) -> int:
    from bench.cli import main

    try:
        return int(main(["run", "--devices", "2", "--frameworks", framework, "--models", "mlp",
              "--preset", "tiny", "--batch-sizes", "8", "--repeats", "1", "--no-limits",
              "--no-graphs", "--no-parity", "--sample-seconds", "0.2", "--warmup-seconds",
              "0.1", "--name", name, *extra]) or 0)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_data_parallel_run_is_measured_shown_and_reported(framework, results_dir, capsys):
    assert _dp_run(framework, "dp", []) == 0
    out = capsys.readouterr().out
    assert "data-parallel scaling of run dp" in out
    run = json.loads((results_dir / "runs" / "dp" / "run.json").read_text())
    assert run["data_parallel"]["devices"] == 2 and len(run["cells"]) == 5
    records = [json.loads(p.read_text()) for p in (results_dir / "runs" / "dp" / "cells").glob("*.json")]
    assert [r["status"] for r in records] == ["ok"] * 5
    widest = next(r for r in records if r["cell"]["replicas"] == 2)
    members = widest["framework"]["group"]["members"]
    assert widest["framework"]["runtime"]["world_size"] == 2
    assert len(members) == (2 if framework == "torch" else 1)
    # every process took the same number of steps: their collectives would hang otherwise
    assert len(widest["metrics"]["member_median_ms"]) == len(members)
    report = (results_dir / "report" / "report.md").read_text()
    assert "## Data-parallel training" in report and "### Launch settings" in report


@pytest.mark.slow
@pytest.mark.parametrize("fault,status", [("kill", "killed"), ("nan", "nan"), ("hang", "timeout")])
def test_a_replica_that_fails_mid_measurement_fails_its_cell_only(results_dir, fault, status):
    """One process of each 2-replica group is killed, diverges or hangs after its
    compile: those cells get the status, within their timeout, with every process of
    the group gone; the other cells are measured."""
    started = time.perf_counter()
    name = f"dp{fault}"
    code = _dp_run("torch", name, ["--inject-fault", f"{fault}:dp2/p1", "--no-report",
                                   "--timeout", "60"])
    assert code == 1  # a cell failed: said, exit 1
    records = {}
    for path in (results_dir / "runs" / name / "cells").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["cell_id"]] = record
    failed = {k: r for k, r in records.items() if r["status"] != "ok"}
    assert len(records) == 5 and len(failed) == 2  # the two 2-replica cells
    assert all(k.endswith("-dp2") for k in failed)
    assert all(r["status"] == status for r in failed.values())
    if fault != "hang":  # a hang times out every process of the group alike
        assert all("process 1" in r["error"] for r in failed.values())
    assert time.perf_counter() - started < 400
    time.sleep(0.5)
    assert _leftovers(str(results_dir / "runs" / name)) == []


def test_compare_and_export_tell_a_groups_cells_apart():
    from bench import export
    from bench.compare.sides import match_key, match_label

    cells, _ = scaling.plan([_cell(batch=128)], 2)
    keys = {match_key(match_label(c.to_dict().get)) for c in cells}
    names = {export.cell_name({**c.to_dict(), "batch_size": c.batch_size}) for c in cells}
    assert len(keys) == len(names) == len(cells)
    # a single-device cell keeps the key and name it always had
    single = _cell(batch=128).to_dict()
    assert match_key(match_label(single.get)) == "torch/mlp/compiled/small/cpu/float32/128/None"
    assert export.cell_name(single) == "torch/mlp/compiled/b128"
