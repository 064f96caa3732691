"""The notebook API, imported as `fwbench` (the fwbench.py module re-exports it).

    import fwbench
    cells = fwbench.run(frameworks=["torch", "jax"], models=["mlp"], preset="tiny")
    checks = fwbench.parity(frameworks=["torch", "jax"], dtypes=["float32"])
    tables = fwbench.graphs(frameworks=["torch"], parts=["retrace"])
    study = fwbench.study("forecast", quick=True, frameworks=["torch"])
    fwbench.report(cells.attrs["run_dir"])          # shows inline in a notebook

Each function takes its CLI subcommand's flags as keyword arguments: the flag's name with
underscores for dashes (`sample_seconds=` for `--sample-seconds`), a list for a
comma-separated flag, True/False for a switch. The arguments go through the CLI's own
parser, so the defaults, checks and error messages are the CLI's, and then through the
subcommand's own code (bench/cli/); a bad argument raises FwbenchError with the CLI's
message. Progress is printed as the CLI prints it, a line per finished item, which a
notebook shows as it comes. Results come back as pandas DataFrames (their `attrs` hold
where they were written and the exit status the CLI would have given) or, for a report,
a Report that a notebook displays with its figures.

One default differs from the CLI: `run()` measures the speed matrix only (`scaling`,
`graphs`, `parity` and `report` are off), because a notebook calls each of those itself;
pass them as True for the whole main job.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Code", "FwbenchError", "Report", "code", "compare", "graphs", "installed", "load",
           "parity", "report", "run", "study"]


class FwbenchError(Exception):
    """A bad argument, input or install: the message is the CLI's error line."""


class _RaisingParser(argparse.ArgumentParser):
    """The CLI's parser, raising where the command line would exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FwbenchError(f"{self.prog}: {message}")


def _argv(parser: argparse.ArgumentParser, name: str, flags: dict[str, Any]) -> list[str]:
    """Keyword arguments as the command line's flags for subcommand `name`."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    argv: list[str] = []
    for key, value in flags.items():
        action = actions.get(key)
        if action is None or action.help == argparse.SUPPRESS:
            known = ", ".join(sorted(k for k, a in actions.items() if a.help != argparse.SUPPRESS))
            raise TypeError(f"fwbench.{name}() has no argument {key!r}; it takes: {known}")
        if value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(action.option_strings[0] if value else action.option_strings[1])
        elif action.nargs == 0:  # a switch (store_true)
            if value:
                argv.append(action.option_strings[0])
        elif isinstance(value, (list, tuple)):
            argv += [action.option_strings[0], ",".join(map(str, value))]
        else:
            argv += [action.option_strings[0], str(value)]
    return argv


def _parse(name: str, flags: dict[str, Any], positional: Sequence[str] = ()) -> argparse.Namespace:
    from bench import cli

    parser = cli.build_parser(_RaisingParser)
    sub = cli.subcommand_parser(parser, name)
    return parser.parse_args([name, *positional, *_argv(sub, name, flags)])


@contextlib.contextmanager
def _running() -> Iterator[None]:
    """The CLI's errors as FwbenchError; a stop signal stops the worker processes."""
    from bench import results, workers
    from bench.cli.common import UsageError
    from bench.speed.cells import MatrixError

    try:
        with workers.stop_on_signals():
            yield
    except (UsageError, MatrixError, workers.WorkerError, results.ResultFileError) as exc:
        raise FwbenchError(str(exc)) from None


def _stopped(status: int, what: str) -> None:
    if status >= 128:  # the CLI's 128 + signal: the work was stopped, and said how to resume
        raise KeyboardInterrupt(f"{what} stopped; what finished is kept")


def installed() -> list[str]:
    """The frameworks installed here (the names the other functions take)."""
    from bench import adapters

    return [fw for fw in adapters.FRAMEWORKS if adapters.installed(fw)]


def run(**flags: Any) -> Any:
    """`fwbench run`: measure the speed matrix; one row per cell (status, median_ms,
    iqr_ms, throughput, ... as `fwbench.load` gives them). attrs: run_dir, exit_status.
    Raises FwbenchError when nothing could be measured, saying why."""
    from bench import results
    from bench.cli import pipeline
    from bench.cli import run as run_command

    phases = {"graphs": False, "parity": False, "report": False}
    if not flags.get("resume"):  # a resumed run keeps its own sweep setting
        phases["scaling"] = False
    args = _parse("run", {**phases, **flags})
    with _running():
        folder = run_command.start(args)
        status = pipeline.main_job(folder, graphs=args.graphs, parity=args.parity,
                                   report=args.report, retry_failed=args.retry_failed,
                                   tensorboard=args.tensorboard)
    _stopped(status, f"run {folder.name}")
    frame = results.load(folder)
    why = pipeline.nothing_measured(frame)
    if why:
        raise FwbenchError(f"run {folder.name}: {why}")
    frame.attrs.update(run_dir=str(folder), exit_status=status)
    return frame


def parity(**flags: Any) -> Any:
    """`fwbench parity` (printing only failed rows unless failures_only=False); one row per
    check: check, framework, model, dtype, error, tolerance, passed, note.
    attrs: path (the results file), exit_status (1: a check failed)."""
    import dataclasses

    import pandas as pd

    from bench.cli import parity as parity_command

    args = _parse("parity", {"failures_only": True, **flags})
    with _running():
        status, rows, path = parity_command.execute(args)
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    frame.attrs.update(path=str(path), exit_status=status)
    return frame


def graphs(**flags: Any) -> dict[str, Any]:
    """`fwbench graphs`: the study's tables (compile, retrace, control_flow, modes, as
    run) as DataFrames by part; each DataFrame's attrs: path, exit_status."""
    from bench.cli import graphs as graphs_command
    from bench.graphs import study as graphstudy

    args = _parse("graphs", flags)
    with _running():
        status, path = graphs_command.execute(args)
    tables = graphstudy.load(path)
    for table in tables.values():
        table.attrs.update(path=str(path), exit_status=status)
    return tables


def study(name: str, **flags: Any) -> Any:
    """`fwbench study NAME` (genz, forecast, sweep, charlm, seqclass, gradients): one row per
    framework and item.
    attrs: study_dir, exit_status."""
    from bench.cli import study as study_command
    from bench.studies import runner

    args = _parse("study", flags, positional=[name])
    with _running():
        folder = study_command.start(args)
        status = study_command.execute(folder)
    _stopped(status, f"study {folder.name}")
    frame = runner.load(folder)
    frame.attrs.update(study_dir=str(folder), exit_status=status)
    return frame


def load(*runs: str | Path) -> Any:
    """Every cell of the given runs (folders, run ids or 'latest'; default: the latest) as
    one DataFrame, one row per cell."""
    from bench import results
    from bench.cli.common import run_dir

    with _running():
        return results.load([run_dir(str(r)) for r in runs or ["latest"]])


def compare(baseline: str | Path, current: str | Path = "latest", **flags: Any) -> Any:
    """`fwbench compare BASELINE CURRENT`: one row per cell with its ratio, interval and
    verdict (slower, faster, no clear change, failed, missing).
    attrs: markdown, exit_status (1: a regression or a lost cell)."""
    from bench.cli import compare as compare_command

    args = _parse("compare", flags, positional=[str(baseline), str(current)])
    with _running():
        status, table, text = compare_command.verdict(args)
    table.attrs.update(markdown=text, exit_status=status)
    return table


@dataclass
class Report:
    """A written report: its folder (report.html, report.md, figures/, tables/). A
    notebook displays it whole, figures included."""

    folder: Path

    @property
    def markdown(self) -> str:
        return (self.folder / "report.md").read_text()

    @property
    def findings(self) -> list[str]:
        """The report's "What this run shows", one statement per item."""
        import json

        return json.loads((self.folder / "findings.json").read_text())["findings"]

    @property
    def figures(self) -> list[Path]:
        return sorted((self.folder / "figures").glob("*.png"))

    def _repr_html_(self) -> str:
        return (self.folder / "report.html").read_text()


def report(*runs: str | Path, **flags: Any) -> Report:
    """`fwbench report RUNS`: write the report (default: the latest run, graph study,
    parity file and studies) and return it."""
    from bench.cli import report as report_command

    args = _parse("report", flags, positional=[str(r) for r in runs])
    with _running():
        return Report(report_command.execute(args))


@dataclass
class Code:
    """Each framework's code for one model and its training step, side by side (the
    report's section); a notebook shows it in columns, str() gives Markdown."""

    html: str
    markdown: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.markdown


def code(model: str) -> Code:
    """`fwbench show --code MODEL`: every framework's definition of MODEL and its
    training step, from the code that runs, with lines of code and the concepts used."""
    from bench import adapters, models
    from bench.report import code as code_section
    from bench.report.document import Report as Document
    from bench.report.document import to_html, to_markdown

    if model not in models.KINDS:
        raise FwbenchError(f"code: {model!r} is not a model; known: {', '.join(models.KINDS)}")
    doc = Document(f"{models.get(model).title} in each framework")
    code_section.add_section(doc, list(adapters.FRAMEWORKS), [model])
    return Code(to_html(doc, Path(".")), to_markdown(doc))
