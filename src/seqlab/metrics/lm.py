"""Language-model metrics from a summed negative log-likelihood (nats)."""

from __future__ import annotations

import math

__all__ = ["perplexity", "bits_per_unit"]


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """``exp(total NLL / tokens)``; inf when the mean NLL overflows."""
    if n_tokens <= 0:
        return float("nan")
    mean = nll_sum / n_tokens
    return math.exp(mean) if mean < 700 else float("inf")


def bits_per_unit(nll_sum: float, n_units: int) -> float:
    """Total NLL in bits divided by a unit count (characters for bits per character)."""
    if n_units <= 0:
        return float("nan")
    return nll_sum / n_units / math.log(2)
