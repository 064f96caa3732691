"""benchmarks/gpu_paths.py, the GPU cells' checks: which checks each framework gets, and
(on the CPU, as its smoke test) that they run through the worker protocol and pass. On a
GPU machine the same script is run by hand (README)."""

import json

import pytest

from bench import adapters, frameworks
from tests.test_compare import benchmark_module

INSTALLED = [fw for fw in ("torch", "jax", "tf") if adapters.installed(fw)]


@pytest.fixture(scope="module")
def gpu_paths():
    return benchmark_module("gpu_paths")


def test_every_framework_gets_the_shared_checks_and_its_own(gpu_paths):
    jobs = gpu_paths.jobs(["torch", "jax", "tf"], ["mlp", "attention"])
    for fw in ("torch", "jax", "tf"):
        assert ("sync", fw, "mlp") in jobs and ("sync", fw, "attention") in jobs
        assert ("tf32", fw, None) in jobs
    assert ("kernels", "torch", "attention") in jobs and ("kernels", "torch", "mlp") not in jobs
    assert ("attention_cudnn", "jax", None) in jobs
    assert not any(c == "attention_cudnn" for c, *_ in gpu_paths.jobs(["jax"], ["mlp"]))
    # a framework the script knows nothing special about gets the shared checks only
    assert gpu_paths.jobs(["newfw"], ["mlp"]) == [("sync", "newfw", "mlp"), ("tf32", "newfw", None)]
    assert gpu_paths.adapter_compiled("tf") == "xla" == frameworks.FRAMEWORKS["tf"].modes[-1]


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
@pytest.mark.slow
def test_the_checks_run_on_the_cpu(gpu_paths, tmp_path, capsys):
    fw = INSTALLED[0]
    out = tmp_path / "gpu_paths.json"
    assert gpu_paths.main(["--device", "cpu", "--frameworks", fw, "--models", "mlp",
                           "--preset", "tiny", "--checks", "sync,tf32",
                           "--output", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["check"], r["model"]) for r in rows] == [("sync", "mlp"), ("tf32", None)]
    assert rows[0]["result"]["passed"] and rows[1]["result"]["tf32_off"] < 1e-5
    assert (tmp_path / "gpu_paths_logs" / f"sync-{fw}-mlp.job.json").exists()
    assert "2 of 2 checks passed" in capsys.readouterr().out
