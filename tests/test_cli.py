"""The command line's manners (issue 23): a version, help with defaults and examples for
every subcommand, errors under the subcommand's usage, and a run that can measure
nothing refused with the extra to install."""

from __future__ import annotations

import pytest

from bench import adapters, cli
from bench.cli import pipeline

SUBCOMMANDS = [name for module in cli.SUBCOMMANDS for name in module.EXAMPLES]


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fwbench {cli.version()}"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_a_description_defaults_and_examples(name, capsys):
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    text = capsys.readouterr().out
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: fwbench {name}")
    assert description[0].isupper() and description.rstrip().endswith(".")
    assert f"examples:\n  fwbench {name}" in text
    # each example's flags are the subcommand's own
    parser = cli.subcommand_parser(cli.build_parser(), name)
    flags = {s for action in parser._actions for s in action.option_strings}
    for line in text.split("examples:\n")[1].splitlines():
        words = line.split()
        if words[:2] == ["fwbench", name]:
            assert {w for w in words if w.startswith("--")} <= flags, line


def test_help_shows_defaults_not_said_already(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: small)" in text            # --preset, added by the formatter
    assert "(default: 1.5)" in text              # --sample-seconds
    assert "(default: every CPU allowed)" in text  # --threads says its own, once
    assert "(default: None)" not in text and "(default: False)" not in text


def test_an_error_shows_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--frameworks", "mxnet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fwbench run ")
    assert "fwbench run: error: --frameworks: 'mxnet' not known" in err


def test_a_run_of_frameworks_none_of_which_is_installed_is_refused(results_dir, monkeypatch,
                                                                     capsys):
    monkeypatch.setattr(adapters, "installed", lambda fw: False)
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--frameworks", "tf", "--models", "mlp", "--preset", "tiny"])
    assert info.value.code == 2
    assert ("nothing can be measured: tf is not installed (pip install 'fwbench[tf]')"
            in capsys.readouterr().err)
    assert not (results_dir / "runs").exists()


def test_a_run_that_measured_nothing_says_why():
    import pandas as pd

    frame = pd.DataFrame({"status": ["skipped", "crash", "skipped"],
                          "error": ["repeat 1 of 2: JAX is not installed",
                                    "RuntimeError: boom\nTraceback", "JAX is not installed"]})
    assert pipeline.nothing_measured(frame) == ("nothing was measured: JAX is not installed; "
                                                "RuntimeError: boom")
    assert pipeline.nothing_measured(frame.assign(status=["ok", "crash", "skipped"])) is None
