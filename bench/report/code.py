"""The report's "Implementations side by side": each framework's model definition and
training step for the same spec, from the code that ran (bench.code), with lines of code
and the concepts each framework's code uses (bench.frameworks' concepts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench import code, frameworks, models


def concepts_table(names: Sequence[str]) -> Any:
    """One row per aspect (parameters, gradients, ...), one column per framework."""
    import pandas as pd

    records = [frameworks.get(fw) for fw in names]
    aspects = list(dict.fromkeys(a for r in records for a, _ in r.concepts))
    return pd.DataFrame([{"aspect": aspect, **{r.title: dict(r.concepts).get(aspect, "")
                                                for r in records}} for aspect in aspects])


def lines_table(names: Sequence[str], kinds: Sequence[str]) -> Any:
    """Lines of code per model kind and framework, and of each training step."""
    import pandas as pd

    rows = [{"code": models.get(kind).title,
             **{frameworks.get(fw).title: code.model_excerpt(fw, kind).lines_of_code
                for fw in names}} for kind in kinds]
    rows.append({"code": "training step",
                 **{frameworks.get(fw).title: code.training_excerpt(fw).lines_of_code
                    for fw in names}})
    return pd.DataFrame(rows)


def panels(excerpts: Sequence[code.Excerpt]) -> list[tuple[str, str]]:
    return [(f"{frameworks.get(e.framework).title}: {e.path}, {', '.join(e.names)} "
             f"({e.lines_of_code} lines)", e.text) for e in excerpts]


def add_section(report: Any, names: Sequence[str], kinds: Sequence[str]) -> None:
    report.heading("The implementations side by side")
    report.text("How each framework expresses the same spec and training step: the code "
                "that ran, read from impls/<framework>/models.py and train.py, without the "
                "methods that map parameters to fwbench's canonical layout. Lines of code "
                "leave out blank lines, comments and docstrings.")
    report.table("code_concepts", concepts_table(names))
    report.table("code_lines", lines_table(names, kinds))
    for kind in kinds:
        report.heading(models.get(kind).title, 3)
        report.code(f"code_{kind}", panels([code.model_excerpt(fw, kind) for fw in names]))
    report.heading("Training step", 3)
    report.code("code_training_step", panels([code.training_excerpt(fw) for fw in names]))
