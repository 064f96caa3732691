"""The report's section on the machine's limits: each run's measured matrix-product peak
and memory bandwidth (bench.speed.limits), every cell's achieved FLOP/s as a share of
that peak, its arithmetic intensity (analytic FLOPs over the fewest bytes a step must
move, bench.flops.train_step_bytes), and a roofline figure. Within one run only: each
run has its own limits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import flops
from bench.report.document import Report, save_figure
from bench.speed import limits
from bench.speed.cells import Cell

MARKERS = {"mlp": "o", "lstm": "s", "attention": "^", "rnn": "D"}


def step_bytes(row: Any) -> int:
    """The fewest bytes a step of the cell in `row` (a results.load row) must move."""
    seq = None if row.get("seq_len") is None or math.isnan(row["seq_len"]) else int(row["seq_len"])
    cell = Cell(row["framework"], row["model"], row["preset"], row["mode"], row["device"],
                row["dtype"], int(row["batch_size"]), seq)
    model_spec, train_spec = cell.specs()
    return flops.train_step_bytes(model_spec, train_spec.batch_size, train_spec.optimizer.name,
                                  row["dtype"])


def cell_rows(frame: Any, doc: dict[str, Any]) -> Any:
    """Per measured cell: achieved GFLOP/s, share of the peak, intensity, what bounds it
    at that intensity and the share of that bound (the roofline's height there)."""
    import pandas as pd

    peak, bandwidth = doc.get("peak_flops_per_s"), doc.get("bandwidth_bytes_per_s")
    ridge = limits.ridge_point(doc)
    rows = []
    for _, r in frame[frame["status"] == "ok"].iterrows():
        intensity = r["flops_per_step"] / step_bytes(r)
        roof = min(peak, bandwidth * intensity) if peak and bandwidth else None
        rows.append({"framework": r["framework"], "model": r["model"], "mode": r["mode"],
                     "achieved GFLOP/s": r["flops_per_s"] / 1e9,
                     "share of peak": r["flops_per_s"] / peak if peak else None,
                     "FLOP per byte": intensity,
                     "bound by": ("memory" if ridge and intensity < ridge else "compute"),
                     "share of roof": r["flops_per_s"] / roof if roof else None})
    return pd.DataFrame(rows)


def add_section(report: Report, run_dirs: Sequence[Path], frame: Any, out: Path) -> None:
    """One subsection per run that measured its limits; a line for runs that did not."""
    report.heading("The machine's limits and the roofline", 3)
    docs = {Path(d).name: limits.read(Path(d)) for d in run_dirs}
    missing = [run_id for run_id, doc in docs.items() if doc is None]
    if missing:
        report.text(f"Run(s) {', '.join(missing)} did not measure the machine's limits (made "
                    "before fwbench measured them, or with --no-limits): no share of peak.")
    for run_id, doc in docs.items():
        if doc is None:
            continue
        part = frame[frame["run_id"] == run_id] if "run_id" in frame else frame
        _run_section(report, run_id, doc, part, out, len(docs) > 1)


def _run_section(report: Report, run_id: str, doc: dict[str, Any], frame: Any, out: Path,
                 several: bool) -> None:
    import pandas as pd

    size = ("quick limits of the tiny preset: a 512 product and a 16 MiB stream, rougher "
            "than a full run's" if doc.get("quick") else
            "an n x n x n product and a stream over arrays far larger than any cache")
    report.text(
        f"{'Run ' + run_id + ': t' if several else 'T'}he machine's limits, measured by the run in each "
        f"framework's own process ({doc['device']}, {doc['dtype']}, {doc['threads']} "
        f"thread(s){', TF32 on' if doc.get('tf32') else ''}; {size}). Peak: "
        + _figure(doc.get("peak_flops_per_s"), 1e9, "GFLOP/s", doc.get("peak_by"))
        + "; memory bandwidth: "
        + _figure(doc.get("bandwidth_bytes_per_s"), 1e9, "GB/s", doc.get("bandwidth_by"))
        + ". A cell's share of peak is its achieved FLOP/s (analytic matrix-product FLOPs "
        "over the median step) over that peak; its intensity is those FLOPs over the fewest "
        "bytes its step must move (the batch, the parameters, the activations kept for the "
        "backward pass written and read back, gradients and optimizer state), so its "
        "roof is the lower of the peak and bandwidth x intensity.")
    rows = pd.DataFrame([{"framework": r["framework"],
                          "GEMM GFLOP/s": r.get("gemm_flops_per_s", math.nan) / 1e9,
                          "stream GB/s": r.get("stream_bytes_per_s", math.nan) / 1e9,
                          "error": (r.get("error") or "").splitlines()[0] if r.get("error") else ""}
                         for r in doc["frameworks"]])
    report.table(f"limits-{run_id}" if several else "limits", rows.round(2))
    cells = cell_rows(frame, doc)
    if cells.empty or not doc.get("peak_flops_per_s"):
        return
    report.table(f"roofline-{run_id}" if several else "roofline",
                 cells.round({"achieved GFLOP/s": 2, "share of peak": 3, "FLOP per byte": 1,
                              "share of roof": 3}))
    name = f"roofline-{run_id}" if several else "roofline"
    save_figure(_figure_roofline(cells, doc), out, name)
    report.figure(name, "Roofline: each cell's achieved GFLOP/s against its arithmetic "
                  "intensity (log-log); the roof is the measured peak (flat) and memory "
                  "bandwidth x intensity (slope). Colour: framework; marker: model. "
                  f"Run: {run_id}.")


def _figure(value: float | None, unit: float, label: str, by: str | None) -> str:
    if not value:
        return "not measured"
    return f"{value / unit:.1f} {label} ({by})"


def _figure_roofline(cells: Any, doc: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt
    import numpy as np

    peak, bandwidth = doc["peak_flops_per_s"] / 1e9, doc["bandwidth_bytes_per_s"] / 1e9
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    low = min(cells["FLOP per byte"].min(), peak / bandwidth) / 4
    high = max(cells["FLOP per byte"].max(), peak / bandwidth) * 4
    x = np.geomspace(low, high, 200)
    ax.plot(x, np.minimum(peak, bandwidth * x), color="black", lw=1.5, label="roof")
    colours = dict(zip(sorted(cells["framework"].unique()), plt.get_cmap("tab10").colors))
    for (fw, model), part in cells.groupby(["framework", "model"]):
        ax.scatter(part["FLOP per byte"], part["achieved GFLOP/s"], color=colours[fw],
                   marker=MARKERS.get(model, "o"), label=f"{fw} {model}", s=28)
    ax.set(xscale="log", yscale="log", xlabel="FLOP per byte (analytic)",
           ylabel="achieved GFLOP/s")
    ax.legend(fontsize=6, ncol=3, loc="lower right")
    fig.tight_layout()
    return fig


def finding_lines(run_dirs: Sequence[Path]) -> list[str]:
    """For "What this run shows": per run with limits, the range of the cells' shares of
    the measured peak, and how many cells sit below the ridge point."""
    from bench import results

    lines = []
    for run_dir in run_dirs:
        doc = limits.read(Path(run_dir))
        if not doc or not doc.get("peak_flops_per_s"):
            continue
        frame = results.load([Path(run_dir)])
        if "sweep_axis" in frame:
            frame = frame[frame["sweep_axis"].isna()]
        cells = cell_rows(frame, doc)
        if cells.empty:
            continue
        label = f"Run {Path(run_dir).name}: " if len(run_dirs) > 1 else ""
        low = cells.loc[cells["share of peak"].idxmin()]
        high = cells.loc[cells["share of peak"].idxmax()]
        memory = int((cells["bound by"] == "memory").sum())
        lines.append(
            f"{label}Against the machine's measured peak of {doc['peak_flops_per_s'] / 1e9:.1f} "
            f"GFLOP/s ({doc['peak_by']}'s matrix product), the cells reached "
            f"{low['share of peak']:.1%} ({low['framework']} {low['model']} {low['mode']}) to "
            f"{high['share of peak']:.1%} ({high['framework']} {high['model']} {high['mode']}); "
            f"{memory} of {len(cells)} are below the ridge point of "
            f"{limits.ridge_point(doc):.1f} FLOP/byte, where memory bandwidth "
            f"({doc['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s) is the lower roof.")
    return lines
