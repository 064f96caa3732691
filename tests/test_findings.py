"""The report's "What this run shows" (issue 23): statements from the data, with their
numbers, and no claim where the interval includes 1."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bench import report
from bench.report import findings
from tests.test_report import _two_mode_run


def _cells(rows):
    rng = np.random.default_rng(0)
    out = []
    for r in rows:
        samples = list(r["ms"] * (1 + r.get("noise", 0.01) * rng.standard_normal(200)))
        out.append({"status": "ok", "repeat_spread": r.get("spread", float("nan")),
                    "framework": r["fw"], "model": r["model"], "mode": r["mode"],
                    "median_ms": float(np.median(samples)), "samples_ms": samples,
                    "compile_s": r.get("compile_s"), "first_step_s": r.get("first_s", 0.01),
                    "peak_rss_mib": r.get("mib", 300.0), "error": None, "run_id": "x",
                    "cell_id": f"{r['fw']}-{r['model']}-{r['mode']}", "iqr_ms": 0.1})
    return pd.DataFrame(out)


def test_no_winner_is_claimed_where_the_intervals_overlap():
    frame = _cells([
        {"fw": "tf", "model": "lstm", "mode": "compiled", "ms": 5.0, "spread": 0.3},
        {"fw": "jax", "model": "lstm", "mode": "compiled", "ms": 5.2, "spread": 0.3}])
    lines, undecided = findings.speed_findings(frame)
    assert not any("fastest" in line for line in lines)
    assert len(undecided) == 1 and undecided[0].startswith(
        "the fastest framework for lstm (tf or jax: 1.04x [95% interval 0.")
    everything = findings.findings([("", frame)])
    assert everything[-1].startswith("Not claimed, because the interval includes 1: the "
                                     "fastest framework for lstm")


def test_a_clear_winner_is_stated_with_its_ratio_and_interval():
    frame = _cells([
        {"fw": "tf", "model": "mlp", "mode": "compiled", "ms": 5.0, "mib": 800.0},
        {"fw": "jax", "model": "mlp", "mode": "compiled", "ms": 10.0, "mib": 200.0}])
    lines, undecided = findings.speed_findings(frame)
    assert not undecided
    assert lines[0].startswith("mlp: tf is fastest (compiled, 5 ms/step), 2.00x [95% interval 1.9")
    jax_ms = frame.loc[frame["framework"] == "jax", "median_ms"].iloc[0]
    assert lines[0].endswith(f"ahead of the next, jax (compiled, {jax_ms:.3g} ms/step).")
    assert ("mlp: peak memory per process from 200 MiB (jax compiled) to 800 MiB "
            "(tf compiled), 4.0x.") in lines


def test_compiling_that_pays_and_that_never_pays_back():
    frame = _cells([
        {"fw": "torch", "model": "mlp", "mode": "eager", "ms": 20.0},
        {"fw": "torch", "model": "mlp", "mode": "compiled", "ms": 2.0, "compile_s": 1.0,
         "first_s": 0.1},
        {"fw": "torch", "model": "lstm", "mode": "eager", "ms": 4.0},
        {"fw": "torch", "model": "lstm", "mode": "compiled", "ms": 6.0, "compile_s": 5.0}])
    lines, _ = findings.speed_findings(frame)
    assert any(line.startswith("Compiling paid off in 1 of 2 compiled cells: torch mlp "
                               "(compiled, 10.0") for line in lines)
    assert any(line.startswith("torch compiled is slower than eager for lstm: 0.67x")
               and line.endswith("never pays back at this size.") for line in lines)
    # (1000 ms compile + 100 ms first step - 20 ms eager step) / (20 - 2) ms saved per step
    assert any(re.fullmatch(r"torch: compiling pays back its compile time and first step "
                            r"within 6[01] steps \(mlp compiled\)\.", line) for line in lines)


def test_retraces_remedies_control_flow_and_changed_results_are_counted():
    retrace = [{"framework": "tf", "mode": "compiled", "setting": s, "remedy": s != "default",
                "ok": True, "traces": t, "distinct_lengths": 8}
               for s, t in (("default", 8), ("reduce_retracing", 2), ("input_signature", 1))]
    control = [{"framework": "jax", "mode": "compiled", "variant": "python",
                "verdict": "fails"},
               {"framework": "torch", "mode": "compiled", "variant": "python",
                "verdict": "runs"}]
    parity_rows = [{"check": "forward", "framework": f, "model": "mlp", "dtype": "float32",
                    "passed": True} for f in ("tf", "torch vs jax", "torch")]
    modes = [{"check": "mode_forward", "framework": "torch: compiled vs eager", "model": "mlp",
              "passed": False, "error": 3e-4, "tolerance": 1e-5},
             {"check": "mode_grads", "framework": "torch: compiled vs eager", "model": "mlp",
              "passed": True, "error": 0.0, "tolerance": 1e-4}]
    lines = findings.findings([], {"retrace": retrace, "control_flow": control,
                                     "modes": modes}, parity_rows)
    assert lines == [
        "tf compiled: 8 trace(s) for 8 sequence lengths by default; reduce_retracing 2, "
        "input_signature 1 (fewest: input_signature).",
        "Data-dependent control flow, jax: 1 of 1 ways do not give the right result: "
        "compiled with python fails.",
        "Compiling changed results in 1 of 2 eager == compiled checks: torch: compiled vs "
        "eager mlp mode_forward (0.0003 > 1e-05).",
        "Parity: 3 of 3 checks pass (tf, torch, jax against the float64 NumPy reference and "
        "each other)."]


def test_the_report_opens_with_its_findings(results_dir):
    run = _two_mode_run(results_dir, "a", 20.0, 1.0, seed=0)
    out = report.build([run], None, None, results_dir / "report")
    md = (out / "report.md").read_text()
    assert md.startswith("# fwbench report\n\n## What this run shows\n")
    first = md.split("## What this run shows")[1].split("\n## ")[0]
    assert "- Compiling paid off in 1 of 1 compiled cells: torch mlp (compiled, 20.0" in first
    saved = json.loads((out / "findings.json").read_text())["findings"]
    assert saved and all(f"- {line}" in md for line in saved)
    assert "<ul><li>Compiling paid off" in (out / "report.html").read_text()


def test_compared_runs_get_findings_each_never_mixed(results_dir):
    a = _two_mode_run(results_dir, "a", 20.0, 1.0, seed=0)
    b = _two_mode_run(results_dir, "b", 2.0, 1.0, seed=1)
    out = report.build([a, b], None, None, results_dir / "report")
    saved = json.loads((out / "findings.json").read_text())["findings"]
    assert any(line.startswith("Run a: Compiling paid off in 1 of 1 compiled cells: torch mlp "
                               "(compiled, 20.0") for line in saved)
    assert any(line.startswith("Run b: Compiling paid off in 1 of 1 compiled cells: torch mlp "
                               "(compiled, 2.0") for line in saved)


def test_break_even_counts_a_compile_inside_the_first_step():
    """torch.compile has no separate compile call (compile_s NaN): its compiling is in the
    first step, and the break-even is still counted, for old graph files too."""
    from bench.graphs import study as graphstudy

    rows = [{"framework": "torch", "model": "mlp", "mode": "eager", "status": "ok",
             "median_ms": 2.0, "compile_s": float("nan"), "first_step_s": 0.01},
            {"framework": "torch", "model": "mlp", "mode": "compiled", "status": "ok",
             "median_ms": 1.0, "compile_s": float("nan"), "first_step_s": 2.5,
             "break_even_steps": None}]
    (_, compiled) = graphstudy.with_break_even(rows)
    assert compiled["break_even_steps"] == pytest.approx((2500 - 2.0) / 1.0)


def test_the_studies_headlines_are_counted_from_their_records():
    from bench.studies import sweep

    rows = []
    for fw, scale in (("tf", 1.0), ("jax", 1.1)):
        for d in (2, 10):
            for n in (10, 100):
                rows.append({"study": "genz", "study_id": "g", "item_id": f"d{d}n{n}",
                             "status": "ok", "framework": fw, "family": "gaussian", "d": d,
                             "n": n, "mean_abs_error": scale * (0.1 if n == 10 else 0.01) * d,
                             "test_std": 1.0})
        for opt, act, acc in (("sgd", "relu", 0.90), ("adam", "relu", 0.95),
                              ("adam", "tanh", 0.93)):
            rows.append({"study": "sweep", "study_id": "s", "item_id": f"{opt}-{act}",
                         "status": "ok", "framework": fw, "optimizer": opt, "activation": act,
                         "layers": sweep.BASE["layers"], "width": sweep.BASE["width"],
                         "test_accuracy": acc - (0.01 if fw == "jax" else 0.0)})
    lines = findings.study_findings(pd.DataFrame(rows))
    assert lines == [
        "Genz: the error falls from the smallest to the largest n in 4 of 4 (framework, "
        "family, d) curves, and the highest d is harder than the lowest in 4 of 4 (framework, "
        "family, n) cases; item by item the frameworks' mean |error| differs by a median of "
        "10.0% (at most 10%).",
        "Sweep (digits): the best optimizer and activation per framework: tf adam + relu "
        "(95.0%); jax adam + relu (94.0%); item by item the frameworks' test accuracy differs "
        "by a median of 1.00 points (at most 1.00)."]
