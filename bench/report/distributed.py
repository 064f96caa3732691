"""The report's data-parallel section: for runs of `fwbench run --devices N`, the launch
settings every framework ran under, the scaling table (bench.distributed.efficiency),
the scaling curves, and the data-parallel parity rows of the parity file given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.distributed import efficiency
from bench.report.document import Report, save_figure

DP_CHECKS = ("data_parallel", "dp_replicas", "dp_trajectory")


def add_section(report: Report, run_dirs: Sequence[Path], dp_cells: Any, out: Path,
                parity_records: list[dict[str, Any]]) -> None:
    """The section, when a run holds data-parallel cells (`dp_cells`: their rows of
    results.load) or the parity file holds data-parallel rows; nothing otherwise."""
    dp_parity = [r for r in parity_records if r["check"] in DP_CHECKS]
    if dp_cells.empty and not dp_parity:
        return
    import pandas as pd

    report.heading("Data-parallel training")
    for folder in run_dirs:
        run = results.read_json(Path(folder) / "run.json")
        study = run.get("data_parallel")
        part = dp_cells[dp_cells["run_id"] == run["run_id"]] if not dp_cells.empty else dp_cells
        if not study or part.empty:
            continue
        _run(report, Path(folder), run, study, part, out, pd)
    if dp_parity:
        _parity(report, dp_parity, pd)


def _run(report: Report, folder: Path, run: dict[str, Any], study: dict[str, Any], part: Any,
         out: Path, pd: Any) -> None:
    device = part["device"].iloc[0]
    counts = sorted({p["replicas"] for p in study["points"]})
    report.text(
        f"Run {run['run_id']}: each framework's own data-parallel runtime ({study['form']} "
        f"form), replica counts {', '.join(map(str, counts))} (--devices {study['devices']}). "
        f"Strong scaling keeps the global batch and splits it over the replicas; weak scaling "
        f"gives each replica the batch of one. The no-communication controls are one replica "
        f"alone doing one replica's share on one replica's cores; a scaling point's step "
        f"time minus its control's is what running as a group costs (the all-reduce and the "
        f"runtime's coordination around it).")
    if device == "cpu":
        report.text(
            "On a CPU the replicas are the machine's cores, split between them: r replicas "
            "share what one replica had, so no speed-up is possible here. These figures "
            "measure each framework's distribution overhead; on a machine with several GPUs "
            "the same command measures real scaling.")
    report.heading("Launch settings", 3)
    report.table(f"dp_launch_{run['run_id']}", pd.DataFrame(launch_rows(folder, part)))
    report.heading("Scaling and communication", 3)
    table = efficiency.rows(part, study["points"])
    report.text("Median step time (ms) per replica count; speed-up and efficiency against "
                "one replica; comm: the step time above the no-communication control.")
    report.table(f"dp_scaling_{run['run_id']}",
                 pd.DataFrame(efficiency.formatted(table), columns=efficiency.COLUMNS))
    figure = _curves(table, run["run_id"])
    if figure is not None:
        name = f"dp_scaling_{run['run_id']}"
        save_figure(figure, out, name)
        report.figure(name, "Throughput (samples/s at the median step) against replicas, "
                            "strong and weak scaling, per model.")


def launch_rows(folder: Path, part: Any) -> list[dict[str, Any]]:
    """Per framework, from its cell with the most replicas: the runtime, its backend,
    world size, processes, and each process's devices and cores."""
    out = []
    for fw, cells in part[part["status"] == "ok"].groupby("framework", sort=False):
        widest = cells.sort_values("replicas").iloc[-1]
        path = sorted((folder / "cells").glob(f"{widest['cell_id']}.r*.json"))
        record = results.read_cell_record(path[0]) if path else {}
        runtime = record.get("framework", {}).get("runtime", {})
        members = record.get("framework", {}).get("group", {}).get("members", [])
        out.append({
            "framework": fw, "runtime": runtime.get("runtime"), "backend": runtime.get("backend"),
            "world size": runtime.get("world_size"), "processes": len(members) or None,
            "mapping": "; ".join(f"process {m['rank']}: {', '.join(m['runtime'].get('devices', []))}"
                                 f" on cores {m.get('cores')}" for m in members),
            "versions": widest.get("versions")})
    return out


def _curves(table: list[dict[str, Any]], run_id: str) -> Any:
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in table))
    if not models:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        for fw in dict.fromkeys(r["framework"] for r in table):
            rows = [r for r in table if r["model"] == model and r["framework"] == fw]
            for key, style in (("strong ms", "-o"), ("weak ms", "--s")):
                points = [(r["replicas"], 1e3 * _batch(r, key) / r[key]) for r in rows
                          if r[key]]
                if points:
                    ax.plot(*zip(*points), style, label=f"{fw} {key.split()[0]}")
        ax.set_title(model)
        ax.set_xlabel("replicas")
        ax.set_ylabel("samples/s")
        ax.legend(fontsize=7)
    fig.suptitle(f"Data-parallel scaling, run {run_id}")
    fig.tight_layout()
    return fig


def _batch(row: dict[str, Any], key: str) -> float:
    """The global batch of a table row's strong or weak cell (weak: r x the base's)."""
    base = row["batch"]
    return base * row["replicas"] if key == "weak ms" else base


def _parity(report: Report, records: list[dict[str, Any]], pd: Any) -> None:
    report.heading("Data-parallel parity", 3)
    frame = pd.DataFrame(records)
    rows = []
    for (check, fw, dtype), part in frame.groupby(["check", "framework", "dtype"], sort=False):
        worst = part.loc[(part["error"] / part["tolerance"]).idxmax()]
        rows.append({"check": check, "framework": fw, "dtype": dtype, "rows": len(part),
                     "failed": int((~part["passed"]).sum()), "worst model": worst["model"],
                     "max error": f"{worst['error']:.2g}", "tolerance": f"{worst['tolerance']:.2g}"})
    report.text(f"{int(frame['passed'].sum())} of {len(frame)} data-parallel rows pass: "
                "N replicas against one device on the same global batch (data_parallel), "
                "every process against process 0 (dp_replicas), and the frameworks against "
                "each other (dp_trajectory).")
    report.table("dp_parity", pd.DataFrame(rows))
