"""The report's baseline history: each cell's median step time at every saved baseline of
the run's environment (bench.compare.history), like asv's graphs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.report.document import Report, save_figure


def add_section(report: Report, run_dirs: Sequence[Path], out: Path) -> None:
    """A figure and a table of the stored baseline's history for the first run's
    environment; nothing where no history is stored."""
    from bench import results
    from bench.compare import history, sides

    run = results.read_document(Path(run_dirs[0]) / "run.json", results.RUN_SCHEMA)
    folder = sides.baseline_folder(run.get("environment", {}))
    table = history.frame(folder)
    if table.empty:
        return
    import matplotlib.pyplot as plt

    table["cell"] = table["framework"] + "/" + table["model"] + "/" + table["mode"]
    table["label"] = (table["saved"].str[:10] + "\n" + table["git_commit"].fillna("?").str[:7])
    cells = list(dict.fromkeys(table["cell"]))
    entries = table.drop_duplicates("entry").sort_values("entry")
    report.heading("Baseline history")
    report.text(f"The stored baseline of this environment ({folder.name}) at each of its "
                f"{len(entries)} saves: every cell's median step time with its 95% interval "
                f"(processes, then steps, resampled). A step up between two saves that the "
                f"intervals do not explain is a regression that landed between those commits.")
    columns = min(3, len(cells))
    rows = math.ceil(len(cells) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.6 * rows), squeeze=False)
    for ax, cell in zip(axes.flat, cells):
        part = table[table["cell"] == cell].sort_values("entry")
        ax.errorbar(part["entry"], part["median_ms"],
                    yerr=[part["median_ms"] - part["low_ms"], part["high_ms"] - part["median_ms"]],
                    marker="o", capsize=3)
        ax.set_title(cell, fontsize=9)
        ax.set_ylabel("ms per step")
        ax.set_xticks(list(entries["entry"]), list(entries["label"]), fontsize=7)
        ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, out, "baseline_history")
    report.figure("baseline_history", f"Median step time (ms) of each cell at every save of "
                  f"the stored baseline {folder.name}, oldest left; bars: 95% intervals. "
                  f"Data: {folder / history.FILE}.")
    wide = table.pivot_table(index="cell", columns="entry", values="median_ms", sort=False)
    wide.columns = [f"{e}: {entries.set_index('entry').loc[e, 'label'].replace(chr(10), ' ')}"
                    for e in wide.columns]
    report.table("baseline_history", wide.reset_index())
