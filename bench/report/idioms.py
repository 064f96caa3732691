"""The report's idiom-audit section: would a faster idiom change a ranking?

benchmarks/idioms.py times, per framework and model, the idioms an expert would try
against the one fwbench's adapter uses, each checked for parity with it, and writes
results/idioms.json (schema fwbench.idioms/1). The speed matrix measures the adapters'
idioms; this section puts every framework on its fastest idiom that passed parity as
well, ranks the frameworks both ways per model (and sequence length), and says where the
order changes. Each framework's audit ran in a process of its own, at another time than
the others': a ranking between frameworks whose steps differ by less than NOISE is said
to be within the audit's noise rather than claimed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA = "fwbench.idioms/1"
NOISE = 0.06  # the audit's round-to-round noise on this 2-core VM: ratios moved +-6% between runs


def load(path: Path) -> dict[str, Any]:
    """The audit file at `path` (results.ResultFileError if it is not one)."""
    from bench import results

    doc = results.read_json(Path(path))
    if doc.get("schema") != SCHEMA or not isinstance(doc.get("runs"), list):
        raise results.ResultFileError(f"{path}: not an idiom audit ({SCHEMA}); "
                                      f"its schema is {doc.get('schema')!r}")
    return doc


def _label(audit: dict[str, Any]) -> str:
    return audit["kind"] + (f" T={audit['seq_len']}" if audit.get("seq_len") else "")


def rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per framework x model (x sequence length): its adapter's idiom and the
    fastest idiom that passed parity, with their median ms per step."""
    out = []
    for run in doc["runs"]:
        for audit in run.get("audits", []):
            variants = audit.get("variants", {})
            chosen = next((n for n, v in variants.items() if v.get("chosen")), None)
            fastest = audit.get("fastest_passing") or chosen
            if chosen is None or variants[chosen].get("median_ms") is None:
                continue
            out.append({"model": _label(audit), "framework": run["framework"],
                        "adapter idiom": chosen, "adapter ms": variants[chosen]["median_ms"],
                        "fastest passing idiom": fastest,
                        "fastest ms": variants[fastest]["median_ms"],
                        # the audit's own ratio (geometric mean of per-round ratios)
                        "ratio": variants[fastest].get("ratio_to_chosen") or
                        variants[fastest]["median_ms"] / variants[chosen]["median_ms"]})
    return out


def _order(group: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(group, key=lambda r: r[key])


def _ranked(group: list[dict[str, Any]], key: str) -> str:
    return " < ".join(f"{r['framework']} {r[key]:.3g} ms" for r in _order(group, key))


def finding_lines(doc: dict[str, Any]) -> list[str]:
    """Per model measured by more than one framework: whether putting every framework on
    its fastest passing idiom changes the frameworks' order, with the numbers."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows(doc):
        groups.setdefault(row["model"], []).append(row)
    lines, unchanged = [], []
    for model, group in groups.items():
        if len(group) < 2:
            continue
        before = [r["framework"] for r in _order(group, "adapter ms")]
        after = [r["framework"] for r in _order(group, "fastest ms")]
        if before == after:
            unchanged.append(model)
            continue
        moved = [r for r in group if before.index(r["framework"]) != after.index(r["framework"])]
        gaps = []
        for r in moved:
            rank = after.index(r["framework"])
            neighbour = next(o for o in group if o["framework"] == before[rank])
            gaps.append(abs(r["fastest ms"] / neighbour["fastest ms"] - 1))
        noise = (f" The gap is within the audit's noise (+-{NOISE:.0%}), so the new order "
                 "is not claimed." if min(gaps) < NOISE else "")
        movers = ", ".join(f"{r['framework']} on {r['fastest passing idiom']} "
                           f"({r['ratio']:.2f}x its adapter's {r['adapter idiom']})"
                           for r in moved if r["fastest passing idiom"] != r["adapter idiom"])
        lines.append(f"Idiom audit, {model}: a faster idiom that passes parity changes the "
                     f"ranking: {_ranked(group, 'adapter ms')} with the adapters' idioms, "
                     f"{_ranked(group, 'fastest ms')} with each framework's fastest ({movers})."
                     + noise)
    if unchanged:
        lines.append("Idiom audit: every framework on its fastest idiom that passes parity leaves "
                     f"the ranking as measured for {', '.join(unchanged)}.")
    return lines


def add_section(report: Any, doc: dict[str, Any] | None, path: Path | None) -> None:
    """The "Idiom audit" section: the table and where a ranking changes."""
    import pandas as pd

    report.heading("Idiom audit")
    if doc is None:
        report.text("No idiom audit was given or found: run `python benchmarks/idioms.py` "
                    "(about 10 minutes), then `fwbench report` again.")
        return
    env = doc.get("environment", {})
    report.text(f"From {path} (commit {env.get('git_commit', 'unknown')}, preset "
                f"{doc.get('preset')}, {doc.get('threads')} threads, {doc.get('rounds')} rounds "
                "per idiom, float32, compiled). For each framework and model, the idiom its "
                "adapter uses (what the speed matrix measures) and the fastest idiom that "
                "matched its losses and parameters over 5 Adam steps in float64 and float32; "
                "ratio = fastest / adapter's. Each framework's audit ran in its own process, "
                "so rankings between frameworks carry the noise between processes.")
    table = pd.DataFrame(rows(doc))
    if table.empty:
        report.text("The audit holds no timed idiom.")
        return
    report.table("idioms", table.round({"adapter ms": 3, "fastest ms": 3, "ratio": 3}))
    report.blocks.append(("list", finding_lines(doc)))
    if doc.get("failed"):
        report.text("Audits that failed: " + "; ".join(map(str, doc["failed"])) + ".")
