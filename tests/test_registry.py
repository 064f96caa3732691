import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import adapters, frameworks
from bench.speed import measure
from tests.conftest import FRAMEWORKS

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


def test_an_installed_framework_that_fails_to_import_is_broken_not_missing(monkeypatch):
    # installed: every module the record requires is found; the adapter module is not
    monkeypatch.setitem(adapters.REGISTRY, "fake",
                        ("impls.fake_not_there.adapter", "FakeFlow", ("json",), "fake"))
    assert adapters.installed("fake")
    with pytest.raises(adapters.FrameworkBroken) as info:
        adapters.get("fake")
    assert str(info.value).startswith("FakeFlow is installed, but importing the 'fake' adapter "
                                      "(impls.fake_not_there.adapter) failed: ModuleNotFoundError")
    assert not isinstance(info.value, ImportError)  # nothing may take it for "not installed"
    assert measure.status_of(info.value) == "crash"
    assert measure.status_of(adapters.FrameworkNotInstalled("x")) == "skipped"


def test_get_imports_only_the_asked_framework():
    code = ("import sys; from bench import adapters; adapters.get('torch'); "
            f"print(','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))")
    if not adapters.installed("torch"):
        pytest.skip("PyTorch not installed (pip install 'fwbench[torch]')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"


IMPLS = Path(__file__).resolve().parent.parent / "impls"


@pytest.mark.parametrize("name", frameworks.NAMES)
def test_each_framework_record_is_consistent(name):
    """What bench.frameworks says of a framework holds: its modes include its default and
    study modes, the graph study's modes are its own, its extra is in pyproject.toml, and
    its folder has the same files as every other framework's."""
    fw = frameworks.get(name)
    assert fw.default_mode in fw.modes and fw.study_mode in fw.modes
    assert {mode for mode, _, _ in fw.retrace_settings} <= set(fw.modes)
    assert [s for _, s, _ in fw.retrace_settings].count("default") >= 1
    assert fw.control_flow_modes[:len(fw.modes)] == fw.modes
    extras = tomllib.loads((IMPLS.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    in_all = {e for spec in extras["all"] for e in spec.split("[")[1].rstrip("]").split(",")}
    assert fw.extra in extras and fw.extra in in_all
    files = {p.name for p in (IMPLS / name).glob("*.py")}
    for other in frameworks.NAMES:
        assert {p.name for p in (IMPLS / other).glob("*.py")} == files, (name, other)
    assert adapters.MODES[name] == fw.modes and adapters.REGISTRY[name][3] == fw.extra


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_the_adapter_is_what_its_record_says(fw):
    a = adapters.get(fw)
    record = frameworks.get(fw)
    assert a.name == fw and a.modes == record.modes and a.default_mode == record.default_mode
