"""pytest-benchmark: one training step per framework x model, compiled (and eager for the MLP).

    pytest benchmarks/test_speed.py --benchmark-group-by=param:model \
        --benchmark-json=results/pytest-benchmark.json
    fwbench compare OLD.json NEW.json        # the same verdicts as for fwbench runs

Each round is one training step that returns only once the device has finished (the
adapter's `value()` reads the loss back), so no round ends with work still queued.
Warm-up rounds (which include tracing and compiling) are excluded by pedantic's
warmup_rounds. `extra_info` carries the analytic FLOPs per step, the batch size, the
framework versions and the environment keys `fwbench compare` checks.

This runs in one process, unlike `fwbench run` (one process per cell): it is the tool
for pytest-benchmark's ecosystem (grouping, histograms, --benchmark-compare) and for
nox's bench sessions. Presets, threads and rounds: FWBENCH_BENCH_PRESET (small),
FWBENCH_BENCH_THREADS (every CPU allowed), FWBENCH_BENCH_ROUNDS (30).
"""

from __future__ import annotations

import os

import pytest

from bench import adapters, canonical, data, environment, flops
from bench.spec import MODELS, preset
from bench.threads import thread_env
from tests.conftest import FRAMEWORKS

PRESET = os.environ.get("FWBENCH_BENCH_PRESET", "small")
THREADS = int(os.environ.get("FWBENCH_BENCH_THREADS", len(os.sched_getaffinity(0))))
ROUNDS = int(os.environ.get("FWBENCH_BENCH_ROUNDS", "30"))
WARMUP_ROUNDS = 5  # past the first (compiling) step: caches and allocators settle
DISTINCT_BATCHES = 4

# The thread caps every framework gets, set before any framework is imported (TF and XLA
# read them once); the same variables the harness gives each cell's process.
for _name, _value in thread_env(THREADS).items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

CASES = [(model, "compiled") for model in MODELS] + [("mlp", "eager")]


def _environment(adapter_settings: dict) -> dict:
    env = environment.describe()
    return {"cpu": env["cpu"], "cpu_count": env["cpu_count"], "gpus": "none", "device": "cpu",
            "threads": str(THREADS), "tf32": "False",
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
            "git_commit": env["git_commit"]}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("model, mode", CASES, ids=[f"{m}-{mode}" for m, mode in CASES])
def test_train_step(benchmark, framework: str, model: str, mode: str) -> None:
    adapter = adapters.get(framework)
    settings = adapter.configure("cpu", THREADS, False)
    model_spec, train_spec = preset(PRESET, model)
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    built = adapter.build(model_spec, params, dtype=train_spec.dtype, device="cpu")
    trainer = adapter.trainer(built, train_spec.optimizer, train_spec.loss, mode)
    batches = [trainer.put(*data.batch(model_spec, train_spec.batch_size, train_spec.loss,
                                       train_spec.seed, i)) for i in range(DISTINCT_BATCHES)]
    step = iter(range(10**9))

    def one_step() -> float:
        # value() waits for the device: the round ends when the step has finished
        return trainer.value(trainer.step(batches[next(step) % DISTINCT_BATCHES]))

    one_step()  # the first step: tracing and compiling, never timed
    loss = benchmark.pedantic(one_step, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS,
                              iterations=1)
    assert loss == loss, "the loss became NaN"
    benchmark.extra_info.update(
        framework=framework, model=model, mode=mode, preset=PRESET,
        batch_size=train_spec.batch_size, dtype=train_spec.dtype,
        flops_per_step=flops.train_step_flops(model_spec, train_spec.batch_size),
        versions=adapter.versions(), runtime=settings, environment=_environment(settings))
