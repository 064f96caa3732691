"""Data-parallel parity: N replicas training on a global batch compute what one device
computes on that batch (losses and every parameter after STEPS steps of SGD and of Adam,
every model kind, float32 and float64), in both forms (bench.distributed.FORMS); the
replicas of a multi-process group end with the same parameters; and the frameworks'
data-parallel trajectories agree with each other as their single-device ones do."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from bench import canonical, tolerances
from bench.distributed import DP_MODES, FORMS, check_devices, group, launch
from bench.parity.cases import (
    STEPS,
    WORKER_TIMEOUT_S,
    Case,
    case_params,
    cases,
    optimizer_spec,
)
from bench.parity.checks import Row, _error_row, _form_drift, _row, _without

OPTIMIZERS = ("sgd", "adam")
BATCH = 8  # the global batch: splits evenly 1, 2, 4 or 8 ways
# Every item is compiled; Adam is also eager where the framework's data parallelism
# runs eagerly (bench.distributed.DP_MODES).
EAGER = {fw: "eager" in modes for fw, modes in DP_MODES.items()}


def trained_cases(case_names: tuple[str, ...] | None) -> list[Case]:
    """The cases with trajectories (each model kind's tiny preset), narrowed to `case_names`."""
    return [c for c in cases() if c.trajectories and (not case_names or c.name in case_names)]


def items(framework: str, dtypes: tuple[str, ...], case_names: tuple[str, ...] | None
          ) -> list[dict[str, str]]:
    out = []
    for dtype in dtypes:
        for case in trained_cases(case_names):
            for opt in OPTIMIZERS:
                out.append({"case": case.name, "dtype": dtype, "optimizer": opt, "mode": "compiled"})
                if EAGER[framework] and opt == "adam":
                    out.append({"case": case.name, "dtype": dtype, "optimizer": opt, "mode": "eager"})
    return out


def run_groups(frameworks: tuple[str, ...], dtypes: tuple[str, ...],
               case_names: tuple[str, ...] | None, replicas: int, device: str = "cpu",
               log_dir: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (framework, form) group's raw results: {"members": [values], "seconds"}, or
    {"fatal": why}. One group at a time: a group takes a core per replica."""
    from bench import adapters

    check_devices(replicas, device)
    raws: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(log_dir or tmp)
        for fw in frameworks:
            for form in FORMS:
                if not adapters.installed(fw):
                    raws[(fw, form)] = {"fatal": f"{adapters.REGISTRY[fw][1]} is not installed; "
                                        f"install it with: pip install 'fwbench[{adapters.REGISTRY[fw][3]}]'"}
                    continue
                args = {"items": items(fw, dtypes, case_names), "steps": STEPS, "batch_size": BATCH,
                        "timeout_s": WORKER_TIMEOUT_S, "baseline": True}
                outcome = group.run_group(
                    lambda port, fw=fw, form=form, args=args: launch.group_jobs(
                        fw, form, replicas, port, args, device=device, timeout_s=WORKER_TIMEOUT_S,
                        env={"TF_ENABLE_ONEDNN_OPTS": "0"}),  # sums in a fixed order, as parity
                    logs, f"dp-{fw}-{form}", ports=replicas)
                print(f"data-parallel parity, {fw} {form}, {replicas} replicas: {outcome.status} "
                      f"in {outcome.wall_s:.0f} s", flush=True)
                raws[(fw, form)] = ({"members": outcome.values, "seconds": outcome.wall_s,
                                     "port_attempts": outcome.attempts} if outcome.ok else
                                    {"fatal": f"group {outcome.status}: {outcome.describe()}"})
    return raws


def compare(raws: dict[tuple[str, str], dict[str, Any]], dtypes: tuple[str, ...],
            case_names: tuple[str, ...] | None, replicas: int) -> list[Row]:
    rows: list[Row] = []
    for (fw, form), raw in raws.items():
        if "fatal" in raw:
            rows.append(_error_row("data_parallel", f"{fw} ({form})", "-", "-", raw["fatal"]))
    for dtype in dtypes:
        for case in trained_cases(case_names):
            inert = canonical.inert_params(case.spec)
            skip = f"; {', '.join(inert)} left out (inert)" if inert else ""
            loaded = _without(canonical.cast(case_params(case), dtype), inert)
            for opt in OPTIMIZERS:
                for form in FORMS:
                    live = {fw: raw["members"] for (fw, f), raw in raws.items()
                            if f == form and "fatal" not in raw}
                    for fw, members in live.items():
                        rows += _framework_rows(fw, form, members, (dtype, case.name, opt),
                                                inert, skip, replicas)
                    rows += _across_rows(form, live, (dtype, case.name, opt), loaded, inert, skip)
    return rows


def _framework_rows(fw: str, form: str, members: list[dict[str, Any]], key: tuple[str, str, str],
                    inert: tuple[str, ...], skip: str, replicas: int) -> list[Row]:
    dtype, case, opt = key
    label, rows = f"{fw} ({form})", []
    lead = members[0]
    for mode in ("compiled", "eager"):
        full = (*key, mode)
        if full not in lead["results"]:
            continue
        run, base = lead["results"][full], lead["baseline"].get(full)
        note = (f"{opt}, {mode}, {replicas} replicas vs one device, {STEPS} steps, "
                f"global batch {BATCH}")
        if base is None:
            rows.append(_error_row("data_parallel", label, case, dtype,
                                   lead["baseline_errors"].get(full, "no single-device run")))
        else:
            err = max(tolerances.relative_error(_without(run["final"], inert),
                                                _without(base["final"], inert)),
                      tolerances.relative_error(run["losses"], base["losses"]))
            rows.append(_row("data_parallel", label, case, dtype, err,
                             tolerances.get("data_parallel", dtype).value, note + skip))
        if len(members) > 1:
            worst = max(tolerances.relative_error(_without(m["results"][full]["final"], inert),
                                                  _without(run["final"], inert))
                        for m in members[1:])
            rows.append(_row("dp_replicas", label, case, dtype, worst,
                             tolerances.get("data_parallel", dtype).value,
                             f"{opt}, {mode}: every process's parameters vs process 0's" + skip))
    return rows


def _across_rows(form: str, live: dict[str, list[dict[str, Any]]], key: tuple[str, str, str],
                 loaded: Any, inert: tuple[str, ...], skip: str) -> list[Row]:
    """The frameworks' compiled data-parallel runs against each other, with the bound of
    their single-device trajectory rows (bench.parity.checks): the tolerance plus the
    drift between their optimizer forms, simulated on the first one's gradients;
    `loaded`: the initial parameters in the run's dtype, inert ones left out."""
    dtype, case, opt = key
    full = (*key, "compiled")
    rows = []
    tol = tolerances.get("trajectory", dtype).value
    spec = optimizer_spec(opt)
    for a, b in itertools.combinations(sorted(live), 2):
        run_a, run_b = live[a][0]["results"][full], live[b][0]["results"][full]
        base_a = live[a][0]["baseline"].get(full)
        if base_a is None:
            continue  # its data_parallel row says why
        form_a, form_b = (live[f][0]["optimizer_forms"].get(opt, "plain") for f in (a, b))
        p_drift, l_drift = _form_drift(spec, form_a, form_b, loaded,
                                       [_without(g, inert) for g in base_a["grads"]],
                                       base_a["losses"])
        err_p = tolerances.relative_error(_without(run_a["final"], inert), _without(run_b["final"], inert))
        err_l = tolerances.relative_error(run_a["losses"], run_b["losses"])
        bound_p = tol + tolerances.FORM_DRIFT_FACTOR * p_drift
        bound_l = tol + tolerances.FORM_DRIFT_FACTOR * l_drift
        err, bound = (err_p, bound_p) if err_p / bound_p >= err_l / bound_l else (err_l, bound_l)
        rows.append(_row("dp_trajectory", f"{a} vs {b} ({form})", case, dtype, err, bound,
                         f"{opt}, compiled, data-parallel, {STEPS} steps" + skip))
    return rows


def run(frameworks: tuple[str, ...], dtypes: tuple[str, ...], case_names: tuple[str, ...] | None,
        replicas: int, device: str = "cpu") -> tuple[list[Row], dict[str, Any]]:
    """The rows and, per group, what its runtime reported (backend, devices, versions)."""
    raws = run_groups(frameworks, dtypes, case_names, replicas, device)
    meta = {f"{fw} ({form})": ({"fatal": raw["fatal"]} if "fatal" in raw else
                               {"runtime": [m["runtime"] for m in raw["members"]],
                                "versions": raw["members"][0]["versions"],
                                "seconds": raw["seconds"], "port_attempts": raw["port_attempts"]})
            for (fw, form), raw in raws.items()}
    return compare(raws, dtypes, case_names, replicas), meta
