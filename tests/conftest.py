"""Shared test helpers: frameworks as parameters that skip cleanly when not installed."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import pytest

# Parity numbers assume oneDNN's reordered float math is off (see README).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import adapters, frameworks  # noqa: E402


def framework_params() -> list:
    """One pytest param per framework, skipped with the reason when it is not installed."""
    out = []
    for fw in adapters.FRAMEWORKS:
        record = frameworks.get(fw)
        mark = pytest.mark.skipif(not adapters.installed(fw), reason=(
            f"{record.title} not installed (pip install 'fwbench[{record.extra}]')"))
        out.append(pytest.param(fw, marks=mark, id=fw))
    return out


FRAMEWORKS = framework_params()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """results/ redirected to a temporary folder for the test."""
    from bench import results

    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def once_per_session(tmp_path_factory, worker_id) -> Callable[[str, Callable[[], Any]], Any]:
    """`once_per_session(key, compute)`: compute's result, computed once per test session.

    Under pytest-xdist each worker has its own session fixtures, so an expensive result
    (a parity run of every framework) would be computed once per worker. The first worker
    to ask computes it under a file lock in the directory all workers share and pickles
    it there; the others wait for the lock and read it (the pattern pytest-xdist's
    documentation gives). Without xdist it is a plain call.
    """
    from filelock import FileLock

    if worker_id == "master":  # not under xdist
        return lambda key, compute: compute()
    shared = tmp_path_factory.getbasetemp().parent

    def get(key: str, compute: Callable[[], Any]) -> Any:
        path = shared / f"{key}.pkl"
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                return pickle.loads(path.read_bytes())
            value = compute()
            path.write_bytes(pickle.dumps(value))
            return value

    return get
