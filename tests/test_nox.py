"""The nox sessions: listed, documented, framework sessions parametrized, heavy ones off
by default."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_nox_lists_every_session_with_a_docstring():
    pytest.importorskip("nox", reason="nox not installed (pip install 'fwbench[test]')")
    proc = subprocess.run([sys.executable, "-m", "nox", "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line[2:].split(" -> ")[0]: line for line in proc.stdout.splitlines()
             if line[:2] in ("* ", "- ")}
    for fw in ("tf", "torch", "jax"):
        for session in ("tests", "bench", "parity", "study"):
            assert f"{session}(framework='{fw}')" in lines
    for name in ("report", "perf", "lint", "parity-all"):
        assert name in lines
    assert all(" -> " in line for line in lines.values())  # a docstring each
    selected = {name for name, line in lines.items() if line.startswith("* ")}
    # default: the test suite per framework and lint; the heavy ones only when named
    assert selected == {"tests(framework='tf')", "tests(framework='torch')",
                        "tests(framework='jax')", "lint"}


def test_perf_session_runs_as_many_processes_as_compare_was_calibrated_for():
    """noxfile.py does not import bench (nox may run from an interpreter without the
    project's dependencies), so its --repeats is a literal: it must stay the current
    side of CALIBRATED_PROCESSES."""
    from bench import compare

    source = (ROOT / "noxfile.py").read_text()
    assert f'"--repeats", "{compare.CALIBRATED_PROCESSES[1]}"' in source
