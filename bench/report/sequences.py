"""The sequence studies' sections of `fwbench report`: the character-level model, sequence
classification and vanishing gradients (bench/studies/charlm.py, seqclass.py,
gradients.py). Called by bench.report.studies for each study kind, with the kind's ok
rows and its study folders; each section states its generated findings first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from bench.report.document import save_figure
from bench.studies import charlm, gradients, runner, seqclass, spread

if TYPE_CHECKING:
    import pandas as pd

    from bench.report.document import Report

Studies = Sequence[tuple[Path, dict[str, Any]]]


def _records(studies: Studies) -> list[dict[str, Any]]:
    """Every ok record of the studies, each with its framework."""
    return [r for folder, study in studies for fw in study["frameworks"]
            for r in runner.read_records(folder, fw) if r["status"] == "ok"]


# --- charlm ---------------------------------------------------------------------------
def charlm_section(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt

    config = studies[0][1]["config"]
    first = ok.iloc[0]
    report.text(
        f"Next-character prediction on the standard library's pydoc_data help text "
        f"({int(first['text_chars']):,} characters, SHA-256 {first['text_sha256']}...; the last "
        f"{charlm.HELD_OUT:.0%} held out), a fixed vocabulary of {charlm.VOCAB_SIZE} symbols, "
        f"one-hot input, one recurrent layer of {config['hidden_size']} with its head on every "
        f"step, {config['steps']} Adam steps of {config['batch_size']} windows of "
        f"{config['seq_len']} characters (learning rate {config['learning_rate']:g}); the same "
        f"initial weights and windows in every framework for a seed. Held-out cross entropy "
        f"in bits per character, against the unigram baseline.")
    for line in charlm.finding_lines(ok):
        report.text(line)
    table = charlm.bpc_table(ok)
    report.table("charlm_bpc", table)
    report.table("charlm_agreement", spread.agreement(table, ["model"]))
    report.table("charlm_paired", spread.paired_gaps(ok, ["model"], "held_out_bpc"))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    frameworks = list(dict.fromkeys(ok["framework"]))
    for k, (model, part) in enumerate(ok.groupby("model", sort=False)):
        for j, fw in enumerate(frameworks):
            values = part[part["framework"] == fw]["held_out_bpc"]
            ax.scatter(np.full(len(values), k + 0.15 * (j - 1)), values, s=18,
                       color=f"C{j}", label=fw if k == 0 else None)
        ax.hlines(part["unigram_bpc"].iloc[0], k - 0.4, k + 0.4, color="grey", ls="--",
                  label="unigram" if k == 0 else None)
    ax.set_xticks(range(ok["model"].nunique()), [m.upper() for m in dict.fromkeys(ok["model"])])
    ax.set_ylabel("held-out bits per character")
    ax.legend(fontsize=8, loc="center right")
    save_figure(fig, out, "charlm_bpc")
    report.figure("charlm_bpc", "Held-out bits per character, one point per seed and framework, "
                  "against the unigram baseline (dashed).")
    samples = [r for r in _records(studies) if r.get("outputs")]
    if samples:
        seed = min(r["item"]["seed"] for r in samples)
        shown = [r for r in samples if r["item"]["seed"] == seed]
        report.text(f"Samples of {charlm.SAMPLE_CHARS} characters, seed {seed}, from the held-out "
                    f"tail's first window, at temperature {charlm.SAMPLE_TEMPERATURE} with the same "
                    f"uniform draws in every framework. Prompt: {shown[0]['outputs']['prompt']!r}")
        report.code("charlm_samples", [(f"{r['framework']} {r['item']['model']}",
                                        r["outputs"]["sample"]) for r in shown])


# --- seqclass -------------------------------------------------------------------------
def seqclass_section(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt

    config = studies[0][1]["config"]
    report.text(f"scikit-learn's digits (the sweep's split: 1,438 training, 359 test images) "
                f"read as sequences, row by row (8 steps of 8 pixels) or pixel by pixel (64 "
                f"steps of 1), by one recurrent layer of {config['hidden_size']} with its head on "
                f"the last step, {config['epochs']} epochs of Adam {config['learning_rate']:g} "
                f"in batches of {config['batch_size']}. Test accuracy (%) over seeds.")
    for line in seqclass.finding_lines(ok):
        report.text(line)
    table = seqclass.accuracy_table(ok)
    report.table("seqclass_accuracy", table)
    report.table("seqclass_agreement", spread.agreement(table, ["order", "model"]))
    report.table("seqclass_paired", spread.paired_gaps(ok.assign(test_accuracy=100 * ok["test_accuracy"]),
                                                       ["order", "model"], "test_accuracy"))
    labels = [f"{o}\n{m.upper()}" for o, m in dict.fromkeys(zip(table["order"], table["model"]))]
    frameworks = list(dict.fromkeys(table["framework"]))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / max(len(frameworks), 1)
    for j, fw in enumerate(frameworks):
        mine = table[table["framework"] == fw]
        ax.bar(np.arange(len(mine)) + (j - (len(frameworks) - 1) / 2) * width, mine["mean"],
               width, yerr=mine["sd"].fillna(0), label=fw, capsize=2)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    save_figure(fig, out, "seqclass_accuracy")
    report.figure("seqclass_accuracy", "Digits test accuracy per sequence order and model, mean "
                  "over seeds with their sd, per framework.")


# --- gradients ------------------------------------------------------------------------
def gradients_section(report: "Report", ok: "pd.DataFrame", out: Path, studies: Studies) -> None:
    import matplotlib.pyplot as plt

    config = studies[0][1]["config"]
    report.text(
        f"The norm of the loss's gradient with respect to each step's input, against the "
        f"distance from the output, for one-layer models of {config['hidden_size']} units over "
        f"{config['seq_len']} steps (head on the last step, inputs N(0, "
        f"{config['input_scale']:g}^2), batch {config['batch_size']}), the recurrent kernel "
        f"scaled to spectral radius {', '.join(f'{r:g}' for r in config['radii'])} (each LSTM "
        f"gate block alike) and the LSTM's forget-gate bias set to "
        f"{', '.join(f'{b:g}' for b in config['forget_biases'])}. No training: one gradient "
        f"from the same weights and batch in every framework, in float32, each framework's "
        f"compared step by step with a float64 backpropagation through time written by hand.")
    for line in gradients.finding_lines(ok):
        report.text(line)
    records = _records(studies)
    pairs = pairwise_errors(records)
    if pairs:
        worst = max(pairs, key=pairs.get)
        report.text(f"Between frameworks, step by step: over {len(pairs)} (item, pair of "
                    f"frameworks) comparisons, the largest relative difference of two "
                    f"frameworks' norms at one step is {pairs[worst]:.1e} ({worst}), the median "
                    f"of the comparisons' largest {float(np.median(list(pairs.values()))):.1e}.")
    report.table("gradients_decay", gradients.table(ok))
    curves = _curves(records)
    if curves:
        settings = sorted({(m, b) for m, _, b in curves}, key=lambda s: (s[0] != "rnn", s[1] or 0))
        radii = sorted({r for _, r, _ in curves})
        fig, axes = plt.subplots(len(settings), len(radii), figsize=(3.2 * len(radii), 2.3 * len(settings)),
                                 squeeze=False, sharex=True)
        for i, (model, bias) in enumerate(settings):
            for k, radius in enumerate(radii):
                ax = axes[i, k]
                found = curves.get((model, radius, bias), {})
                for j, (fw, norms) in enumerate(sorted(found.items())):
                    style = {"color": "black", "ls": "--", "lw": 1} if fw == "reference" else \
                        {"color": f"C{j}", "lw": 1.2, "alpha": 0.8}
                    ax.semilogy(np.arange(len(norms)), np.maximum(norms, 1e-45), label=fw, **style)
                title = model.upper() if bias is None else f"LSTM, forget bias {bias:g}"
                ax.set_title(f"{title}, radius {radius:g}", fontsize=8)
                if i == len(settings) - 1:
                    ax.set_xlabel("distance from the output (steps)")
        axes[0, 0].set_ylabel("|d loss / d x_t|")
        axes[0, -1].legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out, "gradients_norms")
        report.figure("gradients_norms", "Gradient norm against the distance from the output "
                      "(log scale; seed of the lowest number), per model setting (rows) and "
                      "spectral radius (columns): each framework in float32, and the float64 "
                      "reference (dashed).")


def _curves(records: list[dict[str, Any]]) -> dict[tuple, dict[str, list[float]]]:
    """(model, radius, forget bias) -> {framework or "reference": norms by distance}, for
    each setting's lowest seed."""
    seeds: dict[tuple, int] = {}
    for r in records:
        key = (r["item"]["model"], r["item"]["radius"], r["item"]["forget_bias"])
        seeds[key] = min(seeds.get(key, r["item"]["seed"]), r["item"]["seed"])
    out: dict[tuple, dict[str, list[float]]] = {}
    for r in records:
        key = (r["item"]["model"], r["item"]["radius"], r["item"]["forget_bias"])
        if r["item"]["seed"] == seeds[key] and r.get("outputs"):
            out.setdefault(key, {})[r["framework"]] = r["outputs"]["norms"]
            out[key]["reference"] = r["outputs"]["reference"]
    return out


def pairwise_errors(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per item and pair of frameworks ("item: a vs b"): the largest relative difference
    of their per-step norms, over the steps whose reference norm is above the floor."""
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("outputs"):
            by_item.setdefault(r["item_id"], {})[r["framework"]] = r["outputs"]
    out = {}
    for item, found in by_item.items():
        names = sorted(found)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                ref = np.asarray(found[a]["reference"])
                keep = ref > gradients.NORM_FLOOR
                diff = np.abs(np.asarray(found[a]["norms"]) - np.asarray(found[b]["norms"]))[keep]
                out[f"{item}: {a} vs {b}"] = float((diff / ref[keep]).max()) if keep.any() else float("nan")
    return out


SECTIONS = {"charlm": ("Character-level language model (pydoc text)", charlm_section),
            "seqclass": ("Sequence classification (digits as sequences)", seqclass_section),
            "gradients": ("Vanishing and exploding gradients through time", gradients_section)}
