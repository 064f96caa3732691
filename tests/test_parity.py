"""Parity across frameworks, as the `fwbench parity` command runs it, plus its failure paths."""

import copy
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from bench import adapters, cli, environment, parity
from bench.spec import DTYPES
from tests.conftest import FRAMEWORKS

CHECKS_PER_FRAMEWORK = ("forward", "loss", "param_count", "roundtrip", "grads_fd", "optimizer",
                        "compiled")
# Checks that compare two frameworks ("a vs b"): they exist only where two are installed.
PAIR_CHECKS = ("grads", "trajectory")


def _installed() -> list[str]:
    return [fw for fw in adapters.FRAMEWORKS if adapters.installed(fw)]


@pytest.fixture(scope="session")
def raws(once_per_session):
    """Every installed framework's raw results (one worker process each, run once per test
    session, however many pytest-xdist workers ask)."""
    installed = tuple(fw for fw in adapters.FRAMEWORKS if adapters.installed(fw))
    if not installed:
        pytest.skip("no framework installed")
    return once_per_session("parity-raws", lambda: parity.run_workers(installed, DTYPES))


@pytest.fixture(scope="session")
def rows(raws):
    return parity.compare(raws, DTYPES)


def _involves(row, fw):
    return row.framework == fw or row.framework.startswith(f"{fw}:") or fw in row.framework.split(" vs ")


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_every_check_passes(rows, fw):
    mine = [r for r in rows if _involves(r, fw)]
    failed = [r for r in mine if not r.passed]
    assert not failed, "\n".join(map(str, failed))
    checks = CHECKS_PER_FRAMEWORK + (PAIR_CHECKS if len(_installed()) >= 2 else ())
    for check in checks:
        for dtype in DTYPES:
            if check == "grads_fd" and dtype == "float32":
                continue
            assert any(r.check == check and r.dtype == dtype for r in mine), (check, dtype)


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_float64_meets_the_issue_bar(rows, fw):
    # forward and gradients agree with the reference and across frameworks to 1e-9 or better
    for r in rows:
        if _involves(r, fw) and r.dtype == "float64" and r.check in ("forward", "loss", "grads"):
            assert r.error <= 1e-9, r


@pytest.mark.slow
def test_cross_framework_rows_cover_all_six_optimizers(rows, raws):
    pairs = {r.framework for r in rows if r.check == "trajectory"}
    if len(raws) < 2:
        pytest.skip("needs two frameworks")
    # every pair of installed frameworks has trajectory rows (an empty set would pass the
    # loop below without checking anything)
    assert pairs == {f"{a} vs {b}" for a, b in itertools.combinations(_installed(), 2)}
    for pair in pairs:
        notes = {r.note.split(",")[0] for r in rows if r.check == "trajectory" and r.framework == pair}
        assert notes == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}


@pytest.mark.slow
def test_a_wrong_output_fails_its_check(raws):
    fw = next(iter(raws))
    bad = copy.deepcopy(raws)
    key = ("float64", "lstm", "static")
    bad[fw]["results"][key]["forward"] = bad[fw]["results"][key]["forward"] * (1 + 1e-10)
    traj = bad[fw]["results"][("float32", "mlp", "sgd", "default")]
    traj["final"] = {k: v + 1e-3 for k, v in traj["final"].items()}
    failed = [r for r in parity.compare(bad, DTYPES) if not r.passed]
    assert any(r.check == "forward" and r.model == "lstm" and r.dtype == "float64" for r in failed)
    assert any(r.check == "optimizer" and r.model == "mlp" and r.dtype == "float32" for r in failed)


def _scale(d, factor):
    return {k: v * factor for k, v in d.items()}


# check -> (case, dtype, needs two frameworks, how to spoil one framework's raw results just
# past the check's tolerance); each on a case of its own, so one comparison tests them all
SPOILERS = {
    "loss": ("rnn", "float64", False, lambda r, m: r[("float64", "rnn", "static")].update(
        {"loss:cross_entropy": r[("float64", "rnn", "static")]["loss:cross_entropy"] * (1 + 1e-9)})),
    "param_count": ("mlp-sigmoid", "float32", False, lambda r, m: r[
        ("float32", "mlp-sigmoid", "static")].update(
        param_count=r[("float32", "mlp-sigmoid", "static")]["param_count"] + 1)),
    "roundtrip": ("attention", "float32", False, lambda r, m: r[
        ("float32", "attention", "static")]["params"].update(
        {"head.bias": r[("float32", "attention", "static")]["params"]["head.bias"] + 1e-7})),
    "grads": ("lstm", "float32", True, lambda r, m: r[("float32", "lstm", "static")].update(
        {"grads:mse": _scale(r[("float32", "lstm", "static")]["grads:mse"], 1.01)})),
    "grads_fd": ("mlp-relu", "float64", False, lambda r, m: r[("float64", "mlp-relu", "static")].update(
        {"grads:cross_entropy": _scale(r[("float64", "mlp-relu", "static")]["grads:cross_entropy"],
                                       1 + 1e-6)})),
    "trajectory": ("rnn", "float32", True, lambda r, m: r[("float32", "rnn", "momentum", "default")].update(
        losses=r[("float32", "rnn", "momentum", "default")]["losses"] * 1.01)),
    "compiled": ("attention", "float64", False, lambda r, m: r[("float64", "attention", "adam", m)].update(
        losses=r[("float64", "attention", "adam", m)]["losses"] * (1 + 1e-6))),
    "mode_forward": ("mlp", "float32", False, lambda r, m: r[("float32", "mlp", "static", m)].update(
        forward=r[("float32", "mlp", "static", m)]["forward"] * 1.001)),
    "mode_grads": ("lstm", "float64", False, lambda r, m: r[("float64", "lstm", "static", m)].update(
        grads=_scale(r[("float64", "lstm", "static", m)]["grads"], 1 + 1e-6))),
}


@pytest.mark.slow
def test_each_check_fails_on_a_result_spoiled_for_it(raws, rows):
    """Every check fails where its input is off by a little more than its tolerance
    (forward and optimizer are spoiled in the test above), and nothing else fails."""
    fw = next(iter(raws))
    spoilers = {check: v for check, v in SPOILERS.items() if len(raws) >= 2 or not v[2]}
    bad = copy.deepcopy(raws)
    other_mode = next(m for m in bad[fw]["modes"] if m != bad[fw]["default_mode"])
    for _, _, _, spoil in spoilers.values():
        spoil(bad[fw]["results"], other_mode)
    assert all(r.passed for r in rows)
    failed = [r for r in parity.compare(bad, DTYPES) if not r.passed]
    for check, (model, dtype, _, _) in spoilers.items():
        assert any(r.check == check and r.model == model and r.dtype == dtype
                   and fw in r.framework for r in failed), (check, failed)
    spoiled = {(model, dtype) for model, dtype, _, _ in spoilers.values()}
    assert {(r.model, r.dtype) for r in failed} == spoiled, failed


@pytest.mark.slow
def test_a_crashed_framework_loses_no_other_result(raws):
    fw = next(iter(raws))
    broken = dict(raws, crashed={"framework": "crashed", "fatal": "worker exited with status -11"})
    out = parity.compare(broken, DTYPES)
    errors = [r for r in out if r.framework == "crashed"]
    assert len(errors) == 1 and not errors[0].passed and "status -11" in errors[0].note
    assert all(r.passed for r in out if _involves(r, fw))


def test_missing_framework_is_an_error_row_naming_the_extra(monkeypatch):
    monkeypatch.setattr(adapters, "installed", lambda name: False)
    out, _ = parity.run(("jax",), ("float64",), ("mlp",))
    assert len(out) == 1 and not out[0].passed
    assert "pip install 'fwbench[jax]'" in out[0].note


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_gpu_parity_without_a_gpu_is_an_error_row_naming_the_device(fw):
    if environment.gpus():
        pytest.skip("this machine has a GPU")
    out, meta = parity.run((fw,), ("float32",), ("mlp",), device="gpu")
    assert len(out) == 1 and not out[0].passed and out[0].framework == fw
    assert "DeviceUnavailable: device gpu:" in out[0].note


@pytest.mark.parametrize("argv, bad", [(["--frameworks", "torch,mxnet"], "mxnet"),
                                        (["--device", "tpu"], "tpu")])
def test_cli_refuses_unknown_values_before_running(capsys, argv, bad):
    with pytest.raises(SystemExit) as info:
        cli.main(["parity", *argv])
    assert info.value.code == 2
    assert bad in capsys.readouterr().err


def test_cli_exits_nonzero_when_a_check_fails(monkeypatch, tmp_path):
    failing = parity.Row("forward", "torch", "mlp", "float64", 1.0, 1e-12, False)
    monkeypatch.setattr(parity, "run", lambda *a, **k: ([failing], {}))
    out, verdict = tmp_path / "p.json", tmp_path / "verdict.json"
    assert cli.main(["parity", "--output", str(out), "--json", str(verdict)]) == 1
    record = json.loads(out.read_text())["records"][0]
    assert record["passed"] is False and record["check"] == "forward"
    document = json.loads(verdict.read_text())
    assert document["exit_status"] == 1 and document["failed"] == 1
    assert document["failing"][0] == {"check": "forward", "framework": "torch", "model": "mlp",
                                      "dtype": "float64", "error": 1.0, "tolerance": 1e-12,
                                      "passed": False, "note": ""}


@pytest.mark.skipif(not adapters.installed("torch"), reason="PyTorch not installed")
@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    out = tmp_path / "parity.json"
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "parity", "--frameworks", "torch",
                           "--cases", "mlp", "--dtypes", "float64", "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check" in proc.stdout and "tolerance" in proc.stdout and "0 failed" in proc.stdout
    data = json.loads(out.read_text())
    assert data["schema"] == "fwbench.parity/1" and data["environment"]["python"]
    assert data["device"] == "cpu" and data["frameworks"]["torch"]["device"] == "cpu"
    assert {r["check"] for r in data["records"]} >= {"forward", "grads_fd", "optimizer", "compiled"}
    assert np.isfinite([r["error"] for r in data["records"]]).all()
