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


def test_nothing_points_outside_the_repository_for_the_design():
    """The design notes live in docs/design.md: a user of the repository has only the
    repository, not the folder beside it that the original design card came from."""
    needle = ".." + "/shared"  # spelled apart so that this file does not match itself
    tracked = [p for folder in ("bench", "impls", "tests", "benchmarks", "docs", "examples")
               for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".ipynb"}]
    tracked += [ROOT / name for name in ("README.md", "pyproject.toml", "noxfile.py",
                                         "fwbench.py")]
    assert (ROOT / "docs" / "design.md").is_file()
    offenders = [str(p.relative_to(ROOT)) for p in tracked
                 if needle in p.read_text(encoding="utf-8", errors="replace")]
    assert offenders == []
