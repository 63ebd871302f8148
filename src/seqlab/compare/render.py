"""Writing a report: ``report.md``, a self-contained ``report.html`` and ``results.json``.

A report is a list of blocks (headings, paragraphs, tables, figures) rendered twice: as Markdown
with the figures as PNG files beside it, and as one HTML file with the figures inline (base64
PNG ``data:`` URIs, inline CSS, no scripts, no external resources), so it opens from disk with no
server. ``results.json`` holds every number (NaN and infinity as null).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqlab.io import atomic_write_bytes

__all__ = ["Block", "Report", "fmt", "write_json"]


def fmt(v: Any, digits: int = 4) -> str:
    """A number for a table: 4 significant digits, thousands separators for large integers,
    "-" for missing."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:,.0f}" if abs(v) >= 10 ** digits else f"{v:.{digits}g}"
    return str(v)


@dataclass
class Block:
    """One piece of a report: ``kind`` is "h1", "h2", "p", "table" or "figure"."""

    kind: str
    text: str = ""
    header: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()
    image: Path | None = None


@dataclass
class Report:
    """Blocks in order; :meth:`write` renders them as Markdown and HTML under a directory."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(Block("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(Block("table", header=header, rows=[[fmt(c) for c in r] for r in rows]))

    def figure(self, path: Path | None, caption: str) -> None:
        if path is not None and path.exists():
            self.blocks.append(Block("figure", caption, image=path))

    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b.kind == "h2":
                out += [f"## {b.text}", ""]
            elif b.kind == "p":
                out += [b.text, ""]
            elif b.kind == "table":
                out += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
                out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in b.rows]
                out.append("")
            elif b.kind == "figure" and b.image is not None:
                out += [f"![{b.text}]({b.image.relative_to(base).as_posix()})", "", f"*{b.text}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        parts = [f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b.kind == "h2":
                parts.append(f"<h2>{e(b.text)}</h2>")
            elif b.kind == "p":
                parts.append(f"<p>{_inline(b.text)}</p>")
            elif b.kind == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in b.header)
                body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b.kind == "figure" and b.image is not None:
                data = base64.b64encode(b.image.read_bytes()).decode("ascii")
                parts.append(f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{e(b.text)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
                 "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
                 "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
                 "figcaption{font-size:85%;color:#555}code{background:#f3f3f3}")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(self.title)}</title>'
                f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")

    def write(self, out: Path) -> None:
        atomic_write_bytes(out / "report.md", self.markdown(out).encode("utf-8"))
        atomic_write_bytes(out / "report.html", self.html().encode("utf-8"))


def _inline(text: str) -> str:
    """Escaped text with Markdown's `code` and **bold** spans as HTML."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def write_json(path: Path, results: dict[str, Any]) -> None:
    """``results`` as JSON (objects it cannot hold, such as probe results, left out)."""
    from seqlab.probes.results import json_ready

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items() if k != "result"}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if hasattr(v, "item") and callable(v.item):  # numpy scalars
            return v.item()
        return v

    text = json.dumps(json_ready(plain(results)), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path, text.encode("utf-8"))
