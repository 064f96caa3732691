"""The implementations side by side (issue 23): each framework's model and training
step, read from the code that runs, with lines of code and the concepts each uses."""

from __future__ import annotations

import ast
import re
import textwrap

import pytest

from bench import adapters, cli, code, frameworks, models, report
from bench.report import code as code_section

KINDS = list(models.KINDS)


@pytest.mark.parametrize("fw", adapters.FRAMEWORKS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_model_is_the_code_its_builder_names(fw, kind):
    excerpt = code.model_excerpt(fw, kind)
    assert excerpt.path == f"impls/{fw}/models.py"
    assert code._builder_name(fw, kind) == excerpt.names[-1] or \
        code._builder_name(fw, kind) in excerpt.names
    tree = ast.parse(textwrap.dedent(excerpt.text))  # whole definitions, nothing cut
    defined = [n.name for n in tree.body]
    assert defined == list(excerpt.names)
    assert "def bindings" not in excerpt.text  # the canonical-layout mapping is left out
    assert 3 <= excerpt.lines_of_code <= len(excerpt.text.splitlines())


def test_a_model_brings_the_public_pieces_it_uses():
    assert code.model_excerpt("jax", "attention").names == ("Block", "Attention")
    assert code.model_excerpt("tf", "attention").names == (
        "activation", "PositionEncoding", "Block", "build_attention")


@pytest.mark.parametrize("fw,api", [("tf", "tf.GradientTape"), ("torch", "loss.backward()"),
                                    ("jax", "jax.value_and_grad")])
def test_each_training_step_is_the_trainer_that_runs(fw, api):
    excerpt = code.training_excerpt(fw)
    assert excerpt.names[-1] == "Trainer" and "def step(" in excerpt.text
    assert api in excerpt.text


@pytest.mark.parametrize("fw", adapters.FRAMEWORKS)
def test_every_concept_names_apis_the_frameworks_code_uses(fw):
    record = frameworks.get(fw)
    assert [a for a, _ in record.concepts] == ["parameters", "gradients", "update", "graphs",
                                               "devices", "randomness"]
    source = "\n".join(p.read_text() for p in (code.impls_dir() / fw).glob("*.py"))
    for aspect, how in record.concepts:
        for api in re.findall(r"`([^`]+)`", how):
            assert api in source, f"{fw} {aspect}: {api!r} is not in impls/{fw}/"


def test_lines_of_code_leave_out_blank_lines_comments_and_docstrings():
    text = '''class A:
    """Doc
    string."""

    # a comment
    def f(self):
        """One line."""
        return 1  # counted
'''
    assert code.count_code_lines(text) == 3


def test_show_code_prints_every_framework_and_its_lines(capsys):
    assert cli.main(["show", "--code", "lstm"]) == 0
    out = capsys.readouterr().out
    for fw in adapters.FRAMEWORKS:
        assert f"--- {frameworks.get(fw).title}: impls/{fw}/models.py" in out
        assert f"--- {frameworks.get(fw).title}: impls/{fw}/train.py" in out
    assert "lines of code (no blank lines, comments or docstrings)" in out
    with pytest.raises(SystemExit) as info:
        cli.main(["show", "--code", "gru"])
    assert info.value.code == 2


def test_the_report_section_puts_the_frameworks_side_by_side(tmp_path):
    doc = report.Report("t")
    code_section.add_section(doc, list(adapters.FRAMEWORKS), ["mlp"])
    html = report.to_html(doc, tmp_path)
    assert html.count('<div class="side" style="grid-template-columns:repeat(3,') == 2
    md = report.to_markdown(doc)
    assert "## The implementations side by side" in md and md.count("```python") == 6
    tables = {b[1]: b[2] for b in doc.blocks if b[0] == "table"}
    assert list(tables["code_lines"]["code"]) == ["MLP", "training step"]
    assert (tables["code_lines"].drop(columns="code") > 0).all().all()
