"""`fwbench report`: results in, a report out.

    results/report/report.md      Markdown, figures linked from figures/
    results/report/report.html    one self-contained file: figures embedded, opens offline
    results/report/figures/       every figure as PNG and SVG
    results/report/tables/        every table as CSV

Everything comes from the common DataFrames (results.load for speed runs,
graphstudy.load for the graph study, the parity JSON's records), so the report shows
what is stored. Only cells that were measured are plotted; failed cells are listed with
their error instead of being hidden. matplotlib and seaborn are imported when a report is
built, never by `import bench`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench import adapters, results
from bench.report.checks import (  # noqa: F401
    MODE_CHECKS,
    _graphs,
    _parity,
    _parity_records,
    _paths,
    parity_heat,
)
from bench.report.document import Report, save_figure, to_html, to_markdown  # noqa: F401
from bench.report.speed import _comparison, _runs  # noqa: F401
from bench.report.summary import (  # noqa: F401
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    fastest,
    ratio_interval,
    summary_lines,
)


def build(run_dirs: Sequence[Path], graphs_path: Path | Sequence[Path] | None = None,
          parity_path: Path | Sequence[Path] | None = None, out_dir: Path | None = None,
          merge: bool = False, study_paths: Sequence[Path] = (),
          idioms_path: Path | None = None) -> Path:
    """Write the report of `run_dirs` (plus graph studies and parity runs, if given)
    under `out_dir` (default results/report); returns the folder.

    Several runs are compared with each other, unless `merge`: then they are one result
    set (e.g. one run per framework from nox's bench sessions). Several graph studies or
    parity files are always merged: their rows are put together.
    `study_paths`: study folders (fwbench study) shown in the Studies section.
    `idioms_path`: an idiom audit (benchmarks/idioms.py) for the Idiom audit section."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    out = Path(out_dir or results.RESULTS_DIR / "report")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    report = Report("fwbench report")
    if run_dirs:
        _runs(report, run_dirs, out, merge)
        from bench.report import history

        history.add_section(report, run_dirs, out)
    else:
        report.heading("Speed")
        report.text("No speed run was given: run `fwbench run`, then `fwbench report` again.")
    from bench.distributed import efficiency
    from bench.report import distributed

    distributed.add_section(report, run_dirs, efficiency.split(results.load(list(run_dirs)))[1]
                            if run_dirs else _empty(), out,
                            _parity_records(parity_path) if _paths(parity_path) else [])
    if _paths(graphs_path):
        _graphs(report, graphs_path, parity_path or None)
    else:
        report.heading("Static vs dynamic graphs")
        report.text("No graph study was given or found: run `fwbench graphs`, then "
                    "`fwbench report` again.")
    if _paths(parity_path):
        _parity(report, parity_path, out)
    else:
        report.heading("Parity")
        report.text("No parity results were given or found: run `fwbench parity`, then "
                    "`fwbench report` again.")
    from bench.report import code

    # every framework's code, whatever the run measured: the comparison is the point
    code.add_section(report, list(adapters.FRAMEWORKS), _kinds(run_dirs))
    from bench.report import idioms

    idiom_doc = idioms.load(idioms_path) if idioms_path else None
    idioms.add_section(report, idiom_doc, idioms_path)
    from bench.report import studies as study_sections

    study_sections.add_sections(report, list(study_paths), out)
    from bench.report import findings, limits

    extra_lines = limits.finding_lines(run_dirs) + (idioms.finding_lines(idiom_doc) if idiom_doc else [])
    lines = findings.add_section(report, _run_frames(run_dirs, merge), graphs_path,
                                 parity_path, list(study_paths), extra_lines)
    results.write_json(out / "findings.json", {"findings": lines})
    for block in report.blocks:
        if block[0] == "table":
            block[2].to_csv(out / "tables" / f"{block[1]}.csv", index=False)
    (out / "report.md").write_text(to_markdown(report))
    (out / "report.html").write_text(to_html(report, out))
    return out


def _empty() -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    return pd.DataFrame(columns=[*results.CELL_COLUMNS, "median_ms"])


def _kinds(run_dirs: Sequence[Path]) -> list[str]:
    """The model kinds of the runs, in the registry's order (all when no run is given)."""
    from bench import models

    cells = [c for d in run_dirs for c in results.read_json(Path(d) / "run.json").get("cells", [])]
    return [k for k in models.KINDS if any(c["model"] == k for c in cells)] or list(models.KINDS)


def _run_frames(run_dirs: Sequence[Path], merge: bool) -> list[tuple[str, "pd.DataFrame"]]:  # noqa: F821
    """(label, matrix cells) for the findings: one set, or one per run when several runs
    are compared (runs never mix)."""
    if not run_dirs:
        return []
    from bench.distributed import efficiency
    from bench.speed import scaling

    frame = scaling.split(efficiency.split(results.load(list(run_dirs)))[0])[0]
    if merge or frame["run_id"].nunique() < 2:
        return [("", frame)]
    return [(f"Run {run_id}: ", part) for run_id, part in frame.groupby("run_id", sort=False)]


