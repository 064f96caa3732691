"""PyTorch's side of the static-vs-dynamic study (bench/graphs/__init__.py): recompiles of
torch.compile on new sequence lengths, and data-dependent Python control flow under
torch.compile and torch.jit.trace."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch._dynamo
from torch._dynamo.utils import counters

from bench import adapters, canonical, data, graphs


def _graphs_compiled() -> int:
    return int(counters["stats"]["unique_graphs"])  # Dynamo's own count of graphs made


def retrace(job: dict[str, Any]) -> dict[str, Any]:
    spec, train = graphs.retrace_specs(job["preset"], job["model"], job["order"])
    adapter = adapters.get("torch")
    model = adapter.build(spec, canonical.init_params(spec, seed=0), "float32")
    setting = job["setting"]
    if setting not in ("default", "dynamic", "mark_dynamic"):
        raise ValueError(f"unknown retrace setting {setting!r} for torch")
    options = {"dynamic": True} if setting == "dynamic" else {}
    torch._dynamo.reset()
    counters.clear()
    trainer = adapter.trainer(model, train.optimizer, "cross_entropy", job["mode"], options)
    steps = []
    for i, length in enumerate(job["order"]):
        x, target = data.batch(spec, train.batch_size, "cross_entropy", graphs.RETRACE_SEED, i,
                               seq_len=length)
        batch = trainer.put(x, target)
        if setting == "mark_dynamic":
            torch._dynamo.mark_dynamic(batch[0], 1)  # the time axis may change
        started = time.perf_counter()
        trainer.value(trainer.step(batch))
        steps.append({"length": length, "padded_to": length,
                      "seconds": time.perf_counter() - started, "traces": _graphs_compiled()})
    return {"steps": steps, "traces": _graphs_compiled(), "compiles": None,
            "counter": "torch._dynamo.utils.counters['stats']['unique_graphs'] "
                       "(model and compiled optimizer step)",
            "graph_breaks": _graph_breaks()[0],
            # Inductor's on-disk cache: a hit skips code generation, so a setting's cost
            # depends on what earlier processes compiled.
            "cache": {k: int(v) for k, v in counters["inductor"].items() if "cache" in k}}


def _graph_breaks() -> tuple[int, list[str]]:
    reasons = counters["graph_break"]
    return int(sum(reasons.values())), [str(r).splitlines()[0][:200] for r in reasons]


# --- control flow ---------------------------------------------------------------------
def _python_loss(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor, tau: float) -> torch.Tensor:
    h = x @ w1
    a = torch.relu(h) if h.mean() > 0 else torch.tanh(h)
    while torch.linalg.vector_norm(a) > tau:
        a = a / 2
    return ((a @ w2) ** 2).mean()


def _ops_loss(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor, tau: float) -> torch.Tensor:
    from torch._higher_order_ops.while_loop import while_loop  # a prototype API in 2.x

    h = x @ w1
    a = torch.cond(h.mean() > 0, torch.relu, torch.tanh, (h,))
    (a,) = while_loop(lambda a: torch.linalg.vector_norm(a) > tau, lambda a: (a / 2,), (a,))
    return ((a @ w2) ** 2).mean()


def _masked_loss(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor, tau: float) -> torch.Tensor:
    h = x @ w1
    a = torch.cond(h.mean() > 0, torch.relu, torch.tanh, (h,))
    # Branchless: a fixed number of steps, each halving only while the norm is above tau.
    for _ in range(graphs.CF_MAX_HALVINGS):
        a = torch.where(torch.linalg.vector_norm(a) > tau, a / 2, a)
    return ((a @ w2) ** 2).mean()


VARIANTS = {"python": _python_loss, "torch.cond + while_loop": _ops_loss,
            "torch.cond + masked loop (torch.where)": _masked_loss}
MODES = ("eager", "compiled", "compiled (fullgraph=True)", "jit.trace")


def _wrap(mode: str, fn: Callable, example: tuple[torch.Tensor, ...]) -> Callable:
    if mode == "eager":
        return fn
    if mode == "compiled":
        return torch.compile(fn)
    if mode == "compiled (fullgraph=True)":
        return torch.compile(fn, fullgraph=True)  # a graph break is an error here
    if mode == "jit.trace":
        return torch.jit.trace(fn, example)  # records the ops one example ran
    raise ValueError(f"unknown control-flow mode {mode!r} for torch")


def control_flow(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every variant in every mode of job["modes"]: one row each (bench.graphs.verdict)."""
    return [{**row, "mode": mode} for mode in job["modes"] for row in _control_flow(mode)]


def _control_flow(mode: str) -> list[dict[str, Any]]:
    problem = graphs.control_flow_problem()
    rows = []
    for variant, loss in VARIANTS.items():
        torch._dynamo.reset()
        counters.clear()
        w1 = torch.tensor(problem.w1, dtype=torch.float32, requires_grad=True)
        w2 = torch.tensor(problem.w2, dtype=torch.float32, requires_grad=True)
        inputs = [torch.tensor(x, dtype=torch.float32) for x in problem.inputs]

        def forward(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor,
                    loss: Callable = loss) -> torch.Tensor:
            return loss(w1, w2, x, problem.tau)

        wrapped: list[Callable] = []  # wrapping may raise too: that is a finding of the row

        def call(x: torch.Tensor) -> tuple[Any, Any, Any]:
            if not wrapped:
                wrapped.append(_wrap(mode, forward, (w1, w2, inputs[0])))
            value = wrapped[0](w1, w2, x)
            g1, g2 = torch.autograd.grad(value, (w1, w2))
            return value.item(), g1.numpy(), g2.numpy()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            row: dict[str, Any] = {"variant": variant, **graphs.drive_control_flow(call, inputs)}
        row["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}"
                                  for w in caught if "Tracer" in w.category.__name__})
        if mode.startswith("compiled"):
            row["traces"] = _graphs_compiled()
            row["graph_breaks"], row["break_reasons"] = _graph_breaks()
        rows.append(row)
    return rows

