"""Parity: do the frameworks compute the same outputs, gradients and trajectories?

Each framework runs in its own subprocess (bench/parity/worker.py), which computes raw
results on fixed weights and data (bench/parity/cases.py) and pickles them. The parent
process, which imports no framework, compares them with the float64 reference, with
finite differences and with each other, and returns one row per check
(bench/parity/checks.py). A framework that is missing or crashes yields error rows; the
other frameworks' checks stand.
"""

from __future__ import annotations

import dataclasses
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import progress, tolerances
from bench.adapters import DEVICES
from bench.parity.cases import (  # noqa: F401
    COMPILED_OPTIMIZER,
    DATA_SEED,
    HYPERPARAMETERS,
    LEARNING_RATES,
    MODE_CHECKS,
    MODE_STEPS,
    PARAM_SEED,
    SCOPES,
    STEPS,
    WORKER_TIMEOUT_S,
    Case,
    case_params,
    cases,
    optimizer_spec,
)
from bench.parity.checks import Row, _form_drift, compare, summarize  # noqa: F401
from bench.parity.worker import compute, run_worker  # noqa: F401
from bench.results import PARITY_SCHEMA
from bench.spec import DTYPES


def run_workers(frameworks: tuple[str, ...], dtypes: tuple[str, ...] = DTYPES,
                case_names: tuple[str, ...] | None = None, jobs: int = 3,
                scope: str = "all", device: str = "cpu") -> dict[str, dict]:
    """Every framework's raw results, from its own worker (up to `jobs` at once); a
    framework that is not installed gets a `fatal` entry naming the extra to install."""
    from bench import adapters

    missing = {fw: {"framework": fw, "fatal": f"{adapters.REGISTRY[fw][1]} is not installed; "
                    f"install it with: pip install 'fwbench[{adapters.REGISTRY[fw][3]}]'"}
               for fw in frameworks if not adapters.installed(fw)}
    running = [fw for fw in frameworks if fw not in missing]
    with tempfile.TemporaryDirectory() as tmp:
        logs = {fw: Path(tmp) / f"parity-{fw}.log" for fw in running}
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, progress.Ticker(
                lambda elapsed: progress.status("parity", logs, elapsed)):
            futures = {fw: pool.submit(run_worker, fw, dtypes, case_names, 1, scope, device,
                                       None, logs[fw]) for fw in running}
            return {fw: missing[fw] if fw in missing else futures[fw].result()
                    for fw in frameworks}


def run(frameworks: tuple[str, ...], dtypes: tuple[str, ...] = DTYPES,
        case_names: tuple[str, ...] | None = None, jobs: int = 3,
        scope: str = "all", device: str = "cpu") -> tuple[list[Row], dict]:
    """Run the workers on `device`, then compare (always against the float64 NumPy
    reference, on the host): the rows, and per framework what it reported.
    `scope` "modes" computes and checks only eager vs compiled (MODE_CHECKS)."""
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r} is not valid: allowed one of {', '.join(SCOPES)}")
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not valid: allowed one of {', '.join(DEVICES)}")
    raws = run_workers(frameworks, dtypes, case_names, jobs, scope, device)
    rows = compare(raws, dtypes, case_names, scope)
    meta = {fw: {k: raw.get(k) for k in ("versions", "device", "settings", "modes", "default_mode",
                                         "optimizer_forms", "alignments", "seconds", "fatal")
                 if k in raw}
            for fw, raw in raws.items()}
    return rows, meta


SCHEMA = PARITY_SCHEMA  # the readers (the report) check it


def write(path: Any, rows: list[Row], meta: dict[str, Any], seconds: float,
          device: str = "cpu") -> None:
    """The parity results file (schema fwbench.parity/1): every row, the frameworks'
    reports, the tolerances with their reasons, and the environment."""
    from datetime import datetime, timezone

    from bench import environment, results

    results.write_json(path, {
        "schema": SCHEMA, "created": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"),
        "seconds": seconds, "device": device, "environment": environment.describe(),
        "frameworks": meta,
        "tolerances": {f"{c}/{d}": {"value": t.value, "why": t.why}
                       for (c, d), t in tolerances.TOLERANCES.items()},
        "records": [dataclasses.asdict(r) for r in rows]})


