"""The M3 seasonality test and classical decomposition, shared by Naive2 and the Theta family.

A series of season length m > 1 and more than 2m values is called seasonal when its lag-m
autocorrelation r_m exceeds the 90% limit ``1.645 * sqrt((1 + 2 sum_{k<m} r_k^2) / n)``
(Bartlett's standard error; the test of the M3 Theta method and of Naive2, Makridakis & Hibon
2000; Hyndman & Billah 2003). A seasonal series is divided by its classical multiplicative
seasonal indices (a centred moving average of order m, 2 x m when m is even; the ratio to it
averaged per season position; the m indices scaled to mean 1), or, when it has a value <= 0,
has its additive indices (mean 0) subtracted. The method forecasts the adjusted series and the
forecast is reseasonalised with the indices of the future positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Seasonality", "seasonality_test", "seasonal_indices", "deseasonalise", "acf"]

Z90 = 1.6448536269514722  # the standard normal's 95th percentile: a two-sided 90% test


def acf(y: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelations r_1..r_nlags (the biased estimator: sums over n - k pairs / the
    sum of squares over n)."""
    d = y - y.mean()
    denom = float(d @ d)
    if denom == 0.0:
        return np.zeros(nlags)
    return np.array([float(d[k:] @ d[:-k]) / denom for k in range(1, nlags + 1)])


def seasonality_test(y: np.ndarray, m: int) -> bool:
    """True when ``y`` is seasonal with period ``m`` at the 90% level (see the module docstring)."""
    if m <= 1 or len(y) <= 2 * m or np.all(y == y[0]):
        return False
    r = acf(y, m)
    limit = Z90 * np.sqrt((1.0 + 2.0 * np.sum(r[:-1] ** 2)) / len(y))
    return bool(abs(r[-1]) > limit)


def seasonal_indices(y: np.ndarray, m: int, multiplicative: bool = True) -> np.ndarray:
    """The m classical seasonal indices, index i for the positions t = i (mod m), t from 0."""
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    half = len(w) // 2
    trend = np.full(len(y), np.nan)
    trend[half:len(y) - half] = np.convolve(y, w, mode="valid")
    detrended = y / trend if multiplicative else y - trend
    idx = np.array([np.nanmean(detrended[i::m]) for i in range(m)])
    return idx / idx.mean() if multiplicative else idx - idx.mean()


@dataclass(frozen=True)
class Seasonality:
    """How a series was deseasonalised: ``indices`` (m,) (empty: not seasonal) and whether
    they multiply or add."""

    indices: tuple[float, ...] = ()
    multiplicative: bool = True

    def adjust(self, y: np.ndarray) -> np.ndarray:
        """The seasonally adjusted series (the same series when not seasonal)."""
        if not self.indices:
            return y
        s = np.resize(np.asarray(self.indices), len(y))
        return y / s if self.multiplicative else y - s

    def restore(self, f: np.ndarray, n: int) -> np.ndarray:
        """Reseasonalise values at positions n, n+1, ... (a forecast after n observations)."""
        if not self.indices:
            return f
        m = len(self.indices)
        s = np.asarray(self.indices)[(n + np.arange(len(f))) % m]
        return f * s if self.multiplicative else f + s

    def to_json(self) -> dict[str, object]:
        return {"indices": list(self.indices), "multiplicative": self.multiplicative}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Seasonality:
        return cls(tuple(float(v) for v in d["indices"]), bool(d["multiplicative"]))  # type: ignore[attr-defined]


def deseasonalise(y: np.ndarray, m: int) -> Seasonality:
    """Test ``y`` for seasonality and return its decomposition (multiplicative for a positive
    series, else additive; empty when not seasonal)."""
    if not seasonality_test(y, m):
        return Seasonality()
    multiplicative = bool(np.min(y) > 0)
    return Seasonality(tuple(float(v) for v in seasonal_indices(y, m, multiplicative)), multiplicative)
