"""Helpers shared by the probe result dataclasses: JSON-ready dicts (tables: :mod:`seqlab.formatting`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from torch import Tensor

__all__ = ["json_ready", "result_dict", "family_of"]


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


def family_of(model: Any) -> str:
    return str(getattr(model, "family", type(model).__name__))
