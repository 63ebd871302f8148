"""Families side by side on one dataset (``seqlab compare``), and one run rendered the same way
(``seqlab report``): metrics with bootstrap intervals, a paired test, costs, learning curves,
breakdowns, sensitivity heatmaps and a rule-based recommendation.

Imported lazily (the CLI builds its parser from :mod:`seqlab.compare.commands` without torch)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["compare", "report_run", "parse_sizes", "recommend", "Records", "record_examples", "paired_p_value",
           "percentile_interval", "resample_indices"]

_WHERE = {"compare": "core", "parse_sizes": "core", "recommend": "core", "report_run": "single",
          "Records": "records", "record_examples": "records", "paired_p_value": "stats",
          "percentile_interval": "stats", "resample_indices": "stats"}

if TYPE_CHECKING:
    from seqlab.compare.core import compare, parse_sizes, recommend
    from seqlab.compare.records import Records, record_examples
    from seqlab.compare.single import report_run
    from seqlab.compare.stats import paired_p_value, percentile_interval, resample_indices


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"seqlab.compare.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'seqlab.compare' has no attribute {name!r}")
