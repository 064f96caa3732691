"""Exports for other tools (read back by the real consumer where it is installed here),
`show --json`, the baselines' history, and the CI workflows' commands."""

import csv
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli, compare, export, results
from tests.test_compare import _partial_run, _run

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "docs" / "workflows").glob("*.yml"))


def _pytest_benchmark_cli() -> list[str] | None:
    script = Path(sys.executable).with_name("pytest-benchmark")
    return [str(script)] if script.exists() else (
        [shutil.which("pytest-benchmark")] if shutil.which("pytest-benchmark") else None)


@pytest.mark.skipif(_pytest_benchmark_cli() is None, reason="pytest-benchmark not installed")
def test_pytest_benchmark_compare_reads_an_exported_run(results_dir, tmp_path):
    _run(results_dir, "r", [1.0, 2.0])
    out = tmp_path / "0001_fwbench.json"
    assert cli.main(["export", "r", "--format", "pytest-benchmark", "--output", str(out)]) == 0
    proc = subprocess.run([*_pytest_benchmark_cli(), "compare", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # pytest-benchmark's own table: one row per cell, its median in its own units
    assert "fwbench[torch/mlp/compiled/b5/tiny]" in proc.stdout
    assert "fwbench[jax/mlp/compiled/b5/tiny]" in proc.stdout
    assert "Median" in proc.stdout
    # and fwbench compare reads it back, raw samples included
    side = compare.load(out)
    assert side.kind == "pytest-benchmark" and len(side.cells) == 2
    assert all(len(c.processes[0]) == 400 and not c.summary_only for c in side.cells.values())
    medians = {c.label["framework"]: sorted(c.processes[0])[200] for c in side.cells.values()}
    assert 9 < medians["torch"] < 11 and 18 < medians["jax"] < 22  # ms, from seconds


def test_github_action_benchmark_and_csv_exports_hold_numbers(results_dir, tmp_path, capsys):
    _partial_run(results_dir, "p", [["ok", "ok"], ["crash", "crash"]])
    gab = tmp_path / "gab.json"
    assert cli.main(["export", "p", "--format", "github-action-benchmark",
                     "--output", str(gab)]) == 0
    assert "not exported (nothing measured): jax/mlp/compiled/b5/tiny (crash)" in capsys.readouterr().err
    items = json.loads(gab.read_text())
    # customSmallerIsBetter: a list of {name, unit, value, range?, extra?}, value a number
    assert [i["name"] for i in items] == ["torch/mlp/compiled/b5/tiny"]
    assert items[0]["unit"] == "ms" and isinstance(items[0]["value"], float)
    assert 9 < items[0]["value"] < 11 and items[0]["range"].startswith("± ")
    assert "2 process(es), 400 steps" in items[0]["extra"]

    assert cli.main(["export", "p", "--format", "csv"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == results_dir / "runs" / "p" / "export" / "csv.csv"
    import pandas as pd

    frame = pd.read_csv(path)
    assert list(frame["status"]) == ["ok", "crash"]
    for column in ("median_ms", "iqr_ms", "throughput", "batch_size", "repeat_spread"):
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    assert frame["median_ms"].isna().tolist() == [False, True]
    with open(path) as f:
        assert next(csv.reader(f)) == list(export.CSV_COLUMNS)


def test_export_of_a_bad_run_is_one_line(results_dir, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["export", "nope", "--format", "csv"])
    assert info.value.code == 2 and "run 'nope' not found" in capsys.readouterr().err


def test_show_json_says_which_cells_failed(results_dir, tmp_path, capsys):
    _partial_run(results_dir, "p", [["ok", "ok"], ["crash", "crash"]])
    out = tmp_path / "show.json"
    assert cli.main(["show", "p", "--json", str(out)]) == 1
    document = json.loads(out.read_text())
    assert document["exit_status"] == 1 and document["failed"] == ["jax/mlp/compiled/b5/tiny (crash)"]
    assert isinstance(document["cells"][0]["median_ms"], float)
    _run(results_dir, "fine", [1.0, 1.0])
    assert cli.main(["show", "fine", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["failed"] == []


def test_baseline_history_keeps_an_entry_per_save_and_the_report_draws_it(results_dir, capsys):
    _run(results_dir, "first", [1.0, 1.0])
    _run(results_dir, "second", [1.0, 1.3], seed=1)
    # a baseline saved before histories were kept: the next save starts the history with it
    assert cli.main(["baseline", "save", "first"]) == 0
    folder = compare.baselines_dir() / "test-cpu-9000-2c"
    (folder / "history.jsonl").unlink()
    assert cli.main(["baseline", "save", "second", "--force"]) == 0
    from bench.compare import history

    entries = history.read(folder)
    assert [e["run_id"] for e in entries] == ["first", "second"]
    assert [e["backfilled"] for e in entries] == [True, False]
    jax = [next(c for c in e["cells"] if c["framework"] == "jax") for e in entries]
    assert 9.5 < jax[0]["median_ms"] < 10.5 and 12.5 < jax[1]["median_ms"] < 13.5
    assert all(c["low_ms"] < c["median_ms"] < c["high_ms"] for c in jax)
    capsys.readouterr()
    assert cli.main(["baseline", "history", "second"]) == 0
    out = capsys.readouterr().out
    assert "baseline history of test-cpu-9000-2c" in out and "jax/mlp/compiled" in out
    from bench import report

    where = report.build([results_dir / "runs" / "second"], out_dir=results_dir / "report")
    text = (where / "report.md").read_text()
    assert "## Baseline history" in text and "figures/baseline_history.svg" in text
    assert (where / "tables" / "baseline_history.csv").exists()
    # a damaged history is named, not a traceback
    with open(folder / "history.jsonl", "a") as f:
        f.write("{oops\n")
    with pytest.raises(results.ResultFileError, match=r"history.jsonl, line 3: not JSON"):
        history.read(folder)


def _workflow_commands(path: Path) -> list[str]:
    """The fwbench command lines of a workflow's run steps, with GitHub's expressions
    filled in with values a test can use."""
    text = re.sub(r"\$\{\{ github\.event\.pull_request\.(base|head)\.sha \}\}", "HEAD",
                  path.read_text())
    text = re.sub(r"\$\{\{[^}]*\}\}", "x", text)
    return [line.split(".venv/bin/fwbench", 1)[1] for line in
            (raw.strip().removeprefix("run: ") for raw in text.splitlines())
            if line.startswith(".venv/bin/fwbench ")]


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_commands_parse_and_do_what_the_workflow_says(path):
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(path.read_text())
    steps = next(iter(document["jobs"].values()))["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any("pip install -q -e" in r for r in runs)
    assert any(s.get("uses", "").startswith("actions/upload-artifact") and
               s.get("if") == "always()" and "results/ab/" in s["with"]["path"] for s in steps)
    commands = _workflow_commands(path)
    assert len(commands) == 1 and commands[0].split()[0] == "ab"
    parser = cli.build_parser()
    args = parser.parse_args(shlex.split(commands[0]))
    assert args.markdown == "$GITHUB_STEP_SUMMARY" or "GITHUB_STEP_SUMMARY" in commands[0]
    assert args.json
    if path.name == "perf.yml":
        assert "pull_request" in document[True]  # YAML reads the key `on` as True
        assert (args.a_commit, args.b_commit) == ("HEAD", "HEAD")
        checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"]["fetch-depth"] == 0  # the base commit must be there
    else:
        assert "schedule" in document[True]
        assert (args.a_python, args.b_python) == (".venv/bin/python", ".venv-new/bin/python")
