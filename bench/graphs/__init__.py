"""Static vs dynamic graphs: what compiling costs and what it allows, per framework.

`fwbench graphs` runs four parts and writes one results file (SCHEMA):

1. compile: trace/compile time, first step and steady step of every framework x model x
   mode, read from a speed-harness run (bench.speed.harness cells), and the speed-up of each
   compiled mode over eager.
2. retrace: a sequence model trained on batches of RETRACE_LENGTHS (each length
   RETRACE_PASSES times, shuffled), once per RETRACE_SETTINGS entry: the framework's
   default and its dynamic-shape remedies. Trace and compile counts are read from the
   frameworks' own counters (TF's tracing count, Dynamo's graph counter, JAX's compile
   events), and every step is timed with a device sync.
3. control_flow: a small model whose forward has an `if` on a tensor value and a loop
   whose trip count depends on the data, written as plain Python and as each framework's
   control-flow operators, run in every mode; the verdict (runs, graph breaks, fails,
   silently specialises) comes from comparing its loss and gradients on inputs that
   take different branches and trip counts with a float64 NumPy reference.
4. modes: eager == compiled: outputs, gradients and a 5-step trajectory of each mode
   against the framework's default mode (bench.parity, scope "modes").

Parts 2 and 3 run one process per (framework, setting or mode), with the harness's
thread settings and cores, as bench.workers jobs whose task (graph_task) calls
impls/<framework>/graphs.py. A process that raises, crashes or times out becomes an
error row; the other rows stand.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import adapters, frameworks, workers
from bench.spec import preset

SCHEMA = "fwbench.graphs/1"
PARTS = ("compile", "retrace", "control_flow", "modes")

# --- retracing ------------------------------------------------------------------------
RETRACE_LENGTHS = (10, 13, 16, 19, 22, 25, 28, 32)  # time steps; 8 distinct shapes
RETRACE_PASSES = 2       # each length this often, each pass in its own shuffled order
RETRACE_SEED = 5
RETRACE_MODEL = "attention"
# (mode, setting, what the step is wrapped in) per framework, from bench.frameworks.
# "default" is what a user gets without asking; the others are the framework's remedies
# for changing shapes.
RETRACE_SETTINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    f.name: f.retrace_settings for f in frameworks.FRAMEWORKS.values()}


def bucket(length: int, smallest: int = 8) -> int:
    """The padded length for `length`: the next power of two, at least `smallest`."""
    if length < 1:
        raise ValueError(f"length {length}: must be >= 1")
    padded = smallest
    while padded < length:
        padded *= 2
    return padded


def retrace_specs(preset_name: str, model: str, order: list[int]) -> tuple[Any, Any]:
    """The model and training specs of the retracing part: the preset's, with room for
    the longest padded length (the attention model's position table has seq_len rows)."""
    model_spec, train_spec = preset(preset_name, model)
    longest = max(bucket(n) for n in order)
    return dataclasses.replace(model_spec, seq_len=max(model_spec.seq_len, longest)), train_spec


def retrace_order(lengths: tuple[int, ...] = RETRACE_LENGTHS, passes: int = RETRACE_PASSES,
                  seed: int = RETRACE_SEED) -> list[int]:
    """The lengths in the order they are fed: every pass a fresh shuffle of all of them."""
    rng = np.random.default_rng(seed)
    return [int(n) for _ in range(passes) for n in rng.permutation(lengths)]


# --- control flow ---------------------------------------------------------------------
@dataclass(frozen=True)
class ControlFlowProblem:
    """loss(W1, W2, x): h = x @ W1; a = relu(h) if mean(h) > 0 else tanh(h);
    while ||a|| > tau: a = a / 2; loss = mean((a @ W2)^2). ||.|| is the Frobenius norm."""

    w1: np.ndarray            # (in, hidden)
    w2: np.ndarray            # (hidden, out)
    inputs: tuple[np.ndarray, ...]  # batches taking different branches and trip counts
    tau: float


CF_IN, CF_HIDDEN, CF_OUT, CF_BATCH, CF_SEED = 16, 32, 4, 64, 11
CF_SCALES = (1.0, -1.0, 4.0, -4.0, 0.25)  # x, -x flips the branch; scale changes the trips
CF_MAX_HALVINGS = 16     # trip-count bound of the bounded rewrites (the inputs need <= 4)
CF_TOLERANCE = 1e-4       # float32 loss and gradients vs the float64 reference
CF_TIMED_CALLS = 20       # loss-and-gradient calls timed per variant, after warm-up


def control_flow_problem() -> ControlFlowProblem:
    rng = np.random.default_rng(CF_SEED)
    w1 = rng.standard_normal((CF_IN, CF_HIDDEN)) / np.sqrt(CF_IN)
    w2 = rng.standard_normal((CF_HIDDEN, CF_OUT)) / np.sqrt(CF_HIDDEN)
    base = rng.standard_normal((CF_BATCH, CF_IN)) + 0.3  # off-centre: mean(h) is not ~0
    inputs = tuple(s * base for s in CF_SCALES)
    # tau sits between powers of two of the first input's norm, so float32 rounding of
    # the norm can never flip a comparison (checked in tests for every input).
    tau = float(np.linalg.norm(_activate(base @ w1)) / 2.0**1.5)
    return ControlFlowProblem(w1, w2, inputs, tau)


def _activate(h: np.ndarray, branch: str | None = None) -> np.ndarray:
    branch = branch or ("relu" if h.mean() > 0 else "tanh")
    return np.maximum(h, 0.0) if branch == "relu" else np.tanh(h)


def control_flow_reference(problem: ControlFlowProblem, x: np.ndarray, branch: str | None = None,
                           halvings: int | None = None) -> dict[str, Any]:
    """Loss and gradients in float64, with the branch taken and the loop's trip count.
    `branch` and `halvings` force a path: what a graph specialised to another input's
    path computes."""
    h = x @ problem.w1
    branch = branch or ("relu" if h.mean() > 0 else "tanh")
    a = _activate(h, branch)
    if halvings is None:
        halvings = 0
        while np.linalg.norm(a) > problem.tau:
            a, halvings = a / 2.0, halvings + 1
    else:
        a = a * 2.0**-halvings
    out = a @ problem.w2
    d_out = 2.0 * out / out.size
    d_a = (d_out @ problem.w2.T) * 2.0**-halvings
    d_h = d_a * ((h > 0).astype(float) if branch == "relu" else 1.0 - np.tanh(h) ** 2)
    return {"loss": float(np.mean(out**2)), "grad_w1": x.T @ d_h, "grad_w2": a.T @ d_out,
            "branch": branch, "halvings": halvings}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _error(out: dict[str, Any], ref: dict[str, Any]) -> float:
    return max(_rel(out[k], ref[k]) for k in ("loss", "grad_w1", "grad_w2"))


def verdict(problem: ControlFlowProblem, result: dict[str, Any]) -> tuple[str, float, str]:
    """(verdict, largest relative error, detail) of one variant's `result` from a worker:
    error (str or None), outputs (per input: loss, grad_w1, grad_w2), graph_breaks.

    Verdicts: "fails" (raised), "silently specialises" (no error, and every input got
    the first input's branch and trip count), "wrong results" (no error, wrong in some
    other way), "graph breaks (n)" (right, in n+1 pieces), "runs" (right)."""
    if result.get("error"):
        return "fails", float("nan"), result["error"]
    first = control_flow_reference(problem, problem.inputs[0])
    errors, wrong, specialised = [], [], True
    for k, (x, out) in enumerate(zip(problem.inputs, result["outputs"])):
        ref = control_flow_reference(problem, x)
        err = _error(out, ref)
        errors.append(err)
        if not err <= CF_TOLERANCE:
            wrong.append(f"input {k} ({ref['branch']}, {ref['halvings']} halvings): "
                         f"error {err:.2g}")
        frozen = control_flow_reference(problem, x, first["branch"], first["halvings"])
        specialised = specialised and _error(out, frozen) <= CF_TOLERANCE
    worst = max(errors)
    if wrong:
        what = "silently specialises" if specialised else "wrong results"
        return what, worst, "no error raised, but wrong on " + "; ".join(wrong)
    breaks = result.get("graph_breaks") or 0
    if breaks:
        return f"graph breaks ({breaks})", worst, "; ".join(result.get("break_reasons", []))
    return "runs", worst, ""


def time_calls(call: Callable[[Any], Any], inputs: Sequence[Any]) -> float:
    """Median ms of one `call` (which must wait for the device), cycling over `inputs`
    after one untimed call on each."""
    for x in inputs:
        call(x)
    samples = []
    for i in range(CF_TIMED_CALLS):
        started = time.perf_counter()
        call(inputs[i % len(inputs)])
        samples.append(time.perf_counter() - started)
    return float(np.median(samples) * 1e3)


def drive_control_flow(call: Callable[[Any], tuple[Any, Any, Any]],
                       inputs: Sequence[Any]) -> dict[str, Any]:
    """One variant of the control-flow problem in one mode, the loop every framework runs:
    `call(x)` returns (loss, grad of w1, grad of w2) as the framework's own values (it
    must wait for the device); each input's are kept as floats and NumPy arrays, then the
    call is timed. The framework's error, if it raises, is the finding: it goes in the row."""
    row: dict[str, Any] = {"error": None}
    try:
        outputs = []
        for x in inputs:
            value, g1, g2 = call(x)
            outputs.append({"loss": float(value), "grad_w1": np.asarray(g1),
                            "grad_w2": np.asarray(g2)})
        row["outputs"] = outputs
        row["median_ms"] = time_calls(lambda x: float(call(x)[0]), inputs)
    except Exception as exc:  # noqa: BLE001 - the framework's error is the finding
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


# --- the worker side ------------------------------------------------------------------
def graph_task(args: dict[str, Any], fault: workers.Fault | None = None) -> Any:
    """A bench.workers task: `args["task"]` of impls/<framework>/graphs.py on `args["job"]`,
    in the framework's own process. `fault` (tests only) strikes on the job's name."""
    framework, job = args["framework"], args["job"]
    if workers.strike(fault, args["name"]):
        raise ValueError(f"fault {fault.kind!r} does not apply to the graph study")
    adapter = adapters.get(framework)
    adapter.configure("cpu", job["threads"], False)
    module = importlib.import_module(f"impls.{framework}.graphs")
    return getattr(module, args["task"])(job)


def run_job(framework: str, task: str, job: dict[str, Any], folder: Path,
            name: str, timeout_s: float, fault: workers.Fault | None = None) -> dict[str, Any]:
    """Run `task` of impls/<framework>/graphs.py on `job` in its own process (bench.workers);
    never raises. Returns {"ok": True, "result": ..., "wall_s"} or {"ok": False, "error"}
    ("skipped": True when the framework is not installed)."""
    if not adapters.installed(framework):
        _, label, _, extra = adapters.REGISTRY[framework]
        return {"ok": False, "skipped": True,
                "error": f"{label} is not installed; install it with: pip install 'fwbench[{extra}]'"}
    threads = job["threads"]
    worker_job = workers.Job("bench.graphs:graph_task",
                             {"framework": framework, "task": task, "job": job, "name": name},
                             threads=threads, cores=tuple(workers.affinity(threads)),
                             timeout_s=timeout_s, fault=fault, preload=framework,
                             compiles=True)  # every job of the study compiles
    outcome = workers.run(worker_job, folder / "logs" / f"{name}.log")
    if outcome.ok:
        return {"ok": True, "result": outcome.value, "wall_s": outcome.task_s}
    return {"ok": False, "error": outcome.describe(), "wall_s": outcome.wall_s}
