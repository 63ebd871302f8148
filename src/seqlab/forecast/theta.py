"""The Theta family as state-space models (Fiorucci, Pellegrini, Louzada, Petropoulos & Koehler
2016, "Models for optimising the theta method and their relationship to state space models").

On the seasonally adjusted series (the M3 test and classical decomposition,
:mod:`seqlab.forecast.seasonal`), for t = 1..n::

    mu_t  = l_{t-1} + (1 - 1/theta) [ (1 - alpha)^(t-1) A_{t-1} + (1 - (1 - alpha)^t) / alpha * B_{t-1} ]
    l_t   = alpha Y_t + (1 - alpha) l_{t-1}

A and B are the intercept and slope of the least-squares line through the series: in the
static models those of the whole series, in the dynamic ones those of Y_1..Y_t, updated
recursively. The static models forecast
``l_n + (1 - 1/theta) [ (1 - alpha)^n A_n + ((h - 1) + (1 - (1 - alpha)^(n+1)) / alpha) B_n ]``;
the dynamic ones run the recursion on, each forecast taken as the next value.
l_0, alpha (in [0.1, 0.99]) and, for the optimised models, theta (>= 1) minimise the mean
squared one-step error: Nelder-Mead from the best point of a coarse grid (l_0 in {Y_1 / 2, Y_1},
six alphas, six thetas).

* ``theta`` (STM): static, theta = 2: the SES-with-drift form of the M3 winner (Assimakopoulos &
  Nikolopoulos 2000; Hyndman & Billah 2003 showed it is SES with drift of half the slope);
* ``otm``: static, theta optimised; ``dstm``: dynamic, theta = 2; ``dotm``: dynamic, optimised.

Intervals (``theta`` only): those of its SES equivalent, ETS(A,N,N): ``sigma^2 (1 + alpha^2 (h - 1))``,
reseasonalised like the forecast (as R's ``forecast::thetaf``); the others take conformal ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np
from scipy.optimize import minimize

from seqlab.forecast.local import Forecast
from seqlab.forecast.seasonal import Seasonality, deseasonalise
from seqlab.forecast.simple import _Method, normal_intervals

__all__ = ["Theta", "OptimizedTheta", "DynamicTheta", "DynamicOptimizedTheta", "theta_pass", "theta_forecast"]

ALPHA_BOUNDS = (0.1, 0.99)
THETA_MIN = 1.0
SIMPLEX_STEP = (0.1, 0.1, 1.0)  # the first simplex's steps in (l_0 / max |y|, alpha, theta)
ALPHA_GRID = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
THETA_GRID = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


@numba.njit(cache=True)
def theta_pass(y: np.ndarray, level0: float, alpha: float, theta: float, dynamic: bool,
               h: int = 0) -> tuple[np.ndarray, float, float, float]:
    """One filtering pass: (one-step forecasts mu (n + h,), l_n, A_n, B_n). The h steps past
    the data take each forecast as the next value (the dynamic models' forecasts)."""
    n = len(y)
    mu = np.empty(n + h)
    w = 1.0 - 1.0 / theta
    # the whole series' least-squares line (t = 1..n): the static A, B and the dynamic end point
    tbar = (n + 1) / 2.0
    ybar = y.mean()
    sxx = 0.0
    sxy = 0.0
    for i in range(n):
        sxx += (i + 1 - tbar) ** 2
        sxy += (i + 1 - tbar) * (y[i] - ybar)
    b_all = sxy / sxx if sxx > 0 else 0.0
    a_all = ybar - tbar * b_all
    a, b = (0.0, 0.0) if dynamic else (a_all, b_all)
    mean = 0.0
    level = level0
    decay = 1.0  # (1 - alpha)^(t-1)
    level_n, a_n, b_n = level0, a, b
    for i in range(n + h):
        t = i + 1
        mu[i] = level + w * (decay * a + (1.0 - decay * (1.0 - alpha)) / alpha * b)
        v = y[i] if i < n else mu[i]
        level = alpha * v + (1.0 - alpha) * level
        decay *= 1.0 - alpha
        if dynamic:
            if t == 1:
                mean, a, b = v, v, 0.0
            else:
                b = (t - 2.0) / (t + 1.0) * b + 6.0 / (t + 1.0) * (v - mean) / t
                mean = ((t - 1.0) * mean + v) / t
                a = mean - (t + 1.0) / 2.0 * b
        if i == n - 1:
            level_n, a_n, b_n = level, a, b
    return mu, level_n, a_n, b_n


def theta_forecast(n: int, level: float, a: float, b: float, alpha: float, theta: float, h: int) -> np.ndarray:
    steps = np.arange(1, h + 1)
    return level + (1 - 1 / theta) * ((1 - alpha) ** n * a + ((steps - 1) + (1 - (1 - alpha) ** (n + 1)) / alpha) * b)


def _mse(y: np.ndarray, level0: float, alpha: float, theta: float, dynamic: bool) -> float:
    mu = theta_pass(y, level0, alpha, theta, dynamic)[0]
    return float(np.mean((y - mu) ** 2))


def fit_theta(y: np.ndarray, optimize_theta: bool, dynamic: bool) -> dict[str, float]:
    """l_0, alpha and theta minimising the one-step MSE (see the module docstring): Nelder-Mead
    from the best point of a coarse grid (the MSE surface has several valleys when theta is free)."""
    scale = max(float(np.abs(y).max()), 1e-8)

    def objective(v: np.ndarray) -> float:
        alpha = min(max(v[1], ALPHA_BOUNDS[0]), ALPHA_BOUNDS[1])
        theta = max(v[2], THETA_MIN) if optimize_theta else 2.0
        return _mse(y, v[0] * scale, alpha, theta, dynamic) / scale**2

    thetas = THETA_GRID if optimize_theta else (2.0,)
    grid = [np.array([l0 / scale, a] + ([t] if optimize_theta else []))
            for l0 in (y[0] / 2.0, float(y[0])) for a in ALPHA_GRID for t in thetas]
    start = min(grid, key=objective)
    steps = SIMPLEX_STEP[:len(start)]
    simplex = np.vstack([start] + [start + np.eye(len(start))[i] * steps[i] for i in range(len(start))])
    bounds = [(None, None), ALPHA_BOUNDS] + ([(THETA_MIN, None)] if optimize_theta else [])
    res = minimize(objective, start, method="Nelder-Mead", bounds=bounds,
                   options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 1000 * len(start), "initial_simplex": simplex})
    v = res.x if res.fun <= objective(start) else start
    return {"level0": float(v[0] * scale), "alpha": float(np.clip(v[1], *ALPHA_BOUNDS)),
            "theta": float(max(v[2], THETA_MIN)) if optimize_theta else 2.0}


@dataclass(frozen=True)
class Theta(_Method):
    """The standard Theta method (STM): theta = 2, static A and B."""

    name: ClassVar[str] = "theta"
    has_intervals: ClassVar[bool] = True
    min_length: ClassVar[int] = 3
    optimize_theta: ClassVar[bool] = False
    dynamic: ClassVar[bool] = False

    def estimate(self, y: np.ndarray, m: int) -> dict[str, Any]:
        season = deseasonalise(y, m)
        return {**fit_theta(season.adjust(y), self.optimize_theta, self.dynamic), "seasonality": season.to_json()}

    def _run(self, y: np.ndarray, p: Mapping[str, Any]) -> tuple[Seasonality, np.ndarray, np.ndarray, float, float, float]:
        season = Seasonality.from_json(p["seasonality"])
        adj = season.adjust(y)
        mu, level, a, b = theta_pass(adj, float(p["level0"]), float(p["alpha"]), float(p["theta"]), self.dynamic)
        return season, adj, mu, level, a, b

    def one_step(self, y: np.ndarray, m: int, p: Mapping[str, Any]) -> np.ndarray:
        season, _, mu, *_ = self._run(y, p)
        if not season.indices:
            return mu
        return season.restore(mu, 0)

    def predict(self, y: np.ndarray, m: int, p: Mapping[str, Any], h: int, levels: tuple[float, ...]) -> Forecast:
        season, adj, mu, level, a, b = self._run(y, p)
        alpha, theta = float(p["alpha"]), float(p["theta"])
        if self.dynamic:  # the states keep updating, each forecast taken as the next value
            mean = theta_pass(adj, float(p["level0"]), alpha, theta, True, h)[0][len(adj):]
        else:
            mean = theta_forecast(len(adj), level, a, b, alpha, theta, h)
        intervals = {}
        if levels:
            dof = max(len(adj) - 2, 1)
            sigma = float(np.sqrt(np.sum((adj - mu) ** 2) / dof))
            sd = sigma * np.sqrt(1 + alpha**2 * np.arange(h))
            intervals = {lv: (season.restore(lo, len(y)), season.restore(hi, len(y)))
                         for lv, (lo, hi) in normal_intervals(mean, sd, levels).items()}
        return Forecast(season.restore(mean, len(y)), intervals)


@dataclass(frozen=True)
class OptimizedTheta(Theta):
    """OTM: static A and B, theta >= 1 optimised."""

    name: ClassVar[str] = "otm"
    has_intervals: ClassVar[bool] = False
    optimize_theta: ClassVar[bool] = True


@dataclass(frozen=True)
class DynamicTheta(Theta):
    """DSTM: A and B updated as each value arrives, theta = 2."""

    name: ClassVar[str] = "dstm"
    has_intervals: ClassVar[bool] = False
    dynamic: ClassVar[bool] = True


@dataclass(frozen=True)
class DynamicOptimizedTheta(Theta):
    """DOTM: dynamic A and B, theta >= 1 optimised."""

    name: ClassVar[str] = "dotm"
    has_intervals: ClassVar[bool] = False
    optimize_theta: ClassVar[bool] = True
    dynamic: ClassVar[bool] = True
