"""Conformal prediction intervals from rolling-origin residuals, around any local method.

For a series of n values and horizon h, the method is refitted at ``windows`` origins
``n - k h`` (k = windows..1) and forecasts h steps from each; the absolute errors form, per
horizon step j, a set of scores. The interval at level L is ``mean +- q_j``, with q_j the
empirical L% quantile of step j's scores (numpy's linear rule), around the forecast fitted on
the whole series. Fewer windows are used when the series is too short for all of them (at
least one is needed). With K windows the quantile is only as fine as K scores allow: K >= 20
gives 95% intervals their meaning (Stankeviciute et al. 2021 for the per-step form; statsforecast
calls it ConformalIntervals).

Short series cannot supply that many origins, so :func:`scaled_scores` and
:func:`panel_intervals` pool them over a panel instead: each series' errors are divided by its
MASE scale, the step-j quantile is taken over every series and origin, and a series' interval
is that quantile times its own scale (exchangeability across series instead of across time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, DataError
from seqlab.forecast.local import Forecast, LocalFit, LocalMethod, check_series

__all__ = ["Conformal", "ConformalFit", "rolling_scores", "scaled_scores", "panel_intervals"]


def rolling_scores(method: LocalMethod, y: np.ndarray, m: int, h: int, windows: int, min_train: int = 3) -> np.ndarray:
    """Absolute errors (K, h) of ``method`` refitted at the last K <= ``windows`` origins h apart."""
    k = min(windows, (len(y) - min_train) // h)
    if k < 1:
        raise DataError(None, None, f"a series of at least {min_train + h} values for conformal intervals (h = {h})",
                        f"{len(y)} values")
    rows = []
    for i in range(k, 0, -1):
        origin = len(y) - i * h
        fc = method.fit(y[:origin], m).forecast(h).mean
        rows.append(np.abs(y[origin:origin + h] - fc))
    return np.stack(rows)  # (K, h)


class ConformalFit:
    """The base fit plus its rolling-origin scores."""

    def __init__(self, base: LocalFit, scores: np.ndarray) -> None:
        self.base, self.scores = base, scores

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        if h > self.scores.shape[1]:
            raise ConfigError(f"conformal intervals were calibrated for h <= {self.scores.shape[1]}, asked for {h}")
        mean = self.base.forecast(h, (), x_future).mean
        out = {}
        for level in levels:
            q = np.quantile(self.scores[:, :h], float(level) / 100.0, axis=0)  # (h,)
            out[float(level)] = (mean - q, mean + q)
        return Forecast(mean, out)

    def params(self) -> dict[str, Any]:
        return {"base": self.base.params(), "scores": self.scores.tolist()}


@dataclass(frozen=True)
class Conformal:
    """Wrap ``method`` so it gives intervals for horizons up to ``h``."""

    method: LocalMethod
    h: int
    windows: int = 5

    @property
    def name(self) -> str:
        return f"conformal({self.method.name})"

    has_intervals = True

    @property
    def uses_covariates(self) -> bool:
        return False

    def __post_init__(self) -> None:
        if self.h < 1 or self.windows < 1:
            raise ConfigError(f"conformal: h and windows must be >= 1, found h={self.h}, windows={self.windows}")

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> ConformalFit:
        if x is not None:
            raise ConfigError("conformal intervals are computed without covariates; pass x=None")
        arr = check_series(y, where=f"{self.name}: series")
        return ConformalFit(self.method.fit(arr, m), rolling_scores(self.method, arr, m, self.h, self.windows))

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> ConformalFit:
        arr = check_series(y, where=f"{self.name}: series")
        scores = np.asarray(params["scores"], dtype=np.float64)
        return ConformalFit(self.method.from_params(arr, m, params["base"]), scores)


# --------------------------------------------------------------------------- pooled over a panel


def scaled_scores(method: LocalMethod, y: np.ndarray, m: int, h: int, windows: int) -> np.ndarray:
    """One series' rolling-origin absolute errors (K, h), each divided by the series' in-sample
    seasonal-naive MAE (the MASE scale), so series of any size pool; (0, h) when the series is
    too short for one origin or flat."""
    from seqlab.metrics.forecasting import seasonal_scale

    scale = seasonal_scale(y, m)
    if not np.isfinite(scale) or scale <= 0 or (len(y) - 3) // h < 1:
        return np.zeros((0, h))
    return rolling_scores(method, y, m, h, windows) / scale


def panel_intervals(mean: np.ndarray, y: np.ndarray, m: int, scores: np.ndarray,
                    levels: Sequence[float]) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """``mean +- q_j * scale(y)``: q_j the L% quantile of the panel's scaled scores at step j
    (``scores`` (N, h) pooled over every training series and origin)."""
    from seqlab.metrics.forecasting import seasonal_scale

    h = len(mean)
    if h > scores.shape[1]:
        raise ConfigError(f"conformal intervals were calibrated for h <= {scores.shape[1]}, asked for {h}")
    if not len(scores):
        raise ConfigError("no training series was long enough to calibrate panel conformal intervals")
    scale = seasonal_scale(y, m)
    scale = scale if np.isfinite(scale) else 0.0
    out = {}
    for level in levels:
        q = np.quantile(scores[:, :h], float(level) / 100.0, axis=0) * scale  # (h,)
        out[float(level)] = (mean - q, mean + q)
    return out
