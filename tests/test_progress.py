"""Progress with an estimate of the time left (issue 23): workers say what they have
finished in their logs; the parent prints a status line on a timer."""

from __future__ import annotations

import io
import time

import pytest

from bench import adapters, parity, progress
from bench.graphs import study as graphstudy


def test_the_last_progress_line_of_a_log_is_read(tmp_path, capsys):
    log = tmp_path / "w.log"
    progress.say(3, 10, "float32/mlp/static")
    log.write_text("a warning\n" + capsys.readouterr().out + "fwbench-progress 4 10 x\nnoise\n")
    assert progress.last(log) == (4, 10)
    assert progress.last(tmp_path / "missing.log") is None
    (tmp_path / "quiet.log").write_text("nothing yet\n")
    assert progress.last(tmp_path / "quiet.log") is None


def test_the_status_estimates_from_the_slowest_worker(tmp_path):
    logs = {"torch": tmp_path / "torch.log", "jax": tmp_path / "jax.log"}
    logs["torch"].write_text("fwbench-progress 10 10 x\n")
    logs["jax"].write_text("fwbench-progress 5 20 x\n")
    # jax: 5 of 20 in 30 s, so 15 more take about 90 s
    assert progress.status("parity", logs, 30.0) == "parity: 30 s; torch 10/10, jax 5/20; about 90 s left"
    logs["jax"].write_text("")
    assert progress.status("parity", logs, 30.0) == "parity: 30 s; torch 10/10, jax starting"


def test_a_ticker_prints_on_its_timer_and_stops():
    out = io.StringIO()
    with progress.Ticker(lambda elapsed: f"tick {elapsed:.2f}", every_s=0.02, stream=out):
        time.sleep(0.15)
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) and all(line.startswith("tick ") for line in lines)
    time.sleep(0.05)
    assert out.getvalue().splitlines() == lines  # nothing after leaving


def test_graph_study_lines_carry_the_jobs_done_and_the_time_left():
    said = []
    counter = graphstudy._JobCounter(said.append, 4)
    counter("retrace: tf compiled default: 8 traces, 5.0 s")
    counter("control flow: tf: eager/python: runs")
    assert said[0].startswith("retrace: tf compiled default: 8 traces, 5.0 s [1/4 jobs, about ")
    assert said[0].endswith(" s left]")
    counter("x")
    counter("y")
    assert said[-1] == "y [4/4 jobs]"


@pytest.mark.slow
@pytest.mark.skipif(not adapters.installed("torch"), reason="PyTorch not installed")
def test_a_parity_worker_says_each_item_it_finishes(tmp_path):
    case = parity.cases()[0].name
    log = tmp_path / "parity-torch.log"
    raw = parity.run_worker("torch", ("float32",), (case,), log=log)
    assert "fatal" not in raw
    done, total = progress.last(log)
    assert done == total == len(raw["results"]) + len(raw["errors"])


def test_time_left_is_the_pace_so_far_over_what_is_left():
    assert progress.time_left(30.0, 5, 20) == 90.0
    assert progress.time_left(30.0, 0, 20) is None   # nothing finished yet: no pace
    assert progress.time_left(30.0, 20, 20) is None  # nothing left
