"""The speed comparison table printed by `fwbench run` and `fwbench show`.

Built from `results.load()`'s DataFrame only, like every report, so what is printed is
what is stored.
"""

from __future__ import annotations

import math
from typing import Any

COLUMNS = ("framework", "model", "mode", "median ms", "IQR ms", "p95 ms", "n", "spread",
           "samples/s",
           "GFLOP/s", "vs eager", "compile s", "1st step s", "peak MiB", "status")
# A data-parallel run's cells differ in replicas, global batch and cores (bench.distributed)
DP_COLUMNS = (*COLUMNS[:3], "replicas", "batch", "threads", *COLUMNS[3:])


def _num(x: Any, digits: int = 3) -> str:
    """Numbers to `digits` significant figures; missing values as '-'."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10**digits:
        return f"{int(x)}"
    return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:.0f}"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def first_line(text: Any, width: int = 70) -> str:
    """The first line of an error text, cut to `width` characters."""
    return str(text).strip().splitlines()[0][:width] if text else ""


def _group_of(r: Any) -> dict[str, str]:
    """A cell's replicas, global batch and cores, as DP_COLUMNS shows them."""
    replicas = r.get("replicas")
    return {"replicas": "-" if _missing(replicas) else str(int(replicas)),
            "batch": _num(r.get("batch_size")), "threads": _num(r.get("threads"))}


def speed_rows(frame: "pandas.DataFrame") -> list[dict[str, str]]:  # noqa: F821
    """One row per cell: step-time statistics, throughput, FLOP/s and the speed-up of the
    mode over the same framework and model's eager cell (eager median / this median)."""
    rows = []
    keys = ["run_id", "framework", "model", "device", "dtype", "batch_size", "seq_len", "threads",
            "replicas"]
    def key(r: Any) -> tuple:
        return tuple(None if _missing(r.get(k)) else r.get(k) for k in keys)  # NaN != NaN

    ok = frame[frame["status"] == "ok"]
    eager = {key(r): r["median_ms"] for _, r in ok[ok["mode"] == "eager"].iterrows()}
    for _, r in frame.iterrows():
        if r["status"] != "ok":
            rows.append({**{c: "-" for c in DP_COLUMNS}, "framework": r["framework"],
                         "model": r["model"], "mode": r["mode"], **_group_of(r),
                         "status": f"{r['status']}: {first_line(r['error'])}"})
            continue
        base = eager.get(key(r))
        rows.append({
            "framework": r["framework"], "model": r["model"], "mode": r["mode"], **_group_of(r),
            "median ms": _num(r["median_ms"]), "IQR ms": _num(r["iqr_ms"], 2),
            "p95 ms": _num(r["p95_ms"]), "n": _num(int(r["samples"])),
            # between the repeats' medians, as a share of the median (- with one repeat)
            "spread": (f"{100 * r['repeat_spread']:.0f}%" if r.get("repeats", 1) > 1
                       and not _missing(r.get("repeat_spread")) else "-"),
            "samples/s": _num(r["throughput"]), "GFLOP/s": _num(r["flops_per_s"] / 1e9),
            "vs eager": f"{base / r['median_ms']:.2f}x" if base else "-",
            "compile s": _num(r.get("compile_s")), "1st step s": _num(r["first_step_s"]),
            "peak MiB": _num(r["peak_mib"], 4),
            "status": ok_status(r),
        })
    return rows


def ok_status(r: Any) -> str:
    """'ok', or 'ok, loaded k/n' where k of the cell's n processes sampled while other
    processes or the hypervisor took more of the machine than bench.speed.machineload allows:
    their step times include that load (records from before the counters say 'ok')."""
    loaded = r.get("loaded_repeats")
    if _missing(loaded) or not loaded:
        return "ok"
    return f"ok, loaded {int(loaded)}/{int(r.get('repeats_ok') or r.get('repeats') or 1)}"


def loaded_note(frame: "pandas.DataFrame") -> str | None:  # noqa: F821
    """A sentence naming the measured cells that sampled on a loaded machine, or None."""
    if "loaded_repeats" not in frame:
        return None
    loaded = frame[(frame["status"] == "ok") & (frame["loaded_repeats"].fillna(0) > 0)]
    if loaded.empty:
        return None
    from bench.speed import machineload

    other, steal = loaded["load_other_cpu_share"].max(), loaded["load_steal_share"].max()
    names = ", ".join(f"{r.framework}/{r.model}/{r.mode}" for r in loaded.itertuples())
    return (f"{len(loaded)} cell(s) sampled while other processes used more than "
            f"{machineload.LOADED_SHARE:.0%} of the machine's CPU time or the hypervisor took "
            f"more than {machineload.STOLEN_SHARE:.0%} of it (at worst {other:.0%} and "
            f"{steal:.0%}): {names}. Their step times include that load; measure them again "
            f"on a quiet machine.")


SCALING_COLUMNS = ("framework", "model", "axis", "sizes", "median ms", "status")


def scaling_rows(curve_points: "pandas.DataFrame") -> list[dict[str, str]]:  # noqa: F821
    """One row per curve (bench.speed.scaling.points): size=median ms at each point, in order."""
    rows = []
    for (fw, model, axis), part in curve_points.groupby(["framework", "model", "axis"],
                                                        sort=False):
        bad = part[part["status"] != "ok"]
        rows.append({"framework": fw, "model": model, "axis": axis,
                     "sizes": ",".join(str(v) for v in part["value"]),
                     "median ms": "  ".join(_num(r.median_ms) if r.status == "ok" else "-"
                                            for r in part.itertuples()),
                     "status": "ok" if bad.empty else
                     f"{bad['status'].iloc[0]} at {bad['value'].iloc[0]}: "
                     f"{first_line(bad['error'].iloc[0], 50)}"})
    return rows


def describe_cells(frame: "pandas.DataFrame") -> str:  # noqa: F821
    """One line saying what the table's cells share: preset, device, dtype, batch, threads."""
    parts = []
    for column in ("preset", "device", "dtype", "threads"):
        values = sorted({str(v) for v in frame[column].dropna()})
        parts.append(f"{column} {'/'.join(values)}")
    per_model = frame.groupby("model")[["batch_size", "seq_len"]].first()
    shapes = ", ".join(f"{m} b{int(r.batch_size)}" + (f" T{int(r.seq_len)}"
                                                       if r.seq_len == r.seq_len and r.seq_len
                                                       else "")
                       for m, r in per_model.iterrows())
    return "; ".join(parts) + f"; {shapes}"


def graph_tables(tables: dict[str, list[dict[str, Any]]]) -> list[tuple[str, list[dict], list[str]]]:
    """The static-vs-dynamic study's tables as (title, rows, columns) for printing."""
    out = []
    if "compile" in tables:
        rows = [{"framework": r["framework"], "model": r["model"], "mode": r["mode"],
                 "compile s": _num(r["compile_s"]), "1st step s": _num(r["first_step_s"]),
                 "median ms": _num(r["median_ms"]),
                 "vs eager": f"{r['speedup_vs_eager']:.2f}x" if r["speedup_vs_eager"] else "-",
                 "break-even steps": _num(r["break_even_steps"]),
                 "status": r["status"] if r["status"] == "ok"
                 else f"{r['status']}: {first_line(r['error'], 60)}"} for r in tables["compile"]]
        out.append(("Cost of compiling (harness cells; compile s: the framework's own "
                    "trace/compile call where it has one)", rows,
                    ["framework", "model", "mode", "compile s", "1st step s", "median ms",
                     "vs eager", "break-even steps", "status"]))
    if "retrace" in tables:
        rows = []
        for r in tables["retrace"]:
            row = {"framework": r["framework"], "mode": r["mode"], "setting": r["setting"]}
            if not r["ok"]:
                label = "skipped: " if r.get("skipped") else "ERROR: "
                rows.append({**row, "status": label + first_line(r["error"], 80)})
                continue
            passes = r["steps"] // max(r["distinct_lengths"], 1)
            rows.append({**row, "lengths": f"{r['distinct_lengths']} x{passes}",
                         "traces": _num(r["traces"]), "retraces": _num(r["retraces"]),
                         "compiles": _num(r["compiles"]), "slow steps": _num(r["slow_steps"]),
                         "total s": _num(r["total_s"]),
                         "steady ms": _num(r["steady_ms"]),
                         "padded to": ",".join(map(str, r["padded_lengths"]))
                         if r["setting"] == "buckets" else "-",
                         "status": "ok"})
        out.append(("Retracing on new sequence lengths (traces: the framework's own counter; "
                    "slow steps: > 20x the steady step)", rows,
                    ["framework", "mode", "setting", "lengths", "traces", "retraces", "compiles",
                     "slow steps", "total s", "steady ms", "padded to", "status"]))
    if "control_flow" in tables:
        rows = [{"framework": r["framework"], "mode": r["mode"], "variant": r["variant"],
                 "verdict": r["verdict"], "ms": _num(r.get("median_ms")),
                 "traces": _num(r.get("traces")), "detail": first_line(r["detail"], 90)}
                for r in tables["control_flow"]]
        out.append(("Data-dependent control flow (loss and gradients vs a float64 reference on "
                    "inputs taking both branches and 0-4 loop trips; ms: one loss-and-gradient "
                    "call)", rows,
                    ["framework", "mode", "variant", "verdict", "ms", "traces", "detail"]))
    if "modes" in tables:
        rows = [{"check": r["check"], "framework": r["framework"], "model": r["model"],
                 "dtype": r["dtype"], "max error": _num(r["error"], 2),
                 "tolerance": _num(r["tolerance"], 2), "pass": "yes" if r["passed"] else "NO",
                 "note": first_line(r["note"], 50)} for r in tables["modes"]]
        out.append(("Eager == compiled (each mode against the framework's default mode)", rows,
                    ["check", "framework", "model", "dtype", "max error", "tolerance", "pass",
                     "note"]))
    return out
