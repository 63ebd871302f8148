"""Exponential smoothing state-space models (ETS) and their automatic selection.

The innovations state-space models of Hyndman, Koehler, Ord & Snyder (2008), *Forecasting with
Exponential Smoothing*: error A/M x trend N/A/Ad x season N/A/M. States at time t are the level
``l``, the trend ``b`` and the last ``m`` seasonal indices. Writing ``r_t = y_t - mu_t`` for the
raw one-step error, every class updates its states by the same Holt-Winters recursions (the error
type changes only the likelihood):

    mu  = (l + phi b) + s          (season A)  or  (l + phi b) * s  (season M)
    l  <- l + phi b + alpha r / [s if M]
    b  <- phi b + beta r / [s if M]
    s  <- s + gamma r / [(l + phi b) if M]

The likelihood (Hyndman et al. 2008, ch. 5) with the variance concentrated out is
``n log(sum e^2) + 2 sum log|mu|`` (the last term for multiplicative errors only, where
``e = r / mu``). Parameters and initial states are estimated jointly by Nelder-Mead, written in
numba so that one whole fit runs without returning to Python. Starting states follow the
book's heuristic (classical decomposition, a line through the first
ten adjusted values); smoothing parameters are kept in the box ``[1e-4, 0.9999]`` (``phi`` in
``[0.8, 0.98]``) and in the forecastable (admissible) region (Hyndman et al. 2008, ch. 10);
the stricter "usual" region (``beta < alpha``, ``gamma < 1 - alpha``) would rule out fits such
as a nearly fixed level with a moving slope.

``ETS(error, trend, season)`` fits one specification; ``"Z"`` in a slot means "select by AICc"
over the admissible set (multiplicative error or season only for positive data, a season only
when ``m > 1`` and the series spans more than one season, no additive error with a
multiplicative season). SES, Holt, damped trend and Holt-Winters are fixed specifications.

Prediction intervals: the linear classes have an analytic forecast variance (class 1: additive
error; class 2: multiplicative error, no multiplicative season; Hyndman et al. 2008, ch. 6);
models with a multiplicative season are simulated (``n_paths`` sample paths from a fixed seed,
so the same fit always gives the same intervals).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

import numba as nb
import numpy as np

from seqlab.errors import ConfigError
from seqlab.forecast.local import Forecast, check_series

__all__ = [
    "ETS",
    "ETSFit",
    "SES",
    "Holt",
    "DampedTrend",
    "HoltWinters",
    "ets_loglik",
    "ets_filter_ref",
]

ERRORS = ("A", "M")
TRENDS = ("N", "A", "Ad")
SEASONS = ("N", "A", "M")
LOWER = np.array([1e-4, 1e-4, 1e-4, 0.8])  # alpha, beta, gamma, phi
UPPER = np.array([0.9999, 0.9999, 0.9999, 0.98])
_BIG = 1e300


# ---------------------------------------------------------------------------------------------
# The recursion (numba) and its readable twin
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _run(y, error, trend, season, m, alpha, beta, gamma, phi, l0, b0, s0, mu_out):  # type: ignore[no-untyped-def]
    """One pass over ``y``; returns (lik, final level, final trend, final seasonal buffer).

    ``s0`` (m,) lists the initial seasonal states most recent first (s_0, s_-1, ..., s_-m+1).
    ``mu_out`` (n,) receives the one-step predictions. ``lik`` is +inf when a multiplicative
    model's prediction is not positive or a value is not finite.
    """
    n = y.shape[0]
    lev = l0
    tr = b0 if trend > 0 else 0.0
    ph = phi if trend == 2 else 1.0
    mm = m if season > 0 else 1
    buf = np.empty(mm)
    for j in range(mm):
        buf[j] = s0[mm - 1 - j] if season > 0 else 0.0
    sse = 0.0
    slog = 0.0
    for i in range(n):
        pos = i % mm
        base = lev + ph * tr
        s = buf[pos]
        if season == 2:
            mu = base * s
        elif season == 1:
            mu = base + s
        else:
            mu = base
        mu_out[i] = mu
        r = y[i] - mu
        if error == 1:
            if mu <= 1e-10:
                return np.inf, lev, tr, buf
            e = r / mu
            slog += math.log(mu)
        else:
            e = r
        sse += e * e
        if season == 2:
            if s == 0.0 or base == 0.0:
                return np.inf, lev, tr, buf
            lev = base + alpha * r / s
            tr = ph * tr + beta * r / s
            buf[pos] = s + gamma * r / base
        else:
            lev = base + alpha * r
            tr = ph * tr + beta * r
            if season == 1:
                buf[pos] = s + gamma * r
    if not (sse > 0.0) or not math.isfinite(sse) or not math.isfinite(slog):
        return np.inf, lev, tr, buf
    lik = n * math.log(sse) + 2.0 * slog
    return lik, lev, tr, buf


@nb.njit(cache=True)
def _admissible(alpha, beta, gamma, phi, m, trend, season):  # type: ignore[no-untyped-def]
    """Inside the box (each smoothing parameter in [1e-4, 0.9999], phi in [0.8, 0.98]) and the
    forecastable (admissible) region of Hyndman et al. (2008), ch. 10."""
    if alpha < 1e-4 or alpha > 0.9999:
        return False
    if trend > 0 and (beta < 1e-4 or beta > 0.9999):
        return False
    if season > 0 and (gamma < 1e-4 or gamma > 0.9999):
        return False
    ph = phi if trend == 2 else 1.0
    if trend == 2 and (phi < 0.8 or phi > 0.98):
        return False
    b = beta if trend > 0 else 0.0
    if season == 0 or m <= 1:
        if alpha < 1.0 - 1.0 / ph or alpha > 1.0 + 1.0 / ph:
            return False
        return not (trend > 0 and (b < alpha * (ph - 1.0) or b > (1.0 + ph) * (2.0 - alpha)))
    if gamma < max(1.0 - 1.0 / ph - alpha, 0.0) or gamma > 1.0 + 1.0 / ph - alpha:
        return False
    if alpha < 1.0 - 1.0 / ph - gamma * (1.0 - m + ph + ph * m) / (2.0 * ph * m):
        return False
    if b < -(1.0 - ph) * (gamma / m + alpha):
        return False
    # coefficients by increasing power: phi(1-a-g), a+b-a phi+g-1, (a+b-a phi) x (m-2), a+b-phi, 1
    coef = np.empty(m + 2)
    coef[0] = ph * (1.0 - alpha - gamma)
    coef[1] = alpha + b - alpha * ph + gamma - 1.0
    for j in range(2, m):
        coef[j] = alpha + b - alpha * ph
    coef[m] = alpha + b - ph
    coef[m + 1] = 1.0
    return _roots_inside(coef)


@nb.njit(cache=True)
def _roots_inside(coef):  # type: ignore[no-untyped-def]
    """Whether every root of sum_k coef[k] z^k lies inside the unit circle, up to 1e-8 (Schur-Cohn
    test: |c_0| < |c_d| and the same for (c_d p(z) - c_0 z^d p(1/z)) / z, down to degree 0)."""
    d = coef.shape[0] - 1
    c = coef * (1.0 + 1e-8) ** np.arange(d + 1)  # roots of p((1 + eps) w): a root on the circle passes
    while d > 0:
        if abs(c[0]) >= abs(c[d]):
            return False
        q = np.empty(d)
        for k in range(d):
            q[k] = c[d] * c[k + 1] - c[0] * c[d - 1 - k]
        scale = np.max(np.abs(q))
        if scale == 0.0:
            return False
        c = q / scale  # the magnitudes square at each step: rescale before they underflow
        d -= 1
    return True


@nb.njit(cache=True)
def _unpack(theta, trend, season, m, s0):  # type: ignore[no-untyped-def]
    """theta = [alpha, (beta), (gamma), (phi), l0, (b0), s_0..s_{m-2}] -> parameters and states."""
    k = 0
    alpha = theta[k]
    k += 1
    beta = 0.0
    gamma = 0.0
    phi = 1.0
    if trend > 0:
        beta = theta[k]
        k += 1
    if season > 0:
        gamma = theta[k]
        k += 1
    if trend == 2:
        phi = theta[k]
        k += 1
    l0 = theta[k]
    k += 1
    b0 = 0.0
    if trend > 0:
        b0 = theta[k]
        k += 1
    if season > 0:
        tot = 0.0
        for j in range(m - 1):
            s0[j] = theta[k + j]
            tot += theta[k + j]
        s0[m - 1] = (m - tot) if season == 2 else -tot
    return alpha, beta, gamma, phi, l0, b0


@nb.njit(cache=True)
def _objective(theta, y, error, trend, season, m, s0, mu):  # type: ignore[no-untyped-def]
    alpha, beta, gamma, phi, l0, b0 = _unpack(theta, trend, season, m, s0)
    if not _admissible(alpha, beta, gamma, phi, m, trend, season):
        return _BIG
    if season == 2:
        for j in range(m):
            if s0[j] <= 0.0:
                return _BIG
    lik = _run(y, error, trend, season, m, alpha, beta, gamma, phi, l0, b0, s0, mu)[0]
    return lik if lik < _BIG else _BIG


@nb.njit(cache=True)
def _nelder_mead(x0, lo, hi, y, error, trend, season, m, max_iter, tol):  # type: ignore[no-untyped-def]
    """Minimise ``_objective`` from ``x0`` by Nelder-Mead with the dimension-adapted
    coefficients of Gao & Han (2012), vertices clipped to the box ``[lo, hi]``; stops when the
    standard deviation of the simplex's objective values falls below ``tol`` or after
    ``max_iter`` iterations."""
    d = x0.shape[0]
    c_exp = 1.0 + 2.0 / d
    c_con = 0.75 - 0.5 / d
    c_shr = 1.0 - 1.0 / d if d > 1 else 0.5
    s0 = np.empty(max(m, 1))
    mu = np.empty(y.shape[0])
    simplex = np.empty((d + 1, d))
    f = np.empty(d + 1)
    simplex[0] = x0
    for i in range(d):
        v = x0.copy()
        step = 0.05 * abs(x0[i]) if x0[i] != 0.0 else 1e-4
        v[i] = x0[i] + step
        if v[i] > hi[i]:
            v[i] = x0[i] - step
        simplex[i + 1] = v
    for i in range(d + 1):
        for j in range(d):
            simplex[i, j] = min(max(simplex[i, j], lo[j]), hi[j])
        f[i] = _objective(simplex[i], y, error, trend, season, m, s0, mu)
    it = 0
    while it < max_iter:
        it += 1
        order = np.argsort(f)
        simplex = simplex[order]
        f = f[order]
        if f[d] < _BIG and np.std(f) < tol:
            break
        centroid = np.zeros(d)
        for i in range(d):
            centroid += simplex[i]
        centroid /= d
        xr = np.minimum(np.maximum(centroid + (centroid - simplex[d]), lo), hi)
        fr = _objective(xr, y, error, trend, season, m, s0, mu)
        if fr < f[0]:
            xe = np.minimum(np.maximum(centroid + c_exp * (centroid - simplex[d]), lo), hi)
            fe = _objective(xe, y, error, trend, season, m, s0, mu)
            if fe < fr:
                simplex[d] = xe
                f[d] = fe
            else:
                simplex[d] = xr
                f[d] = fr
            continue
        if fr < f[d - 1]:
            simplex[d] = xr
            f[d] = fr
            continue
        if fr < f[d]:  # outside contraction
            xc = centroid + c_con * (xr - centroid)
        else:  # inside contraction
            xc = centroid + c_con * (simplex[d] - centroid)
        fc = _objective(xc, y, error, trend, season, m, s0, mu)
        if fc < min(fr, f[d]):
            simplex[d] = xc
            f[d] = fc
            continue
        for i in range(1, d + 1):
            simplex[i] = simplex[0] + c_shr * (simplex[i] - simplex[0])
            f[i] = _objective(simplex[i], y, error, trend, season, m, s0, mu)
    best = int(np.argmin(f))
    return simplex[best].copy(), f[best], it


def ets_filter_ref(
    y: np.ndarray, error: str, trend: str, season: str, m: int,
    alpha: float, beta: float, gamma: float, phi: float,
    l0: float, b0: float, s0: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Readable twin of the numba recursion: one-step predictions ``mu`` (n,) and errors ``e``
    (n,) (raw for additive error, relative for multiplicative), from Hyndman et al. (2008) Table
    2.3 written per class."""
    ph = phi if trend == "Ad" else 1.0
    lev, tr = float(l0), float(b0) if trend != "N" else 0.0
    seas = list(s0)  # most recent first
    mus, es = [], []
    for yt in y:
        s = seas[-1] if season != "N" else (1.0 if season == "M" else 0.0)
        base = lev + ph * tr
        mu = base * s if season == "M" else base + (s if season == "A" else 0.0)
        e = (yt - mu) / mu if error == "M" else yt - mu
        mus.append(mu)
        es.append(e)
        if error == "A":
            q = 1.0 / s if season == "M" else 1.0
            lev_new = base + alpha * e * q
            tr = ph * tr + beta * e * q
            s_new = s + gamma * e / base if season == "M" else s + gamma * e
        else:  # multiplicative error: Table 2.3 of the book, per season type
            if season == "M":
                lev_new = base * (1 + alpha * e)
                tr = ph * tr + beta * base * e
                s_new = s * (1 + gamma * e)
            else:
                lev_new = base + alpha * mu * e
                tr = ph * tr + beta * mu * e
                s_new = s + gamma * mu * e
        lev = lev_new
        if season != "N":
            seas = [s_new] + seas[:-1]
    return np.array(mus), np.array(es)


def ets_loglik(
    y: np.ndarray, error: str, trend: str, season: str, m: int,
    alpha: float, beta: float = 0.0, gamma: float = 0.0, phi: float = 1.0,
    l0: float = 0.0, b0: float = 0.0, s0: Sequence[float] = (),
) -> float:
    """Gaussian log-likelihood with the variance at its ML value (states given in full:
    ``s0`` most recent first, all ``m`` of them)."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    seas = np.asarray(s0, dtype=np.float64) if season != "N" else np.zeros(1)
    mu = np.empty(y.shape[0])
    lik = _run(y, ERRORS.index(error), TRENDS.index(trend), SEASONS.index(season), m,
               alpha, beta, gamma, phi, l0, b0, seas, mu)[0]
    n = y.shape[0]
    return float(-0.5 * lik - 0.5 * n * (math.log(2 * math.pi / n) + 1.0))


# ---------------------------------------------------------------------------------------------
# Starting values (Hyndman et al. 2008, sec. 2.6.1)
# ---------------------------------------------------------------------------------------------


def _decompose(x: np.ndarray, m: int, mult: bool) -> np.ndarray:
    """Classical decomposition's seasonal figure (m,) by season position, centred."""
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    trend = np.convolve(x, w, mode="valid")  # centred moving average
    off = (len(w) - 1) // 2
    detr = x[off:off + len(trend)] / trend if mult else x[off:off + len(trend)] - trend
    fig = np.array([np.mean(detr[(j - off) % m::m]) for j in range(m)])
    return fig / fig.mean() if mult else fig - fig.mean()


def initial_states(y: np.ndarray, m: int, trend: str, season: str) -> tuple[float, float, np.ndarray]:
    """Heuristic starting states ``(l0, b0, s0)``, ``s0`` most recent first (m,) or empty."""
    n = len(y)
    if season != "N":
        mult = season == "M"
        if n < 3 * m:  # too short to decompose: a line plus one Fourier pair
            t = np.arange(1, n + 1, dtype=np.float64)
            X = np.column_stack([np.ones(n), t, np.sin(2 * np.pi * t / m), np.cos(2 * np.pi * t / m)])
            coef = np.linalg.lstsq(X, y, rcond=None)[0]
            line = coef[0] + coef[1] * t
            seasonal = y / line if mult else y - line
            s0 = seasonal[:m][::-1].copy()
        else:
            fig = _decompose(y, m, mult)
            seasonal = np.resize(fig, n)
            s0 = fig[::-1].copy()
        if mult:
            s0 = np.maximum(s0, 1e-2)
            if s0[:-1].sum() > m:
                s0 = s0 / (s0[:-1].sum() + 1e-2 * (m - 1))
            ysa = y / np.maximum(seasonal, 1e-2)
            s0[-1] = m - s0[:-1].sum()
        else:
            ysa = y - seasonal
            s0[-1] = -s0[:-1].sum()
    else:
        s0 = np.zeros(0)
        ysa = y
        m = 1
    k = min(max(10, 2 * m), n)
    if trend == "N":
        return float(np.mean(ysa[:k])), 0.0, s0
    t = np.arange(1, k + 1, dtype=np.float64)
    slope, icpt = np.polyfit(t, ysa[:k], 1)
    if abs(icpt + slope) < 1e-8:
        icpt, slope = icpt * (1 + 1e-3), slope * (1 - 1e-3)
    return float(icpt), float(slope), s0


def _start_params(m: int, trend: str, season: str) -> list[float]:
    alpha = LOWER[0] + 0.2 * (UPPER[0] - LOWER[0]) / m
    out = [alpha]
    if trend != "N":
        out.append(LOWER[1] + 0.1 * (min(UPPER[1], alpha) - LOWER[1]))
    if season != "N":
        out.append(LOWER[2] + 0.05 * (min(UPPER[2], 1 - alpha) - LOWER[2]))
    if trend == "Ad":
        out.append(LOWER[3] + 0.99 * (UPPER[3] - LOWER[3]))
    return out


# ---------------------------------------------------------------------------------------------
# One specification fitted, and the automatic choice
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    error: str
    trend: str
    season: str

    @property
    def name(self) -> str:
        return f"{self.error}{self.trend}{self.season}"

    def codes(self) -> tuple[int, int, int]:
        return ERRORS.index(self.error), TRENDS.index(self.trend), SEASONS.index(self.season)


def _n_smoothing(spec: _Spec) -> int:
    return 1 + (spec.trend != "N") + (spec.season != "N") + (spec.trend == "Ad")


def _fit_spec(y: np.ndarray, m: int, spec: _Spec, max_iter: int) -> tuple[np.ndarray, float] | None:
    """ML estimate of one specification: (theta, lik), or None when no valid start exists."""
    l0, b0, s0 = initial_states(y, m, spec.trend, spec.season)
    theta0 = _start_params(m if spec.season != "N" else 1, spec.trend, spec.season) + [l0]
    if spec.trend != "N":
        theta0.append(b0)
    if spec.season != "N":
        theta0.extend(s0[:-1].tolist())
    x0 = np.array(theta0)
    ns = _n_smoothing(spec)
    lo = np.full(len(x0), -np.inf)
    hi = np.full(len(x0), np.inf)
    idx = [0] + ([1] if spec.trend != "N" else []) + ([2] if spec.season != "N" else [])
    idx += [3] if spec.trend == "Ad" else []
    lo[:ns] = LOWER[idx]
    hi[:ns] = UPPER[idx]
    # the slope weight is capped at 0.2 / m (the starting level weight of a seasonal fit) and the
    # season's at 1 - alpha_0: without the cap, ML on short series picks beta near 1 and
    # extrapolates the last change (M3 yearly sMAPE 16.67 uncapped, see bench/README.md);
    # statsforecast's bounds end up capped alike
    if spec.trend != "N":
        hi[1] = min(hi[1], _start_params(m, "N", "N")[0])
    if spec.season != "N":
        hi[1 + (spec.trend != "N")] = min(UPPER[2], 1.0 - x0[0])
    e, t, s = spec.codes()
    theta, lik, it = _nelder_mead(x0, lo, hi, y, e, t, s, m, max_iter, 1e-4)
    if lik < _BIG and it < max_iter:  # converged: restart once, a fresh simplex escapes a collapsed one
        theta, lik, _ = _nelder_mead(theta, lo, hi, y, e, t, s, m, max_iter, 1e-4)
    if not lik < _BIG:
        return None
    return theta, float(lik)


def _aicc(lik: float, n: int, k: int) -> float:
    """AICc from the concentrated likelihood; ``k`` counts parameters, states and the variance."""
    loglik = -0.5 * lik - 0.5 * n * (math.log(2 * math.pi / n) + 1.0)
    aic = -2.0 * loglik + 2.0 * k
    return aic + (2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf)


def _candidates(y: np.ndarray, m: int, error: str, trend: str, season: str, damped: bool | None) -> list[_Spec]:
    positive = bool(np.min(y) > 0)
    seasonal_ok = m > 1 and len(y) > m
    errs = ["A", "M"] if error == "Z" else [error]
    if not positive:
        errs = [e for e in errs if e == "A"]
    if trend == "Z":
        trends = ["N", "A", "Ad"] if damped is None else (["Ad"] if damped else ["N", "A"])
    else:
        trends = ["Ad" if trend == "A" and damped else trend]
    if season == "Z":
        seasons = ["N", "A", "M"] if seasonal_ok else ["N"]
        if not positive:
            seasons = [s for s in seasons if s != "M"]
    else:
        seasons = [season]
    auto = error == "Z" or trend == "Z" or season == "Z"
    out = []
    for e in errs:
        for t in trends:
            for s in seasons:
                if auto and e == "A" and s == "M":  # numerically unstable (Hyndman et al. 2008)
                    continue
                out.append(_Spec(e, t, s))
    return out


class ETSFit:
    """One fitted ETS model: parameters, initial and final states, residual variance."""

    def __init__(self, y: np.ndarray, m: int, spec: _Spec, theta: np.ndarray, n_paths: int, seed: int) -> None:
        self.y, self.m, self.spec = y, m, spec
        self.theta = np.asarray(theta, dtype=np.float64)
        self.n_paths, self.seed = n_paths, seed
        e, t, s = spec.codes()
        mm = max(m, 1) if spec.season != "N" else 1
        s0 = np.zeros(mm)
        self.alpha, self.beta, self.gamma, self.phi, self.l0, self.b0 = (
            float(v) for v in _unpack(self.theta, t, s, mm, s0))
        self.s0 = s0 if spec.season != "N" else np.zeros(0)
        mu = np.empty(len(y))
        lik, lev, tr, buf = _run(y, e, t, s, mm, self.alpha, self.beta, self.gamma, self.phi,
                                 self.l0, self.b0, s0 if spec.season != "N" else np.zeros(1), mu)
        self.fitted = mu
        self.lik = float(lik)
        self.level, self.trend, self.season_buf = float(lev), float(tr), np.asarray(buf)
        n = len(y)
        self.k = len(self.theta) + 1
        resid = (y - mu) / mu if spec.error == "M" else y - mu
        self.sigma2 = float(np.sum(resid**2) / max(n - len(self.theta) - 2, 1))
        self.loglik = -0.5 * self.lik - 0.5 * n * (math.log(2 * math.pi / n) + 1.0)
        self.aicc = _aicc(self.lik, n, self.k)

    @property
    def name(self) -> str:
        return self.spec.name

    def _point(self, h: int) -> np.ndarray:
        ph = self.phi if self.spec.trend == "Ad" else 1.0
        damp = np.cumsum(ph ** np.arange(1, h + 1)) if self.spec.trend != "N" else np.zeros(h)
        base = self.level + damp * self.trend
        if self.spec.season == "N":
            return base
        n, mm = len(self.y), len(self.season_buf)
        s = self.season_buf[(n + np.arange(h)) % mm]
        return base * s if self.spec.season == "M" else base + s

    def _coefs(self, h: int) -> np.ndarray:
        """c_j, j = 1..h-1: how an error today moves the prediction j steps on (linear classes)."""
        j = np.arange(1, h)
        ph = self.phi if self.spec.trend == "Ad" else 1.0
        c = np.full(h - 1, self.alpha)
        if self.spec.trend != "N":
            c += self.beta * np.array([sum(ph**i for i in range(1, jj + 1)) for jj in j])
        if self.spec.season != "N":
            c += self.gamma * (j % self.m == 0)
        return c

    def _variance(self, h: int, mean: np.ndarray) -> np.ndarray:
        c2 = self._coefs(h) ** 2
        s2 = self.sigma2
        if self.spec.error == "A":  # class 1
            return s2 * np.r_[1.0, 1.0 + np.cumsum(c2)]
        theta = np.empty(h)  # class 2: theta_h = mu_h^2 + s2 sum_j c_j^2 theta_{h-j}
        for i in range(h):
            theta[i] = mean[i] ** 2 + s2 * sum(c2[j - 1] * theta[i - j] for j in range(1, i + 1))
        return (1.0 + s2) * theta - mean**2

    def _simulate(self, h: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        z = rng.standard_normal((self.n_paths, h)) * math.sqrt(self.sigma2)
        return _simulate_paths(z, *self.spec.codes(), len(self.season_buf), len(self.y), self.alpha,
                               self.beta, self.gamma, self.phi, self.level, self.trend, self.season_buf)

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        if x_future is not None:
            raise ConfigError("ETS uses no covariates; x_future must be None")
        mean = self._point(h)
        intervals: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        if not levels:
            return Forecast(mean, intervals)
        if self.spec.season != "M":
            sd = np.sqrt(np.maximum(self._variance(h, mean), 0.0))
            for lv in levels:
                zq = NormalDist().inv_cdf(0.5 + float(lv) / 200.0)
                intervals[float(lv)] = (mean - zq * sd, mean + zq * sd)
        else:
            paths = self._simulate(h)
            for lv in levels:
                a = (100.0 - float(lv)) / 200.0
                lo, hi = np.quantile(paths, [a, 1.0 - a], axis=0)
                intervals[float(lv)] = (lo, hi)
        return Forecast(mean, intervals)

    def params(self) -> dict[str, Any]:
        return {"model": self.spec.name, "theta": self.theta.tolist(),
                "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "phi": self.phi,
                "sigma2": self.sigma2, "aicc": self.aicc}


@nb.njit(cache=True)
def _simulate_paths(z, error, trend, season, mm, n, alpha, beta, gamma, phi, lev0, tr0, buf0):  # type: ignore[no-untyped-def]
    """Sample paths (P, h) of the model from its final states, innovations ``z`` (P, h)."""
    npaths, h = z.shape
    out = np.empty((npaths, h))
    ph = phi if trend == 2 else 1.0
    for p in range(npaths):
        lev = lev0
        tr = tr0
        buf = buf0.copy()
        for i in range(h):
            pos = (n + i) % mm
            base = lev + ph * tr
            s = buf[pos]
            mu = base * s if season == 2 else (base + s if season == 1 else base)
            r = mu * z[p, i] if error == 1 else z[p, i]
            out[p, i] = mu + r
            if season == 2:
                lev = base + alpha * r / s
                tr = ph * tr + beta * r / s
                buf[pos] = s + gamma * r / base
            else:
                lev = base + alpha * r
                tr = ph * tr + beta * r
                if season == 1:
                    buf[pos] = s + gamma * r
    return out


class _ETSMethod(ABC):
    """What every ETS method shares: fit one or several specifications, keep the best by AICc."""

    name: ClassVar[str] = "ets"
    has_intervals: ClassVar[bool] = True
    uses_covariates: ClassVar[bool] = False

    @abstractmethod
    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        """(error, trend, season, damped, max_iter, n_paths, seed): the specifications to search."""

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> ETSFit:
        if x is not None:
            raise ConfigError(f"{self.name} uses no covariates; x must be None")
        error, trend, season, damped, max_iter, n_paths, seed = self._setup()
        y = np.ascontiguousarray(check_series(y), dtype=np.float64)
        if np.ptp(y) == 0:  # a constant series has no likelihood optimum: it forecasts itself
            return ETSFit(y, m, _Spec("A", "N", "N"), np.array([1e-4, y[0]]), n_paths, seed)
        best: tuple[float, _Spec, np.ndarray] | None = None
        cands = _candidates(y, m, error, trend, season, damped)
        for spec in cands:
            k = len(_start_params(m, spec.trend, spec.season)) + 1 + (spec.trend != "N")
            k += (m - 1) if spec.season != "N" else 0
            if spec.season != "N" and len(cands) > 1 and len(y) <= k + 4:
                continue  # too short for this many parameters
            res = _fit_spec(y, m, spec, max_iter)
            if res is None:
                continue
            score = _aicc(res[1], len(y), k + 1) if len(cands) > 1 else 0.0
            if best is None or score < best[0]:
                best = (score, spec, res[0])
        if best is None:
            raise ConfigError(f"{self.name}: no ETS model could be fitted to this series (n={len(y)})")
        return ETSFit(y, m, best[1], best[2], n_paths, seed)

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> ETSFit:
        _, _, _, _, _, n_paths, seed = self._setup()
        y = np.ascontiguousarray(check_series(y), dtype=np.float64)
        name = str(params["model"])
        spec = _Spec(name[0], name[1:-1], name[-1])
        return ETSFit(y, m, spec, np.asarray(params["theta"], dtype=np.float64), n_paths, seed)


@dataclass(frozen=True)
class ETS(_ETSMethod):
    """ETS(error, trend, season) by maximum likelihood; ``"Z"`` selects a slot by AICc.

    ``trend`` is ``"N"``, ``"A"``, ``"Ad"`` or ``"Z"``; ``damped`` restricts an automatic trend
    (None: both). ``n_paths``/``seed`` drive the simulated intervals of multiplicative-season
    models. The defaults give AutoETS.
    """

    error: str = "Z"
    trend: str = "Z"
    season: str = "Z"
    damped: bool | None = None
    max_iter: int = 1000
    n_paths: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for key, val, ok in (("error", self.error, ERRORS), ("trend", self.trend, TRENDS),
                             ("season", self.season, SEASONS)):
            if val not in (*ok, "Z"):
                raise ConfigError(f"ETS {key}: expected one of {', '.join((*ok, 'Z'))}; found {val!r}")
        if self.max_iter < 1 or self.n_paths < 10:
            raise ConfigError(f"ETS: max_iter >= 1 and n_paths >= 10; found {self.max_iter}, {self.n_paths}")

    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        return self.error, self.trend, self.season, self.damped, self.max_iter, self.n_paths, self.seed


@dataclass(frozen=True)
class SES(_ETSMethod):
    """Simple exponential smoothing: ETS(A,N,N)."""

    name: ClassVar[str] = "ses"
    max_iter: int = 1000

    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        return "A", "N", "N", None, self.max_iter, 2000, 0


@dataclass(frozen=True)
class Holt(_ETSMethod):
    """Holt's linear trend: ETS(A,A,N)."""

    name: ClassVar[str] = "holt"
    max_iter: int = 1000

    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        return "A", "A", "N", None, self.max_iter, 2000, 0


@dataclass(frozen=True)
class DampedTrend(_ETSMethod):
    """Damped trend (Gardner & McKenzie 1985): ETS(A,Ad,N)."""

    name: ClassVar[str] = "damped"
    max_iter: int = 1000

    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        return "A", "Ad", "N", None, self.max_iter, 2000, 0


@dataclass(frozen=True)
class HoltWinters(_ETSMethod):
    """Holt-Winters: ETS(A,A,A), or ETS(M,A,M) with ``seasonal="multiplicative"``."""

    name: ClassVar[str] = "holt_winters"
    seasonal: str = "additive"
    max_iter: int = 1000
    n_paths: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.seasonal not in ("additive", "multiplicative"):
            raise ConfigError(f"holt_winters seasonal: expected additive or multiplicative; found {self.seasonal!r}")

    def _setup(self) -> tuple[str, str, str, bool | None, int, int, int]:
        s = "A" if self.seasonal == "additive" else "M"
        return s, "A", s, None, self.max_iter, self.n_paths, self.seed
