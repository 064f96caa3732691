"""nox sessions: tests and parity per framework, each in a venv with only that framework."""

from __future__ import annotations

import nox

FRAMEWORKS = ["tf", "torch", "jax"]
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
@nox.parametrize("framework", FRAMEWORKS)
def tests(session: nox.Session, framework: str) -> None:
    """Run the test suite with only one framework installed (the others skip)."""
    session.install("-e", f".[{framework},test]")
    session.run("python", "-m", "pytest", *session.posargs)


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
