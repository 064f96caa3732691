"""Character-level language model: next-character prediction by the LSTM (and the vanilla
RNN for contrast) on English text that ships with Python ("train an LSTM for character
prediction").

    text       the standard library's pydoc_data.topics: the help() text of the language
               reference's topics (statements, operators, data model), concatenated in
               sorted key order; 79 topics, 464,970 characters in Python 3.11 (its file
               is 757 KB). Nothing is downloaded; its length and SHA-256 are recorded,
               since another Python ships another text
    vocabulary fixed: newline, the 95 printable ASCII characters and one symbol for
               anything else (typographic quotes and dashes: 0.13% of the text), 97 in all
    split      the first 90% trains, the held-out tail (the last 10%) is scored
    model      one-hot input, one recurrent layer, the head on every step
               (spec output="every_step"): each step predicts the next character
    training   windows of seq_len + 1 characters at offsets drawn by NumPy from the
               seed, the same batches and initial weights in every framework; Adam
    score      held-out cross entropy in bits per character over non-overlapping windows
               (each from a zero state), against the unigram baseline: the training
               part's character frequencies (add-one smoothed) scored on the same tail
    sample     SAMPLE_CHARS characters generated from the tail's first window, sampling
               at SAMPLE_TEMPERATURE with the same uniform draws in every framework
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.adapters import Adapter
from bench.canonical import init_params
from bench.spec import LSTMSpec, OptimizerSpec, RNNSpec
from bench.studies import spread
from bench.studies.fit import Snapshots, fit, predict

if TYPE_CHECKING:
    import pandas as pd

NAME = "charlm"
SPECS = {"lstm": LSTMSpec, "rnn": RNNSpec}
VOCABULARY = "\n" + "".join(chr(c) for c in range(32, 127))  # 96 characters
OTHER = len(VOCABULARY)  # index of the symbol for any other character
VOCAB_SIZE = OTHER + 1
OTHER_SHOWN = "\ufffd"  # how generated text shows it
HELD_OUT = 0.1
SAMPLE_CHARS = 200
SAMPLE_TEMPERATURE = 0.7
# 5 seeds: with 3, the seed-to-seed sd that judges the frameworks' agreement came out at
# 0.005 bits for the LSTM, and 0.024 with 5 (results/reference/studies/charlm-full*)
FULL = {"models": ["lstm", "rnn"], "hidden_size": 128, "seq_len": 64, "batch_size": 32,
        "steps": 2000, "learning_rate": 3e-3, "seeds": [0, 1, 2, 3, 4]}
QUICK = {**FULL, "hidden_size": 64, "steps": 300, "seeds": [0]}


@functools.lru_cache(maxsize=1)
def text() -> str:
    """The corpus: pydoc_data.topics' texts in sorted key order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # a Python packaged without its documentation data
        raise ImportError("the charlm study reads the standard library's pydoc_data.topics, "
                          "which this Python does not have") from exc

    return "".join(topics[key] for key in sorted(topics))


def encode(chars: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(VOCABULARY)}
    return np.array([index.get(c, OTHER) for c in chars], dtype=np.int64)


def decode(codes: np.ndarray) -> str:
    return "".join(VOCABULARY[c] if c < OTHER else OTHER_SHOWN for c in codes)


@functools.lru_cache(maxsize=1)
def corpus() -> dict[str, Any]:
    """The encoded text split into its training part and held-out tail (encoded once per
    process: every item of a study reads it; its arrays are not written to)."""
    raw = text()
    codes = encode(raw)
    split = int(round(len(codes) * (1.0 - HELD_OUT)))
    return {"train": codes[:split], "held_out": codes[split:], "characters": len(raw),
            "sha256": hashlib.sha256(raw.encode()).hexdigest(),
            "other_share": float(np.mean(codes == OTHER))}


class Windows:
    """Windows of `length` codes at `offsets` of `codes`, as a model's input (one-hot,
    shift 0) or its targets (the next characters, shift 1), built when indexed: fit()
    takes rows of it as it takes rows of an array."""

    def __init__(self, codes: np.ndarray, offsets: np.ndarray, length: int, shift: int):
        self.codes, self.offsets, self.length, self.shift = codes, offsets, length, shift

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, rows: Any) -> np.ndarray:
        starts = self.offsets[rows] + self.shift
        block = self.codes[starts[:, None] + np.arange(self.length)[None, :]]
        return block if self.shift else one_hot(block)


def one_hot(codes: np.ndarray) -> np.ndarray:
    return np.eye(VOCAB_SIZE, dtype=np.float32)[codes]


def items(config: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = [m for m in config["models"] if m not in SPECS]
    if unknown or not config["models"]:
        raise ValueError(f"charlm: models={config['models']!r}: allowed {', '.join(SPECS)}")
    for key in ("hidden_size", "seq_len", "batch_size", "steps"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"charlm: {key}={config[key]!r} is not valid: allowed a whole number >= 1")
    return [{"model": m, "seed": s} for m in config["models"] for s in config["seeds"]]


def item_id(item: dict[str, Any]) -> str:
    return f"{item['model']}-s{item['seed']}"


def unigram_bits(train: np.ndarray, scored: np.ndarray) -> float:
    """Cross entropy (bits per character) of `scored` under the add-one smoothed
    character frequencies of `train`."""
    counts = np.bincount(train, minlength=VOCAB_SIZE) + 1.0
    return float(-np.log2(counts / counts.sum())[scored].mean())


def bits_per_char(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross entropy in bits of integer `targets` under `logits` (..., classes)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_probs, targets[..., None], axis=-1).mean() / np.log(2.0))


def sample(adapter: Adapter, model: Any, prompt: np.ndarray, seed: int, mode: str) -> np.ndarray:
    """SAMPLE_CHARS codes, each drawn from the model's next-character distribution on the
    last len(prompt) codes (from a zero state, as in training) at SAMPLE_TEMPERATURE, by
    inverse CDF of one uniform draw per character: the same draws for every framework."""
    uniforms = np.random.default_rng([seed, 99]).random(SAMPLE_CHARS)
    window, out = list(prompt), []
    for u in uniforms:
        logits = np.asarray(adapter.forward(model, one_hot(np.array([window])), mode=mode),
                            dtype=np.float64)[0, -1] / SAMPLE_TEMPERATURE
        probs = np.exp(logits - logits.max())
        code = int(min(np.searchsorted(np.cumsum(probs / probs.sum()), u), VOCAB_SIZE - 1))
        out.append(code)
        window = window[1:] + [code]
    return np.array(out)


def run_item(adapter: Adapter, item: dict[str, Any], config: dict[str, Any], mode: str,
             snapshots: Snapshots | None = None) -> dict[str, Any]:
    data = corpus()
    t, batch = config["seq_len"], config["batch_size"]
    spec = SPECS[item["model"]](in_features=VOCAB_SIZE, hidden_size=config["hidden_size"],
                                num_layers=1, seq_len=t, out_features=VOCAB_SIZE,
                                output="every_step")
    rng = np.random.default_rng([item["seed"], 31])
    offsets = rng.integers(0, len(data["train"]) - t - 1, size=config["steps"] * batch)
    run = fit(adapter, spec, init_params(spec, seed=item["seed"]),
              Windows(data["train"], offsets, t, 0), Windows(data["train"], offsets, t, 1),
              OptimizerSpec("adam", config["learning_rate"]), "cross_entropy",
              [np.arange(k * batch, (k + 1) * batch) for k in range(config["steps"])], mode=mode,
              snapshots=snapshots)
    held = data["held_out"]
    starts = np.arange(0, len(held) - t - 1, t)  # non-overlapping windows of the tail
    rows = np.arange(len(starts))
    logits = predict(adapter, run.model, Windows(held, starts, t, 0)[rows], mode=mode, chunk=256)
    targets = Windows(held, starts, t, 1)[rows]
    bits = bits_per_char(logits, targets)
    baseline = unigram_bits(data["train"], targets.ravel())
    generated = sample(adapter, run.model, held[:t], item["seed"], mode)
    return {"metrics": {"held_out_bpc": bits, "unigram_bpc": baseline,
                        "bpc_below_unigram": baseline - bits,
                        "held_out_chars": int(targets.size),
                        "final_train_bpc": run.losses[-1] / np.log(2.0),
                        "text_chars": data["characters"], "text_sha256": data["sha256"][:16],
                        "steps": len(run.losses), "train_s": run.train_s,
                        "first_step_s": run.first_step_s,
                        "median_step_ms": float(np.median(run.step_ms))},
            "curves": {"train_bpc": [v / np.log(2.0) for v in run.losses], "step_ms": run.step_ms},
            "outputs": {"prompt": decode(held[:t]), "sample": decode(generated)}}


def bpc_table(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Per (model, framework): held-out bits per character over seeds, with the unigram
    baseline beside it."""
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    table = spread.over_seeds(ok, ["model"], "held_out_bpc")
    unigram = ok.groupby(["model", "framework"], sort=False)["unigram_bpc"].mean()
    table["unigram"] = [unigram[(m, f)] for m, f in zip(table["model"], table["framework"])]
    return table


def finding_lines(frame: "pd.DataFrame") -> list[str]:
    table = bpc_table(frame)
    if table.empty:
        return []
    lines = []
    for model, part in table.groupby("model", sort=False):
        worst = part["max"].max()
        unigram = part["unigram"].iloc[0]
        lines.append(f"{'LSTM' if model == 'lstm' else 'RNN'}: held-out "
                     f"{part['mean'].min():.3f}-{part['mean'].max():.3f} bits per character "
                     f"(the frameworks' means over seeds) against {unigram:.3f} for the unigram "
                     f"baseline; every framework's worst seed {worst:.3f} is "
                     f"{unigram - worst:.2f} bits below it.")
    agree = spread.agreement(table, ["model"])
    for row in agree.itertuples():
        gap = f"The frameworks' {row.model} means differ by at most {row.largest_gap:.3f} bits"
        if row.agree is None:
            lines.append(gap + "; with one seed there is no seed-to-seed spread to judge it by.")
        else:
            lines.append(gap + f", {'within' if row.agree else 'outside'} the pooled "
                         f"seed-to-seed sd of {row.pooled_sd:.3f}.")
    ok = frame[(frame["study"] == NAME) & (frame["status"] == "ok")]
    pairs = spread.paired_gaps(ok, ["model"], "held_out_bpc")
    for model, part in (pairs.groupby("model", sort=False) if len(pairs) else ()):
        lines.append(f"Seed by seed ({model}; same data and initial weights): "
                     + "; ".join(f"{r.pair} {r.mean_difference:+.4f} on average, at most "
                                 f"{r.largest_gap:.4f} ({r.seeds} seeds)" for r in part.itertuples())
                     + " bits.")
    return lines


def summary(frame: "pd.DataFrame") -> str:
    table = bpc_table(frame)
    if table.empty:
        return "charlm: no item trained"
    return ("held-out bits per character, mean and sd over seeds, and the unigram baseline\n"
            + table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
            + "\n\n" + "\n".join(finding_lines(frame)))
