"""nox sessions: tests, benchmarks and parity per framework, each in a venv with only that
framework; a report merging whatever they produced; the perf check against the stored
baseline; lint.

    nox --list
    nox -s "tests(framework='torch')" -- -x -k harness
    nox -s "bench(framework='jax')"          # then: nox -s report
    nox -s "study(framework='tf')"           # the studies, quick, for one framework
    nox -s perf                              # exit 1 on a regression beyond the threshold
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import nox


def _framework_names() -> list[str]:
    """The frameworks of bench/frameworks.py, loaded from its path: nox runs this file in
    its own environment, which may lack the project's dependencies (that module needs only
    the standard library)."""
    spec = importlib.util.spec_from_file_location(
        "fwbench_frameworks", Path(__file__).parent / "bench" / "frameworks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return list(module.NAMES)


FRAMEWORKS = _framework_names()
RESULTS = Path(os.environ.get("FWBENCH_RESULTS", "results"))
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


@nox.session
@nox.parametrize("framework", FRAMEWORKS)
def tests(session: nox.Session, framework: str) -> None:
    """Run the test suite with only one framework installed (the others skip)."""
    session.install("-e", f".[{framework},test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(default=False)
@nox.parametrize("framework", FRAMEWORKS)
def bench(session: nox.Session, framework: str) -> None:
    """The main job for one framework: speed, scaling, graph study, float32 parity."""
    session.install("-e", f".[{framework}]")
    # No report here: `nox -s report` merges every framework's latest bench run.
    session.run("fwbench", "run", "--frameworks", framework,
                "--name", f"nox-{framework}-{_stamp()}", "--no-report", *session.posargs,
                success_codes=[0, 1])  # a failed cell is in the results; the report shows it


STUDIES = ["genz", "forecast", "sweep", "charlm", "seqclass", "gradients"]


@nox.session(default=False)
@nox.parametrize("framework", FRAMEWORKS)
def study(session: nox.Session, framework: str) -> None:
    """Every study (quick configurations) for one framework: Genz, forecast, sweep, and the
    sequence studies charlm, seqclass, gradients."""
    session.install("-e", f".[{framework},studies]")
    stamp = _stamp()
    for name in STUDIES:
        session.run("fwbench", "study", name, "--quick", "--frameworks", framework,
                    "--id", f"nox-{framework}-{name}-{stamp}", *session.posargs,
                    success_codes=[0, 1])  # a failed item is in the results; the report shows it


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """One report from the latest bench run and study sessions of each framework."""
    session.install("-e", ".")  # the report is framework-free
    runs, graphs, parity = [], [], []
    for framework in FRAMEWORKS:
        found = sorted(p.parent for p in (RESULTS / "runs").glob(f"nox-{framework}-*/run.json"))
        if not found:
            session.log(f"no bench run of {framework}: run nox -s \"bench(framework='{framework}')\"")
            continue
        run = found[-1]
        runs.append(str(run))
        study = RESULTS / "graphs" / run.name / "graphs.json"
        checks = RESULTS / f"parity-{run.name}.json"
        graphs += [str(study)] if study.exists() else []
        parity += [str(checks)] if checks.exists() else []
    studies = []  # the latest study session's folders of each framework and study
    for framework in FRAMEWORKS:
        for name in STUDIES:
            pattern = f"nox-{framework}-{name}-*/study.json"
            found = sorted(p.parent for p in (RESULTS / "studies").glob(pattern))
            studies += [str(found[-1])] if found else []
    if not runs and not studies:
        session.error("no bench or study session has produced results yet")
    session.run("fwbench", "report", *(runs or ["none"]), "--merge",
                "--graphs", ",".join(graphs) or "none", "--parity", ",".join(parity) or "none",
                "--studies", ",".join(studies) or "none", *session.posargs)


@nox.session(default=False)
def perf(session: nox.Session) -> None:
    """Compare the compiled cells with this machine's baseline; check the harness's overhead."""
    session.install("-e", ".[all]")
    stamp = _stamp()
    name = f"perf-{stamp}"
    # The perf matrix: every framework x model, compiled, 4 processes per cell of 3 s of
    # samples, each on 1 thread pinned to 1 core (the other core left to the OS and the
    # harness), against a baseline of 8 processes per cell: what
    # benchmarks/calibrate_compare.py calibrated compare's threshold for.
    session.run("fwbench", "run", "--modes", "compiled", "--repeats", "4", "--threads", "1",
                "--sample-seconds", "3", "--name", name, "--no-scaling", "--no-graphs",
                "--no-parity", "--no-report", *session.posargs)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    # Both checks run whatever the other finds (session.run would stop at the first).
    checks = {
        "fwbench compare found a regression": [
            "fwbench", "compare", "stored", str(RESULTS / "runs" / name),
            *(["--markdown", summary] if summary else [])],
        # The harness must not move what it measures: every framework x model x mode
        # against a hand-written loop (exit 1 when a row lies wholly above 1.05).
        "the harness's overhead is over its bar": [
            "python", "benchmarks/harness_overhead.py", "--rounds", "3",
            "--output", str(RESULTS / f"harness-overhead-{stamp}.json")],
    }
    failed = []
    for failure, (program, *args) in checks.items():
        session.log(" ".join([program, *args]))
        if subprocess.call([str(Path(session.bin) / program), *args]) != 0:
            failed.append(failure)
    if failed:
        session.error("; ".join(failed))


@nox.session(default=False)
@nox.parametrize("framework", FRAMEWORKS)
def parity(session: nox.Session, framework: str) -> None:
    """Check one framework against the float64 reference (fwbench parity)."""
    session.install("-e", f".[{framework}]")
    session.run("fwbench", "parity", "--frameworks", framework, *session.posargs)


@nox.session(default=False, name="parity-all")
def parity_all(session: nox.Session) -> None:
    """Check all three frameworks against the reference and each other."""
    session.install("-e", ".[all]")
    session.run("fwbench", "parity", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: errors, pyflakes and import order (settings in pyproject.toml)."""
    session.install("ruff")
    session.run("ruff", "check", "bench", "impls", "tests", "benchmarks", "noxfile.py",
                *session.posargs)
