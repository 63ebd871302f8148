"""Families side by side on one dataset (``seqlab compare``), and one run rendered the same way
(``seqlab report``): metrics with bootstrap intervals, a paired test, costs, learning curves,
breakdowns, sensitivity heatmaps and a rule-based recommendation."""

from __future__ import annotations

from seqlab.compare.core import compare, parse_sizes, recommend
from seqlab.compare.records import Records, record_examples
from seqlab.compare.stats import paired_p_value, percentile_interval, resample_indices

__all__ = ["compare", "parse_sizes", "recommend", "Records", "record_examples", "paired_p_value",
           "percentile_interval", "resample_indices"]
