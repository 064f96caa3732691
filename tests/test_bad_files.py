"""Every reader is defensive (issue 21): a truncated, empty, corrupt or wrong-schema
results file given to any fwbench subcommand gives one line naming the file and exit
status 2, never a traceback; a resume measures an unreadable cell record again; a study
record appended after a partial line loses nothing."""

from __future__ import annotations

import json

import pytest

from bench import adapters, cli, results
from bench.speed import harness
from bench.studies import runner
from tests.test_compare import CELLS, _run

SPOILERS = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "garbage": lambda text: "\x00\x07not json at all {",
    "a list": lambda text: "[1, 2, 3]",
    "another schema": lambda text: json.dumps({**json.loads(text), "schema": "fwbench.cell/9"}),
}


def _spoil(path, how):
    path.write_text(SPOILERS[how](path.read_text()))


def _one_line_exit_2(argv, capsys, needle):
    status = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("how", SPOILERS)
def test_a_spoiled_cell_record_is_named_by_every_command_that_reads_it(how, results_dir,
                                                                        capsys):
    _run(results_dir, "good", [1.0, 1.0])
    bad = _run(results_dir, "bad", [1.0, 1.0], seed=1)
    record = bad / "cells" / f"{CELLS[1].id}.r2.json"
    _spoil(record, how)
    for argv in (["show", "bad"], ["report", "bad", "--graphs", "none", "--parity", "none"],
                 ["compare", "good", "bad"], ["compare", "bad", "good"],
                 ["baseline", "save", "bad"]):
        err = _one_line_exit_2(argv, capsys, str(record))
        if how == "another schema":
            assert "schema 'fwbench.cell/9', but this version reads 'fwbench.cell/1'" in err


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "a list"])
def test_a_spoiled_run_file_is_named(how, results_dir, capsys):
    bad = _run(results_dir, "bad", [1.0, 1.0])
    _spoil(bad / "run.json", how)
    for argv in (["show", "bad"], ["compare", "bad", "bad"],
                 ["run", "--resume", "bad", "--no-graphs", "--no-parity", "--no-report"]):
        _one_line_exit_2(argv, capsys, str(bad / "run.json"))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_spoiled_pytest_benchmark_file_is_named(how, results_dir, tmp_path, capsys):
    doc = tmp_path / "bench.json"
    doc.write_text(json.dumps({"machine_info": {}, "benchmarks": [
        {"name": "t", "fullname": "t", "stats": {"data": [0.01, 0.011]}}]}))
    _spoil(doc, how)
    _one_line_exit_2(["compare", str(doc), str(doc)], capsys, str(doc))


def test_a_pytest_benchmark_file_of_another_shape_is_named(tmp_path, capsys):
    doc = tmp_path / "odd.json"
    doc.write_text(json.dumps({"machine_info": {}, "benchmarks": "not a list"}))
    with pytest.raises(SystemExit) as info:
        cli.main(["compare", str(doc), str(doc)])
    assert info.value.code == 2
    assert f"{doc}: a pytest-benchmark file this version cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("what", ["graphs", "parity"])
def test_a_spoiled_graphs_or_parity_file_is_named(what, results_dir, tmp_path, capsys):
    _run(results_dir, "good", [1.0, 1.0])
    doc = tmp_path / f"{what}.json"
    doc.write_text('{"schema": "fwbench.other/1", "records": []')  # truncated
    flags = {"graphs": ["--graphs", str(doc), "--parity", "none"],
             "parity": ["--graphs", "none", "--parity", str(doc)]}[what]
    _one_line_exit_2(["report", "good", *flags], capsys, str(doc))
    doc.write_text('{"schema": "fwbench.other/1", "records": []}')  # another schema
    err = _one_line_exit_2(["report", "good", *flags], capsys, str(doc))
    assert "schema 'fwbench.other/1'" in err


def test_resume_measures_an_unreadable_cell_record_again(results_dir, capsys, monkeypatch):
    bad = _run(results_dir, "cut", [1.0, 1.0])
    record = bad / "cells" / f"{CELLS[0].id}.r1.json"
    _spoil(record, "truncated")  # a disk that filled up under an older version, say
    run = harness.load_run(bad)
    assert harness.pending(bad, run) == [(CELLS[0], 1)]
    # measured again (here at once: the framework reads as absent, so it is "skipped")
    monkeypatch.setattr(adapters, "installed", lambda name: False)
    cli.main(["run", "--resume", "cut", "--allow-changes", "--no-graphs", "--no-parity",
              "--no-report"])  # the fake run's environment is not this one
    assert results.read_cell_record(record)["status"] == "skipped"


def test_a_study_record_after_a_partial_line_loses_nothing(results_dir):
    folder = runner.new_study("genz", ["torch"], quick=True, threads=1)
    path = runner.records_path(folder, "torch")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"item_id": "a", "item": {}, "status": "ok"}) + "\n"
                    + '{"item_id": "b", "ite')  # the process died while writing b
    runner._append(folder, "torch", {"item_id": "c", "item": {}, "status": "ok"})
    assert [r["item_id"] for r in runner.read_records(folder, "torch")] == ["a", "c"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    results.write_json(target, {"a": 1})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results.os, "replace", full)
    with pytest.raises(results.ResultFileError, match=f"{target}: cannot write "
                                                      r"\(No space left on device\)"):
        results.write_json(target, {"a": 2})
    assert results.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_spoiled_study_file_is_named(how, results_dir, capsys):
    folder = runner.new_study("genz", ["torch"], quick=True, threads=1, study_id="spoiled")
    _spoil(folder / "study.json", how)
    _one_line_exit_2(["study", "genz", "--resume", "spoiled"], capsys,
                     str(folder / "study.json"))


def test_a_full_disk_while_writing_the_report_is_one_line(results_dir, capsys, monkeypatch):
    import matplotlib.figure

    _run(results_dir, "good", [1.0, 1.0])

    def full(self, fname, *args, **kwargs):
        raise OSError(28, "No space left on device", str(fname))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    err = _one_line_exit_2(["report", "good", "--graphs", "none", "--parity", "none"], capsys,
                           "No space left on device")
    assert "cannot write" in err and "step_time" in err and "what was written before is kept" in err


def test_a_second_process_cannot_write_a_run_that_is_being_written(results_dir):
    """Two real processes: this one holds the run's lock as a running fwbench would; a
    second `fwbench run --resume` of it is refused at once, writing nothing."""
    import os
    import subprocess
    import sys

    from tests.test_signals import ROOT

    bad = _run(results_dir, "held", [1.0, 1.0])
    before = sorted(p.name for p in (bad / "cells").iterdir())
    with results.exclusive(bad, "run"):
        proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--resume", "held",
                               "--retry-failed", "--allow-changes", "--no-graphs", "--no-parity",
                               "--no-report"],
                              cwd=ROOT, env={**os.environ, "FWBENCH_RESULTS": str(results_dir)},
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "run 'held' is being written by another fwbench process" in proc.stderr
    assert sorted(p.name for p in (bad / "cells").iterdir()) == before


def test_files_reserved_in_the_same_second_get_different_names(tmp_path):
    names = [results.new_file(tmp_path, "parity-20261202-093000").name for _ in range(3)]
    assert names == ["parity-20261202-093000.json", "parity-20261202-093000-2.json",
                     "parity-20261202-093000-3.json"]
