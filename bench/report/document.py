"""The report as a list of blocks (headings, text, tables, figures) and its two
renderings: Markdown with linked figures, and one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Report:
    """Blocks in order: ("h2"|"h3"|"p", text), ("list", [text, ...]), ("table", name,
    DataFrame), ("figure", name, caption), ("code", name, [(title, source), ...]), whose
    sources HTML shows side by side. Rendered to Markdown and to HTML."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append((f"h{level}", text))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, name: str, frame: Any) -> None:
        self.blocks.append(("table", name, frame))

    def figure(self, name: str, caption: str) -> None:
        self.blocks.append(("figure", name, caption))

    def code(self, name: str, panels: list[tuple[str, str]]) -> None:
        self.blocks.append(("code", name, panels))


def save_figure(fig: Any, out: Path, name: str) -> None:
    for ext in ("png", "svg"):
        fig.savefig(out / "figures" / f"{name}.{ext}", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for block in report.blocks:
        kind = block[0]
        if kind in ("h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list" and block[1]:
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            frame = block[2]
            lines.append("| " + " | ".join(map(str, frame.columns)) + " |")
            lines.append("|" + "---|" * len(frame.columns))
            lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
                      for row in frame.itertuples(index=False)]
            lines.append("")
        elif kind == "figure":
            lines += [f"![{block[2]}](figures/{block[1]}.svg)", "", f"*{block[2]}*", ""]
        elif kind == "code":
            for title, source in block[2]:
                lines += [f"**{title}**", "", "```python", source, "```", ""]
    return "\n".join(lines)


def to_html(report: Report, out: Path) -> str:
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    for block in report.blocks:
        kind = block[0]
        if kind in ("h2", "h3"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "list" and block[1]:
            body.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block[1])
                        + "</ul>")
        elif kind == "table":
            body.append(block[2].to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}",
                                         border=0, classes="data"))
        elif kind == "figure":
            data = base64.b64encode((out / "figures" / f"{block[1]}.png").read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(block[2])}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(block[2])}</figcaption></figure>")
        elif kind == "code":
            body.append(f'<div class="side" style="grid-template-columns:repeat('
                        f'{len(block[2])},minmax(0,1fr))">' + "".join(
                            f"<div><h4>{html.escape(title)}</h4><pre><code>"
                            f"{html.escape(source)}</code></pre></div>"
                            for title, source in block[2]) + "</div>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table.data{border-collapse:collapse;font-size:13px;margin:1em 0}"
             "table.data td,table.data th{border-bottom:1px solid #ddd;padding:3px 8px;"
             "text-align:left}img{max-width:100%}figcaption{font-size:13px;color:#444}"
             ".side{display:grid;gap:10px;margin:1em 0}.side h4{font-size:12px;margin:0 0 4px}"
             ".side pre{font-size:11px;background:#f6f8fa;padding:6px;overflow-x:auto;margin:0}")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(report.title)}</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
