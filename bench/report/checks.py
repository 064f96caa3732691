"""The graph study's and parity's sections of the report: static vs dynamic graphs, and
parity as a heat map per check, framework and model, with every failure shown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import results
from bench.report.document import Report, save_figure
from bench.speed import show

MODE_CHECKS = ("compiled", "mode_forward", "mode_grads")  # parity's eager == compiled rows


def _paths(value: Path | Sequence[Path] | None) -> list[Path]:
    if value is None:
        return []
    return [Path(value)] if isinstance(value, (str, Path)) else [Path(v) for v in value]


def _graph_docs(value: Path | Sequence[Path]) -> list[dict[str, Any]]:
    from bench.graphs import study as graphstudy

    return [graphstudy.read(path) for path in _paths(value)]


def _parity_records(value: Path | Sequence[Path]) -> list[dict[str, Any]]:
    return [r for path in _paths(value)
            for r in results.read_document(path, results.PARITY_SCHEMA)["records"]]


def _graphs(report: Report, path: Path | Sequence[Path],
            parity_path: Path | Sequence[Path] | None = None) -> None:
    import pandas as pd

    docs = _graph_docs(path)
    report.heading("Static vs dynamic graphs")
    report.text("From graph study " + ", ".join(f"{d['id']} ({d['created']})" for d in docs)
                + ".")
    tables: dict[str, list] = {}
    for doc in docs:
        for part, rows in doc["tables"].items():
            tables.setdefault(part, []).extend(rows)
    if "modes" not in tables and _paths(parity_path):
        # The main job leaves eager == compiled to its parity phase, which runs the same
        # checks (bench.parity scope "modes"): show those rows here.
        records = _parity_records(parity_path)
        tables["modes"] = [r for r in records if r["check"] in MODE_CHECKS]
        report.text(f"Eager == compiled: the {len(tables['modes'])} mode rows of parity run "
                    + ", ".join(p.name for p in _paths(parity_path)) + ".")
    for title, rows, columns in show.graph_tables(tables):
        report.heading(title.split(" (")[0], 3)
        report.text(title)
        name = title.split(" (")[0].lower().replace(" ", "_").replace("==", "eq")
        report.table(f"graphs_{name}", pd.DataFrame(rows, columns=columns))


def parity_heat(records: Any) -> dict[str, Any]:
    """Per dtype: a model x (check | framework) table of the largest error / tolerance,
    columns grouped by check; "framework" is a pair ("tf vs torch") or a mode ("tf: xla vs
    eager") where the check compares two. A tolerance of 0 (exact checks: parameter counts,
    round trips) gives 0 when the error is 0 and infinity otherwise, so an exact check that
    fails still shows as failed."""
    rows = records.copy()
    exact = rows["tolerance"] <= 0
    rows["ratio"] = np.where(exact, np.where(rows["error"] > 0, np.inf, 0.0),
                             rows["error"] / rows["tolerance"].where(~exact, 1.0))
    rows["column"] = rows["check"] + " | " + rows["framework"]
    order = list(dict.fromkeys(rows.sort_values(["check"], kind="stable")["column"]))
    return {dtype: part.pivot_table(index="model", columns="column", values="ratio",
                                    aggfunc="max").reindex(columns=[c for c in order
                                                                    if c in set(part["column"])])
            for dtype, part in rows.groupby("dtype", sort=True)}


def _parity(report: Report, path: Path | Sequence[Path], out: Path) -> None:
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    docs = [results.read_document(p, results.PARITY_SCHEMA) for p in _paths(path)]
    rows = pd.DataFrame([r for doc in docs for r in doc["records"]])
    report.heading("Parity")
    passed = int(rows["passed"].sum())
    dtypes = ", ".join(sorted(set(rows["dtype"])))
    created = ", ".join(str(doc.get("created")) for doc in docs)
    devices = sorted({doc.get("device", "cpu") for doc in docs})  # older files: CPU only
    where = " and ".join("on the GPU with TF32 off" if d == "gpu" else "on the CPU"
                         for d in devices)
    report.text(f"From parity run {created} ({dtypes}): {passed} of {len(rows)} "
                f"checks pass. Each framework ran in its own process {where}, with 1 thread "
                f"and TF_ENABLE_ONEDNN_OPTS=0; errors are max-norm relative errors against the "
                f"float64 NumPy reference, finite differences or another framework; every "
                f"tolerance and its reason is in bench/tolerances.py.")
    heat = parity_heat(rows)
    width = max(t.shape[1] for t in heat.values())
    height = max(t.shape[0] for t in heat.values())
    fig, axes = plt.subplots(len(heat), 1, squeeze=False,
                             figsize=(0.28 * width + 4, (0.3 * height + 3.6) * len(heat)))
    for ax, (dtype, table) in zip(axes[:, 0], heat.items()):
        table = table.astype(float)
        # log10 of error / tolerance, floored at -6; > 0 fails, an exact check failing is +3
        shown = np.log10(table.clip(lower=1e-6).replace(np.inf, 1e3))
        sns.heatmap(shown, ax=ax, cmap="viridis", vmin=-6, vmax=1, linewidths=0.3,
                    linecolor="white", xticklabels=True, yticklabels=True,
                    cbar_kws={"label": "log10(max error / tolerance); > 0 fails"})
        for y, x in zip(*np.nonzero(table.to_numpy() > 1)):
            ax.text(x + 0.5, y + 0.5, "X", ha="center", va="center", color="red")
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{dtype}: largest error / tolerance per check | framework and model")
        ax.set_xlabel("")
        ax.set_ylabel("model")
    fig.tight_layout()
    save_figure(fig, out, "parity")
    report.figure("parity", "Largest error / tolerance per check and framework (columns; "
                  "a pair or a mode where the check compares two) and model (rows), one panel "
                  "per dtype; blank: the check does not apply to that model; a red X is a "
                  "failed check.")
    failed = rows[~rows["passed"]]
    if not failed.empty:
        report.text(f"{len(failed)} check(s) failed:")
        report.table("parity_failures", failed[["check", "framework", "model", "dtype",
                                                "error", "tolerance", "note"]])


# --- rendering --------------------------------------------------------------------------
