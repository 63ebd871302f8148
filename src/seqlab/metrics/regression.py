"""Regression metrics over one or more outputs: MAE, RMSE, R² (and MSE).

Each takes predictions and references as ``(N,)`` or ``(N, K)`` arrays (lists of floats or of
equal-length float lists). Multi-output scores are the plain average over the K outputs, as
scikit-learn's ``multioutput="uniform_average"``; R² of an output whose references are constant
is 1.0 for a perfect prediction and 0.0 otherwise, as scikit-learn reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seqlab.errors import SeqlabError

__all__ = ["mae", "mse", "rmse", "r2", "as_matrix"]


def as_matrix(values: Sequence[Any]) -> np.ndarray:
    """``(N, K)`` float64 from N floats or N lists of K floats."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise SeqlabError(f"regression values must be numbers or equal-length lists of numbers, found shape {arr.shape}")
    return arr


def _pair(predictions: Sequence[Any], references: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    p, r = as_matrix(predictions), as_matrix(references)
    if p.shape != r.shape:
        raise SeqlabError(f"predictions {p.shape} and references {r.shape} differ in shape")
    if not len(p):
        raise SeqlabError("no examples to score")
    return p, r


def mae(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    p, r = _pair(predictions, references)
    return float(np.abs(p - r).mean(0).mean())


def mse(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    p, r = _pair(predictions, references)
    return float(((p - r) ** 2).mean(0).mean())


def rmse(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """The square root of each output's MSE, averaged over outputs."""
    p, r = _pair(predictions, references)
    return float(np.sqrt(((p - r) ** 2).mean(0)).mean())


def r2(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """1 - SS_res / SS_tot per output, averaged (the coefficient of determination)."""
    p, r = _pair(predictions, references)
    ss_res = ((r - p) ** 2).sum(0)
    ss_tot = ((r - r.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return float(score.mean())
