"""Helpers shared by the probe result dataclasses: JSON-ready dicts and text tables."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

__all__ = ["json_ready", "result_dict", "format_rows", "family_of"]


def json_ready(v: Any) -> Any:
    """``v`` with tuples and tensors as lists and every NaN or infinite float as None (JSON has
    no such numbers; an infinite KL arises where q_j(k) = 0 < p_j(k))."""
    if isinstance(v, Tensor):
        return json_ready(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [json_ready(x) for x in v]
    if isinstance(v, dict):
        return {k: json_ready(x) for k, x in v.items()}
    return v


def result_dict(result: Any, *properties: str) -> dict[str, Any]:
    """A frozen result dataclass as JSON-ready data (:func:`json_ready`), plus the named ``properties``."""
    out = {f.name: json_ready(getattr(result, f.name)) for f in dataclasses.fields(result)}
    out.update({p: json_ready(getattr(result, p)) for p in properties})
    return out


def format_rows(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """:func:`seqlab.cli.format_table` with floats written to 4 significant digits."""
    from seqlab.cli import format_table

    return format_table([[f"{v:.4g}" if isinstance(v, float) else v for v in r] for r in rows], header)


def family_of(model: Any) -> str:
    return str(getattr(model, "family", type(model).__name__))
