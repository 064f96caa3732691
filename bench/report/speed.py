"""The speed sections of the report: environment, methodology, summary, failures, step
time and the rest, scaling curves, and the comparison of several runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import models, results
from bench.report.document import Report, save_figure
from bench.report.summary import compiled_speedups, merge_note, summary_lines
from bench.speed import scaling, show


def _runs(report: Report, run_dirs: Sequence[Path], out: Path, merge: bool) -> None:
    """The speed sections: environment, methodology, summary, failures, step time and the
    rest, scaling, and the comparison of several runs (unless `merge`)."""
    from bench.distributed import efficiency

    # Data-parallel cells have a section of their own (bench.report.distributed).
    every_cell = efficiency.split(results.load(list(run_dirs)))[0]
    runs = [results.read_json(Path(d) / "run.json") for d in run_dirs]
    if every_cell.empty and any(run.get("data_parallel") for run in runs):
        report.heading("Speed")
        report.text("These runs measured data-parallel training only: see Data-parallel "
                    "training below.")
        return
    # The matrix's cells make every section but the scaling curves, which also use the
    # sweep's points (other batch sizes and lengths, one process each).
    frame = matrix = scaling.split(every_cell)[0]
    _environment(report, runs, frame)
    _methodology(report, runs, frame)
    report.heading("Summary")
    several = frame["run_id"].nunique() > 1
    if several and merge:
        report.text(merge_note(run_dirs))
    if several and not merge:
        # Runs never mix: every figure, table and ratio below is within one run, and
        # each framework is labelled with its run.
        for run_id, part in frame.groupby("run_id", sort=False):
            for line in summary_lines(part) or ["no cell was measured."]:
                report.text(f"Run {run_id}: {line}")
        frame = frame.assign(framework=frame["framework"] + " (" + frame["run_id"] + ")")
    else:
        for line in summary_lines(frame) or ["No cell was measured."]:
            report.text(line)
    _failures(report, every_cell)
    _speed(report, frame, out)
    from bench.report import limits

    limits.add_section(report, run_dirs, matrix, out)
    _scaling(report, every_cell, out)
    if len(runs) > 1 and not merge:
        _comparison(report, run_dirs, out)


def _environment(report: Report, runs: list[dict], frame: Any) -> None:
    import pandas as pd

    report.heading("Runs and their environment")
    rows = []
    for run in runs:
        env = run.get("environment", {})
        part = frame[frame["run_id"] == run["run_id"]]
        rows.append({"run": run["run_id"], "created": run.get("created"),
                     "cpu": env.get("cpu"), "cores": env.get("cpu_count"),
                     "gpus": ", ".join([g.get("name", "?") for g in env.get("gpus") or []]
                                       + (env.get("unused_devices") or [])) or "none",
                     "python": env.get("python"),
                     "versions": "; ".join(sorted(set(part["versions"].dropna()))),
                     "git commit": (env.get("git_commit") or "")[:10],
                     "command": env.get("command")})
    report.table("runs", pd.DataFrame(rows))


def _methodology(report: Report, runs: list[dict], frame: Any) -> None:
    report.heading("Methodology")
    for run in runs:
        b, env = run.get("budget", {}), run.get("environment", {})
        threads = sorted({int(t) for t in frame["threads"].dropna()})
        report.text(
            f"Run {run['run_id']}: {len(run.get('cells', []))} cells x {run.get('repeats', 1)} "
            f"repeats, each repeat a fresh process, run one at a time, round-robin over the "
            f"matrix. Every framework got the same {', '.join(map(str, threads))} compute "
            f"thread(s) and {_pinning_text(env)}. "
            + _process_text(frame[frame["run_id"] == run["run_id"]])
            + "Each process builds the model "
            f"from the same canonical weights, compiles where the framework has a separate call "
            f"for it, runs a first step, then warms up for at least {b.get('warmup_steps')} "
            f"steps and {b.get('warmup_s')} s (2 steps suffice past {b.get('warmup_max_s')} s), "
            f"then times single steps for at least {b.get('min_samples')} samples and "
            f"{b.get('sample_s')} s"
            + (f" ({b.get('slow_min_samples')} samples suffice past {b.get('sample_max_s')} s)"
               if b.get("sample_max_s") else "")
            + f". Every timed step waits for the device before the clock "
            f"stops (the loss is read back). The repeats' samples are pooled. Ratios carry an "
            f"interval: the 95% bootstrap interval over the raw samples, widened by the "
            f"larger spread between the two cells' repeat medians; a difference is claimed "
            f"only when that interval excludes 1. TF32: "
            f"{'allowed' if run.get('tf32') else 'off'}. Thread and precision variables: "
            f"{_env_flags(env, threads)}."
            + (f" {scaling.describe()} This run has {len(run['sweep'])} such points."
               if run.get("sweep") else "")
            + " " + _quiet_process_text(frame[frame["run_id"] == run["run_id"]]))
    report.text("What is aligned across frameworks: the model specs, the weights, the data, "
                "the optimizer hyperparameters (every framework default that differs is set "
                "explicitly; `fwbench parity` lists them), dtype, batch size, threads. What is "
                "not: each framework's own kernels and its default compiler settings.")


def _process_text(frame: Any) -> str:
    """How the run's cell processes started and compiled, as their records say."""
    if "process" not in frame or frame["process"].isna().all():
        return "Each process imports the framework. "
    forked = frame["process"].str.startswith("forked", na=False)
    text = ("Each process was forked from a fork server that had imported the framework "
            "once per run (bench.forkserver; its import time is the cell's import_s). "
            if forked.all() else "Each process imports the framework. " if not forked.any()
            else f"{int(forked.sum())} of {len(frame)} cells' processes were forked from a "
                 "fork server that had imported the framework; the others imported it. ")
    if "preload_calls" in frame and frame["preload_calls"].notna().any():
        probed = frame[frame["preload_calls"].notna()]
        for framework, cells in probed.groupby("framework"):
            low, high = cells["preload_calls_s"].min(), cells["preload_calls_s"].max()
            took = f"{low:.1f} s" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f} s"
            text += (f"The fork server of {framework}'s compiling cells also called "
                     f"`{cells['preload_calls'].iloc[0]}` once ({took}): a probe "
                     "of the machine that every process would otherwise make before its "
                     "first compiled kernel, so its compile and first-step times leave it out. ")
    caches = sorted(set(frame["compile_cache"].dropna()) - {c for c in frame["compile_cache"].dropna()
                                                           if c.startswith("none")})
    if caches:
        cold = all(c.startswith("cold") for c in caches)
        text += ("Compile caches kept across processes (torch's Inductor): "
                 + "; ".join(caches) + (". Compile times are cold starts. " if cold
                                        else ". Compile times may include cache hits. "))
    return text


def _pinning_text(env: dict[str, Any]) -> str:
    """How the measured processes were held to their cores; runs from before the
    environment recorded it ran on Linux, pinned."""
    if env.get("affinity") is None and env.get("pinning"):
        return f"no CPU affinity ({env['pinning']})"
    return "CPU affinity"


def _quiet_process_text(frame: Any) -> str:
    """What ran in a cell's process beside its steps, as this run's records say."""
    from bench.speed import machineload, speedprobe

    versions = frame["matmul_probe_version"].dropna() if "matmul_probe_version" in frame else []
    if len(versions) and versions.min() >= 3:
        return (f"Nothing of the harness's own ran beside the timed steps: NumPy's BLAS was "
                f"held to one thread in every cell process, the machine-speed probes ran "
                f"between blocks of steps (every {speedprobe.BLOCK_S:g} s, outside the timing), "
                f"and the machine's load while a cell sampled was read from kernel counters "
                f"(a cell is flagged 'loaded' when other processes took more than "
                f"{machineload.LOADED_SHARE:.0%} of the machine or the hypervisor "
                f"{machineload.STOLEN_SHARE:.0%}).")
    if len(versions) and frame["threads"].max() > 1:
        return ("This run was measured before issue 8's fix: its matmul probe ran on NumPy's "
                "BLAS with the cell's threads, which at 2 threads or more woke a BLAS worker "
                "that spun beside the steps and slowed them (up to 1.6x on the 2-core VM).")
    return ""


def _env_flags(env: dict[str, Any], threads: list[int]) -> str:
    from bench.threads import thread_env

    # Set by the harness in every cell's environment (bench.threads), on top of what the
    # run's own environment held.
    flags = {**(env.get("variables") or {}),
             **{k: v for t in threads[:1] for k, v in thread_env(t).items()}}
    flags.setdefault("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default: oneDNN on)")
    return ", ".join(f"{k}={v}" for k, v in sorted(flags.items()))


def _failures(report: Report, frame: Any) -> None:
    import pandas as pd

    failed = frame[~frame["status"].isin(["ok"])]
    report.heading("Cells that did not measure")
    if failed.empty:
        report.text("None: every cell was measured.")
        return
    report.text(f"{len(failed)} cell(s) are not in the figures; why:")
    report.table("failed_cells", pd.DataFrame({
        "cell": failed["cell_id"], "status": failed["status"],
        "error": [show.first_line(e, 160) for e in failed["error"]]}))


def _figure_of_runs(report: Report, frame: Any) -> Any:
    """report.figure with the runs the figure's data come from at the end of its caption."""
    ids = [str(r) for r in dict.fromkeys(frame["run_id"])] if "run_id" in frame else []
    named = (f" Run{'s' if len(ids) > 1 else ''}: {', '.join(ids)}." if ids else "")
    return lambda name, caption: report.figure(name, caption + named)


def _speed(report: Report, frame: Any, out: Path) -> None:
    import pandas as pd
    import seaborn as sns

    ok = frame[frame["status"] == "ok"]
    figure = _figure_of_runs(report, ok)
    report.heading("Step time")
    if ok.empty:
        report.text("No measured cells, so no figures.")
        return
    samples = ok[["framework", "model", "mode", "samples_ms"]].explode("samples_ms").reset_index(drop=True)
    samples["ms"] = samples["samples_ms"].astype(float)
    grid = sns.catplot(data=samples, x="framework", y="ms", hue="mode", col="model", kind="bar",
                       estimator=np.median, errorbar=("pi", 50), sharey=False, height=3.2,
                       aspect=1.0)
    grid.set(yscale="log")
    grid.set_axis_labels("", "ms per training step (log)")
    save_figure(grid.figure, out, "step_time")
    figure("step_time", "Median step time per framework, model and mode; the bars "
           "span the interquartile range of the raw per-step samples.")
    table = pd.DataFrame(show.speed_rows(ok))
    report.table("speed", table)
    note = show.loaded_note(ok)
    if note:
        report.text("Warning: " + note)

    speedups = compiled_speedups(ok)
    if len(speedups):
        report.heading("Compiled over eager", 3)
        fig = _interval_plot(speedups, "speedup", "eager median / compiled median (log)")
        save_figure(fig, out, "speedup")
        figure("speedup", "Speed-up of each compiled mode over the same framework's "
               "eager mode; intervals: 95% bootstrap over the raw samples, widened by "
               "the spread between the cells' processes.")
        report.table("speedup", speedups.drop(columns="eager_ms").round(3))

    report.heading("Compile time, first step and memory", 3)
    cost = ok.melt(id_vars=["framework", "model", "mode"],
                   value_vars=[c for c in ("compile_s", "first_step_s") if c in ok],
                   var_name="what", value_name="seconds").dropna()
    grid = sns.catplot(data=cost, x="mode", y="seconds", hue="framework", col="what",
                       row="model", kind="bar", sharey=False, height=2.4, aspect=1.3)
    save_figure(grid.figure, out, "compile_first_step")
    figure("compile_first_step", "compile_s: the framework's own trace/compile call "
           "(JAX lower().compile(), TF tracing); first_step_s: the first training "
           "step, which includes any compiling the framework does lazily.")
    on_gpu = ok["device"] == "gpu"
    grid = sns.catplot(data=ok, x="framework", y="peak_mib", hue="mode", col="model",
                       kind="bar", height=3.0)
    grid.set_axis_labels("", "peak device memory (MiB)" if on_gpu.all()
                         else "peak RSS (MiB)" if not on_gpu.any()
                         else "peak MiB (device on GPU, RSS on CPU)")
    save_figure(grid.figure, out, "memory")
    gpu_caption = ("Peak device memory the framework allocated in each cell's process "
                   "(torch.cuda.max_memory_allocated, TensorFlow's get_memory_info peak, "
                   "JAX's peak_bytes_in_use).")
    figure("memory", gpu_caption if on_gpu.all()
           else "Peak resident memory of each cell's process." if not on_gpu.any()
           else "Peak memory of each cell's process: on GPU cells, the framework's "
                "device peak; on CPU cells, the process's resident memory.")
    grid = sns.catplot(data=ok.assign(gflops=ok["flops_per_s"] / 1e9), x="framework",
                       y="gflops", hue="mode", col="model", kind="bar", sharey=False,
                       height=3.0)
    grid.set_axis_labels("", "achieved GFLOP/s (analytic training FLOPs / median step)")
    save_figure(grid.figure, out, "flops")
    figure("flops", "Achieved FLOP/s: analytic training FLOPs per step over the "
           "median step time.")


def _scaling(report: Report, every_cell: Any, out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    report.heading("Scaling with batch size and sequence length", 3)
    curve_points = scaling.points(every_cell)
    ok = curve_points[curve_points["status"] == "ok"]
    figure = _figure_of_runs(report, ok)
    if ok.empty:
        report.text("This run has no scaling sweep (`fwbench run --scaling`, the default, "
                    "measures one).")
        return
    model_order = list(scaling.SCALING_AXES)
    curves = sorted(dict.fromkeys(zip(ok["model"], ok["axis"])),
                    key=lambda c: model_order.index(c[0]) if c[0] in model_order else 99)
    fig, axes = plt.subplots(2, len(curves), figsize=(3.8 * len(curves), 6.0), squeeze=False)
    palette = dict(zip(sorted(set(ok["framework"])), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for column, (model, axis) in enumerate(curves):
        part = ok[(ok["model"] == model) & (ok["axis"] == axis)]
        for (run_id, fw), line in part.groupby(["run_id", "framework"], sort=False):
            label = fw if part["run_id"].nunique() == 1 else f"{fw} {run_id}"
            x = line["value"].astype(float)
            top, bottom = axes[0][column], axes[1][column]
            top.errorbar(x, line["median_ms"], yerr=[line["median_ms"] - line["q1_ms"],
                                                     line["q3_ms"] - line["median_ms"]],
                         marker="o", capsize=3, label=label, color=palette[fw])
            bottom.plot(x, line["throughput"], marker="o", label=label, color=palette[fw])
        sizes = sorted(set(part["value"]))
        for ax, ylabel in ((axes[0][column], "ms per step (median, IQR)"),
                           (axes[1][column], "examples per second")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")  # before the formatters: setting a scale resets them
            ax.set_xticks(sizes, [str(v) for v in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            # plain numbers at 1, 2, 5 x 10^k (matplotlib's default writes 6x10^0)
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(axis.replace("_", " "))
            ax.set_ylabel(ylabel)
        axes[0][column].set_title(f"{model} ({part['mode'].iloc[0]})")
        axes[0][column].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out, "scaling")
    swept = {axis: ", ".join(k.title for k in models.KINDS.values() if k.scaling_axis == axis)
             for axis in ("batch_size", "seq_len")}
    figure("scaling", "Step time (top, median with the interquartile range of the "
           "raw samples) and throughput (bottom) against batch size for the "
           f"{swept['batch_size']} and sequence length for the {swept['seq_len']}; "
           "log-log. The preset's default point is the matrix cell; every other point "
           "is one process.")
    report.text("Exponent k: the slope of log(step time) on log(size) over the measured "
                "range. k near 0 means the step is dominated by fixed per-step costs (launch, "
                "framework overhead); k near 1 means the step time grows in proportion.")
    report.table("scaling_exponents", scaling.exponents(curve_points).round(3))
    report.table("scaling_points", curve_points.drop(columns=["error"]).round(4))


def _comparison(report: Report, run_dirs: Sequence[Path], out: Path) -> None:
    """Each run against the first, cell by cell, with `fwbench compare`'s statistics and
    default threshold (bench.compare), so the report and the CLI give the same verdicts.
    Environments may differ here (a CPU and a GPU run, two machines): the report's
    environment table shows how."""
    from bench import compare

    report.heading("Comparing runs")
    base, *others = [compare.load(d) for d in run_dirs]
    for other in others:
        report.heading(f"{other.name} against {base.name}", 3)
        try:
            # Probes (bench.speed.speedprobe) describe one machine: else compare every step.
            same_machine = not compare.environment_differences(base, other)
            table = compare.compare(base, other, allow_env_diff=True,
                                    steps=compare.DEFAULT_STEPS if same_machine else "all")
        except compare.CompareError as exc:  # e.g. no cell in both runs
            report.text(f"Not compared: {exc}.")
            continue
        counts = table["verdict"].value_counts()
        compared = table[table["verdict"].isin(["slower", "faster", "no clear change"])]
        report.text(f"{len(compared)} cells in both runs: "
                    + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("slower", "faster",
                                                                     "no clear change"))
                    + "".join(f"; {counts[v]} {v} (see detail)" for v in ("failed", "missing")
                              if counts.get(v, 0))
                    + f". Ratio: {other.name} median / {base.name} median, with the 95% "
                    f"bootstrap interval over processes and steps; a cell is slower only when "
                    f"the ratio exceeds 1 + {compare.DEFAULT_THRESHOLD:g}, the interval lies "
                    f"above 1 and a Mann-Whitney test gives p < {compare.DEFAULT_ALPHA:g} "
                    f"(faster: the mirror image), as `fwbench compare` decides. "
                    + (f"Steps compared: `--steps {compare.DEFAULT_STEPS}` (column steps)."
                       if same_machine else "The environments differ: every step is compared "
                       "as measured."))
        name = f"compare_{other.name}"
        if len(compared):  # a run that lost every cell has rows, but no ratio to draw
            fig = _interval_plot(compared.rename(columns={"ratio": "value"}), "value",
                                 f"{other.name} / {base.name} (log)")
            save_figure(fig, out, name)
            report.figure(name, f"Step time of {other.name} over {base.name} per cell, with "
                          f"intervals.")
        report.table(name, table.round(4))


def _interval_plot(frame: Any, value: str, label: str) -> Any:
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(frame["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.0), squeeze=False)
    for ax, model in zip(axes[0], models):
        part = frame[frame["model"] == model].reset_index(drop=True)
        labels = [f"{r.framework}\n{r.mode}" for r in part.itertuples()]
        ax.errorbar(range(len(part)), part[value],
                    yerr=[part[value] - part["low"], part["high"] - part[value]],
                    fmt="o", capsize=4)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(part)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_title(model)
        ax.set_ylabel(label)
    fig.tight_layout()
    return fig


