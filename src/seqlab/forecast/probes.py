"""Forecasting probes: how far back a forecaster looks.

:func:`forecast_sensitivity` changes one past value at a time, ``y[n - lag] += delta`` for
lag = 1..max_lag, and records how each forecast step moves: ``effect[lag - 1, k - 1] =
(f_k(edited) - f_k(y)) / delta``, the finite-difference derivative of step k with respect to the
value ``lag`` steps back. For a linear forecaster it is exact (naive: 1 at lag 1 and 0 elsewhere;
SES: ``alpha (1 - alpha)^(lag - 1)``; seasonal naive: lag ``m - (k - 1) mod m``), so the rows
that are not zero are the lags the model really uses.

Two questions, two modes, for a local (one fit per series) forecaster:

* ``refit=False`` (default): the estimates stay those fitted to the unedited series, so the
  probe reads the forecast *function* (the filter and its parameters): which lags reach it.
* ``refit=True``: the method is fitted afresh to each edited series, so a value also moves the
  forecast through the estimates it helped choose (an optimised smoothing weight, a chosen
  ARIMA order).

A global (neural) forecaster's weights never change with the input, so for it the probe calls
``model.forecast`` on each edited series: that is the fixed-function question, and a value
outside its lookback window moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["ForecastSensitivity", "forecast_sensitivity", "save_sensitivity_heatmap"]


@dataclass
class ForecastSensitivity:
    """``effect`` (max_lag, h): d forecast step k / d value lag steps back (row lag - 1, column k - 1)."""

    series_id: str
    effect: np.ndarray
    delta: float
    refit: bool
    forecast: np.ndarray

    def lags_used(self, tol: float = 1e-9) -> int:
        """The largest lag whose change moves some step by more than ``tol`` times the largest
        effect (0 if nothing moves)."""
        mag = np.abs(self.effect).max(axis=1)
        top = float(mag.max()) if mag.size else 0.0
        if top == 0.0:
            return 0
        used = np.flatnonzero(mag > tol * top)
        return int(used[-1]) + 1

    def lags_for(self, share: float = 0.99) -> int:
        """The fewest most recent lags that hold ``share`` of the total absolute effect."""
        if not 0.0 < share <= 1.0:
            raise ConfigError(f"share must be in (0, 1], found {share}")
        mass = np.abs(self.effect).sum(axis=1)
        total = float(mass.sum())
        if total == 0.0:
            return 0
        return int(np.searchsorted(np.cumsum(mass) / total, share - 1e-12)) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series_id, "delta": self.delta, "refit": self.refit,
                "lags_used": self.lags_used(), "lags_for_99pct": self.lags_for(0.99),
                "effect": self.effect.tolist(), "forecast": self.forecast.tolist()}

    def __str__(self) -> str:
        from seqlab.formatting import format_table

        h = self.effect.shape[1]
        shown = max(self.lags_used(), 1)
        rows = [(str(lag), *(f"{v:+.4g}" for v in self.effect[lag - 1])) for lag in range(1, min(shown, 24) + 1)]
        head = (f"series {self.series_id}: d forecast / d value `lag` steps back ({'refitted' if self.refit else 'estimates fixed'}, "
                f"delta {self.delta:.4g})")
        tail = (f"lags used: {self.lags_used()} of {self.effect.shape[0]} probed; "
                f"99% of the effect within the last {self.lags_for(0.99)}")
        more = f"\n({shown - 24} more lags not shown)" if shown > 24 else ""
        return f"{head}\n{format_table(rows, ('lag', *(f't+{k}' for k in range(1, h + 1))))}{more}\n{tail}"


def _forecaster(model: Any, series: Mapping[str, Any], refit: bool) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    """f(y) -> the point forecast (h,), and the checked series."""
    s = model.task.series(dict(series), 0)
    local = getattr(model, "method", None)
    if local is not None and hasattr(local, "from_params"):
        h = model.task.h
        if refit:
            return (lambda y: np.asarray(local.fit(y, s.m).forecast(h).mean)), s
        params = local.fit(s.y, s.m).params()
        return (lambda y: np.asarray(local.from_params(y, s.m, params).forecast(h).mean)), s
    if refit:
        raise ConfigError(f"refit=True is for local (one fit per series) forecasters; {model.family} is global: "
                          "its weights do not depend on the series it forecasts")
    return (lambda y: np.asarray(model.forecast([{**dict(series), "y": y.tolist()}], levels=())[0].mean)), s


def forecast_sensitivity(model: Any, series: Mapping[str, Any], *, max_lag: int | None = None,
                         delta: float | None = None, refit: bool = False) -> ForecastSensitivity:
    """The effect of each of the last ``max_lag`` values (default: all) of ``series`` (a record
    ``{"y": [...], "m": ..., "id": ...}``) on each forecast step of a fitted forecasting model.
    ``delta``: the size of the change (default: a tenth of the standard deviation of the series'
    first differences, or of its values, or 1)."""
    f, s = _forecaster(model, series, refit)
    y = s.y
    n = len(y)
    lags = n if max_lag is None else int(max_lag)
    if not 1 <= lags <= n:
        raise ConfigError(f"max_lag must be in 1..{n} (the series' length), found {max_lag}")
    if delta is None:
        spread = float(np.std(np.diff(y))) if n > 2 else 0.0
        spread = spread or float(np.std(y)) or 1.0
        delta = 0.1 * spread
    if not np.isfinite(delta) or delta == 0.0:
        raise ConfigError(f"delta must be a finite non-zero number, found {delta}")
    base = f(y)
    effect = np.empty((lags, len(base)))
    for lag in range(1, lags + 1):
        edited = y.copy()
        edited[n - lag] += delta
        effect[lag - 1] = (f(edited) - base) / delta
    return ForecastSensitivity(s.id, effect, float(delta), refit, base)


def save_sensitivity_heatmap(res: ForecastSensitivity, path: str | Path, *, title: str | None = None) -> Path:
    """The effect matrix as an image: forecast step (rows) by lag (columns, most recent left)."""
    from seqlab.plots import _pyplot

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    shown = max(res.lags_used(), 1)
    mat = res.effect[:shown].T
    lim = float(np.abs(mat).max()) or 1.0
    fig, ax = plt.subplots(figsize=(min(12.0, 3.0 + 0.25 * shown), 1.5 + 0.3 * mat.shape[0]))
    try:
        im = ax.imshow(mat, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(0.5, shown + 0.5, mat.shape[0] + 0.5, 0.5))
        ax.set_xlabel("lag (steps back from the last value)")
        ax.set_ylabel("forecast step")
        ax.set_title(title or f"{res.series_id}: d forecast / d past value ({'refitted' if res.refit else 'estimates fixed'})",
                     fontsize=10)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
