"""The notebook API (issue 23): `import fwbench` takes the CLI's flags as keyword
arguments through the CLI's own parser, and returns DataFrames."""

from __future__ import annotations

import argparse

import pytest

import fwbench
from bench import adapters, api, cli

INSTALLED = [fw for fw in adapters.FRAMEWORKS if adapters.installed(fw)]


def _run_parser() -> argparse.ArgumentParser:
    return cli.subcommand_parser(cli.build_parser(), "run")


def test_keyword_arguments_become_the_clis_flags():
    argv = api._argv(_run_parser(), "run", {
        "frameworks": ["torch", "jax"], "preset": "tiny", "repeats": 1, "sample_seconds": 0.5,
        "tf32": True, "retry_failed": False, "graphs": False, "parity": True, "name": None})
    assert argv == ["--frameworks", "torch,jax", "--preset", "tiny", "--repeats", "1",
                    "--sample-seconds", "0.5", "--tf32", "--no-graphs", "--parity"]


def test_the_parsed_arguments_are_the_clis_with_its_defaults():
    args = api._parse("run", {"frameworks": ["torch"], "models": ("mlp", "lstm")})
    cli_args = cli.build_parser().parse_args(["run", "--frameworks", "torch",
                                              "--models", "mlp,lstm"])
    assert vars(args) == vars(cli_args)


def test_an_unknown_argument_names_the_ones_it_takes():
    with pytest.raises(TypeError, match=r"fwbench.run\(\) has no argument 'modles'; it takes: "
                                        r"allow_changes, batch_sizes, device"):
        fwbench.run(modles=["mlp"])
    with pytest.raises(TypeError, match="no argument 'inject_fault'"):  # tests only, hidden
        fwbench.run(inject_fault="crash")


def test_a_bad_value_raises_the_clis_message(results_dir):
    with pytest.raises(fwbench.FwbenchError, match="--frameworks: 'mxnet' not known"):
        fwbench.run(frameworks=["mxnet"])
    with pytest.raises(fwbench.FwbenchError, match="argument --repeats: invalid int value"):
        fwbench.run(repeats="two")
    with pytest.raises(fwbench.FwbenchError, match="run 'nope' not found"):
        fwbench.load("nope")
    # resuming takes the run's own settings: the notebook's defaults are not imposed on it
    with pytest.raises(fwbench.FwbenchError, match="run 'nope' not found"):
        fwbench.run(resume="nope")
    assert not (results_dir / "runs").exists()


def test_nothing_installed_is_an_error_naming_the_extra(results_dir, monkeypatch):
    monkeypatch.setattr(adapters, "installed", lambda fw: False)
    with pytest.raises(fwbench.FwbenchError, match=r"pip install 'fwbench\[jax\]'"):
        fwbench.run(frameworks=["jax"], preset="tiny")


def test_the_module_is_the_documented_facade():
    assert set(fwbench.__all__) >= {"run", "parity", "graphs", "study", "load", "compare",
                                    "report", "FwbenchError", "__version__"}
    assert fwbench.__version__ == cli.version()
    for name in ("run", "parity", "graphs", "study", "load", "compare", "report"):
        assert getattr(fwbench, name).__doc__, name


@pytest.mark.slow
@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
def test_run_returns_a_frame_of_measured_cells(results_dir):
    frame = fwbench.run(frameworks=INSTALLED[:1], models=["mlp"], modes=["eager"],
                        preset="tiny", repeats=1, sample_seconds=0.05, warmup_seconds=0.01,
                        min_samples=3)
    assert list(frame["status"]) == ["ok"]
    assert frame.iloc[0]["median_ms"] > 0
    assert frame.attrs["exit_status"] == 0
    assert frame.attrs["run_dir"].startswith(str(results_dir))
    again = fwbench.load(frame.attrs["run_dir"])
    assert list(again["median_ms"]) == list(frame["median_ms"])
