"""LSTM forecasting of a real series: monthly Mauna Loa CO2 (statsmodels' `co2` data set,
shipped inside the statsmodels wheel; nothing is downloaded).

    series     weekly CO2 (ppm) 1958-2001, averaged per month, the 5 empty months
               interpolated: 526 months
    split      chronological: forecast origins in the first 80% of the months train, the
               rest test; no training target lies in the test period
    inputs     the last `window` monthly changes y[t-k+1] - y[t-k], standardised with
               the mean and standard deviation of the training part's changes only
    targets    y[t+h] - y[t] for every horizon h at once (one output per horizon),
               each standardised with its training mean and standard deviation
    forecast   y[t] + the model's de-standardised change
    baselines  naive (last value: y[t+h] = y[t]) and seasonal naive (y[t+h] = y[t+h-12]);
               and the classical models a statistician would fit first, both statsmodels
               state-space models fitted by maximum likelihood on the training months only
               (y before the split): a seasonal ARIMA(1,1,1)(0,1,1)12 and exponential
               smoothing with additive trend and 12-month seasonality (Holt-Winters). Their
               orders are fixed, not searched. With the fitted parameters they forecast
               from every test origin t, seeing y up to t only, h months ahead.

Forecasting changes rather than levels keeps the test period's inputs inside the range
the model was trained on (the level rises out of it: 315 ppm in 1958, 370 in 2001).
Every framework gets the same windows, initial weights and batch order for a seed; the
study repeats over seeds to give each framework's seed-to-seed spread.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import LSTMSpec, OptimizerSpec
from bench.studies.fit import Snapshots, batch_order, fit, predict

if TYPE_CHECKING:
    import pandas as pd

NAME = "forecast"
SEASON = 12  # months
FULL = {"window": 24, "horizons": [1, 3, 6, 12], "test_fraction": 0.2, "hidden_size": 32,
        "epochs": 100, "batch_size": 32, "learning_rate": 3e-3, "seeds": [0, 1, 2, 3, 4]}
QUICK = {**FULL, "epochs": 50, "seeds": [0, 1, 2]}


def series() -> tuple[np.ndarray, list[str]]:
    """Monthly CO2 (ppm) and the months ("YYYY-MM"), oldest first."""
    try:
        from statsmodels.datasets import co2
    except ImportError as exc:
        raise ImportError("the forecast study reads statsmodels' co2 data set: "
                          "pip install 'fwbench[studies]'") from exc
    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return monthly.to_numpy(dtype=np.float64), [d.strftime("%Y-%m") for d in monthly.index]


def windows(y: np.ndarray, window: int, horizons: list[int], test_fraction: float) -> dict[str, Any]:
    """Inputs, targets and baselines for every forecast origin t, split in time.

    Origin t uses the changes up to y[t] and forecasts y[t+h]; origins run from `window`
    (the first with a full window of changes) to len(y) - 1 - max(horizons). An origin is
    a training one when t + max(horizons) < split, so no training target reaches the
    test months; test origins are those with t >= split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"forecast: test_fraction={test_fraction} is not valid: allowed (0, 1)")
    if not horizons or min(horizons) < 1 or window < 1:
        raise ValueError(f"forecast: window={window}, horizons={horizons}: need window >= 1 and "
                         f"horizons >= 1")
    changes = np.diff(y)  # changes[k] = y[k+1] - y[k]
    longest = max(horizons)
    split = int(round(len(y) * (1.0 - test_fraction)))
    origins = np.arange(window, len(y) - longest)
    train = origins[origins + longest < split]
    test = origins[origins >= split]
    if len(train) < 2 or len(test) < 1:
        raise ValueError(f"forecast: {len(y)} months leave {len(train)} training and "
                         f"{len(test)} test origins; shorten the window or horizons")
    # Statistics of the training part only: the changes its windows and targets can see.
    seen = changes[:split - 1]
    change_mean, change_std = seen.mean(), seen.std()
    x = np.stack([changes[t - window:t] for t in origins])[:, :, None]  # (origins, window, 1)
    x = (x - change_mean) / change_std
    ahead = np.stack([y[origins + h] - y[origins] for h in horizons], axis=1)
    in_train = np.isin(origins, train)
    target_mean, target_std = ahead[in_train].mean(axis=0), ahead[in_train].std(axis=0)
    return {"origins": origins, "train": in_train, "test": np.isin(origins, test),
            "x": x, "target": (ahead - target_mean) / target_std,
            "target_mean": target_mean, "target_std": target_std, "split": split}


# The classical models, by the name their metrics and forecasts are stored under.
CLASSICAL = {"sarima": "SARIMA(1,1,1)(0,1,1)12",
             "ets": "exponential smoothing (additive trend and seasonality)"}


@functools.lru_cache(maxsize=4)
def classical_forecasts(window: int, horizons: tuple[int, ...],
                        test_fraction: float) -> dict[str, np.ndarray]:
    """Per classical model, its forecasts of y[t+h] from every test origin t, for every
    horizon h: (test origins, horizons). Framework-free and deterministic, so computed
    once per process (about 1.5 s on a 2-core machine)."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y, _ = series()
    data = windows(y, window, list(horizons), test_fraction)
    split, origins = data["split"], data["origins"][data["test"]]
    models = {"sarima": SARIMAX(y[:split], order=(1, 1, 1), seasonal_order=(0, 1, 1, SEASON)),
              "ets": ExponentialSmoothing(y[:split], trend=True, seasonal=SEASON)}
    out = {}
    for name, model in models.items():
        with warnings.catch_warnings():  # convergence chatter; the forecasts are checked
            warnings.simplefilter("ignore")
            fitted = model.fit(disp=False)
        # the training fit's parameters, filtered over the whole series: a dynamic
        # prediction from t+1 sees y up to t only
        whole = fitted.apply(y)
        ahead = np.stack([whole.predict(start=t + 1, end=t + max(horizons), dynamic=True)
                          for t in origins])
        out[name] = ahead[:, [h - 1 for h in horizons]]
    return out


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("window", "epochs", "batch_size", "hidden_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"forecast: {key}={config[key]!r} is not valid: allowed a whole number >= 1")
    return [{"seed": s} for s in config["seeds"]]


def item_id(item: dict[str, Any]) -> str:
    return f"s{item['seed']}"


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    """Train on the training origins; RMSE (ppm) per horizon on the test origins, with the
    naive and seasonal-naive baselines' on the same origins."""
    y, months = series()
    horizons = list(config["horizons"])
    data = windows(y, config["window"], horizons, config["test_fraction"])
    spec = LSTMSpec(in_features=1, hidden_size=config["hidden_size"], num_layers=1,
                    seq_len=config["window"], out_features=len(horizons))
    params = init_params(spec, seed=item["seed"])
    x_train, t_train = data["x"][data["train"]], data["target"][data["train"]]
    run = fit(adapter, spec, params, x_train, t_train,
              OptimizerSpec("adam", config["learning_rate"]), "mse",
              batch_order(len(x_train), config["batch_size"], config["epochs"], item["seed"]),
              mode=mode, snapshots=snapshots)
    origins = data["origins"][data["test"]]
    scaled = predict(adapter, run.model, data["x"][data["test"]], mode=mode)
    forecast = y[origins][:, None] + scaled * data["target_std"] + data["target_mean"]
    metrics: dict[str, Any] = {"train_origins": int(data["train"].sum()),
                               "test_origins": int(len(origins)),
                               "final_train_loss": run.losses[-1], "train_s": run.train_s,
                               "first_step_s": run.first_step_s,
                               "median_step_ms": float(np.median(run.step_ms))}
    classical = classical_forecasts(config["window"], tuple(horizons), config["test_fraction"])
    for k, h in enumerate(horizons):
        truth = y[origins + h]
        metrics[f"rmse_h{h}"] = _rmse(forecast[:, k], truth)
        metrics[f"naive_rmse_h{h}"] = _rmse(y[origins], truth)
        metrics[f"seasonal_naive_rmse_h{h}"] = _rmse(y[origins + h - SEASON], truth)
        for name, ahead in classical.items():
            metrics[f"{name}_rmse_h{h}"] = _rmse(ahead[:, k], truth)
    # For the report's plot: per origin, its month, the last value (the naive forecast),
    # the true value h months later and the forecast of it, for every h.
    outputs = {"months": [months[t] for t in origins], "last_value": y[origins].tolist(),
               "horizons": horizons, "truth": np.stack([y[origins + h] for h in horizons], 1).tolist(),
               "forecast": forecast.tolist(),
               **{name: ahead.tolist() for name, ahead in classical.items()}}
    return {"metrics": metrics, "curves": {"loss": run.losses, "step_ms": run.step_ms},
            "outputs": outputs}


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def horizon_table(frame: "pd.DataFrame") -> "pd.DataFrame":
    """One row per (framework, horizon): mean and seed-to-seed standard deviation of the
    LSTM's test RMSE (ppm), the baselines', and the seeds that beat the naive forecast."""
    import pandas as pd

    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    rows = []
    horizons = sorted(int(c[len("rmse_h"):]) for c in ok.columns if c.startswith("rmse_h"))
    for framework, part in ok.groupby("framework", sort=False):
        for h in horizons:
            rmse = part[f"rmse_h{h}"]
            rows.append({"framework": framework, "horizon": h, "seeds": len(part),
                         "rmse_mean": rmse.mean(), "rmse_sd": rmse.std(ddof=1) if len(part) > 1 else np.nan,
                         "rmse_min": rmse.min(), "rmse_max": rmse.max(),
                         "naive_rmse": part[f"naive_rmse_h{h}"].mean(),
                         "seasonal_naive_rmse": part[f"seasonal_naive_rmse_h{h}"].mean(),
                         # studies from before the classical models have no such columns
                         **{f"{name}_rmse": part[f"{name}_rmse_h{h}"].mean()
                            if f"{name}_rmse_h{h}" in part else np.nan for name in CLASSICAL},
                         "beats_naive": int((rmse < part[f"naive_rmse_h{h}"]).sum())})
    return pd.DataFrame(rows)


def classical_verdicts(table: "pd.DataFrame") -> "pd.DataFrame":
    """Per (framework, horizon): the LSTM against the better classical model at that
    horizon - which is better, by how much (ppm and %), and whether the difference is
    larger than the LSTM's seed-to-seed standard deviation (else it is within the spread
    that the choice of seed alone gives)."""
    import pandas as pd

    rows = []
    for _, r in table.iterrows():
        scores = {name: r[f"{name}_rmse"] for name in CLASSICAL if r[f"{name}_rmse"] == r[f"{name}_rmse"]}
        if not scores:
            continue
        best = min(scores, key=scores.get)
        gap = r["rmse_mean"] - scores[best]
        sd = r["rmse_sd"]
        rows.append({"framework": r["framework"], "horizon": int(r["horizon"]),
                     "lstm_rmse": r["rmse_mean"], "lstm_sd": sd, "classical": best,
                     "classical_rmse": scores[best], "better": "lstm" if gap < 0 else best,
                     "difference": abs(gap), "difference_pct": 100 * abs(gap) / scores[best],
                     "beyond_seed_spread": bool(abs(gap) > sd) if sd == sd else None})
    return pd.DataFrame(rows)


def verdict_lines(table: "pd.DataFrame") -> list[str]:
    """The verdicts as sentences, one per horizon and winner (frameworks that agree on
    the winner share one)."""
    lines = []
    for h, part in classical_verdicts(table).groupby("horizon"):
        for better, rows in part.groupby("better", sort=False):
            r = rows.iloc[0]
            name = CLASSICAL[r["classical"]]
            spread = rows["beyond_seed_spread"]
            beyond = ("larger than" if spread.eq(True).all() else
                      "within" if spread.eq(False).all() else
                      "larger than in some frameworks only, within in others"
                      if spread.notna().any() else "unknown against (one seed)")
            lines.append(
                f"{h} month(s) ahead: {'the LSTM' if better == 'lstm' else name} is better by "
                f"{_span(rows['difference_pct'], '{:.0f}')}% "
                f"({_span(rows['difference'], '{:.3f}')} ppm): the LSTM "
                f"{_span(rows['lstm_rmse'], '{:.3f}')} ppm ({', '.join(rows['framework'])}), "
                f"{name} {r['classical_rmse']:.3f} ppm; the difference is {beyond} the LSTM's "
                f"seed-to-seed sd ({_span(rows['lstm_sd'], '{:.2g}')} ppm).")
    return lines


def _span(values: "pd.Series", fmt: str) -> str:
    """'a' or 'a-b': the range of `values` as printed."""
    low, high = fmt.format(values.min()), fmt.format(values.max())
    return low if low == high else f"{low}-{high}"


def agreement(table: "pd.DataFrame") -> "pd.DataFrame":
    """Per horizon: the largest difference between two frameworks' mean RMSE, against the
    pooled seed-to-seed standard deviation (root mean of the frameworks' variances). The
    frameworks agree where the difference is no larger than that spread."""
    import pandas as pd

    rows = []
    for h, part in table.groupby("horizon"):
        gap = part["rmse_mean"].max() - part["rmse_mean"].min()
        pooled = float(np.sqrt(np.nanmean(part["rmse_sd"] ** 2))) if part["rmse_sd"].notna().any() else np.nan
        rows.append({"horizon": h, "frameworks": len(part), "largest_gap": gap, "pooled_sd": pooled,
                     "agree": bool(gap <= pooled) if pooled == pooled else None})
    return pd.DataFrame(rows)


def summary(frame: "pd.DataFrame") -> str:
    table = horizon_table(frame)
    if table.empty:
        return "forecast: no item trained"
    fmt = lambda v: f"{v:.3f}"  # noqa: E731
    return ("test RMSE (ppm), mean and sd over seeds, against the naive last-value forecast "
            "and the classical models\n"
            + table.to_string(index=False, float_format=fmt)
            + "\n\n" + "\n".join(verdict_lines(table))
            + "\n\nframeworks agree when the largest gap between means <= pooled seed sd\n"
            + agreement(table).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
