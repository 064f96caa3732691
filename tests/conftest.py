"""Shared test helpers: frameworks as parameters that skip cleanly when not installed."""

from __future__ import annotations

import os

import pytest

# Parity numbers assume oneDNN's reordered float math is off (see README).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import adapters  # noqa: E402


def framework_params() -> list:
    """One pytest param per framework, skipped with the reason when it is not installed."""
    out = []
    for fw in adapters.FRAMEWORKS:
        _, name, _, extra = adapters.REGISTRY[fw]
        mark = pytest.mark.skipif(not adapters.installed(fw),
                                  reason=f"{name} not installed (pip install 'fwbench[{extra}]')")
        out.append(pytest.param(fw, marks=mark, id=fw))
    return out


FRAMEWORKS = framework_params()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """results/ redirected to a temporary folder for the test."""
    from bench import results

    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    return tmp_path
