"""Runs a study: one process per framework, one JSON line per finished item.

    results/studies/<study id>/study.json            the study, its configuration, environment
    results/studies/<study id>/records/<fw>.jsonl    one record per item, appended as it finishes
    results/studies/<study id>/logs/<fw>.<k>.log     stdout and stderr of its k-th process

A framework's items run in one process (a bench.workers job whose task is
bench.studies.runner:train_pending), one after another, with the same thread caps and
CPU affinity as the speed harness gives a cell: starting a process per item would spend
more time importing TensorFlow than training. Its records stream to the framework's
JSON-lines file as each item finishes (the job's one result is the count it trained).
An item that raises or diverges is recorded with its status and error and the process
goes on; a process that dies or times out loses only the item it was on, which is
recorded as failed, and a fresh process goes on with the rest; `resume` runs whatever
has no record yet (after an interrupt).
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from bench import adapters, environment, frameworks, results, studies, workers
from bench.speed import measure
from bench.speed.measure import Diverged
from bench.studies.fit import Snapshots

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "fwbench.study/1"
DEFAULT_TIMEOUT_S = 3600.0  # per framework process
# Mode each framework trains in unless --mode says otherwise (bench.frameworks, with the
# reasons): the compiled step where it compiles once per model in well under a second
# (tf.function, jax.jit); torch's eager step, because torch.compile takes 6-28 s per new
# model on 2 cores against 1-2 s of training per Genz item.
STUDY_MODES = {f.name: f.study_mode for f in frameworks.FRAMEWORKS.values()}


class StudyError(ValueError):
    """A study configuration or folder that cannot be run."""


def studies_dir() -> Path:
    return results.RESULTS_DIR / "studies"


def new_study(name: str, frameworks: Sequence[str], quick: bool = False,
              overrides: dict[str, Any] | None = None, mode: str | None = None,
              threads: int = 2, timeout_s: float = DEFAULT_TIMEOUT_S,
              tensorboard: str | None = None, study_id: str | None = None,
              histogram_every: int | None = None) -> Path:
    """Create a study folder holding its configuration; returns its path.
    `histogram_every`: with `tensorboard`, per-layer weight and gradient histograms every
    that many training steps."""
    module = studies.get(name)
    unknown = [f for f in frameworks if f not in adapters.FRAMEWORKS]
    if unknown or not frameworks:
        raise StudyError(f"unknown framework(s) {unknown}: allowed {', '.join(adapters.FRAMEWORKS)}")
    if mode is not None:
        bad = [f for f in frameworks if mode not in adapters.MODES[f]]
        if bad:
            raise StudyError(f"--mode {mode!r} is not offered by {bad}")
    config = dict(module.QUICK if quick else module.FULL)
    for key, value in (overrides or {}).items():
        if key not in config:
            raise StudyError(f"{name}: no setting {key!r}: allowed {', '.join(config)}")
        config[key] = value
    module.items(config)  # refuses a malformed configuration before anything runs
    if histogram_every is not None:
        if not tensorboard:
            raise StudyError("--histograms needs --tensorboard DIR: the histograms are written "
                             "as TensorBoard event files there")
        if isinstance(histogram_every, bool) or not isinstance(histogram_every, int) or histogram_every < 1:
            raise StudyError(f"--histograms {histogram_every!r}: allowed a whole number of steps >= 1")
    workers.affinity(threads)  # refuses more threads than CPUs
    folder = results.new_folder(
        studies_dir(), study_id, f"{name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}",
        "study.json", "study", StudyError)
    study_id = folder.name
    results.write_json(folder / "study.json", {
        "schema": SCHEMA, "study": name, "study_id": study_id, "quick": quick,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config, "frameworks": list(frameworks),
        "modes": {f: mode or STUDY_MODES[f] for f in frameworks},
        "threads": threads, "timeout_s": timeout_s, "tensorboard": tensorboard,
        "histogram_every": histogram_every,
        "environment": environment.describe(),
    })
    return folder


def load_study(folder: Path) -> dict[str, Any]:
    return results.read_folder_file(folder, "study.json", SCHEMA, StudyError, "study")


def records_path(folder: Path, framework: str) -> Path:
    return Path(folder) / "records" / f"{framework}.jsonl"


def read_records(folder: Path, framework: str) -> list[dict[str, Any]]:
    """The framework's records; a line cut short by a killed process is ignored."""
    path = records_path(folder, framework)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _append(folder: Path, framework: str, record: dict[str, Any]) -> None:
    path = records_path(folder, framework)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A process killed mid-line leaves a partial last line: end it first, so that this
    # record is a line of its own (the partial one is skipped when read).
    cut = False
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
    with open(path, "a") as f:
        f.write(("\n" if cut else "") + json.dumps(results.plain(record)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pending(folder: Path, study: dict[str, Any], framework: str) -> list[dict[str, Any]]:
    """Items of `framework` with no record yet, in study order."""
    module = studies.get(study["study"])
    done = {r["item_id"] for r in read_records(folder, framework)}
    return [i for i in module.items(study["config"]) if module.item_id(i) not in done]


def _failure(study: dict[str, Any], framework: str, item: dict[str, Any], status: str,
             error: str) -> dict[str, Any]:
    module = studies.get(study["study"])
    return {"item_id": module.item_id(item), "item": item, "framework": framework,
            "mode": study["modes"][framework], "status": status, "error": error,
            "metrics": {}}


class _Watcher:
    """Calls on_count(records so far) about once a second while a framework's process
    runs, from a daemon thread (the process itself runs in the main thread, where Ctrl-C
    and the timeout are handled)."""

    def __init__(self, folder: Path, framework: str, on_count: Any) -> None:
        self.path, self.on_count = records_path(folder, framework), on_count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        seen = -1
        while not self.stop.wait(1.0):
            try:
                count = self.path.read_text().count("\n") if self.path.exists() else 0
            except OSError:
                continue
            if count != seen:
                seen = count
                self.on_count(count)

    def __enter__(self) -> "_Watcher":
        if self.on_count:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()


def run_framework(folder: Path, framework: str, on_count: Any = None,
                  fault: workers.Fault | None = None) -> list[dict[str, Any]]:
    """Run `framework`'s pending items in a process of their own (a fresh one after a
    process dies); returns the records it added. `fault` (tests only) strikes the items
    whose id contains its target."""
    study = load_study(folder)
    before = len(read_records(folder, framework))
    todo = pending(folder, study, framework)
    if not todo:
        return []
    if not adapters.installed(framework):
        _, name, _, extra = adapters.REGISTRY[framework]
        for item in todo:
            _append(folder, framework, _failure(
                study, framework, item, "skipped",
                f"{name} is not installed; install it with: pip install 'fwbench[{extra}]'"))
        return read_records(folder, framework)[before:]
    logs = Path(folder).resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    first = len(list(logs.glob(f"{framework}.*.log"))) + 1  # a resume keeps earlier logs
    job = workers.Job("bench.studies.runner:train_pending",
                      {"folder": str(Path(folder).resolve()), "framework": framework},
                      threads=study["threads"], cores=tuple(workers.affinity(study["threads"])),
                      timeout_s=study["timeout_s"], fault=fault)
    # Each pass either finishes the items or records the one its process died on as
    # failed, so a fresh process goes on with the rest: at most one pass per item.
    for attempt in range(first, first + len(todo)):
        with _Watcher(folder, framework, on_count):
            outcome = workers.run(job, logs / f"{framework}.{attempt}.log")
        left = pending(folder, study, framework)
        if not left:
            break
        if outcome.status == "error":
            # The process failed before its items (a framework that fails to import, a
            # bad study folder): every item left fails with that error; no fresh process
            # would fare better.
            for item in left:
                _append(folder, framework, _failure(
                    study, framework, item, "crash",
                    f"the framework's process failed before training: {outcome.describe()}"))
            break
        status = "timeout" if outcome.status == "timeout" else "crash"
        why = (f"the process ran past its {study['timeout_s']:.0f} s timeout"
               if outcome.status == "timeout" else f"the process {outcome.error}")
        _append(folder, framework, _failure(study, framework, left[0], status,
                                            f"{why} while training it; log tail:\n"
                                            f"{outcome.log_tail}"))
        if len(left) == 1:
            break
    return read_records(folder, framework)[before:]


def execute(folder: Path, on_framework: Any = None,
            fault: workers.Fault | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run every framework's pending items, one framework at a time.

    on_framework(framework, done, total, added): before a framework (added None), as its
    records grow (added None, done counts them) and after it (added: its new records).
    `fault`: as for run_framework."""
    study = load_study(folder)
    module = studies.get(study["study"])
    total = len(module.items(study["config"]))
    added = {}
    with results.exclusive(Path(folder), "study", StudyError):
        for framework in study["frameworks"]:
            added[framework] = _execute_framework(folder, study, framework, total,
                                                  on_framework, fault)
    return added


def _execute_framework(folder: Path, study: dict[str, Any], framework: str, total: int,
                       on_framework: Any, fault: workers.Fault | None) -> list[dict[str, Any]]:
    if on_framework:
        on_framework(framework, total - len(pending(folder, study, framework)), total, None)
    on_count = (lambda n: on_framework(framework, n, total, None)) if on_framework else None
    added = run_framework(folder, framework, on_count, fault)
    if on_framework:
        on_framework(framework, total, total, added)
    return added


def train_pending(args: dict[str, Any], fault: workers.Fault | None = None) -> int:
    """The framework's process (a bench.workers task; args folder, framework): train
    every pending item, appending a record for each; returns how many it trained."""
    folder, framework = Path(args["folder"]), args["framework"]
    study = load_study(folder)
    module = studies.get(study["study"])
    mode = study["modes"][framework]
    adapter = adapters.get(framework)
    adapter.configure("cpu", threads=study["threads"])
    versions = ", ".join(f"{k} {v}" for k, v in adapter.versions().items())
    writer = None
    if study.get("tensorboard"):
        from bench import tensorboard
        writer = tensorboard.StudyWriter(Path(study["tensorboard"]), study["study_id"], framework)
    trained = 0
    for item in pending(folder, study, framework):
        started = time.perf_counter()
        record = {"item_id": module.item_id(item), "item": item, "framework": framework,
                  "mode": mode, "status": "ok", "error": None, "versions": versions}
        try:
            struck = workers.strike(fault, module.item_id(item))  # raises, exits, kills, hangs
            if struck == "nan":
                raise Diverged("injected NaN (fault 'nan')")
            if struck:
                raise ValueError(f"fault {struck!r} does not apply to a study")
            every = study.get("histogram_every")
            snapshots = Snapshots(every) if writer is not None and every else None
            out = module.run_item(adapter, item, study["config"], mode, snapshots)
            record["metrics"] = out["metrics"]
            if out.get("outputs") is not None:
                record["outputs"] = out["outputs"]  # e.g. forecasts, for the report's plots
            if writer is not None:
                writer.item(module.item_id(item), out.get("curves", {}),
                            snapshots.taken if snapshots else ())
        except Exception as exc:  # one item's failure must not lose the others
            status = measure.status_of(exc)  # nan, oom or crash, as for a speed cell
            error = f"{type(exc).__name__}: {exc}"
            record.update(status=status, metrics={},
                          error=error + (f"\n{traceback.format_exc(limit=3)}" if status == "crash" else ""))
        record["wall_s"] = time.perf_counter() - started
        _append(folder, framework, record)
        print(f"{record['item_id']}: {record['status']} {record['wall_s']:.1f} s", flush=True)
        trained += 1
    return trained


def load(paths: Any = None) -> "pd.DataFrame":
    """Every study record under `paths` (study folders or folders of them; default all
    of results/studies) as one DataFrame, one row per (study, framework, item): study,
    study_id, framework, mode, status, error, the item's keys (family, d, n, seed, ...),
    then its metrics and wall_s."""
    import pandas as pd

    if paths is None:
        paths = [studies_dir()]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    rows = []
    for folder in (d for p in paths for d in study_dirs(Path(p))):
        study = load_study(folder)
        for framework in study["frameworks"]:
            for record in read_records(folder, framework):
                rows.append({"study": study["study"], "study_id": study["study_id"],
                             "item_id": record["item_id"],
                             "quick": study.get("quick"), "framework": framework,
                             "mode": record.get("mode"), "status": record["status"],
                             "error": record.get("error"), "versions": record.get("versions"),
                             **record["item"],
                             **record.get("metrics", {}), "wall_s": record.get("wall_s")})
    return pd.DataFrame(rows)


def study_dirs(path: Path) -> list[Path]:
    if (path / "study.json").exists():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a study folder or a folder of studies")
    return sorted(p.parent for p in path.glob("*/study.json"))


def latest(name: str | None = None) -> Path | None:
    """The most recently created study folder (of study `name`), or None."""
    found = [p.parent for p in studies_dir().glob("*/study.json")
             if name is None or results.read_json(p).get("study") == name]
    return max(found, key=lambda p: (p / "study.json").stat().st_mtime) if found else None

