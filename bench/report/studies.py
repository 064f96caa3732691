"""The studies' sections of `fwbench report`: Genz, forecasting, architecture sweep, and
the sequence studies (their sections are in bench/report/sequences.py).

Built from bench.studies.runner.load (one row per study, framework and item) and, for the
forecast plot, the forecasts stored in the records. Each study folder given is shown; a
study kind with no folder is named with the command that makes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from bench.report.document import save_figure
from bench.studies import forecast, genz, runner, sweep

if TYPE_CHECKING:
    import pandas as pd

    from bench.report.document import Report


def add_sections(report: "Report", folders: Sequence[Path], out: Path) -> None:
    """Append a section per study kind to `report`; figures go to out/figures."""
    docs = [(folder, runner.load_study(folder))
            for p in folders for folder in runner.study_dirs(Path(p))]
    report.heading("Studies")
    report.text("Accuracy as well as speed: the course material's experiments, run through the "
                "same specs and adapters in every framework, each framework in its own process ("
                + ", ".join(f"{fw} {mode}" for fw, mode in runner.STUDY_MODES.items())
                + " unless the study says otherwise). The same seed gives every framework the "
                "same data, initial weights and batch order.")
    from bench.report import sequences

    kinds = [("genz", _genz), ("forecast", _forecast), ("sweep", _sweep)] + [
        (kind, section) for kind, (_, section) in sequences.SECTIONS.items()]
    titles = {**_TITLES, **{kind: title for kind, (title, _) in sequences.SECTIONS.items()}}
    for kind, section in kinds:
        mine = [(folder, study) for folder, study in docs if study["study"] == kind]
        part = runner.load([folder for folder, _ in mine]) if mine else None
        report.heading(titles[kind], 3)
        if part is None or part.empty:
            report.text(f"No {kind} study was given or found: run `fwbench study {kind}` "
                        f"(or `--quick`), then `fwbench report` again.")
            continue
        ids = ", ".join(sorted(set(part["study_id"])))
        failed = part[~part["status"].isin(["ok", "skipped"])]
        report.text(f"Study {ids}: {int((part['status'] == 'ok').sum())} items trained, "
                    f"{len(failed)} failed, {int((part['status'] == 'skipped').sum())} skipped. "
                    + _provenance(mine, part))
        if not failed.empty:
            report.table(f"{kind}_failures", failed[["framework", "mode", "status", "error"]]
                         .assign(error=failed["error"].map(lambda e: (e or "").splitlines()[0])))
        if (part["status"] == "ok").any():
            section(report, part[part["status"] == "ok"].copy(), out, mine)


# (study folder, its study.json), for the studies of one kind
Studies = Sequence[tuple[Path, dict[str, Any]]]


def _provenance(studies: Studies, part: "pd.DataFrame") -> str:
    """Where and how the study ran: machine, threads, commit, command, versions, modes."""
    lines = []
    for _, study in studies:
        env = study.get("environment", {})
        lines.append(f"{study['study_id']}: {'quick' if study.get('quick') else 'full'} "
                     f"configuration, {env.get('cpu')} ({env.get('cpu_count')} cores), "
                     f"{study.get('threads')} threads, Python {env.get('python')}, commit "
                     f"{_short(env.get('git_commit'))}, created {study.get('created')}, "
                     f"`{env.get('command')}`.")
    modes = part.groupby("framework", sort=False)["mode"].first()
    versions = part.dropna(subset=["versions"]).groupby("framework", sort=False)["versions"].first() \
        if "versions" in part else {}
    lines.append("Frameworks: " + "; ".join(
        f"{fw} ({mode}{', ' + versions[fw] if fw in versions else ''})" for fw, mode in modes.items())
        + ".")
    return " ".join(lines)


def _short(commit: Any) -> str:
    commit = str(commit)
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


_TITLES = {"genz": "Genz function approximation", "forecast": "LSTM forecasting of CO2",
           "sweep": "Architecture and optimizer sweep (digits)"}


def framework_gap(ok: "pd.DataFrame", value: str, relative: bool = False) -> "pd.Series":
    """Per item trained by two frameworks or more: the largest minus the smallest `value`
    (divided by the smallest where `relative`). Same item, same seed: same data, initial
    weights and batches, so the gap is what float32 rounding and the frameworks' kernels
    make of the training trajectory."""
    by_item = ok.groupby(["study_id", "item_id"])[value] if "item_id" in ok else None
    if by_item is None:
        return ok.iloc[0:0][value]
    spread = by_item.agg(lambda v: (v.max() - v.min()) / (v.min() if relative else 1.0)
                         if len(v) > 1 else np.nan)
    return spread.dropna()


def _gap_text(gap: "pd.Series", what: str, fmt: str) -> str:
    if gap.empty:
        return ""
    return (f" Between frameworks, item by item, {what} differs by a median of "
            f"{format(gap.median(), fmt)} and at most {format(gap.max(), fmt)} "
            f"({len(gap)} items).")


# --- Genz ----------------------------------------------------------------------------
def genz_checks(ok: "pd.DataFrame") -> dict[str, tuple[int, int, list[str]]]:
    """The expected qualitative results, counted: (holds, cases, where it does not hold).

    falls_with_n: per framework, family and d, the mean |error| at the largest n is below
    that at the smallest n. harder_in_high_d: per framework, family and n, the mean |error|
    relative to the test values' standard deviation is higher in the highest d than in the
    lowest. Relative there, because several families' values shrink with d (product peak
    ~1e-3 in 10 d), and their absolute errors with them; a family whose test values are
    all equal (no spread) has no relative error and is left out of that count.
    Exceptions are named "family d=.. (frameworks)" and "family n=.. (frameworks)"."""
    ok = ok.assign(relative_error=ok["mean_abs_error"] / ok["test_std"].where(ok["test_std"] > 0))
    absolute = ok.groupby(["framework", "family", "d", "n"])["mean_abs_error"].mean().dropna()
    relative = ok.groupby(["framework", "family", "d", "n"])["relative_error"].mean().dropna()

    def count(series: "pd.Series", fixed: str, varied: str, holds: Any) -> tuple[int, int, list[str]]:
        good = cases = 0
        misses: dict[str, list[str]] = {}
        for (framework, family, value), curve in series.groupby(level=["framework", "family", fixed]):
            steps = curve.index.get_level_values(varied)
            if steps.nunique() < 2:
                continue
            cases += 1
            high, low = (curve.xs(steps.max(), level=varied).iloc[0],
                         curve.xs(steps.min(), level=varied).iloc[0])
            if holds(high, low):
                good += 1
            else:
                misses.setdefault(f"{family} {fixed}={value:g}", []).append(framework)
        return good, cases, [f"{k} ({', '.join(v)})" for k, v in misses.items()]

    return {"falls_with_n": count(absolute, "d", "n", lambda high, low: high < low),
            "harder_in_high_d": count(relative, "n", "d", lambda high, low: high > low)}


def _genz(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    checks = genz_checks(ok)
    f_hold, f_all, f_miss = checks["falls_with_n"]
    h_hold, h_all, h_miss = checks["harder_in_high_d"]
    report.text(f"The MLP ({len(genz.HIDDEN)} x {genz.HIDDEN[0]} {genz.ACTIVATION}, full-batch "
                f"Adam {genz.LEARNING_RATE:g}) learns each of the six Genz families from n uniform "
                f"points in [0, 1]^d; errors on {genz.TEST_POINTS} uniform test points, in the "
                f"function's units. Error falls from the smallest to the largest n in {f_hold} of "
                f"{f_all} (framework, family, d) curves"
                + (f" (not in: {'; '.join(f_miss)})" if f_miss else "")
                + f". Relative to the test values' standard deviation, the highest d is harder "
                f"than the lowest in {h_hold} of {h_all} (framework, family, n) cases"
                + (f" (not in: {'; '.join(h_miss)})" if h_miss else "")
                + ". With sum(w) = 1 the "
                "discontinuous family's non-zero corner (x1 < w1, x2 < w2) shrinks as d grows: "
                "in 10 d it holds a few training points and no test point, so more training "
                "points there teach the network bumps that the test set sees as error."
                + _gap_text(framework_gap(ok, "mean_abs_error", relative=True),
                            "the mean |error| (relative to the smallest)", ".2%"))
    for metric, label in (("mean_abs_error", "mean |error|"), ("max_abs_error", "max |error|")):
        grid = sns.relplot(data=ok, x="n", y=metric, hue="framework", style="framework",
                           row="family", col="d", kind="line", marker="o", errorbar=None,
                           height=1.9, aspect=1.35, facet_kws={"sharey": False, "margin_titles": True})
        grid.set(xscale="log", yscale="log")
        grid.set_axis_labels("training points n", label)
        save_figure(grid.figure, out, f"genz_{metric}")
        report.figure(f"genz_{metric}", f"Genz: {label} on the test points against the number of "
                      f"training points, per family (rows) and dimension (columns), per framework.")
    table = ok.pivot_table(index=["family", "d", "n"], columns="framework",
                           values=["mean_abs_error", "max_abs_error"], aggfunc="mean")
    table.columns = [f"{fw} {m.replace('_abs_error', '')}" for m, fw in table.columns]
    report.table("genz_errors", table.reset_index())
    plt.close("all")


# --- forecasting ---------------------------------------------------------------------
def _forecast(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt

    table = forecast.horizon_table(ok)
    agree = forecast.agreement(table)
    beats = bool((table["beats_naive"] == table["seeds"]).all())
    all_agree = bool(agree["agree"].fillna(False).all())
    config = studies[0][1]["config"]
    horizons = ", ".join(map(str, config["horizons"]))
    report.text(f"An LSTM (1 layer of {config['hidden_size']}) forecasts monthly Mauna Loa CO2 "
                f"(statsmodels' co2, 1958-2001) {horizons} months ahead from the last "
                f"{config['window']} monthly changes, trained for {config['epochs']} epochs; "
                f"chronological split (last {config['test_fraction']:.0%} of the months for "
                f"testing), statistics from the training part only. RMSE in ppm on the test "
                f"origins, mean and seed-to-seed sd over {int(table['seeds'].max())} seeds. "
                f"Beats the naive last-value forecast with every seed in every framework at "
                f"every horizon: {'yes' if beats else 'no'}. "
                f"The frameworks' mean RMSEs lie within the pooled seed-to-seed sd of each other "
                f"at every horizon: {'yes' if all_agree else 'no'}."
                + _gap_text(framework_gap(ok, f"rmse_h{int(table['horizon'].max())}"),
                            f"the {int(table['horizon'].max())}-month RMSE (ppm)", ".2g"))
    verdicts = forecast.verdict_lines(table)
    if verdicts:
        report.text(f"Against the classical models, {' and '.join(forecast.CLASSICAL.values())} "
                    f"(statsmodels, fitted on the training months only, forecasting from every "
                    f"test origin with what was known there), per horizon:")
        for line in verdicts:
            report.text(line)
    else:
        report.text("This study predates the classical baselines (SARIMA, exponential "
                    "smoothing): run it again to compare the LSTM with them.")
    report.table("forecast_rmse", table)
    report.table("forecast_classical", forecast.classical_verdicts(table))
    report.table("forecast_agreement", agree)
    series = _forecast_series(studies)
    if series:
        horizons = series[0][1]["horizons"]
        shown = [h for h in (horizons[0], horizons[-1])]
        fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
        for ax, h in zip(axes[:, 0], shown):
            k = horizons.index(h)
            first = series[0][1]
            months = np.array(first["months"], dtype="datetime64[M]") + np.timedelta64(h, "M")
            ax.plot(months, np.asarray(first["truth"])[:, k], color="black", lw=2, label="truth")
            ax.plot(months, first["last_value"], color="grey", ls=":", label="naive (last value)")
            for name, title in forecast.CLASSICAL.items():
                if name in first:  # studies from before the classical models lack them
                    ax.plot(months, np.asarray(first[name])[:, k], lw=1, ls="--",
                            label=title.split(" (")[0])
            for framework, outputs, _ in series:
                ax.plot(months, np.asarray(outputs["forecast"])[:, k], lw=1, label=framework)
            ax.set_title(f"{h} month(s) ahead, seed {series[0][2]}")
            ax.set_ylabel("CO2 (ppm)")
            ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, out, "forecast")
        report.figure("forecast", "CO2 forecasts on the test months against the truth, at the "
                      "shortest and longest horizon: the LSTM (one seed, every framework) "
                      "and the classical models.")


def _forecast_series(studies: Studies) -> list[tuple[str, dict[str, Any], int]]:
    """(framework, stored forecasts, seed) of the lowest seed each framework finished, from
    the first study that has any."""
    found = []
    for folder, study in studies:
        for framework in study["frameworks"]:
            done = [r for r in runner.read_records(folder, framework)
                    if r["status"] == "ok" and r.get("outputs")]
            if done:
                first = min(done, key=lambda r: r["item"]["seed"])
                found.append((framework, first["outputs"], first["item"]["seed"]))
        if found:
            return found
    return found


# --- sweep ---------------------------------------------------------------------------
def _sweep(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    frameworks = list(dict.fromkeys(ok["framework"]))
    report.text("The MLP on scikit-learn's digits (1,438 training, 359 test images, a fixed "
                "stratified split): test accuracy, mean over seeds. Learning rate per optimizer, "
                "the same in every framework: "
                + ", ".join(f"{k} {v:g}" for k, v in sweep.LEARNING_RATES.items()) + "."
                + _gap_text(100 * framework_gap(ok, "test_accuracy"),
                            "the test accuracy (percentage points)", ".2f"))
    for grid, rows, cols, title in (("activation_optimizer", "optimizer", "activation",
                                     f"{sweep.BASE['layers']} layers of {sweep.BASE['width']}"),
                                    ("depth_width", "layers", "width",
                                     f"{sweep.BASE['activation']} and {sweep.BASE['optimizer']}")):
        table = sweep.grid_table(ok, grid, rows, cols)
        if table.empty:
            continue
        fig, axes = plt.subplots(1, len(frameworks), figsize=(4.2 * len(frameworks), 3.6),
                                 squeeze=False)
        for ax, fw in zip(axes[0], frameworks):
            if fw not in table.columns.get_level_values(0):
                continue
            # One colour scale for every panel: the grid's lowest to highest accuracy.
            sns.heatmap(100 * table[fw], ax=ax, annot=True, fmt=".1f", cmap="viridis",
                        vmin=100 * np.nanmin(table.to_numpy()),
                        vmax=100 * np.nanmax(table.to_numpy()), cbar=False)
            ax.set_title(f"{fw}: test accuracy (%)")
        fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, out, f"sweep_{grid}")
        report.figure(f"sweep_{grid}", f"Digits test accuracy (%), {rows} x {cols}, per "
                      f"framework ({title}); mean over seeds.")
        flat = table.stack(level=1, future_stack=True).reset_index()
        report.table(f"sweep_{grid}", flat)
    best = (ok[(ok["layers"] == sweep.BASE["layers"]) & (ok["width"] == sweep.BASE["width"])]
            .groupby(["framework", "optimizer", "activation"])["test_accuracy"].mean())
    lines = []
    for fw in frameworks:
        if fw in best.index.get_level_values(0):
            (opt, act), acc = best[fw].idxmax(), best[fw].max()
            lines.append(f"{fw} {opt} + {act} ({100 * acc:.1f}%)")
    if lines:
        report.text("Best optimizer and activation per framework: " + "; ".join(lines) + ".")
    base = ok[(ok["layers"] == sweep.BASE["layers"]) & (ok["width"] == sweep.BASE["width"])]
    for factor, other in (("optimizer", "activation"), ("activation", "optimizer")):
        marginal = base.pivot_table(index=factor, columns="framework", values="test_accuracy",
                                    aggfunc="mean")
        if marginal.empty:
            continue
        marginal = (100 * marginal[[f for f in frameworks if f in marginal.columns]])
        marginal = marginal.sort_values(marginal.columns[0], ascending=False).reset_index()
        report.text(f"Test accuracy (%) per {factor}, averaged over {other}s and seeds:")
        report.table(f"sweep_by_{factor}", marginal)
    times = ok.groupby("framework", sort=False).agg(
        items=("test_accuracy", "size"), median_step_ms=("median_step_ms", "median"),
        median_first_step_s=("first_step_s", "median"), median_train_s=("train_s", "median"),
        mean_test_accuracy=("test_accuracy", "mean"),
        mode=("mode", "first")).reset_index()
    report.text("Time per framework: the median step (ms, the loss read back every step), "
                "the first step (s, where tf.function traces and jax.jit compiles each new "
                "model) and the whole training of one item (s), each in the mode shown.")
    report.table("sweep_time", times)
