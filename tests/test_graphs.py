"""The static-vs-dynamic study (bench/graphs/__init__.py, bench/graphs/study.py, impls/*/graphs.py).

Framework-free tests pin the control-flow problem, its float64 reference and the
verdict rules; per-framework tests run the workers' functions on the tiny preset and
check what the frameworks' own counters report. Nothing here asserts a duration."""

import dataclasses
import importlib
import json

import numpy as np
import pandas as pd
import pytest

from bench import adapters, canonical, cli, data, graphs, parity, results, spec, tolerances, workers
from bench.graphs import study as graphstudy
from bench.spec import preset
from tests.conftest import FRAMEWORKS

# Fastest through the whole study first (torch.compile takes seconds per graph).
INSTALLED = [fw for fw in ("jax", "tf", "torch") if adapters.installed(fw)]
needs_any = pytest.mark.skipif(not INSTALLED, reason="no framework installed")


# --- framework-free -----------------------------------------------------------------------
def test_bucket_is_the_next_power_of_two():
    assert [graphs.bucket(n) for n in (1, 8, 9, 16, 17, 32, 33)] == [8, 8, 16, 16, 32, 32, 64]
    with pytest.raises(ValueError, match="length 0"):
        graphs.bucket(0)


def test_retrace_order_feeds_every_length_every_pass():
    order = graphs.retrace_order()
    assert len(set(graphs.RETRACE_LENGTHS)) >= 8  # the bar: at least 8 shapes
    assert sorted(order) == sorted(list(graphs.RETRACE_LENGTHS) * graphs.RETRACE_PASSES)
    first = order[:len(graphs.RETRACE_LENGTHS)]
    assert sorted(first) == sorted(graphs.RETRACE_LENGTHS)  # each pass has all of them
    assert order == graphs.retrace_order()  # seeded


def test_retrace_specs_leave_room_for_the_padded_lengths():
    spec, _ = graphs.retrace_specs("tiny", "attention", [5, 30])
    assert spec.seq_len == 32 and preset("tiny", "attention")[0].seq_len < 32


def test_control_flow_inputs_cover_both_branches_and_several_trip_counts():
    problem = graphs.control_flow_problem()
    refs = [graphs.control_flow_reference(problem, x) for x in problem.inputs]
    assert {r["branch"] for r in refs} == {"relu", "tanh"}
    trips = {r["halvings"] for r in refs}
    assert 0 in trips and len(trips) >= 3
    assert max(trips) < graphs.CF_MAX_HALVINGS  # the bounded rewrites can reach them
    # No comparison sits within 1% of a flip, so float32 rounding cannot change a path.
    for x, r in zip(problem.inputs, refs):
        h = x @ problem.w1
        assert abs(h.mean()) > 1e-2 * np.abs(h).mean()
        a = graphs._activate(h)
        norms = [np.linalg.norm(a) * 2.0**-k for k in range(r["halvings"] + 1)]
        assert all(abs(n / problem.tau - 1) > 0.01 for n in norms)


def test_control_flow_reference_gradients_match_finite_differences():
    problem = graphs.control_flow_problem()
    for x in problem.inputs:
        ref = graphs.control_flow_reference(problem, x)
        for name in ("w1", "w2"):
            weights = getattr(problem, name)
            rng = np.random.default_rng(0)
            for _ in range(5):
                i = tuple(rng.integers(0, s) for s in weights.shape)
                h = 1e-6
                shifted = []
                for sign in (1, -1):
                    w = weights.copy()
                    w[i] += sign * h
                    p = dataclasses.replace(problem, **{name: w})
                    # the path (branch, trips) is held fixed, as the gradient assumes
                    shifted.append(graphs.control_flow_reference(
                        p, x, ref["branch"], ref["halvings"])["loss"])
                fd = (shifted[0] - shifted[1]) / (2 * h)
                assert fd == pytest.approx(ref[f"grad_{name}"][i], rel=1e-5, abs=1e-9)


def _outputs(problem, force_first=False, scale_w1_on=None):
    first = graphs.control_flow_reference(problem, problem.inputs[0])
    outs = []
    for k, x in enumerate(problem.inputs):
        r = (graphs.control_flow_reference(problem, x, first["branch"], first["halvings"])
             if force_first else graphs.control_flow_reference(problem, x))
        out = {"loss": r["loss"], "grad_w1": r["grad_w1"].astype(np.float32),
               "grad_w2": r["grad_w2"].astype(np.float32)}
        if k == scale_w1_on:
            out["grad_w1"] = out["grad_w1"] * 0.5
        outs.append(out)
    return outs


def test_verdicts():
    problem = graphs.control_flow_problem()
    assert graphs.verdict(problem, {"error": None, "outputs": _outputs(problem)})[0] == "runs"
    assert graphs.verdict(problem, {"error": None, "outputs": _outputs(problem),
                                    "graph_breaks": 2})[0] == "graph breaks (2)"
    what, err, detail = graphs.verdict(problem, {"error": None,
                                                 "outputs": _outputs(problem, force_first=True)})
    assert what == "silently specialises" and err > 0.1 and "input 1" in detail
    what, _, detail = graphs.verdict(problem, {"error": None,
                                               "outputs": _outputs(problem, scale_w1_on=4)})
    assert what == "wrong results" and "input 4" in detail and "input 1" not in detail
    what, err, detail = graphs.verdict(problem, {"error": "TracerBoolConversionError: x"})
    assert what == "fails" and err != err and detail.startswith("TracerBool")


def test_retrace_row_reads_the_counter_per_step():
    steps = [{"length": n, "padded_to": n, "seconds": s, "traces": t} for n, s, t in
             [(4, 1.0, 1), (5, 0.9, 2), (4, 0.01, 2), (5, 0.012, 2), (4, 0.011, 2)]]
    row = graphstudy.retrace_row("tf", "compiled", "default", "tf.function(step)", "lstm",
                                 {"ok": True, "result": {"steps": steps, "traces": 2,
                                                         "counter": "c"}})
    assert row["traces"] == 2 and row["retraces"] == 1 and row["tracing_steps"] == 2
    assert row["tracing_steps_s"] == pytest.approx(1.9)
    assert row["steady_ms"] == pytest.approx(11.0) and row["slow_steps"] == 2
    assert row["distinct_lengths"] == 2 and not row["remedy"]
    failed = graphstudy.retrace_row("tf", "xla", "default", "w", "lstm",
                                    {"ok": False, "error": "boom"})
    assert not failed["ok"] and failed["error"] == "boom"


def test_compile_rows_speedup_and_break_even():
    frame = pd.DataFrame([
        {"framework": "jax", "model": "mlp", "mode": "eager", "status": "ok", "error": None,
         "median_ms": 100.0, "iqr_ms": 1.0, "first_step_s": 2.0, "compile_s": None,
         "compile_api": None, "run_id": "r", "cell_id": "a"},
        {"framework": "jax", "model": "mlp", "mode": "compiled", "status": "ok", "error": None,
         "median_ms": 2.0, "iqr_ms": 0.1, "first_step_s": 0.05, "compile_s": 0.5,
         "compile_api": "lower().compile()", "run_id": "r", "cell_id": "b"},
        {"framework": "tf", "model": "mlp", "mode": "xla", "status": "crash", "error": "E",
         "median_ms": float("nan"), "iqr_ms": float("nan"), "first_step_s": float("nan"),
         "compile_s": None, "compile_api": None, "run_id": "r", "cell_id": "c"}])
    rows = graphstudy.compile_rows(frame)
    assert rows[1]["speedup_vs_eager"] == pytest.approx(50.0)
    # 550 ms up front, less the 100 ms eager step it replaces, repaid at 98 ms a step
    assert rows[1]["break_even_steps"] == pytest.approx(450 / 98)
    assert rows[0]["break_even_steps"] is None and rows[2]["median_ms"] is None
    assert graphstudy.failures({"tables": {"compile": rows}}) == ["compile cell c: crash"]


def test_failures_ignore_findings_and_skips():
    tables = {"control_flow": [{"ok": True, "verdict": "fails", "framework": "jax"}],
              "retrace": [{"ok": False, "skipped": True, "error": "JAX is not installed; ...",
                           "framework": "jax", "mode": "compiled", "setting": "default"}],
              "modes": [{"passed": False, "note": "error: boom", "check": "mode_forward",
                         "framework": "tf: xla", "model": "mlp", "dtype": "float32"}]}
    assert graphstudy.failures({"tables": tables}) == [
        "modes mode_forward tf: xla mlp float32: error: boom"]
    assert graphstudy.failures({"tables": {}, "errors": {"retrace": "OSError: disk\ntb"}}) == [
        "part retrace: OSError: disk"]


def test_bad_flags_exit_2_before_anything_runs(results_dir, capsys):
    for flags, message in ((["--parts", "compile,bogus"], "bogus"),
                           (["--retrace-model", "mlp"], "sequence model"),
                           (["--frameworks", "mxnet"], "mxnet"),
                           (["--parity-dtypes", "float16"], "float16"),
                           (["--preset", "huge"], "huge"),
                           (["--name", "../g"], "graph study name '../g' is not allowed")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["graphs", *flags])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    assert not (results_dir / "graphs").exists()


def test_a_framework_that_is_not_installed_is_a_skipped_row(tmp_path, monkeypatch):
    monkeypatch.setattr(adapters, "installed", lambda fw: False)
    out = graphs.run_job("jax", "retrace", {"threads": 1}, tmp_path, "x", 10)
    assert not out["ok"] and out["skipped"] and "pip install 'fwbench[jax]'" in out["error"]


@needs_any
@pytest.mark.slow
def test_a_crashing_or_hanging_worker_becomes_an_error_row(tmp_path):
    fw = INSTALLED[0]
    out = graphs.run_job(fw, "no_such_task", {"threads": 1}, tmp_path, "crash", 120)
    assert not out["ok"] and "AttributeError" in out["error"] and "no_such_task" in out["error"]
    # a worker that hangs (forked from a preloaded server, a bad job fails within 0.5 s:
    # the hang is injected, not left to a slow start)
    out = graphs.run_job(fw, "retrace", {"threads": 1}, tmp_path, "hang", 3,
                         fault=workers.Fault("hang"))
    assert not out["ok"] and "timeout" in out["error"]


# --- per framework ------------------------------------------------------------------------
def _worker(fw):
    adapters.get(fw)  # configures nothing, only imports: the tests share one process
    return importlib.import_module(f"impls.{fw}.graphs")


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_retrace_counts_traces_per_new_length_and_the_remedy_needs_fewer(fw):
    worker = _worker(fw)
    order = [3, 5, 7, 9, 3, 5, 7, 9]
    counts = {}
    for mode, setting, _ in graphs.RETRACE_SETTINGS[fw]:
        if mode != "compiled":
            continue
        res = worker.retrace({"preset": "tiny", "model": "attention", "mode": mode,
                              "setting": setting, "order": order})
        assert [s["length"] for s in res["steps"]] == order
        traces = [s["traces"] for s in res["steps"]]
        assert traces == sorted(traces) and traces[-1] == res["traces"]
        assert traces[4:] == [traces[3]] * 4  # lengths seen before trace nothing new
        counts[setting] = res["traces"]
        if setting == "buckets":
            assert [s["padded_to"] for s in res["steps"]][:4] == [8, 8, 8, 16]
            assert res["padding_error"] < tolerances.get("forward", "float32").value
    default = counts.pop("default")
    if fw in ("tf", "jax"):
        assert default == 4  # one trace per distinct length
    assert all(n < default for n in counts.values()), counts


def _cf_rows(fw, modes):
    problem = graphs.control_flow_problem()
    rows = _worker(fw).control_flow({"modes": modes})
    return {(r["mode"], r["variant"]): graphs.verdict(problem, r)[0] for r in rows}


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_control_flow_eager_python_and_the_bounded_rewrite_are_right(fw):
    modes = {"tf": ["eager", "xla"], "torch": ["eager", "compiled"], "jax": ["eager", "compiled"]}[fw]
    verdicts = _cf_rows(fw, modes)
    assert verdicts[("eager", "python")] == "runs"
    bounded = {"tf": "tf.cond + tf.while_loop(maximum_iterations)",
               "torch": "torch.cond + masked loop (torch.where)",
               "jax": "lax.cond + masked lax.fori_loop"}[fw]
    for mode in modes:
        assert verdicts[(mode, bounded)] == "runs", (mode, verdicts)
    if fw == "jax":  # jit traces with abstract values: a Python `if` on one cannot run
        assert verdicts[("compiled", "python")] == "fails"
    if fw == "torch":  # Dynamo falls back to Python at the data-dependent branch
        assert verdicts[("compiled", "python")].startswith("graph breaks")


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_forward_and_grads_in_every_mode_equal_the_default_mode(fw):
    a = adapters.get(fw)
    spec, train = preset("tiny", "mlp")
    model = a.build(spec, canonical.init_params(spec, seed=1))
    x, target = data.batch(spec, train.batch_size, "cross_entropy", 0)
    out = a.forward(model, x)
    loss, grads = a.loss_and_grads(model, x, target)
    for mode in a.modes:
        assert tolerances.relative_error(a.forward(model, x, mode=mode), out) <= 1e-5
        loss_m, grads_m = a.loss_and_grads(model, x, target, mode=mode)
        assert loss_m == pytest.approx(loss, rel=1e-5)
        assert tolerances.relative_error(grads_m, grads) <= 1e-4
    with pytest.raises(ValueError, match="turbo"):
        a.forward(model, x, mode="turbo")


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_compile_options_reach_the_compiler(fw):
    a = adapters.get(fw)
    spec, train = preset("tiny", "mlp")
    model = a.build(spec, canonical.init_params(spec, seed=1))
    with pytest.raises(ValueError, match="eager mode"):
        a.trainer(model, train.optimizer, mode="eager", compile_options={"dynamic": True})
    with pytest.raises(TypeError):  # an option the compiler does not know is its error
        a.trainer(model, train.optimizer, mode="compiled", compile_options={"bogus_option": 1})


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.slow
def test_parity_modes_scope_checks_outputs_grads_and_trajectory(fw):
    rows, meta = parity.run((fw,), ("float32",), ("mlp",), jobs=1, scope="modes")
    assert {r.check for r in rows} == set(parity.MODE_CHECKS)
    modes = [m for m in adapters.MODES[fw] if m != meta[fw]["default_mode"]]
    assert len(rows) == 3 * len(modes)
    assert all(r.passed for r in rows), [(r.check, r.framework, r.error, r.note) for r in rows]


@needs_any
@pytest.mark.slow
def test_graphs_cli_end_to_end(results_dir, capsys):
    fw = INSTALLED[0]
    # the vanilla RNN: its compiles are the cheapest of the sequence models (the retrace
    # counts on attention are checked in-process above)
    code = cli.main(["graphs", "--frameworks", fw, "--parts", "retrace", "--preset", "tiny",
                     "--threads", "1", "--name", "e2e", "--retrace-model", "rnn"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    path = results_dir / "graphs" / "e2e" / "graphs.json"
    doc = json.loads(path.read_text())
    assert doc["schema"] == graphs.SCHEMA and set(doc["seconds"]) == {"retrace"}
    assert doc["settings"]["retrace_order"] == graphs.retrace_order()
    assert doc["settings"]["retrace_model"] == "rnn"
    assert doc["environment"]["python"]
    tables = graphstudy.load(path.parent)
    assert set(tables) == {"retrace"}
    assert len(tables["retrace"]) == len(graphs.RETRACE_SETTINGS[fw])
    assert tables["retrace"]["ok"].all()
    assert (tables["retrace"]["distinct_lengths"] == len(graphs.RETRACE_LENGTHS)).all()
    assert "Retracing on new sequence lengths" in printed
    with pytest.raises(SystemExit) as exc:  # the same name twice is refused
        cli.main(["graphs", "--frameworks", fw, "--parts", "retrace", "--name", "e2e"])
    assert exc.value.code == 2


def test_compile_costs_come_from_a_finished_run_that_has_every_cell(results_dir, capsys):
    from bench.speed import harness

    matrix = graphstudy.compile_matrix(["jax"], "tiny", 1)
    assert graphstudy.finished_run_with(matrix) is None
    run_dir = harness.new_run(matrix[:1], graphstudy.COMPILE_BUDGET, 10, False, "partial")
    assert graphstudy.finished_run_with(matrix) is None  # lacks cells
    with pytest.raises(SystemExit) as exc:
        cli.main(["graphs", "--frameworks", "jax", "--preset", "tiny", "--threads", "1",
                  "--from-run", str(run_dir)])
    assert len(matrix) == 2 * len(spec.MODELS)  # jax: eager and compiled, every kind
    assert (exc.value.code == 2
            and f"lacks {len(matrix) - 1} of the {len(matrix)} cells" in capsys.readouterr().err)
    full = harness.new_run(matrix, graphstudy.COMPILE_BUDGET, 10, False, "full")
    assert graphstudy.finished_run_with(matrix) is None  # nothing measured yet
    for cell in matrix:  # records as a finished run has them (a failure counts too)
        results.write_json(harness.cell_path(full, cell),
                           {**measure_skeleton(cell, "full"), "wall_s": 0.0})
    assert graphstudy.finished_run_with(matrix) == full
    # A part that raises is recorded, and the parts after it still run.
    path = graphstudy.run(["jax"], ["compile", "modes"], "tiny", 1, compile_run=run_dir,
                          name="x", parity_dtypes=())
    doc = json.loads(path.read_text())
    assert "MatrixError" in doc["errors"]["compile"] and doc["tables"]["compile"] == []
    assert "modes" in doc["seconds"] and graphstudy.failures(doc)[0].startswith("part compile")


def measure_skeleton(cell, run_id):
    from bench.speed import measure

    return measure.skeleton(cell, run_id, 1, "crash", "not measured in this test")


def test_the_former_module_name_still_loads_a_study():
    """The README documented bench.graphstudy.load(path) before the study moved."""
    import bench.graphstudy

    assert bench.graphstudy.load is graphstudy.load
