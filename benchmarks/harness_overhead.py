"""Harness overhead: is the step time `fwbench run` reports the model's, not the harness's?

For every framework x model in its compiled mode(s) at a preset (default `small`, CPU),
this measures in one run, cell by cell:

- harness: `fwbench run` on that one cell (its own process, per-step device sync,
  samples after warm-up), reporting the median step time;
- hand loop: a minimal training loop an expert would write in that framework, in its own
  process with the same threads and CPU affinity: the same model (built by the adapter,
  so the network is identical), the framework's stock Adam, one batch, the compiled
  step, and, as nanoGPT's bench.py does, the loss read back after every step so that
  each step's time is the device's. The figure is the median step time over the same
  sampling time as the harness's default (1.5 s);
- for information, the same hand loop with one device sync per block of steps
  ("pipelined"): what per-step timing costs, as the framework can then overlap the next
  step's dispatch with the current step's compute.

The ratio harness / hand loop (both per-step synced) is the harness's overhead; the bar
is <= 1.05. The two alternate per cell (harness first, then hand loop first, ...),
--rounds times (default 5), one process each: a 2-core VM drifts by 10-20% from one
minute to the next, which a single pair would report as overhead. Each row reports the
geometric mean of its rounds' ratios with a 95% bootstrap interval, and a verdict:
within the bar (the whole interval <= 1.05), over it (the whole interval above), or
inconclusive; then all rows' rounds together.

    python benchmarks/harness_overhead.py [--frameworks tf,torch,jax] [--models ...]
        [--preset small] [--rounds 5] [--threads N] [--output results/harness_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import adapters, environment, results  # noqa: E402
from bench.cells import Cell  # noqa: E402
from bench.harness import affinity, cell_env  # noqa: E402
from bench.spec import MODELS  # noqa: E402

SAMPLE_S = 1.5        # per-step samples for this long (s), as `fwbench run` by default
BOOTSTRAP = 10000     # resamples for the confidence intervals of the ratios
BLOCKS = 5            # pipelined blocks of back-to-back steps, for information
BLOCK_S = 0.2         # target length of one block (s)
WARMUP_S = 0.5        # untimed steps after the first (s), as the harness does


def _hand_step_torch(model: Any, x: Any, y: Any):
    import torch
    import torch.nn.functional as F

    module = model.module
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    forward = torch.compile(module)
    update = torch.compile(opt.step)  # PyTorch's compiled-optimizer recipe
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(xt), yt)
        loss.backward()
        update()
        return loss

    return step, lambda loss: loss.item()


def _hand_step_tf(model: Any, x: Any, y: Any, jit_compile: bool = False):
    import keras
    import tensorflow as tf

    net = model.keras
    opt = keras.optimizers.Adam(1e-3)
    xt, yt = tf.constant(x, tf.float32), tf.constant(y, tf.int64)

    @tf.function(jit_compile=jit_compile)
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = net(inputs, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    return (lambda: train_step(xt, yt)), lambda loss: loss.numpy()


def _hand_step_jax(model: Any, x: Any, y: Any):
    import jax
    import jax.numpy as jnp
    import optax

    module = model.module
    tx = optax.adam(1e-3)
    state = {"params": model.params, "opt": tx.init(model.params)}
    xt, yt = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)

    @jax.jit
    def train_step(params, opt_state, inputs, labels):
        def loss_of(p):
            logits = module.apply({"params": p}, inputs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def step():
        state["params"], state["opt"], loss = train_step(state["params"], state["opt"], xt, yt)
        return loss

    return step, lambda loss: loss.block_until_ready()


def hand_loop(cell: Cell) -> dict[str, Any]:
    """Worker: the hand-written loop for `cell`, in this process."""
    from bench import canonical, data

    model_spec, train_spec = cell.specs()
    adapter = adapters.get(cell.framework)
    adapter.configure(cell.device, cell.threads, False)
    params = canonical.init_params(model_spec, seed=train_spec.seed)
    model = adapter.build(model_spec, params, dtype="float32")
    x, y = data.batch(model_spec, train_spec.batch_size, "cross_entropy", train_spec.seed, 0)
    if cell.framework == "torch":
        step, sync = _hand_step_torch(model, x, y)
    elif cell.framework == "tf":
        step, sync = _hand_step_tf(model, x, y, jit_compile=cell.mode == "xla")
    else:
        step, sync = _hand_step_jax(model, x, y)
    t = time.perf_counter()
    sync(step())  # compiles
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    warm = 0
    while time.perf_counter() - t < WARMUP_S or warm < 5:
        loss = step()
        warm += 1
    sync(loss)
    per_step_s = (time.perf_counter() - t) / warm
    samples_ms = []
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < SAMPLE_S or len(samples_ms) < 10:
        t = time.perf_counter()
        sync(step())
        samples_ms.append((time.perf_counter() - t) * 1e3)
    steps_per_block = max(1, round(BLOCK_S / per_step_s))
    block_ms = []
    for _ in range(BLOCKS):
        t = time.perf_counter()
        for _ in range(steps_per_block):
            loss = step()
        sync(loss)
        block_ms.append((time.perf_counter() - t) / steps_per_block * 1e3)
    return {"median_ms": statistics.median(samples_ms), "samples": len(samples_ms),
            "pipelined_ms": statistics.median(block_ms), "steps_per_block": steps_per_block,
            "first_step_s": first_s}


def ratio_ci(ratios: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Geometric mean of `ratios` and its 95% bootstrap interval (resampling rounds)."""
    import numpy as np

    logs = np.log(np.asarray(ratios, dtype=np.float64))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, logs.size, (BOOTSTRAP, logs.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(np.exp(logs.mean())), float(np.exp(low)), float(np.exp(high))


def verdict(low: float, high: float, bar: float = 1.05) -> str:
    if high <= bar:
        return "within bar"
    if low > bar:
        return "over bar"
    return "inconclusive (interval straddles the bar)"


def _run_hand(cell: Cell) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hand.json"
        cmd = [sys.executable, __file__, "--worker", json.dumps(cell.to_dict()), str(out)]
        proc = subprocess.run(cmd, env=cell_env(cell), cwd=ROOT, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"hand loop for {cell.id} failed:\n{proc.stderr[-2000:]}")
        return json.loads(out.read_text())


def _run_harness(cell: Cell, results_dir: Path, name: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.cli", "run", "--frameworks", cell.framework,
           "--models", cell.model, "--modes", cell.mode, "--preset", cell.preset,
           "--threads", str(cell.threads), "--repeats", "1", "--name", name,
           "--no-scaling", "--no-graphs", "--no-parity", "--no-report"]
    env = {**os.environ, "FWBENCH_RESULTS": str(results_dir)}
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    frame = results.load(results_dir / "runs" / name)
    if proc.returncode != 0 or frame.empty or frame.loc[0, "status"] != "ok":
        raise RuntimeError(f"fwbench run for {cell.id} failed:\n{proc.stdout[-2000:]}"
                           f"\n{proc.stderr[-2000:]}")
    row = frame.iloc[0]
    return {"median_ms": float(row["median_ms"]), "iqr_ms": float(row["iqr_ms"]),
            "samples": int(row["samples"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--preset", default="small")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("results/harness_overhead.json"))
    parser.add_argument("--worker", nargs=2, metavar=("CELL_JSON", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        cell = Cell.from_dict(json.loads(args.worker[0]))
        os.sched_setaffinity(0, affinity(cell.threads))
        results.write_json(Path(args.worker[1]), hand_loop(cell))
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fw in args.frameworks.split(","):
            if not adapters.installed(fw):
                print(f"{fw}: not installed, skipped", file=sys.stderr)
                continue
            modes = [m for m in adapters.MODES[fw] if m != "eager"]
            for model in args.models.split(","):
                for mode in modes:
                    cell = Cell(fw, model, args.preset, mode, threads=args.threads)
                    harness_ms, hand_ms, ratios = [], [], []
                    for r in range(args.rounds):
                        # ABBA...: every other round starts with the hand loop, so a
                        # steady drift of the machine does not favour either side
                        if r % 2:
                            hand_ms.append(_run_hand(cell))
                        harness_ms.append(_run_harness(cell, Path(tmp), f"{cell.id}-{r}"))
                        if not r % 2:
                            hand_ms.append(_run_hand(cell))
                        ratios.append(harness_ms[-1]["median_ms"] / hand_ms[-1]["median_ms"])
                    h = statistics.median(x["median_ms"] for x in harness_ms)
                    m = statistics.median(x["median_ms"] for x in hand_ms)
                    p = statistics.median(x["pipelined_ms"] for x in hand_ms)
                    ratio, low, high = ratio_ci(ratios)
                    rows.append({"framework": fw, "model": model, "mode": mode,
                                 "harness_ms": h, "hand_loop_ms": m, "pipelined_ms": p,
                                 "ratio": ratio, "ci95": [low, high],
                                 "verdict": verdict(low, high), "round_ratios": ratios,
                                 "harness": harness_ms, "hand_loop": hand_ms})
                    print(f"{fw:6} {model:10} {mode:9} harness {h:8.3f} ms  hand loop "
                          f"{m:8.3f} ms  ratio {ratio:.3f} [{low:.3f}, {high:.3f}] "
                          f"{rows[-1]['verdict']}  (rounds "
                          f"{', '.join(f'{x:.3f}' for x in ratios)})  pipelined {p:8.3f} ms",
                          flush=True)
    overall = ratio_ci([x for r in rows for x in r["round_ratios"]]) if rows else None
    results.write_json(args.output, {
        "schema": "fwbench.harness_overhead/1", "preset": args.preset, "threads": args.threads,
        "rounds": args.rounds, "environment": environment.describe(), "rows": rows,
        "bar": 1.05, "overall": overall})
    if not rows:
        return 1
    print(f"all rows together: ratio {overall[0]:.3f} [{overall[1]:.3f}, {overall[2]:.3f}]; "
          f"rows within the bar: {sum(r['verdict'] == 'within bar' for r in rows)}/{len(rows)}, "
          f"over it: {sum(r['verdict'] == 'over bar' for r in rows)}; "
          f"written to {args.output}")
    return 0 if all(r["verdict"] == "within bar" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
