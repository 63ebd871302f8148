"""Forecast accuracy: point, interval and quantile metrics, per series and over a panel.

Per series, ``y`` (h,) is what happened, ``f`` (h,) the point forecast and ``insample`` (n,)
the history the forecast was made from (the scale of MASE, RMSSE and MSIS).

Point metrics:
    MAE, RMSE; MAPE (100 |y - f| / |y|);
    sMAPE as M3 defined it, ``200 |y - f| / (y + f)`` (Makridakis & Hibon 2000; the tables of
    the M3 and N-BEATS papers use it), and the absolute-value variant ``200 |y - f| / (|y| + |f|)``
    (M4; 0 where both are 0). They agree whenever y and f are positive, as on M3; M3's form
    gives a negative term where y + f < 0, so a wild negative forecast can lower it (compare both);
    MASE: MAE over the in-sample MAE of the seasonal naive forecast (lag m; lag 1 when the
    history is no longer than m) (Hyndman & Koehler 2006);
    RMSSE: RMSE over the in-sample RMS of the lag-m differences (the M5 scale with m = 1);
    OWA: the mean of sMAPE and MASE, each relative to Naive2's (M4).
Interval and quantile metrics:
    MSIS at alpha = 0.05 (the 95% interval), scaled like MASE (M4); coverage of each interval;
    pinball loss per quantile level tau, ``max(tau (y - q), (tau - 1) (y - q))``; CRPS from
    quantiles, twice the mean pinball loss over the quantile levels (the discrete form of
    CRPS = 2 * integral of the pinball loss over tau).

Panels: :func:`panel_metrics` averages every pointwise quantity over all series and horizons
(the "average over all series and horizons" that published tables report: with one horizon per
frequency it equals the mean over series of each series' mean); RMSE and RMSSE are computed per
series and averaged with weights h_i. :func:`per_horizon` gives the same quantities per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "mae", "rmse", "mape", "smape", "smape_abs", "mase", "rmsse", "owa", "msis", "coverage",
    "pinball", "crps", "seasonal_scale", "interval_quantiles", "SeriesForecast", "panel_metrics",
    "per_horizon", "POINT_METRICS",
]

POINT_METRICS = ("mae", "rmse", "mape", "smape", "smape_abs", "mase", "rmsse")


def _pair(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"actuals and forecasts differ in shape: {a.shape} vs {b.shape}")
    return a, b


def seasonal_scale(insample: np.ndarray | Sequence[float], m: int = 1, power: int = 1) -> float:
    """Mean of ``|x_t - x_{t-m}|**power`` over the history (lag 1 when it is no longer than m);
    the denominator of MASE (power 1), RMSSE and MSIS. NaN for a history of one value."""
    x = np.asarray(insample, dtype=np.float64)
    lag = m if len(x) > m else 1
    if len(x) <= lag:
        return float("nan")
    return float(np.mean(np.abs(x[lag:] - x[:-lag]) ** power))


def _point_terms(y: np.ndarray, f: np.ndarray) -> dict[str, np.ndarray]:
    """The per-point quantities whose means are MAE, MSE, MAPE, sMAPE (both)."""
    err = np.abs(y - f)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = 100.0 * err / np.abs(y)
        sm = 200.0 * err / (y + f)
        den = np.abs(y) + np.abs(f)
        sm_abs = np.where(den == 0, 0.0, 200.0 * err / np.where(den == 0, 1.0, den))
    return {"ae": err, "se": err**2, "ape": ape, "smape": sm, "smape_abs": sm_abs}


def mae(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> float:
    a, b = _pair(y, f)
    return float(np.mean(np.abs(a - b)))


def rmse(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> float:
    a, b = _pair(y, f)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mape(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> float:
    """In percent; infinite when an actual is 0."""
    return float(np.mean(_point_terms(*_pair(y, f))["ape"]))


def smape(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> float:
    """M3's sMAPE in percent: mean of 200 |y - f| / (y + f)."""
    return float(np.mean(_point_terms(*_pair(y, f))["smape"]))


def smape_abs(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float]) -> float:
    """The absolute-value sMAPE in percent: mean of 200 |y - f| / (|y| + |f|), 0 where both are 0."""
    return float(np.mean(_point_terms(*_pair(y, f))["smape_abs"]))


def mase(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float], insample: np.ndarray | Sequence[float],
         m: int = 1) -> float:
    return mae(y, f) / seasonal_scale(insample, m)


def rmsse(y: np.ndarray | Sequence[float], f: np.ndarray | Sequence[float], insample: np.ndarray | Sequence[float],
          m: int = 1) -> float:
    a, b = _pair(y, f)
    return float(np.sqrt(np.mean((a - b) ** 2) / seasonal_scale(insample, m, power=2)))


def owa(smape_value: float, mase_value: float, smape_naive2: float, mase_naive2: float) -> float:
    """M4's overall weighted average: 0.5 (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2)."""
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


def _msis_terms(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, alpha: float) -> np.ndarray:
    return (hi - lo) + (2.0 / alpha) * ((lo - y) * (y < lo) + (y - hi) * (y > hi))


def msis(y: np.ndarray | Sequence[float], lower: np.ndarray | Sequence[float], upper: np.ndarray | Sequence[float],
         insample: np.ndarray | Sequence[float], m: int = 1, alpha: float = 0.05) -> float:
    """Mean scaled interval score of the (1 - alpha) interval (M4)."""
    a, lo = _pair(y, lower)
    _, hi = _pair(y, upper)
    return float(np.mean(_msis_terms(a, lo, hi, alpha)) / seasonal_scale(insample, m))


def coverage(y: np.ndarray | Sequence[float], lower: np.ndarray | Sequence[float],
             upper: np.ndarray | Sequence[float]) -> float:
    """Share of actuals inside [lower, upper]."""
    a, lo = _pair(y, lower)
    _, hi = _pair(y, upper)
    return float(np.mean((a >= lo) & (a <= hi)))


def pinball(y: np.ndarray | Sequence[float], q: np.ndarray | Sequence[float], tau: float) -> float:
    """Mean pinball (quantile) loss of the forecast quantile ``q`` at level ``tau``."""
    a, b = _pair(y, q)
    d = a - b
    return float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))


def crps(y: np.ndarray | Sequence[float], quantiles: Mapping[float, np.ndarray | Sequence[float]]) -> float:
    """CRPS from quantile forecasts: 2 x the mean over levels of the pinball loss."""
    if not quantiles:
        raise ValueError("crps needs at least one quantile forecast")
    return 2.0 * float(np.mean([pinball(y, q, tau) for tau, q in quantiles.items()]))


def interval_quantiles(mean: np.ndarray, intervals: Mapping[float, tuple[np.ndarray, np.ndarray]]) -> dict[float, np.ndarray]:
    """Quantile forecasts read off central intervals: level L gives the (1 - L/100)/2 and
    (1 + L/100)/2 quantiles; the point forecast stands for the median."""
    out: dict[float, np.ndarray] = {0.5: np.asarray(mean, dtype=np.float64)}
    for level, (lo, hi) in intervals.items():
        a = (1.0 - float(level) / 100.0) / 2.0
        out[round(a, 6)] = np.asarray(lo, dtype=np.float64)
        out[round(1.0 - a, 6)] = np.asarray(hi, dtype=np.float64)
    return dict(sorted(out.items()))


@dataclass
class SeriesForecast:
    """One series' forecast for scoring: actuals ``y`` (h,), ``mean`` (h,), the history
    ``insample`` (n,), season length ``m``, ``intervals`` level -> (lower, upper), and optionally
    Naive2's forecast (h,) for OWA."""

    y: np.ndarray
    mean: np.ndarray
    insample: np.ndarray
    m: int = 1
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    naive2: np.ndarray | None = None


def _terms(s: SeriesForecast) -> dict[str, np.ndarray]:
    """Every per-point quantity of one series, each (h,); a flat history's scaled errors are
    NaN (0/0) or infinite, without a warning: the metric then says so itself."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _terms_raw(s)


def _terms_raw(s: SeriesForecast) -> dict[str, np.ndarray]:
    y, f = _pair(s.y, s.mean)
    t = _point_terms(y, f)
    scale1, scale2 = seasonal_scale(s.insample, s.m), seasonal_scale(s.insample, s.m, power=2)
    t["sae"] = t["ae"] / scale1
    t["sse"] = t["se"] / scale2
    if s.naive2 is not None:
        n2 = _point_terms(y, np.asarray(s.naive2, dtype=np.float64))
        t["n2_smape"], t["n2_sae"] = n2["smape"], n2["ae"] / scale1
    if 95.0 in s.intervals:
        lo, hi = s.intervals[95.0]
        t["msis"] = _msis_terms(y, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64), 0.05) / scale1
    for level, (lo, hi) in s.intervals.items():
        t[f"coverage_{level:g}"] = ((y >= lo) & (y <= hi)).astype(np.float64)
    if s.intervals:
        qs = interval_quantiles(f, s.intervals)
        for tau, q in qs.items():
            d = y - q
            t[f"pinball_{tau:g}"] = np.maximum(tau * d, (tau - 1.0) * d)
        t["crps"] = 2.0 * np.mean([t[f"pinball_{tau:g}"] for tau in qs], axis=0)
    return t


def _finish(sums: dict[str, float], per_series_rmse: float, per_series_rmsse: float) -> dict[str, float]:
    out = {"mae": sums["ae"], "rmse": per_series_rmse, "mape": sums["ape"], "smape": sums["smape"],
           "smape_abs": sums["smape_abs"], "mase": sums["sae"], "rmsse": per_series_rmsse}
    if "n2_smape" in sums:
        out["owa"] = owa(sums["smape"], sums["sae"], sums["n2_smape"], sums["n2_sae"])
    for key, v in sums.items():
        if key == "msis" or key == "crps" or key.startswith(("coverage_", "pinball_")):
            out[key] = v
    return out


def _common(series: Sequence[SeriesForecast]) -> list[dict[str, np.ndarray]]:
    if not series:
        raise ValueError("no series to score")
    terms = [_terms(s) for s in series]
    keys = set(terms[0])
    if any(set(t) != keys for t in terms):
        raise ValueError("every series must carry the same intervals (and Naive2 for all or none)")
    return terms


def panel_metrics(series: Sequence[SeriesForecast]) -> dict[str, float]:
    """The point-weighted averages over all series and horizons (see the module docstring)."""
    terms = _common(series)
    sums = {k: float(np.mean(np.concatenate([t[k] for t in terms]))) for k in terms[0]}
    hs = np.array([len(t["ae"]) for t in terms], dtype=np.float64)
    r = np.array([np.sqrt(np.mean(t["se"])) for t in terms])
    rs = np.array([np.sqrt(np.mean(t["sse"])) for t in terms])
    return _finish(sums, float(np.sum(r * hs) / hs.sum()), float(np.sum(rs * hs) / hs.sum()))


def per_horizon(series: Sequence[SeriesForecast]) -> list[dict[str, float]]:
    """The same metrics at each forecast step k = 1..max h (over the series that reach step k);
    RMSE and RMSSE at step k are the root mean square over series."""
    terms = _common(series)
    out = []
    for k in range(max(len(t["ae"]) for t in terms)):
        at = [t for t in terms if len(t["ae"]) > k]
        sums = {key: float(np.mean([t[key][k] for t in at])) for key in terms[0]}
        out.append(_finish(sums, float(np.sqrt(sums["se"])), float(np.sqrt(sums["sse"]))))
    return out
