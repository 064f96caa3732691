"""The README's commands are the ones CI and users run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_line = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_line in readme


def test_readme_main_command_installs_then_runs_fwbench():
    readme = (ROOT / "README.md").read_text()
    assert ('python3 -m venv .venv && .venv/bin/pip install -q -e ".[all,test]" '
            '&& .venv/bin/fwbench run') in readme


def test_every_fwbench_command_in_the_readme_parses():
    """Flags in the README are flags the CLI has (parsed only, nothing runs)."""
    import shlex

    from bench import cli

    readme = (ROOT / "README.md").read_text().replace("\\\n", " ")  # continued lines
    commands = [line.split(".venv/bin/fwbench", 1)[1] for line in readme.splitlines()
                if line.startswith(".venv/bin/fwbench ")]
    assert len(commands) >= 10
    parser = cli.build_parser()
    for command in commands:
        args = shlex.split(command, comments=True)
        parser.parse_args(args)  # exits (SystemExit) on an unknown flag or choice
