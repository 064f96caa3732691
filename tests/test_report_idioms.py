"""The report's idiom-audit section (bench/report/idioms.py): where each framework's
fastest idiom that passes parity would change the frameworks' ranking. Framework-free:
the audits are written here."""

import json

import pytest

from bench import cli, results
from bench.report import idioms


def _audit(kind, variants, seq_len=None):
    """variants: name -> (median ms, chosen, parity passed)."""
    passing = [n for n, (_, _, ok) in variants.items() if ok]
    return {"kind": kind, "seq_len": seq_len, "batch_size": 32,
            "fastest_passing": min(passing, key=lambda n: variants[n][0]),
            "variants": {n: {"idiom": n, "chosen": chosen, "median_ms": ms, "parity_passed": ok}
                         for n, (ms, chosen, ok) in variants.items()}}


def _doc(**per_framework):
    return {"schema": idioms.SCHEMA, "preset": "small", "threads": 2, "rounds": 7,
            "environment": {"git_commit": "abc1234"}, "failed": [],
            "runs": [{"framework": fw, "audits": audits} for fw, audits in per_framework.items()]}


def test_a_faster_passing_idiom_that_reorders_the_frameworks_is_said_with_the_numbers():
    doc = _doc(
        tf=[_audit("lstm", {"LSTM": (16.4, True, True), "unrolled": (13.4, False, True)}, 32)],
        torch=[_audit("lstm", {"nn.LSTM": (9.3, True, True)}, 32)],
        jax=[_audit("lstm", {"optimized": (14.8, True, True), "plain": (17.8, False, True)}, 32)])
    [line] = idioms.finding_lines(doc)
    assert line.startswith("Idiom audit, lstm T=32: a faster idiom that passes parity changes")
    assert "torch 9.3 ms < jax 14.8 ms < tf 16.4 ms with the adapters' idioms" in line
    assert "torch 9.3 ms < tf 13.4 ms < jax 14.8 ms with each framework's fastest" in line
    assert "tf on unrolled (0.82x its adapter's LSTM)" in line
    assert "noise" not in line


def test_a_faster_idiom_that_fails_parity_changes_nothing_and_no_reordering_is_said_once():
    doc = _doc(
        tf=[_audit("mlp", {"tf.function": (2.9, True, True), "xla": (1.0, False, False)})],
        jax=[_audit("mlp", {"jit": (2.4, True, True), "donate": (2.3, False, True)})])
    assert idioms.finding_lines(doc) == [
        "Idiom audit: every framework on its fastest idiom that passes parity leaves the "
        "ranking as measured for mlp."]
    row = next(r for r in idioms.rows(doc) if r["framework"] == "tf")
    assert row["fastest passing idiom"] == "tf.function" and row["ratio"] == 1.0


def test_a_reordering_within_the_audits_noise_is_not_claimed():
    doc = _doc(
        tf=[_audit("rnn", {"SimpleRNN": (6.8, True, True), "unrolled": (4.1, False, True)}, 32)],
        jax=[_audit("rnn", {"scan": (4.2, True, True)}, 32)])
    [line] = idioms.finding_lines(doc)
    assert "changes the ranking" in line and "within the audit's noise" in line


def test_the_report_shows_the_audit_given_and_says_how_to_make_one_when_none_is(tmp_path):
    from bench.report.document import Report

    report = Report("t")
    idioms.add_section(report, None, None)
    assert "python benchmarks/idioms.py" in report.blocks[1][1]
    path = tmp_path / "idioms.json"
    doc = _doc(tf=[_audit("mlp", {"tf.function": (2.9, True, True)})],
               torch=[_audit("mlp", {"compiled Adam": (2.7, True, True)})])
    results.write_json(path, doc)
    report = Report("t")
    idioms.add_section(report, idioms.load(path), path)
    kinds = [b[0] for b in report.blocks]
    assert kinds == ["h2", "p", "table", "list"] and "commit abc1234" in report.blocks[1][1]
    assert list(report.blocks[2][2]["framework"]) == ["tf", "torch"]


def test_a_file_that_is_not_an_audit_is_refused_with_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "idioms.json"
    path.write_text(json.dumps({"schema": "fwbench.cell/1"}))
    with pytest.raises(results.ResultFileError, match="not an idiom audit"):
        idioms.load(path)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    assert cli.main(["report", "none", "--graphs", "none", "--parity", "none", "--studies",
                     "none", "--idioms", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an idiom audit" in err[0]
    with pytest.raises(SystemExit) as exited:  # a usage error: argparse's one line
        cli.main(["report", "none", "--idioms", str(tmp_path / "missing.json"),
                  "--out", str(tmp_path / "r")])
    assert exited.value.code == 2
    assert "--idioms" in capsys.readouterr().err.strip().splitlines()[-1]
