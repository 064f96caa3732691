"""`fwbench report`: from real (tiny) cells to Markdown, HTML, figures and CSV."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import adapters, cli, report, workers
from bench.speed import cells, harness, measure
from bench.speed.cells import Cell

INSTALLED = [fw for fw in ("jax", "torch", "tf") if adapters.installed(fw)]
needs_any = pytest.mark.skipif(not INSTALLED, reason="no framework installed")
QUICK = measure.Budget(warmup_steps=1, warmup_s=0.0, min_samples=5, max_samples=20,
                       sample_s=0.01)


def test_ratio_interval_claims_only_what_the_samples_support():
    rng = np.random.default_rng(0)
    a = 10 + rng.standard_normal(200)
    ratio, low, high = report.ratio_interval(a, a)
    assert ratio == 1.0 and low < 1.0 < high
    ratio, low, high = report.ratio_interval(2 * a, a)
    assert ratio == pytest.approx(2.0) and 1.5 < low < 2.0 < high < 2.5
    # the spread between processes widens it: 20% noise hides a 10% difference
    _, low, _ = report.ratio_interval(1.1 * a, a)
    assert low > 1.0
    _, low, high = report.ratio_interval(1.1 * a, a, spread=0.2)
    assert low < 1.0 < high


def _frame(rows):
    return pd.DataFrame([{"status": "ok", "repeat_spread": float("nan"), **r} for r in rows])


def test_summary_says_no_clear_difference_where_intervals_include_1():
    rng = np.random.default_rng(1)
    fast, slow = list(5 + 0.1 * rng.standard_normal(100)), list(10 + 0.1 * rng.standard_normal(100))
    frame = _frame([
        {"framework": "tf", "model": "mlp", "mode": "compiled", "median_ms": 5.0, "samples_ms": fast},
        {"framework": "jax", "model": "mlp", "mode": "compiled", "median_ms": 10.0, "samples_ms": slow},
        {"framework": "tf", "model": "lstm", "mode": "xla", "median_ms": 5.0, "samples_ms": fast},
        {"framework": "jax", "model": "lstm", "mode": "compiled", "median_ms": 5.0,
         "samples_ms": fast[::-1], "repeat_spread": 0.3},
        {"framework": "jax", "model": "attention", "mode": "eager", "median_ms": 9.0,
         "samples_ms": slow}])
    lines = report.summary_lines(frame)
    assert lines[0].startswith("mlp: tf (compiled, 5 ms/step) is fastest, 2.00x")
    assert lines[1].startswith("lstm: no clear difference between")
    assert lines[2] == "attention: only jax was measured (9 ms/step, eager)."


@needs_any
@pytest.mark.slow
def test_report_from_a_real_run_with_a_failed_cell(results_dir):
    fw = INSTALLED[0]
    matrix = [Cell(fw, "mlp", "tiny", "eager"), Cell(fw, "mlp", "tiny", "compiled"),
              Cell(fw, "lstm", "tiny", "eager")]
    sweep = cells.scaling_cells([fw], ["mlp"], "tiny")  # batch 1, 10, 20 around the default 5
    run_dir = harness.new_run(matrix, QUICK, timeout_s=120.0, tf32=False, name="rep",
                              sweep=sweep)
    harness.execute(run_dir, fault=workers.Fault("raise", "-lstm-"))
    assert cli.main(["report", "rep", "--graphs", "none", "--parity", "none"]) == 0
    out = results_dir / "report"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for section in ("Runs and their environment", "Methodology", "Summary",
                    "Cells that did not measure", "Step time", "Compiled over eager"):
        assert f"## {section}" in md or f"### {section}" in md, section
    # the failed cell is shown, with its error, not hidden
    assert "crash" in md and "injected fault" in md
    # parts that were not given say how to get them
    assert "No graph study was given or found: run `fwbench graphs`" in md
    assert "No parity results were given or found" in md
    figures = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert figures == sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert {"step_time", "speedup", "memory", "flops", "compile_first_step",
            "scaling"} <= set(figures)
    for name in figures:
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name  # not empty
    # the HTML embeds every figure and links nothing outside itself
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'(src|href)="(?!data:)', page)
    # only what ran is plotted: the speed table has the measured framework and cells only
    speed = pd.read_csv(out / "tables" / "speed.csv")
    assert set(speed["framework"]) == {fw} and set(speed["model"]) == {"mlp"}
    assert "lstm" not in set(pd.read_csv(out / "tables" / "speedup.csv")["model"])
    # the sweep's points make the scaling curve (with the matrix's default point), not the
    # step-time table
    assert len(speed) == 2
    curve = pd.read_csv(out / "tables" / "scaling_points.csv")
    assert list(curve["value"]) == [1, 5, 10, 20] and set(curve["status"]) == {"ok"}
    assert len(pd.read_csv(out / "tables" / "scaling_exponents.csv")) == 1
    assert "### Scaling with batch size and sequence length" in md
    assert "OMP_NUM_THREADS=1" in md  # the thread settings the cells ran with
    assert "Nothing of the harness's own ran beside the timed steps" in md  # issue 8
    if shutil.which("chromium"):
        _check_in_chromium(out / "report.html", out / "screenshot.png")


def _check_in_chromium(page, screenshot):
    """The HTML opens in headless Chromium without console errors, and the screenshot
    is not blank (the figures are drawn)."""
    import matplotlib.image

    proc = subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,2400",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "Failed to load" in line]
    assert not console, console
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[0] == 2400 and pixels[..., :3].std() > 0.05


def test_the_committed_reference_report_opens_in_a_browser(tmp_path):
    """The browser check on the committed reference report (the real-run test above also
    runs it on the report it renders, where Chromium is installed)."""
    if not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the "
                    "report's browser check runs where it is")
    page = Path(__file__).parent.parent / "results" / "reference" / "cpu-2core" / "report.html"
    _check_in_chromium(page, tmp_path / "screenshot.png")


def test_report_refuses_a_missing_input(results_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "nope"])
    assert exc.value.code == 2 and "nope" in capsys.readouterr().err


def test_comparing_runs_uses_compare_and_names_what_is_missing(results_dir):
    from tests.test_compare import _run

    base, new = _run(results_dir, "base", [1.0, 1.0]), _run(results_dir, "new", [1.0, 1.8], seed=1)
    report._comparison(rep := report.Report("t"), [base, new], _figures(results_dir))
    texts = [b[1] for b in rep.blocks if b[0] == "p"]
    assert texts[0].startswith("2 cells in both runs: 1 slower, 0 faster, 1 no clear change")
    table = next(b[2] for b in rep.blocks if b[0] == "table")
    assert list(table["verdict"]) == ["no clear change", "slower"]
    other = results_dir / "runs" / "other"
    other.mkdir(parents=True)
    (other / "run.json").write_text((base / "run.json").read_text())
    # a run that planned the cells and recorded none: every cell is missing, named
    report._comparison(rep := report.Report("t"), [base, other], _figures(results_dir))
    texts = [b[1] for b in rep.blocks if b[0] == "p"]
    assert texts[0].startswith("0 cells in both runs: 0 slower, 0 faster, 0 no clear change; "
                               "2 missing (see detail)")
    table = next(b[2] for b in rep.blocks if b[0] == "table")
    assert list(table["verdict"]) == ["missing", "missing"] and table["lost"].all()
    assert not [b for b in rep.blocks if b[0] == "figure"]


def _figures(folder):
    (folder / "figures").mkdir(exist_ok=True)
    return folder


def test_parity_heat_map_is_per_check_framework_and_model_and_shows_exact_failures():
    records = pd.DataFrame([
        {"check": "forward", "framework": "tf", "model": "mlp", "dtype": "float32",
         "error": 1e-7, "tolerance": 1e-5},
        {"check": "forward", "framework": "tf", "model": "mlp", "dtype": "float32",
         "error": 5e-6, "tolerance": 1e-5},  # the largest of a cell's rows is shown
        {"check": "grads", "framework": "tf vs jax", "model": "lstm", "dtype": "float32",
         "error": 2e-4, "tolerance": 1e-4},
        {"check": "roundtrip", "framework": "jax", "model": "mlp", "dtype": "float32",
         "error": 0.0, "tolerance": 0.0},
        {"check": "roundtrip", "framework": "jax", "model": "lstm", "dtype": "float32",
         "error": 1e-9, "tolerance": 0.0},  # an exact check that fails is not hidden as 0/0
        {"check": "forward", "framework": "tf", "model": "mlp", "dtype": "float64",
         "error": 1e-15, "tolerance": 1e-12}])
    heat = report.parity_heat(records)
    assert list(heat) == ["float32", "float64"]
    table = heat["float32"]
    assert list(table.columns) == ["forward | tf", "grads | tf vs jax", "roundtrip | jax"]
    assert table.loc["mlp", "forward | tf"] == pytest.approx(0.5)
    assert table.loc["lstm", "grads | tf vs jax"] == pytest.approx(2.0)
    assert table.loc["mlp", "roundtrip | jax"] == 0.0
    assert table.loc["lstm", "roundtrip | jax"] == np.inf
    assert np.isnan(table.loc["lstm", "forward | tf"])  # not run: blank, not a pass


def _parity_file(path, framework, passed=True):
    row = {"check": "forward", "framework": framework, "model": "mlp", "dtype": "float32",
           "error": 1e-7 if passed else 1e-3, "tolerance": 1e-5, "passed": passed, "note": ""}
    path.write_text(json.dumps({"schema": "fwbench.parity/1", "created": path.stem, "records": [row]}))
    return path


@needs_any
@pytest.mark.slow
def test_merged_runs_are_one_result_set_and_studies_merge(results_dir, capsys):
    fw = INSTALLED[0]
    for name, model in (("part-a", "mlp"), ("part-b", "lstm")):
        harness.execute(harness.new_run([Cell(fw, model, "tiny", "compiled")], QUICK,
                                        timeout_s=120.0, tf32=False, name=name))
    p1 = _parity_file(results_dir / "p1.json", "tf")
    p2 = _parity_file(results_dir / "p2.json", "jax", passed=False)
    assert cli.main(["report", "part-a", "part-b", "--merge", "--graphs", "none",
                     "--parity", f"{p1},{p2}"]) == 0
    assert "(merged)" in capsys.readouterr().out
    md = (results_dir / "report" / "report.md").read_text()
    assert "## Comparing runs" not in md
    assert "1 of 2 checks pass" in md and "1 check(s) failed" in md
    speed = pd.read_csv(results_dir / "report" / "tables" / "speed.csv")
    assert sorted(speed["model"]) == ["lstm", "mlp"]
    # without --merge the same two runs are compared (no cell in both)
    assert cli.main(["report", "part-a", "part-b", "--graphs", "none", "--parity", "none"]) == 0
    assert "Not compared: no cell was measured in both part-a and part-b" in \
        (results_dir / "report" / "report.md").read_text()
    with pytest.raises(SystemExit):
        cli.main(["report", "part-a", "--parity", f"{p1},{results_dir / 'gone.json'}"])
    err = capsys.readouterr().err
    assert "--parity" in err and "gone.json: no such file or folder" in err


@pytest.mark.slow
def test_a_gpu_run_reports_device_memory_and_gpu_parity(tmp_path):
    """From the committed H100 run (results/reference/gpu-h100): the memory figure is the
    frameworks' device peak, not the host process's RSS, and the parity text says where
    the checks ran."""
    ref = Path(__file__).resolve().parent.parent / "results" / "reference" / "gpu-h100"
    parity = ",".join(str(ref / f"parity_{fw}.json") for fw in ("torch", "jax"))
    assert cli.main(["report", str(ref / "run"), "--parity", parity, "--graphs", "none",
                     "--studies", "none", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "Peak device memory the framework allocated" in text
    assert "Peak resident memory" not in text
    assert "164 of 164 checks pass" in text and "on the GPU with TF32 off" in text
    frame = pd.read_csv(tmp_path / "tables" / "speed.csv")
    assert set(frame["framework"]) == {"torch", "jax"} and len(frame) == 12


def _two_mode_run(root, name, eager_ms, compiled_ms, seed):
    """A fake run of torch's tiny MLP, eager and compiled, one repeat each."""
    from tests.test_speed_units import _record

    rng = np.random.default_rng(seed)
    matrix = [Cell("torch", "mlp", "tiny", "eager"), Cell("torch", "mlp", "tiny", "compiled")]
    run_dir = root / "runs" / name
    from bench import results

    results.write_json(run_dir / "run.json", {
        "schema": harness.RUN_SCHEMA, "run_id": name, "tf32": False, "repeats": 1,
        "environment": {"cpu": "x", "cpu_count": 2}, "budget": {}, "timeout_s": 1.0,
        "cells": [c.to_dict() for c in matrix], "cell_ids": [c.id for c in matrix]})
    for cell, ms in zip(matrix, (eager_ms, compiled_ms)):
        record = _record(cell, samples=tuple(ms * (1 + 0.01 * rng.standard_normal(100))))
        record["run_id"] = name
        results.write_json(run_dir / "cells" / f"{cell.id}.r1.json", record)
    return run_dir


def test_a_report_of_several_runs_never_divides_one_run_by_another(results_dir):
    # run a: compiling pays 20x; run b: 2x. Mixed, b's compiled over a's eager gives 20x.
    a = _two_mode_run(results_dir, "a", 20.0, 1.0, seed=0)
    b = _two_mode_run(results_dir, "b", 2.0, 1.0, seed=1)
    (results_dir / "figures").mkdir(exist_ok=True)
    doc = report.Report("t")
    report._runs(doc, [a, b], results_dir, merge=False)
    speedups = next(blk[2] for blk in doc.blocks if blk[:2] == ("table", "speedup"))
    got = dict(zip(speedups["framework"], speedups["speedup"].round(1)))
    assert got == {"torch (a)": 20.0, "torch (b)": 2.0}
    captions = {blk[1]: blk[2] for blk in doc.blocks if blk[0] == "figure"}
    assert captions["step_time"].endswith("Runs: a, b.")  # every figure names its runs
    assert captions["speedup"].endswith("Runs: a, b.")
    texts = [blk[1] for blk in doc.blocks if blk[0] == "p"]
    assert any(t.startswith("Run a: mlp: only torch was measured") for t in texts)
    assert any(t.startswith("Run b: mlp: only torch was measured") for t in texts)
    # merged on request, the report says what it put together
    merged = report.Report("m")
    report._runs(merged, [a, b], results_dir, merge=True)
    assert any("Runs a, b are merged (--merge)" in blk[1] for blk in merged.blocks
               if blk[0] == "p")


def test_the_report_says_which_machine_probes_a_fork_server_made_and_that_compile_times_leave_them_out():
    from bench.report import speed as speed_report

    forked = "forked from the run's fork server (framework imported there)"
    frame = pd.DataFrame([
        {"framework": "torch", "process": forked, "compile_cache": "cold: empty folders",
         "preload_calls": "torch._inductor.cpu_vec_isa:valid_vec_isa_list", "preload_calls_s": 2.93},
        {"framework": "jax", "process": forked, "compile_cache": None, "preload_calls": None,
         "preload_calls_s": None}])
    text = speed_report._process_text(frame)
    assert ("The fork server of torch's compiling cells also called "
            "`torch._inductor.cpu_vec_isa:valid_vec_isa_list` once (2.9 s)") in text
    assert "jax's" not in text and "leave it out" in text
    assert "also called" not in speed_report._process_text(frame.drop(columns=["preload_calls"]))
