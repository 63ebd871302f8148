"""The simple local methods: naive, seasonal naive, drift, Naive2, Croston, SBA, TSB, ensembles.

Each is a :class:`~seqlab.forecast.local.LocalMethod`. A method estimates a few numbers from
one series (:meth:`_Method.estimate`) and forecasts from the series and those numbers
(:meth:`_Method.predict`), so ``from_params`` reproduces ``forecast`` exactly.

Model-based intervals (normal, ``mean +- z sigma_h``) for the random-walk family, with sigma the
root mean squared one-step residual and the textbook horizon factors (Hyndman & Athanasopoulos,
*Forecasting: Principles and Practice*, 3rd ed., section 5.5): naive ``sqrt(h)``, seasonal naive
``sqrt(floor((h - 1) / m) + 1)``, drift ``sqrt(h (1 + h / (n - 1)))``. Methods without a model
(Naive2, Croston, ensembles) get conformal intervals from :mod:`seqlab.forecast.conformal`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar, Literal

import numpy as np

from seqlab.errors import ConfigError, DataError
from seqlab.forecast.local import Forecast, LocalMethod, check_series
from seqlab.forecast.seasonal import Seasonality, deseasonalise

__all__ = [
    "Naive", "SeasonalNaive", "Drift", "Naive2", "Croston", "SBA", "TSB", "Ensemble", "FittedMethod",
    "normal_intervals", "ses_level",
]


def normal_intervals(mean: np.ndarray, sigma_h: np.ndarray, levels: Sequence[float]) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """``mean -+ z sigma_h`` for each level in percent (0 < level < 100)."""
    out = {}
    for level in levels:
        if not 0 < float(level) < 100:
            raise ConfigError(f"an interval level is a percentage in (0, 100), found {level}")
        z = NormalDist().inv_cdf(0.5 + float(level) / 200.0)
        out[float(level)] = (mean - z * sigma_h, mean + z * sigma_h)
    return out


class FittedMethod:
    """A method with its estimates for one series: the :class:`LocalFit` every method here returns."""

    def __init__(self, method: _Method, y: np.ndarray, m: int, params: dict[str, Any]) -> None:
        self.method, self.y, self.m, self._params = method, y, m, params

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        if x_future is not None:
            raise ConfigError(f"{self.method.name} uses no covariates; x_future must be None")
        if h < 1:
            raise ConfigError(f"the horizon h must be >= 1, found {h}")
        if levels and not self.method.has_intervals:
            raise ConfigError(f"{self.method.name} has no model-based intervals; use conformal intervals "
                              "(seqlab.forecast.conformal.Conformal)")
        return self.method.predict(self.y, self.m, self._params, h, tuple(levels))

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def fitted_values(self) -> np.ndarray:
        """One-step in-sample forecasts, NaN where the method has none (for residual checks)."""
        return self.method.one_step(self.y, self.m, self._params)


class _Method(ABC):
    """Shared plumbing: input checks, fit / from_params; subclasses set estimate and predict."""

    name: ClassVar[str]
    has_intervals: ClassVar[bool] = False
    uses_covariates: ClassVar[bool] = False
    min_length: ClassVar[int] = 1

    def _check(self, y: Any, m: int, x: np.ndarray | None) -> np.ndarray:
        if x is not None:
            raise ConfigError(f"{self.name} uses no covariates; pass x=None")
        if int(m) != m or m < 1:
            raise ConfigError(f"the season length m must be a positive integer, found {m}")
        arr = check_series(y, where=f"{self.name}: series")
        if len(arr) < self.min_length:
            raise DataError(None, None, f"{self.name}: a series of at least {self.min_length} values", f"{len(arr)}")
        return arr

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> FittedMethod:
        arr = self._check(y, m, x)
        return FittedMethod(self, arr, int(m), self.estimate(arr, int(m)))

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> FittedMethod:
        return FittedMethod(self, self._check(y, m, x), int(m), dict(params))

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        return {}

    @abstractmethod
    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        """The forecast for ``h`` steps from the estimates ``p``, with intervals at ``levels``."""

    def one_step(self, y: np.ndarray, m: int, p: Mapping[str, Any]) -> np.ndarray:
        return np.full(len(y), np.nan)


def _sigma(residuals: np.ndarray) -> float:
    r = residuals[np.isfinite(residuals)]
    return float(np.sqrt(np.mean(r**2))) if len(r) else 0.0


@dataclass(frozen=True)
class Naive(_Method):
    """The last value, repeated."""

    name: ClassVar[str] = "naive"
    has_intervals: ClassVar[bool] = True

    def one_step(self, y: np.ndarray, m: int, p: Mapping[str, Any]) -> np.ndarray:
        return np.r_[np.nan, y[:-1]]

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        mean = np.full(h, y[-1])
        sigma = _sigma(y - self.one_step(y, m, p))
        return Forecast(mean, normal_intervals(mean, sigma * np.sqrt(np.arange(1, h + 1)), levels))


@dataclass(frozen=True)
class SeasonalNaive(_Method):
    """The value one season earlier (the naive forecast when m = 1 or the series is shorter than m)."""

    name: ClassVar[str] = "snaive"
    has_intervals: ClassVar[bool] = True

    def one_step(self, y: np.ndarray, m: int, p: Mapping[str, Any]) -> np.ndarray:
        lag = m if len(y) > m else 1
        return np.r_[np.full(lag, np.nan), y[:-lag]]

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        lag = m if len(y) > m else 1
        steps = np.arange(h)
        mean = y[len(y) - lag + steps % lag]
        sigma = _sigma(y - self.one_step(y, m, p))
        return Forecast(mean, normal_intervals(mean, sigma * np.sqrt(steps // lag + 1), levels))


@dataclass(frozen=True)
class Drift(_Method):
    """A random walk with drift: the line through the first and the last value, extended."""

    name: ClassVar[str] = "drift"
    has_intervals: ClassVar[bool] = True
    min_length: ClassVar[int] = 2

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        return {"slope": float((y[-1] - y[0]) / (len(y) - 1))}

    def one_step(self, y: np.ndarray, m: int, p: Mapping[str, Any]) -> np.ndarray:
        return np.r_[np.nan, y[:-1] + p["slope"]]

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        steps = np.arange(1, h + 1)
        mean = y[-1] + p["slope"] * steps
        sigma = _sigma(y - self.one_step(y, m, p))
        return Forecast(mean, normal_intervals(mean, sigma * np.sqrt(steps * (1 + steps / (len(y) - 1))), levels))


@dataclass(frozen=True)
class Naive2(_Method):
    """The naive forecast of the seasonally adjusted series, reseasonalised (the M3/M4 benchmark)."""

    name: ClassVar[str] = "naive2"

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        return {"seasonality": deseasonalise(y, m).to_json()}

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        s = Seasonality.from_json(p["seasonality"])
        return Forecast(s.restore(np.full(h, s.adjust(y)[-1]), len(y)))


def ses_level(x: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """Simple exponential smoothing started at the first value: (the level after the last
    value, the one-step forecasts (n,), the first being the first value)."""
    level, fitted = float(x[0]), np.empty(len(x))
    for i, v in enumerate(x):
        fitted[i] = level
        level = alpha * float(v) + (1.0 - alpha) * level
    return level, fitted


def _intervals_between(y: np.ndarray) -> np.ndarray:
    """Periods between demands, the first counted from the series start (position + 1)."""
    return np.diff(np.flatnonzero(y != 0) + 1, prepend=0).astype(np.float64)


@dataclass(frozen=True)
class Croston(_Method):
    """Croston (1972): SES (``alpha``) of the nonzero demand sizes over SES of the intervals
    between demands; a flat forecast. ``debias``: the SBA factor ``1 - alpha / 2``."""

    alpha: float = 0.1
    name: ClassVar[str] = "croston"
    debias: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ConfigError(f"{self.name}: alpha must be in (0, 1], found {self.alpha}")

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        sizes = y[y > 0]
        if not len(sizes):
            return {"rate": 0.0}
        z, _ = ses_level(sizes, self.alpha)
        p, _ = ses_level(_intervals_between(y), self.alpha)
        rate = z / p if p != 0 else z
        return {"rate": rate * (1 - self.alpha / 2) if self.debias else rate}

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        return Forecast(np.full(h, float(p["rate"])))


@dataclass(frozen=True)
class SBA(Croston):
    """Syntetos & Boylan (2005): Croston's forecast times ``1 - alpha / 2``, removing its bias."""

    name: ClassVar[str] = "sba"
    debias: ClassVar[bool] = True


@dataclass(frozen=True)
class TSB(_Method):
    """Teunter, Syntetos & Babai (2011): SES of the demand probability (``alpha_p``, every period)
    times SES of the nonzero demand sizes (``alpha_d``): the forecast decays when demand stops."""

    alpha_d: float = 0.1
    alpha_p: float = 0.1
    name: ClassVar[str] = "tsb"

    def __post_init__(self) -> None:
        for key in ("alpha_d", "alpha_p"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"tsb: {key} must be in (0, 1], found {getattr(self, key)}")

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        sizes = y[y > 0]
        if not len(sizes):
            return {"rate": 0.0}
        prob, _ = ses_level((y != 0).astype(np.float64), self.alpha_p)
        size, _ = ses_level(sizes, self.alpha_d)
        return {"rate": prob * size}

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        return Forecast(np.full(h, float(p["rate"])))


@dataclass(frozen=True)
class Ensemble(_Method):
    """The mean or median, step by step, of its members' point forecasts (each fitted to the
    series on its own). ``members``: method names from the model registry."""

    members: tuple[str, ...] = ("theta", "naive2", "drift")
    combine: Literal["median", "mean"] = "median"
    name: ClassVar[str] = "ensemble"

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("ensemble: members must name at least one method")
        if self.combine not in ("median", "mean"):
            raise ConfigError(f"ensemble: combine must be 'median' or 'mean', found {self.combine!r}")

    def methods(self) -> list[LocalMethod]:
        from seqlab.forecast.methods import method_by_name

        return [method_by_name(name) for name in self.members]

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        return {name: meth.fit(y, m).params() for name, meth in zip(self.members, self.methods())}

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        fcs = np.stack([meth.from_params(y, m, p[name]).forecast(h).mean for name, meth in zip(self.members, self.methods())])
        return Forecast(np.median(fcs, axis=0) if self.combine == "median" else fcs.mean(axis=0))
