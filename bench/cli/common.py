"""What the subcommands share: the usage error, tables, and finding runs, results and
studies from what a user types (a folder, an id, 'latest', 'none')."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import adapters, results


class UsageError(Exception):
    """A flag value that cannot work; reported before anything runs (exit status 2)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the examples' lines and shows every flag's default, except where
    the help already says it or there is none to show (unset, off, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, "", argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    cells = [[str(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def fmt(x: float) -> str:
    """An error or tolerance as the tables print it."""
    return "n/a" if x != x else ("0" if x == 0 else f"{x:.1e}")


def defaults_of(parser: Any, defining: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The defaults of the (dest, flag) pairs that define a run or a study."""
    return {dest: parser.get_default(dest) for dest, _ in defining}


def refuse_defining_flags(args: Any, defining: Sequence[tuple[str, str]],
                          defaults: dict[str, Any], what: str) -> None:
    """With --resume, a flag that defines the run or study (its matrix, budget,
    settings) is taken from its folder: one given differently is a UsageError."""
    given = [flag for dest, flag in defining if getattr(args, dest) != defaults[dest]]
    if given:
        raise UsageError(f"--resume takes the {what}'s settings from its folder; "
                         f"{', '.join(given)} given: drop them, or start a new {what}")


def refuse_changes(recorded: dict[str, Any], folder: Path, what: str, allow: bool) -> None:
    """With --resume, the environment must be the one the run or study was started in
    (bench.environment.RESUME_KEYS): every difference is named and refused, or, with
    `allow` (--allow-changes), said and let through."""
    from bench import environment

    changed = environment.differences(recorded, environment.describe())
    if changed and not allow:
        raise UsageError(f"--resume {folder.name}: this is not the environment the {what} "
                         f"was started in ({'; '.join(changed)}); resume where it was "
                         f"started, or pass --allow-changes (each record then says what it "
                         f"ran under)")
    if changed:
        print(f"resuming under changes (--allow-changes): {'; '.join(changed)}",
              file=sys.stderr)


def note_missing(frameworks: Sequence[str], what: str) -> None:
    """Say, on stderr, which frameworks are not installed and what becomes of them."""
    from bench import frameworks as records

    for fw in frameworks:
        if not adapters.installed(fw):
            print(f"note: {fw} is not installed; its {what} recorded as skipped "
                  f"(pip install 'fwbench[{records.get(fw).extra}]')", file=sys.stderr)


def refuse_all_missing(frameworks: Sequence[str]) -> None:
    """Nothing could be measured: a UsageError naming the extras to install."""
    from bench import frameworks as records

    if frameworks and not any(adapters.installed(fw) for fw in frameworks):
        extras = ", ".join(f"pip install 'fwbench[{records.get(fw).extra}]'" for fw in frameworks)
        raise UsageError(f"nothing can be measured: {', '.join(frameworks)} "
                         f"{'is' if len(frameworks) == 1 else 'are'} not installed ({extras})")


def run_dir(name: str) -> Path:
    """A run given as a folder, a run id under results/runs, or 'latest'."""
    from bench.speed import harness

    if name == "latest":
        return harness.latest_run()
    for candidate in (Path(name), harness.runs_dir() / name):
        if (candidate / "run.json").exists():
            return candidate
    raise UsageError(f"run {name!r} not found (neither a folder with run.json nor a run id "
                     f"under {harness.runs_dir()})")


def resolve_run(name: str) -> str:
    """'latest' as the newest run folder; anything else as given."""
    return str(run_dir("latest")) if name == "latest" else name


def latest(pattern: str) -> Path | None:
    """The newest file under results/ matching `pattern`, if any."""
    found = sorted(results.RESULTS_DIR.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def inputs(value: str, pattern: str, flag: str) -> list[Path]:
    """'latest' (the newest file matching `pattern`, if any), 'none', or comma-separated
    paths, each of which must exist."""
    if value == "none":
        return []
    if value == "latest":
        found = latest(pattern)
        return [found] if found else []
    paths = [Path(v.strip()) for v in value.split(",") if v.strip()]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{flag} {path}: no such file or folder")
    return paths


def study_dir(name: str) -> Path:
    """A study given as a folder or an id under results/studies."""
    from bench.studies import runner

    path = Path(name)
    if (path / "study.json").exists():
        return path
    if (runner.studies_dir() / name / "study.json").exists():
        return runner.studies_dir() / name
    raise UsageError(f"no study {name!r} (looked for {path} and {runner.studies_dir() / name})")


def study_inputs(value: str) -> list[Path]:
    """'latest' (the newest study of each kind), 'none', or comma-separated study folders
    or ids."""
    from bench.studies import STUDIES, runner

    if value == "none":
        return []
    if value == "latest":
        return [p for p in (runner.latest(kind) for kind in STUDIES) if p is not None]
    return [study_dir(v.strip()) for v in value.split(",") if v.strip()]


def write_verdict(path: Any, document: dict[str, Any]) -> None:
    """Write a verdict's JSON (--json FILE) atomically."""
    results.write_json(Path(path), document)


def error_verdict(command: str, message: str) -> dict[str, Any]:
    """The --json document of a command that could not give a verdict (exit status 2)."""
    from bench.compare import EXIT_MEANINGS, VERDICT_SCHEMA

    return {"schema": VERDICT_SCHEMA, "command": command, "exit_status": 2,
            "meaning": EXIT_MEANINGS[2], "error": message}
