import subprocess
import sys

import pytest

from bench import adapters

FRAMEWORK_MODULES = ("torch", "tensorflow", "jax", "flax", "keras", "optax")


def test_import_bench_imports_no_framework():
    code = ("import sys, bench, bench.parity, bench.cli, bench.reference, bench.optim; "
            f"print(','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_framework_lists_known_ones():
    with pytest.raises(adapters.UnknownFramework) as info:
        adapters.get("mxnet")
    assert "'mxnet'" in str(info.value) and "tf, torch, jax" in str(info.value)


def test_missing_framework_names_the_extra(monkeypatch):
    monkeypatch.setitem(adapters.REGISTRY, "fake",
                        ("impls.fake.adapter", "FakeFlow", ("fakeflow_not_installed",), "fake"))
    assert not adapters.installed("fake")
    with pytest.raises(adapters.FrameworkNotInstalled) as info:
        adapters.get("fake")
    assert "FakeFlow" in str(info.value) and "pip install 'fwbench[fake]'" in str(info.value)


def test_get_imports_only_the_asked_framework():
    code = ("import sys; from bench import adapters; adapters.get('torch'); "
            f"print(','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))")
    if not adapters.installed("torch"):
        pytest.skip("PyTorch not installed (pip install 'fwbench[torch]')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"
