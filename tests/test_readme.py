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
