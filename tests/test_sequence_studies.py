"""The sequence studies (charlm, seqclass; gradients has tests/test_gradients.py), the
seed-spread helpers they share, and TensorBoard histograms: written by fwbench, read by
TensorBoard's own event reader."""

import numpy as np
import pytest

from bench import adapters, cli
from bench.studies import charlm, runner, seqclass, spread
from bench.studies.fit import Snapshots
from tests.conftest import FRAMEWORKS

INSTALLED = [p.values[0] for p in FRAMEWORKS if adapters.installed(p.values[0])]


# --- charlm ---------------------------------------------------------------------------
def test_the_corpus_is_pythons_own_help_text_split_into_a_held_out_tail():
    from pydoc_data.topics import topics

    data = charlm.corpus()
    assert data["characters"] == sum(len(t) for t in topics.values()) > 100_000
    assert len(data["train"]) + len(data["held_out"]) == data["characters"]
    assert len(data["held_out"]) == pytest.approx(0.1 * data["characters"], abs=1)
    assert charlm.decode(data["train"][:6]) == charlm.text()[:6]
    assert 0 < data["other_share"] < 0.01 and charlm.VOCAB_SIZE == 97


def test_encoding_keeps_the_vocabulary_and_marks_everything_else():
    codes = charlm.encode("a\n~’")
    assert list(codes[:3]) == [charlm.VOCABULARY.index(c) for c in "a\n~"]
    assert codes[3] == charlm.OTHER and charlm.decode(codes) == "a\n~" + charlm.OTHER_SHOWN


def test_windows_are_one_hot_inputs_and_next_character_targets():
    codes = np.arange(20) % charlm.VOCAB_SIZE
    offsets = np.array([0, 5, 11])
    x = charlm.Windows(codes, offsets, 4, 0)[np.array([1, 2])]
    y = charlm.Windows(codes, offsets, 4, 1)[np.array([1, 2])]
    assert x.shape == (2, 4, 97) and (x.sum(axis=-1) == 1).all()
    assert (x.argmax(axis=-1) == [[5, 6, 7, 8], [11, 12, 13, 14]]).all()
    assert (y == [[6, 7, 8, 9], [12, 13, 14, 15]]).all()


def test_bits_per_character_and_the_unigram_baseline_by_hand():
    # uniform logits over 97 classes: log2(97) bits whatever the target
    assert charlm.bits_per_char(np.zeros((2, 3, 97)), np.zeros((2, 3), int)) == pytest.approx(np.log2(97))
    # add-one smoothing: counts of 0 become 1
    train = np.array([0, 0, 0, 1])
    counts = np.ones(97)
    counts[0], counts[1] = 4, 2
    expected = -np.log2(counts[[0, 1]] / counts.sum()).mean()
    assert charlm.unigram_bits(train, np.array([0, 1])) == pytest.approx(expected)


class _Fixed:
    """An adapter whose model always gives the same next-character logits."""

    def __init__(self, logits):
        self.logits = logits

    def forward(self, model, x, mode=None):
        return np.broadcast_to(self.logits, (*x.shape[:2], 97))


def test_sampling_draws_by_inverse_cdf_with_the_same_uniforms_everywhere():
    logits = np.full(97, -np.inf)
    logits[[3, 7]] = 0.0  # only two characters, equally likely
    first = charlm.sample(_Fixed(logits), None, np.zeros(5, int), seed=4, mode="eager")
    again = charlm.sample(_Fixed(logits), None, np.zeros(5, int), seed=4, mode="eager")
    uniforms = np.random.default_rng([4, 99]).random(charlm.SAMPLE_CHARS)
    assert (first == again).all() and (first == np.where(uniforms <= 0.5, 3, 7)).all()


def test_charlm_items_and_bad_configurations():
    assert [charlm.item_id(i) for i in charlm.items(charlm.QUICK)] == ["lstm-s0", "rnn-s0"]
    for bad in ({"models": ["gru"]}, {"steps": 0}, {"models": []}):
        with pytest.raises(ValueError, match="charlm: "):
            charlm.items({**charlm.QUICK, **bad})


# --- seqclass -------------------------------------------------------------------------
def test_digits_are_read_row_by_row_or_pixel_by_pixel():
    images = np.arange(2 * 64).reshape(2, 64)
    rows, pixels = seqclass.as_sequences(images, "rows"), seqclass.as_sequences(images, "pixels")
    assert rows.shape == (2, 8, 8) and (rows[1, 2] == images[1, 16:24]).all()
    assert pixels.shape == (2, 64, 1) and (pixels[0, :, 0] == images[0]).all()


def test_seqclass_items_and_bad_configurations():
    ids = [seqclass.item_id(i) for i in seqclass.items(seqclass.FULL)]
    assert len(ids) == len(set(ids)) == 2 * 2 * 3 and "lstm-pixels-s2" in ids
    for bad in ({"orders": ["columns"]}, {"models": ["gru"]}, {"epochs": 0}):
        with pytest.raises(ValueError, match="seqclass: "):
            seqclass.items({**seqclass.QUICK, **bad})


# --- spread ---------------------------------------------------------------------------
def test_agreement_compares_the_largest_gap_with_the_pooled_seed_spread():
    import pandas as pd

    ok = pd.DataFrame({"model": ["m"] * 6, "framework": ["a", "a", "a", "b", "b", "b"],
                       "v": [1.0, 2.0, 3.0, 1.5, 2.5, 3.5]})
    table = spread.over_seeds(ok, ["model"], "v")
    assert list(table["mean"]) == [2.0, 2.5] and list(table["sd"]) == [1.0, 1.0]
    row = spread.agreement(table, ["model"]).iloc[0]
    assert row["largest_gap"] == 0.5 and row["pooled_sd"] == 1.0 and row["agree"]
    one = spread.agreement(spread.over_seeds(ok.iloc[[0, 3]], ["model"], "v"), ["model"]).iloc[0]
    assert one["agree"] is None  # one seed each: no spread to judge by


# --- TensorBoard histograms -----------------------------------------------------------
def test_histograms_are_read_by_tensorboards_own_reader(tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="tensorboard not installed (pip install 'fwbench[tensorboard]')")
    from bench import tensorboard

    rng = np.random.default_rng(0)
    kernel, bias = rng.standard_normal((5, 7)), np.zeros(3)
    path = tensorboard.StudyWriter(tmp_path, "s", "torch").item(
        "item", {"loss": [1.0, 0.5]},
        [(0, {"lstm.0.kernel": kernel, "head.bias": bias},
          {"lstm.0.kernel": 2 * kernel, "head.bias": bias}),
         (10, {"lstm.0.kernel": kernel + 1, "head.bias": bias},
          {"lstm.0.kernel": kernel, "head.bias": bias})])
    acc = ea.EventAccumulator(str(path.parent), size_guidance={ea.HISTOGRAMS: 0, ea.SCALARS: 0})
    acc.Reload()
    assert sorted(acc.Tags()["histograms"]) == ["gradients/head.bias", "gradients/lstm.0.kernel",
                                                "weights/head.bias", "weights/lstm.0.kernel"]
    events = acc.Histograms("weights/lstm.0.kernel")
    assert [e.step for e in events] == [0, 10]
    h = events[1].histogram_value
    assert (h.min, h.max, h.num) == pytest.approx((kernel.min() + 1, kernel.max() + 1, 35))
    assert h.sum == pytest.approx((kernel + 1).sum())
    assert h.sum_squares == pytest.approx(((kernel + 1) ** 2).sum())
    counts, edges = np.histogram(kernel + 1, bins=tensorboard.HISTOGRAM_BINS)
    assert list(h.bucket) == list(counts) and h.bucket_limit == pytest.approx(edges[1:])
    constant = acc.Histograms("weights/head.bias")[0].histogram_value  # all zero: one bucket
    assert list(constant.bucket) == [3] and list(constant.bucket_limit) == [0.0]
    assert [s.value for s in acc.Scalars("loss")] == [1.0, 0.5]


def test_histograms_need_tensorboard_and_a_positive_step_count(results_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["study", "charlm", "--quick", "--histograms", "10"])
    assert exc.value.code == 2 and "--histograms needs --tensorboard DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["study", "charlm", "--quick", "--histograms", "0", "--tensorboard", "tb"])
    assert exc.value.code == 2 and "--histograms 0: allowed a whole number" in capsys.readouterr().err
    assert not (results_dir / "studies").exists()


@pytest.mark.slow
@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_snapshots_take_weights_and_gradients_without_changing_the_training(fw):
    from bench.canonical import init_params
    from bench.spec import LSTMSpec, OptimizerSpec
    from bench.studies.fit import batch_order, fit

    a = adapters.get(fw)
    spec = LSTMSpec(in_features=3, hidden_size=4, num_layers=1, seq_len=5, out_features=2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5, 3)), rng.integers(0, 2, 16)
    order = batch_order(16, 4, 3, 0)  # 12 steps
    args = (a, spec, init_params(spec, 0), x, y, OptimizerSpec("adam", 1e-2), "cross_entropy", order)
    plain = fit(*args, mode=runner.STUDY_MODES[fw])
    shots = Snapshots(5)
    watched = fit(*args, mode=runner.STUDY_MODES[fw], snapshots=shots)
    assert watched.losses == plain.losses
    assert [step for step, _, _ in shots.taken] == [0, 5, 10]
    step, weights, grads = shots.taken[0]
    assert weights.keys() == grads.keys() == init_params(spec, 0).keys()
    np.testing.assert_allclose(weights["head.kernel"], init_params(spec, 0)["head.kernel"], rtol=1e-6)
    assert all(np.abs(g).max() > 0 for g in grads.values())
    # later snapshots see the trained weights, not the initial ones
    assert np.abs(shots.taken[1][1]["head.kernel"] - weights["head.kernel"]).max() > 1e-4


@pytest.mark.slow
def test_quick_sequence_studies_run_and_write_histograms_in_every_framework(results_dir, tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="tensorboard not installed (pip install 'fwbench[tensorboard]')")
    pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'fwbench[studies]')")
    if not INSTALLED:
        pytest.skip("no framework installed")
    tb = tmp_path / "tb"
    lm = runner.new_study("charlm", INSTALLED, quick=True, tensorboard=str(tb), histogram_every=100,
                          overrides={"steps": 200, "models": ["lstm"]})
    sc = runner.new_study("seqclass", INSTALLED, quick=True,
                          overrides={"epochs": 3, "orders": ["rows"], "models": ["rnn"]})
    for folder in (lm, sc):
        runner.execute(folder)
    frame = runner.load(lm)
    assert (frame["status"] == "ok").all() and len(frame) == len(INSTALLED)
    assert (frame["held_out_bpc"] < frame["unigram_bpc"]).all()
    for fw in INSTALLED:
        acc = ea.EventAccumulator(str(tb / lm.name / "lstm-s0" / fw), size_guidance={ea.HISTOGRAMS: 0})
        acc.Reload()
        assert {"weights/lstm.0.kernel", "gradients/head.bias"} <= set(acc.Tags()["histograms"]), fw
        assert [e.step for e in acc.Histograms("gradients/lstm.0.recurrent_kernel")] == [0, 100], fw
        record = runner.read_records(lm, fw)[0]
        assert len(record["outputs"]["sample"]) == charlm.SAMPLE_CHARS
    assert "bits per character" in charlm.summary(frame)
    classified = runner.load(sc)
    assert (classified["status"] == "ok").all() and (classified["test_accuracy"] > 0.5).all()
    assert "Read row by row (8 steps)" in seqclass.summary(classified)
    # the report: a section per study with its findings and figures
    from bench import report
    from bench.report import findings
    from bench.report import studies as study_sections

    grads = runner.new_study("gradients", INSTALLED, quick=True, tensorboard=str(tb),
                             overrides={"radii": [0.5], "forget_biases": [3.0], "seq_len": 110})
    runner.execute(grads)
    out = results_dir / "report"
    (out / "figures").mkdir(parents=True)
    rep = report.Report("sequences")
    study_sections.add_sections(rep, [lm, sc, grads], out)
    text = report.to_markdown(rep)
    for heading in ("Character-level language model (pydoc text)",
                    "Sequence classification (digits as sequences)",
                    "Vanishing and exploding gradients through time"):
        assert f"### {heading}" in text
    for figure in ("charlm_bpc", "seqclass_accuracy", "gradients_norms"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 5000, figure
    assert "LSTM: held-out " in text and "unigram baseline" in text
    assert "At spectral radius 0.5, the RNN's gradient norm falls by" in text
    assert "Between frameworks, step by step" in text or len(INSTALLED) == 1
    lines = findings.study_findings(runner.load([lm, sc, grads]))
    assert any(line.startswith("Character-level model: LSTM: held-out") for line in lines)
    assert any(line.startswith("Gradients through time: At spectral radius 0.5") for line in lines)
    curves = tb / grads.name / "rnn-r0.5-s0" / INSTALLED[0]
    acc = ea.EventAccumulator(str(curves), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    assert len(acc.Scalars("grad_norm_by_distance")) == 110


def test_paired_gaps_compare_frameworks_seed_by_seed():
    import pandas as pd

    ok = pd.DataFrame({"model": ["m"] * 6, "seed": [0, 1, 2] * 2,
                       "framework": ["a"] * 3 + ["b"] * 3, "v": [1.0, 2.0, 3.0, 1.1, 2.3, 2.9]})
    row = spread.paired_gaps(ok, ["model"], "v").iloc[0]
    assert row["pair"] == "a - b" and row["seeds"] == 3
    assert row["largest_gap"] == pytest.approx(0.3)
    assert row["mean_difference"] == pytest.approx((-0.1 - 0.3 + 0.1) / 3)
