"""Plain-text tables for the command line, the demo and the probes' reports.

A leaf module: it imports nothing from seqlab, so :mod:`seqlab.cli`, :mod:`seqlab.demo` and
:mod:`seqlab.probes` all use it without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_table", "format_rows"]


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_rows(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """:func:`format_table` with floats written to 4 significant digits."""
    return format_table([[f"{v:.4g}" if isinstance(v, float) else v for v in r] for r in rows], header)
