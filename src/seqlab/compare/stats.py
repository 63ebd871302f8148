"""Bootstrap statistics over test examples: confidence intervals and the paired test.

The test split is resampled with replacement, the same way for every family (one seeded index
matrix), and a metric is recomputed on each resample from per-example records (see
:mod:`seqlab.compare.records`). The 95% interval is the percentile interval of the resampled
values (Efron & Tibshirani 1993, ch. 13). The paired test is the paired bootstrap of Koehn (2004):
on the same resamples, the p-value is the fraction where the best system is not better than the
other one.

Shapes: B resamples, N test examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["resample_indices", "bootstrap_values", "percentile_interval", "paired_p_value"]


def resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(B, N) int64 indices drawn uniformly with replacement from ``range(n)`` by numpy's PCG64
    generator seeded with ``seed``: the same matrix for every family, so resamples are paired."""
    if n < 1:
        raise ConfigError(f"bootstrap needs at least one test example, found {n}")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, found {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n), dtype=np.int64)


def bootstrap_values(metric: Callable[[Sequence[int]], dict[str, float]], indices: np.ndarray) -> dict[str, np.ndarray]:
    """``{metric name: (B,) values}``: ``metric(rows)`` (every metric of one resample) on each row
    of ``indices``; a name missing from some resample gets NaN there."""
    runs = [metric(row.tolist()) for row in indices]
    names = sorted({k for r in runs for k in r})
    return {k: np.array([float(r.get(k, np.nan)) for r in runs], dtype=np.float64) for k in names}


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval: the (1 - level) / 2 and (1 + level) / 2 quantiles of
    the resampled values (numpy's default linear interpolation), NaNs dropped; (nan, nan) if none."""
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), found {level}")
    v = values[np.isfinite(values)]
    if not v.size:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_p_value(best: np.ndarray, other: np.ndarray, greater_is_better: bool) -> float:
    """Koehn's paired bootstrap p-value: the fraction of resamples (same rows for both) where the
    best system is not strictly better than ``other``. Small: the difference is unlikely to be a
    draw of the test set. Resamples where either value is NaN are left out."""
    if best.shape != other.shape:
        raise ConfigError(f"paired values need the same resamples, found shapes {best.shape} and {other.shape}")
    ok = np.isfinite(best) & np.isfinite(other)
    if not ok.any():
        return float("nan")
    diff = (best - other)[ok]
    better = diff > 0 if greater_is_better else diff < 0
    return float(1.0 - better.mean())
