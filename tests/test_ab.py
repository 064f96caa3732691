"""`fwbench ab`: the interleaving order, the paired bootstrap, sides read back from their
slots, every exit status, and (slow tier) real sides: two commits, a variable, a crash."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench import adapters, cli, compare, results
from bench.compare import ab
from bench.speed import harness, measure
from bench.speed.cells import Cell
from tests.test_speed_units import _record

ROOT = Path(__file__).resolve().parent.parent
ENV = {"cpu": "Test CPU 9000", "cpu_count": 2, "gpus": [], "python": "3.11.2",
       "git_commit": "abc", "variables": {}, "packages": {"torch": "2.13.0"}}
CELLS = [Cell("torch", "mlp", "tiny", "compiled", threads=1),
         Cell("jax", "mlp", "tiny", "compiled", threads=1)]
SETTINGS = {"preset": "tiny", "device": "cpu", "dtype": "float32", "threads": 1,
            "sample_seconds": 0.05, "warmup_seconds": 0.01, "min_samples": 3, "timeout": 60}
INSTALLED = [fw for fw in adapters.FRAMEWORKS if adapters.installed(fw)]


def _fake_session(pairs=4, b_scale=(1.0, 1.0), b_status=None, b_env=None, seed=0):
    """An ab session whose slots are all recorded, as if measured: every pair has its own
    machine speed (both of its processes share it), side B's cells are b_scale[i] slower,
    and b_status (cell index, pair) -> status fails one of B's processes."""
    folder = ab.new_session(CELLS, {"A": ab.SideSpec(), "B": ab.SideSpec()}, pairs, SETTINGS,
                            seed=seed, name="fake")
    rng = np.random.default_rng(seed)
    session = ab.load_session(folder)
    for i, cell in enumerate(CELLS):
        for pair in range(pairs):
            speed = 1 + 0.15 * rng.standard_normal()  # the pair's minute of the machine
            for side in ab.SIDES:
                run = ab.slot_run(folder, side, i, pair)
                scale = b_scale[i] if side == "B" else 1.0
                env = {**ENV, **(b_env or {})} if side == "B" else ENV
                results.write_json(run / "run.json", {
                    "schema": harness.RUN_SCHEMA, "run_id": run.name, "tf32": False,
                    "environment": env, "cells": [cell.to_dict()], "cell_ids": [cell.id],
                    "repeats": 1})
                status = (b_status or {}).get((i, pair), "ok") if side == "B" else "ok"
                if status == "ok":
                    samples = 10 * speed * scale * (1 + 0.02 * rng.standard_normal(200))
                    record = _record(cell, samples=tuple(samples))
                else:
                    record = {**measure.skeleton(cell, run.name, 1, status, f"{status} of B"),
                              "wall_s": 1.0}
                record["run_id"] = run.name
                results.write_json(run / "cells" / f"{cell.id}.r1.json", record)
    assert session["processes"] == pairs
    return folder


# --- the plan -------------------------------------------------------------------------------
def test_pairs_are_balanced_and_reproducible():
    for n in (1, 2, 3, 4, 7, 8):
        orders = ab.pair_orders(n, seed=5)
        assert len(orders) == n and set(orders) <= {"AB", "BA"}
        assert abs(orders.count("AB") - orders.count("BA")) == n % 2
        assert ab.pair_orders(n, seed=5) == orders
    assert len({tuple(ab.pair_orders(8, s)) for s in range(20)}) > 1  # shuffled by the seed


def test_slots_go_round_robin_over_the_cells_pair_by_pair(results_dir):
    folder = ab.new_session(CELLS, {"A": ab.SideSpec(), "B": ab.SideSpec()}, 3, SETTINGS,
                            seed=1)
    session = ab.load_session(folder)
    slots = ab.slots(session)
    assert len(slots) == 2 * 3 * 2
    assert [(i, p) for i, p, _ in slots[::2]] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    for i, pair, first in slots[::2]:  # each pair's two processes are next to each other
        assert "".join(s for j, p, s in slots if (j, p) == (i, pair)) == session["orders"][i][pair]


@pytest.mark.parametrize("flags, message", [
    (["--a-env", "NOEQUALS"], "environment variable 'NOEQUALS': expected NAME=VALUE"),
    (["--b-commit", "no-such-ref-xyz"], "commit 'no-such-ref-xyz': not a commit"),
    (["--a-python", "/no/such/python"], "python '/no/such/python': no such interpreter"),
    (["--processes", "0"], "--processes 0: must be a whole number >= 1"),
    (["--frameworks", "caffe"], "caffe"),
    (["--sample-seconds", "0"], "--sample-seconds 0.0: must be > 0"),
    (["--resume", "nothing-here"], "--resume nothing-here: no ab session"),
])
def test_bad_ab_input_is_one_line_and_exit_2_with_the_json_saying_so(flags, message,
                                                                     results_dir, capsys,
                                                                     tmp_path):
    out = tmp_path / "verdict.json"
    with pytest.raises(SystemExit) as info:
        cli.main(["ab", *flags, "--json", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    document = json.loads(out.read_text())
    assert document["exit_status"] == 2 and message in document["error"]
    assert not (results_dir / "ab").exists() or not any((results_dir / "ab").iterdir())


# --- the statistics ----------------------------------------------------------------------------
def test_pairing_cancels_what_both_processes_of_a_pair_share():
    rng = np.random.default_rng(0)
    speeds = 1 + 0.2 * rng.standard_normal(6)  # the machine's speed, pair by pair
    a = [10 * s * (1 + 0.01 * rng.standard_normal(300)) for s in speeds]
    b = [10.5 * s * (1 + 0.01 * rng.standard_normal(300)) for s in speeds]
    ratio, low, high = compare.ratio_interval(a, b, paired=True)
    _, low_u, high_u = compare.ratio_interval(a, b)
    assert 1.03 < ratio < 1.07
    assert high / low < 1.03 < high_u / low_u  # paired: narrow; unpaired: the drift's width
    assert low > 1 and low_u < 1
    with pytest.raises(compare.CompareError, match="as many processes on each side"):
        compare.ratio_interval(a, b[:5], paired=True)


def test_ab_reads_back_paired_sides_and_exits_0_without_a_change(results_dir, capsys, tmp_path):
    _fake_session(pairs=4)
    a, b, envs = ab.sides(results_dir / "ab" / "fake")
    assert all(c.paired and len(c.processes) == 4 for side in (a, b) for c in side.cells.values())
    out = tmp_path / "v.json"
    assert cli.main(["ab", "--resume", "fake", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 cells: **0 slower**" in text and "| paired |" in text
    assert ("calibrated for 6 A and 6 B processes per cell; 2 of 2 cells here have fewer "
            "(A/B: 4/4)") in text
    document = json.loads(out.read_text())
    assert document["exit_status"] == 0 and document["counts"] == {"no clear change": 2}
    assert [c["paired"] for c in document["cells"]] == [True, True]
    assert isinstance(document["cells"][0]["ratio"], float)
    assert (results_dir / "ab" / "fake" / "verdict.md").read_text().startswith("### fwbench ab")


def test_ab_exits_1_on_a_slower_cell_and_lists_the_differences(results_dir, capsys, tmp_path):
    _fake_session(pairs=4, b_scale=(1.0, 1.5),
                  b_env={"git_commit": "def", "packages": {"torch": "2.14.0"},
                         "variables": {"TF_ENABLE_ONEDNN_OPTS": "0"}})
    out = tmp_path / "v.json"
    assert cli.main(["ab", "--resume", "fake", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "**1 slower**" in text and "Regressions: jax/mlp/compiled 1." in text
    assert ("Differences between the sides: git_commit: 'abc' -> 'def'; packages.torch: "
            "'2.13.0' -> '2.14.0'; variables.TF_ENABLE_ONEDNN_OPTS: unset -> '0'.") in text
    document = json.loads(out.read_text())
    assert document["exit_status"] == 1 and document["slower"] == ["jax/mlp/compiled/5"]
    assert document["differences"][0] == "git_commit: 'abc' -> 'def'"


def test_a_crashed_b_process_fails_the_comparison_and_unpairs_the_cell(results_dir, capsys):
    _fake_session(pairs=3, b_status={(0, 1): "crash", (1, 0): "crash", (1, 1): "crash",
                                     (1, 2): "crash"})
    a, b, _ = ab.sides(results_dir / "ab" / "fake")
    torch_a, torch_b = (side.cells[next(iter(side.cells))] for side in (a, b))
    assert not torch_a.paired and len(torch_a.processes) == 3 and len(torch_b.processes) == 2
    assert torch_b.status == "crash" and torch_b.error.startswith("pair 2: crash of B")
    assert cli.main(["ab", "--resume", "fake"]) == 1  # jax: measured on A, lost on B
    text = capsys.readouterr().out
    assert "**1 failed**" in text and "jax/mlp/compiled/5 (failed: current: crash" in text
    assert cli.main(["ab", "--resume", "fake", "--allow-missing"]) == 0


def test_a_garbage_slot_record_is_exit_2_not_a_traceback(results_dir, capsys):
    folder = _fake_session(pairs=2)
    record = next((folder / "b" / "runs").glob("*/cells/*.json"))
    record.write_text("{ not json")
    assert cli.main(["ab", "--resume", "fake"]) == 2
    err = capsys.readouterr().err
    assert str(record) in err and "Traceback" not in err


def test_compare_exit_statuses_with_json(results_dir, capsys, tmp_path):
    from tests.test_compare import _partial_run, _run

    _run(results_dir, "base", [1.0, 1.0])
    _run(results_dir, "same", [1.0, 1.0], seed=1)
    _run(results_dir, "slow", [1.0, 1.5], seed=2)
    _partial_run(results_dir, "crashed", [["ok", "ok"], ["crash", "crash"]], seed=3)
    _partial_run(results_dir, "whole", [["ok", "ok"], ["ok", "ok"]], seed=4)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2")
    out = tmp_path / "v.json"
    for argv, status in ((["base", "same"], 0), (["base", "slow"], 1), (["whole", "crashed"], 1)):
        assert cli.main(["compare", *argv, "--json", str(out)]) == status
        assert json.loads(out.read_text())["exit_status"] == status
    assert json.loads(out.read_text())["lost"] == ["jax/mlp/compiled/5"]
    assert cli.main(["compare", str(garbage), "base", "--json", str(out)]) == 2
    assert "garbage.json" in capsys.readouterr().err
    assert json.loads(out.read_text())["exit_status"] == 2


# --- real sides (slow tier) ---------------------------------------------------------------------
needs_fw = pytest.mark.skipif(not INSTALLED, reason="no framework installed")
TINY = ["--models", "mlp", "--preset", "tiny", "--sample-seconds", "0.05",
        "--warmup-seconds", "0.01", "--min-samples", "3", "--timeout", "120"]


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


@needs_fw
@pytest.mark.slow
@pytest.mark.skipif(_git("rev-parse", "HEAD").returncode != 0, reason="not a git checkout")
def test_ab_of_a_commit_against_the_working_tree_with_a_variable(results_dir, tmp_path, capsys,
                                                                 monkeypatch):
    """Side A: HEAD from a temporary worktree; side B: the working tree with a variable
    set. Each side records its own commit and variables, and the verdict lists them."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    out = tmp_path / "v.json"
    status = cli.main(["ab", "--frameworks", INSTALLED[0], *TINY, "--processes", "1",
                       "--a-commit", "HEAD", "--b-env", "KERAS_BACKEND=tensorflow",
                       "--json", str(out), "--name", "real"])
    document = json.loads(out.read_text())
    assert status == document["exit_status"] in (0, 1)  # one process per side: noisy
    assert document["counts"].get("failed", 0) == 0
    head = _git("rev-parse", "HEAD").stdout.strip()
    envs = document["environments"]
    assert envs["A"]["git_commit"] == head and envs["B"]["git_commit"].startswith(head)
    assert "variables.KERAS_BACKEND: unset -> 'tensorflow'" in document["differences"]
    assert not [line for line in _git("worktree", "list").stdout.splitlines()
                if "fwbench-ab-" in line]  # the temporary worktree is gone
    logs = sorted(p.name for p in (results_dir / "ab" / "real" / "logs").iterdir())
    assert logs == ["a-c01-p01.log", "b-c01-p01.log"]


@needs_fw
@pytest.mark.slow
def test_a_side_that_crashes_fails_ab_with_the_cell_named(results_dir, capsys):
    status = cli.main(["ab", "--frameworks", INSTALLED[0], *TINY, "--processes", "1",
                       "--b-fault", "raise", "--name", "crash"])
    assert status == 1
    out = capsys.readouterr().out
    assert "**1 failed**" in out and "injected fault" in out


def test_a_side_whose_fwbench_run_refuses_the_flags_stops_ab_with_exit_2(results_dir, capsys,
                                                                        tmp_path):
    """An interpreter without fwbench's code path is not the failure of one cell: the
    session stops at once, naming the side and what its fwbench run said."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = -c ] && [ \"$2\" = 'import numpy, pandas, scipy' ]; "
                    "then exit 0; fi\necho 'fwbench: error: unrecognized arguments: --no-scaling' >&2\n"
                    "exit 2\n")
    fake.chmod(0o755)
    with pytest.raises(SystemExit) as info:
        cli.main(["ab", "--frameworks", "torch", *TINY, "--processes", "1",
                  "--a-python", str(fake), "--b-python", str(fake)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "cannot run this cell: its fwbench run said: fwbench: error: unrecognized " \
           "arguments: --no-scaling" in err and f"python {fake}" in err
