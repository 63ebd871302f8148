"""ARIMA(p,d,q)(P,D,Q)_m by exact maximum likelihood, and AutoARIMA.

The series is differenced, ``w = (1-B)^d (1-B^m)^D y``, and ``w`` minus a regression part (a
constant: the mean when nothing is differenced, the drift when one difference is taken; and any
covariates ``x``, differenced the same way) is a stationary ARMA process with AR polynomial
``phi(B) Phi(B^m)`` and MA polynomial ``theta(B) Theta(B^m)``. Its exact Gaussian likelihood
comes from the Kalman filter (``seqlab.inference.kalman``) on Harvey's state-space form with the
stationary initial covariance (a discrete Lyapunov equation); the innovation variance is
concentrated out. That is the likelihood of the diffuse-initialised integrated model (Durbin &
Koopman 2012, sec. 5.7), so forecasts integrate the ARMA forecasts back and their variance is
exact given the parameters. AR and MA parameters are optimised through the partial
autocorrelation transform (Jones 1980), so every candidate is stationary and invertible.

AutoARIMA follows Hyndman & Khandakar (2008): ``D`` from a seasonal-strength test (strength of
the seasonal component of a classical additive decomposition above 0.64; Wang, Smith & Hyndman
2006), ``d`` from repeated KPSS tests at 5% (Kwiatkowski et al. 1992), then the stepwise search
over (p, q, P, Q, constant) by AICc from four starting models, rejecting fits with AR or MA roots
within 1.01 of the unit circle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

import numba as nb
import numpy as np
from scipy.linalg import solve_discrete_lyapunov
from scipy.optimize import minimize

from seqlab.errors import ConfigError, DataError
from seqlab.forecast.local import Forecast, check_series
from seqlab.inference.kalman import _filter

__all__ = ["ARIMA", "ARIMAFit", "AutoARIMA", "kpss_stat", "seasonal_strength", "arma_loglik"]

Order = tuple[int, int, int]


# ---------------------------------------------------------------------------------------------
# Polynomials and the state-space form
# ---------------------------------------------------------------------------------------------


def _pacf_to_coef(u: np.ndarray) -> np.ndarray:
    """Unconstrained u (k,) -> coefficients of a stationary AR(k) polynomial (Jones 1980):
    partial autocorrelations tanh(u), then the Durbin-Levinson recursion."""
    r = np.tanh(u)
    phi = np.zeros(len(u))
    for k in range(len(u)):
        prev = phi[:k].copy()
        phi[k] = r[k]
        phi[:k] = prev - r[k] * prev[::-1]
    return phi


def _coef_to_pacf(phi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pacf_to_coef` (for start values)."""
    phi = np.array(phi, dtype=np.float64)
    u = np.zeros(len(phi))
    for k in range(len(phi) - 1, -1, -1):
        r = float(np.clip(phi[k], -0.999, 0.999))
        u[k] = math.atanh(r)
        prev = phi[:k]
        phi[:k] = (prev + r * prev[::-1]) / (1 - r * r)
    return u


def _lag_poly(coef: np.ndarray, step: int, sign: float) -> np.ndarray:
    """1 + sign * sum_i coef_i B^(i*step), as coefficients by increasing power."""
    out = np.zeros(len(coef) * step + 1)
    out[0] = 1.0
    out[step::step] = sign * np.asarray(coef)
    return out


def _diff_poly(d: int, D: int, m: int) -> np.ndarray:
    poly = np.array([1.0])
    for _ in range(d):
        poly = np.convolve(poly, [1.0, -1.0])
    for _ in range(D):
        seas = np.zeros(m + 1)
        seas[0], seas[m] = 1.0, -1.0
        poly = np.convolve(poly, seas)
    return poly


def _difference(y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    k = len(poly) - 1
    if k == 0:
        return y.copy()
    return np.convolve(y, poly, mode="valid") if y.ndim == 1 else np.stack(
        [np.convolve(col, poly, mode="valid") for col in y.T], axis=1)


def _state_space(ar: np.ndarray, ma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Harvey's form of w_t = sum ar_i w_{t-i} + e_t + sum ma_j e_{t-j}, unit innovation variance:
    (Z, T, RQR, P0)."""
    r = max(len(ar), len(ma) + 1, 1)
    T = np.zeros((r, r))
    T[: len(ar), 0] = ar
    T[:-1, 1:] = np.eye(r - 1)
    R = np.zeros(r)
    R[0] = 1.0
    R[1: len(ma) + 1] = ma
    RQR = np.outer(R, R)
    P0 = solve_discrete_lyapunov(T, RQR) if r > 1 or abs(T[0, 0]) > 0 else RQR.copy()
    Z = np.zeros(r)
    Z[0] = 1.0
    return Z, T, RQR, np.ascontiguousarray(P0)


def arma_loglik(w: np.ndarray, ar: np.ndarray, ma: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Exact log-likelihood of a zero-mean ARMA series ``w`` with the innovation variance at its
    ML value: (loglik, sigma2, predicted state (r,), its covariance (r, r) at n+1, unit scale)."""
    try:
        Z, T, RQR, P0 = _state_space(ar, ma)
    except (np.linalg.LinAlgError, ValueError):  # a unit root: no stationary covariance
        return -np.inf, np.nan, np.zeros(1), np.zeros((1, 1))
    if not np.all(np.isfinite(P0)):
        return -np.inf, np.nan, np.zeros(1), np.zeros((1, 1))
    r = len(Z)
    out = _filter(w, Z, 0.0, 0.0, T, np.zeros(r), RQR, np.zeros(r), P0, np.zeros((r, r)), True)
    v, F = out[5], out[6]
    ok = ~np.isnan(v)
    n = int(ok.sum())
    if n == 0 or not np.all(F[ok] > 0):
        return -np.inf, np.nan, out[1][-1], out[2][-1]
    s2 = float(np.sum(v[ok] ** 2 / F[ok]) / n)
    ll = -0.5 * n * (math.log(2 * math.pi * s2) + 1.0) - 0.5 * float(np.sum(np.log(F[ok])))
    return ll, s2, out[1][-1], out[2][-1]


@nb.njit(cache=True)
def _pacf_nb(u):  # type: ignore[no-untyped-def]
    k = u.shape[0]
    phi = np.zeros(k)
    for j in range(k):
        r = math.tanh(u[j])
        prev = phi[:j].copy()
        phi[j] = r
        for i in range(j):
            phi[i] = prev[i] - r * prev[j - 1 - i]
    return phi


@nb.njit(cache=True)
def _mul_lag(a, sa, m, sign):  # type: ignore[no-untyped-def]
    """(1 + sign sum a_i B^i)(1 + sign sum sa_j B^(j m)) by increasing power."""
    p1 = np.zeros(a.shape[0] + 1)
    p1[0] = 1.0
    p1[1:] = sign * a
    p2 = np.zeros(sa.shape[0] * m + 1)
    p2[0] = 1.0
    for j in range(sa.shape[0]):
        p2[(j + 1) * m] = sign * sa[j]
    out = np.zeros(p1.shape[0] + p2.shape[0] - 1)
    for i in range(p1.shape[0]):
        for j in range(p2.shape[0]):
            out[i + j] += p1[i] * p2[j]
    return out


@nb.njit(cache=True)
def _arma_fast(w, ar, ma):  # type: ignore[no-untyped-def]
    """Concentrated exact ARMA log-likelihood, Harvey form with Z = e1 and no missing values:
    after each update the first state is known, so T P T' is a shift (O(r^2) per step), and the
    covariance recursion stops once it has converged (then only the mean is propagated).
    The stationary start solves P = T P T' + R R' by doubling."""
    n = w.shape[0]
    r = max(ar.shape[0], ma.shape[0] + 1, 1)
    phi = np.zeros(r)
    phi[: ar.shape[0]] = ar
    R = np.zeros(r)
    R[0] = 1.0
    R[1: ma.shape[0] + 1] = ma
    RR = np.outer(R, R)
    T = np.zeros((r, r))
    T[:, 0] = phi
    for i in range(r - 1):
        T[i, i + 1] = 1.0
    P = RR.copy()
    A = T.copy()
    ok = False
    for _ in range(80):
        P = P + A @ P @ A.T
        A = A @ A
        if np.max(np.abs(A)) < 1e-13:
            ok = True
            break
    if not ok or not np.all(np.isfinite(P)):
        return -np.inf
    a = np.zeros(r)
    sumsq = 0.0
    sumlog = 0.0
    steady = False
    Pn = np.empty((r, r))
    for t in range(n):
        F = P[0, 0]
        if F <= 0.0:
            return -np.inf
        v = w[t] - a[0]
        sumsq += v * v / F
        sumlog += math.log(F)
        # filtered mean: a + P[:, 0] v / F; its first element is w[t]
        af1 = np.empty(r)
        for i in range(r):
            af1[i] = a[i] + P[i, 0] * v / F
        for i in range(r - 1):
            a[i] = phi[i] * af1[0] + af1[i + 1]
        a[r - 1] = phi[r - 1] * af1[0]
        if not steady:
            # filtered covariance Pf = P - P[:,0] P[0,:] / F (row/column 0 vanish); predicted
            # P_new[i, j] = Pf[i+1, j+1] + RR[i, j]
            diff = 0.0
            for i in range(r):
                for j in range(r):
                    val = RR[i, j]
                    if i + 1 < r and j + 1 < r:
                        val += P[i + 1, j + 1] - P[i + 1, 0] * P[0, j + 1] / F
                    Pn[i, j] = val
                    diff = max(diff, abs(val - P[i, j]))
            P[:, :] = Pn
            if diff < 1e-12:
                steady = True
    s2 = sumsq / n
    if not s2 > 0.0:
        return -np.inf
    return -0.5 * n * (math.log(2.0 * math.pi * s2) + 1.0) - 0.5 * sumlog


@nb.njit(cache=True)
def _negll_nb(u, w, X, scale, p, q, P, Q, m):  # type: ignore[no-untyped-def]
    nk = p + q + P + Q
    ar = _pacf_nb(u[:p])
    ma = -_pacf_nb(u[p:p + q])
    sar = _pacf_nb(u[p + q:p + q + P])
    sma = -_pacf_nb(u[p + q + P:nk])
    full_ar = -_mul_lag(ar, sar, m, -1.0)[1:]
    full_ma = _mul_lag(ma, sma, m, 1.0)[1:]
    resid = w.copy()
    for j in range(X.shape[1]):
        resid -= X[:, j] * (u[nk + j] * scale)
    ll = _arma_fast(resid, full_ar, full_ma)
    if not np.isfinite(ll):
        return 1e10
    return -ll / w.shape[0]


# ---------------------------------------------------------------------------------------------
# One order fitted
# ---------------------------------------------------------------------------------------------


class ARIMAFit:
    """A fitted ARIMA: coefficients, innovation variance, and what forecasting needs."""

    def __init__(self, y: np.ndarray, m: int, order: Order, seasonal: Order, const: bool,
                 coef: Mapping[str, Any], x: np.ndarray | None) -> None:
        self.y, self.m, self.order, self.seasonal, self.const = y, m, order, seasonal, const
        self.ar = np.asarray(coef["ar"], dtype=np.float64)
        self.ma = np.asarray(coef["ma"], dtype=np.float64)
        self.sar = np.asarray(coef["sar"], dtype=np.float64)
        self.sma = np.asarray(coef["sma"], dtype=np.float64)
        self.mu = float(coef["mu"])
        self.beta = np.asarray(coef["beta"], dtype=np.float64)
        self.x = x
        self.dpoly = _diff_poly(order[1], seasonal[1], m)
        w = self._resid_series(y, x)
        self.n_used = int(np.sum(~np.isnan(w)))
        ar_full, ma_full = self.polys()
        self.loglik, self.sigma2, self.a_next, self.P_next = arma_loglik(w, ar_full, ma_full)
        k = sum(order[::2]) + sum(seasonal[::2]) + int(const) + len(self.beta) + 1
        n = self.n_used
        self.aicc = -2 * self.loglik + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf)

    def polys(self) -> tuple[np.ndarray, np.ndarray]:
        """The multiplied-out AR and MA coefficients (w_t = sum ar_i w_{t-i} + ... form)."""
        ar = np.convolve(_lag_poly(self.ar, 1, -1.0), _lag_poly(self.sar, self.m, -1.0))
        ma = np.convolve(_lag_poly(self.ma, 1, 1.0), _lag_poly(self.sma, self.m, 1.0))
        return -ar[1:], ma[1:]

    def _regression(self, x: np.ndarray | None, n: int, start: int) -> np.ndarray:
        """The regression part of the differenced series at differenced positions start..start+n."""
        out = np.full(n, self.mu if self.const else 0.0)
        if len(self.beta):
            assert x is not None
            out = out + x @ self.beta
        return out

    def _resid_series(self, y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        w = _difference(y, self.dpoly)
        xd = _difference(x, self.dpoly) if x is not None and len(self.beta) else None
        return w - self._regression(xd, len(w), 0)

    @property
    def name(self) -> str:
        (p, d, q), (P, D, Q) = self.order, self.seasonal
        s = f"({P},{D},{Q})[{self.m}]" if self.m > 1 and any(self.seasonal) else ""
        return f"ARIMA({p},{d},{q}){s}" + (" with constant" if self.const else "")

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        if len(self.beta) and (x_future is None or np.shape(x_future) != (h, len(self.beta))):
            raise DataError(None, None, f"x_future of shape ({h}, {len(self.beta)}) (covariates known in the future)",
                            "nothing" if x_future is None else f"shape {np.shape(x_future)}")
        if not len(self.beta) and x_future is not None:
            raise ConfigError("this ARIMA was fitted without covariates; x_future must be None")
        ar_full, ma_full = self.polys()
        Z, T, RQR, _ = _state_space(ar_full, ma_full)
        # ARMA forecasts of the differenced series and their joint covariance
        a, P = self.a_next.copy(), self.P_next.copy()
        wmean = np.empty(h)
        Ps = []
        for i in range(h):
            wmean[i] = Z @ a
            Ps.append(P)
            a, P = T @ a, T @ P @ T.T + RQR
        cov = np.empty((h, h))
        for i in range(h):
            Tp = np.eye(len(Z))
            for j in range(i, h):
                cov[i, j] = cov[j, i] = Z @ Tp @ Ps[i] @ Z
                Tp = T @ Tp
        cov *= self.sigma2
        if len(self.beta):
            assert self.x is not None and x_future is not None
            xall = np.vstack([self.x, np.asarray(x_future, dtype=np.float64)])
            xd = _difference(xall, self.dpoly)[-h:]
            wmean = wmean + self._regression(xd, h, 0)
        else:
            wmean = wmean + (self.mu if self.const else 0.0)
        # integrate: y_t = w_t - sum_{j>=1} c_j y_{t-j}; y is linear in w with weights psi
        c = self.dpoly
        k = len(c) - 1
        hist = list(self.y[len(self.y) - k:]) if k else []
        mean = np.empty(h)
        weights = np.zeros((h, h))  # y_{n+i} = const + sum_j weights[i, j] w_{n+j}
        for i in range(h):
            val = wmean[i]
            row = np.zeros(h)
            row[i] = 1.0
            for j in range(1, k + 1):
                if i - j >= 0:
                    val -= c[j] * mean[i - j]
                    row -= c[j] * weights[i - j]
                else:
                    val -= c[j] * hist[k + i - j]
            mean[i] = val
            weights[i] = row
        var = np.einsum("ij,jk,ik->i", weights, cov, weights)
        sd = np.sqrt(np.maximum(var, 0.0))
        intervals = {}
        for lv in levels:
            zq = NormalDist().inv_cdf(0.5 + float(lv) / 200.0)
            intervals[float(lv)] = (mean - zq * sd, mean + zq * sd)
        return Forecast(mean, intervals)

    def params(self) -> dict[str, Any]:
        return {"order": list(self.order), "seasonal": list(self.seasonal), "const": self.const,
                "ar": self.ar.tolist(), "ma": self.ma.tolist(), "sar": self.sar.tolist(), "sma": self.sma.tolist(),
                "mu": self.mu, "beta": self.beta.tolist(), "sigma2": self.sigma2, "aicc": self.aicc}


def _fit_order(y: np.ndarray, m: int, order: Order, seasonal: Order, const: bool,
               x: np.ndarray | None, max_iter: int = 200) -> ARIMAFit | None:
    """ML fit of one order; None when the differenced series is too short."""
    (p, d, q), (P, D, Q) = order, seasonal
    dpoly = _diff_poly(d, D, m)
    w = _difference(y, dpoly)
    if len(w) < p + q + P + Q + int(const) + 3:
        return None
    xd = _difference(x, dpoly) if x is not None else None
    cols = ([np.ones(len(w))] if const else []) + ([xd[:, i] for i in range(xd.shape[1])] if xd is not None else [])
    X = np.column_stack(cols) if cols else np.zeros((len(w), 0))
    reg0 = np.linalg.lstsq(X, w, rcond=None)[0] if X.shape[1] else np.zeros(0)
    nk = p + q + P + Q
    scale = float(np.std(w)) or 1.0
    u0 = np.r_[np.zeros(nk), reg0 / scale]

    def unpack(u: np.ndarray) -> tuple[np.ndarray, ...]:
        ar = _pacf_to_coef(u[:p])
        ma = -_pacf_to_coef(u[p:p + q])
        sar = _pacf_to_coef(u[p + q:p + q + P])
        sma = -_pacf_to_coef(u[p + q + P:nk])
        return ar, ma, sar, sma, u[nk:] * scale

    Xc = np.ascontiguousarray(X, dtype=np.float64)
    wc = np.ascontiguousarray(w, dtype=np.float64)

    def negll(u: np.ndarray) -> float:
        return float(_negll_nb(u, wc, Xc, scale, p, q, P, Q, m))

    if len(u0):
        res = minimize(negll, u0, method="BFGS", options={"maxiter": max_iter, "gtol": 1e-6})
        u = res.x
    else:
        u = u0
    ar, ma, sar, sma, reg = unpack(u)
    mu = float(reg[0]) if const else 0.0
    beta = reg[1:] if const else reg
    coef = {"ar": ar, "ma": ma, "sar": sar, "sma": sma, "mu": mu, "beta": beta}
    return ARIMAFit(y, m, order, seasonal, const, coef, x)


def _check_x(x: np.ndarray | None, n: int) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise DataError(None, None, f"covariates x of shape ({n}, k)", f"shape {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise DataError(None, None, "finite covariates", "NaN or infinite values in x")
    return arr


@dataclass(frozen=True)
class ARIMA:
    """ARIMA(order)(seasonal)_m by exact ML; ``const`` None = a mean when d + D = 0."""

    name: ClassVar[str] = "arima_fixed"
    has_intervals: ClassVar[bool] = True
    uses_covariates: ClassVar[bool] = True
    order: tuple[int, int, int] = (1, 0, 0)
    seasonal: tuple[int, int, int] = (0, 0, 0)
    const: bool | None = None

    def __post_init__(self) -> None:
        order, seasonal = tuple(self.order), tuple(self.seasonal)
        if len(order) != 3 or len(seasonal) != 3 or min(*order, *seasonal) < 0:
            raise ConfigError(f"ARIMA order and seasonal: three non-negative integers each; found {order}, {seasonal}")
        object.__setattr__(self, "order", tuple(int(v) for v in order))
        object.__setattr__(self, "seasonal", tuple(int(v) for v in seasonal))

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> ARIMAFit:
        y = check_series(y)
        seasonal = self.seasonal if m > 1 else (0, 0, 0)
        const = (self.order[1] + seasonal[1] == 0) if self.const is None else self.const
        fit = _fit_order(y, m, self.order, seasonal, const, _check_x(x, len(y)))
        if fit is None:
            raise DataError(None, None, f"a series long enough for ARIMA{self.order}{seasonal}", f"{len(y)} values")
        return fit

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> ARIMAFit:
        y = check_series(y)
        o, s = params["order"], params["seasonal"]
        return ARIMAFit(y, m, (o[0], o[1], o[2]), (s[0], s[1], s[2]), bool(params["const"]), params,
                        _check_x(x, len(y)))


# ---------------------------------------------------------------------------------------------
# Unit-root tests and the stepwise search
# ---------------------------------------------------------------------------------------------


def kpss_stat(y: np.ndarray) -> float:
    """KPSS level-stationarity statistic (Kwiatkowski et al. 1992) with a Bartlett long-run
    variance over ``trunc(3 sqrt(n) / 13)`` lags."""
    n = len(y)
    e = y - y.mean()
    s = np.cumsum(e)
    lags = int(3 * math.sqrt(n) / 13)
    lrv = float(e @ e) / n
    for j in range(1, lags + 1):
        lrv += 2 * (1 - j / (lags + 1)) * float(e[j:] @ e[:-j]) / n
    return float(s @ s) / (n * n * lrv) if lrv > 0 else 0.0


KPSS_CRIT_5 = 0.463  # 5% critical value of the level-stationarity test (Kwiatkowski et al. 1992, Table 1)


def ndiffs(y: np.ndarray, max_d: int = 2) -> int:
    """How many first differences make ``y`` pass the KPSS test at 5%."""
    d = 0
    while d < max_d and len(y) > 3 and np.ptp(y) > 0 and kpss_stat(y) > KPSS_CRIT_5:
        y = np.diff(y)
        d += 1
    return d


def seasonal_strength(y: np.ndarray, m: int) -> float:
    """max(0, 1 - Var(remainder) / Var(season + remainder)) of a classical additive decomposition."""
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")
    off = (len(w) - 1) // 2
    detr = y[off:off + len(trend)] - trend
    fig = np.array([np.mean(detr[(j - off) % m::m]) for j in range(m)])
    fig -= fig.mean()
    season = fig[(np.arange(len(detr)) + off) % m]
    rem = detr - season
    v = np.var(detr)
    return max(0.0, 1.0 - float(np.var(rem)) / v) if v > 0 else 0.0


def nsdiffs(y: np.ndarray, m: int, threshold: float = 0.64) -> int:
    """One seasonal difference when the seasonal strength exceeds ``threshold``."""
    if m <= 1 or len(y) < 2 * m + 1:
        return 0
    return int(seasonal_strength(y, m) > threshold)


def _roots_ok(fit: ARIMAFit) -> bool:
    """No AR or MA root within 1.01 of the unit circle (near-cancelling or non-invertible)."""
    for coef, sign in ((fit.ar, -1.0), (fit.sar, -1.0), (fit.ma, 1.0), (fit.sma, 1.0)):
        if len(coef) and np.any(np.abs(coef) > 0):
            poly = _lag_poly(coef, 1, sign)
            last = int(np.max(np.nonzero(poly)[0]))
            if last > 0 and np.min(np.abs(np.roots(poly[: last + 1][::-1]))) < 1.01:
                return False
    return True


@dataclass(frozen=True)
class AutoARIMA:
    """ARIMA chosen by the Hyndman-Khandakar stepwise search (module docstring)."""

    name: ClassVar[str] = "arima"
    has_intervals: ClassVar[bool] = True
    uses_covariates: ClassVar[bool] = True
    max_p: int = 5
    max_q: int = 5
    max_P: int = 2
    max_Q: int = 2
    max_order: int = 5
    max_d: int = 2
    max_D: int = 1
    max_models: int = 94

    def __post_init__(self) -> None:
        if min(self.max_p, self.max_q, self.max_P, self.max_Q, self.max_order, self.max_d, self.max_D) < 0:
            raise ConfigError("AutoARIMA: the max_* settings must be non-negative")

    def _allowed(self, o: Order, s: Order) -> bool:
        return (0 <= o[0] <= self.max_p and 0 <= o[2] <= self.max_q and 0 <= s[0] <= self.max_P
                and 0 <= s[2] <= self.max_Q and o[0] + o[2] + s[0] + s[2] <= self.max_order)

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> ARIMAFit:
        y = check_series(y)
        x = _check_x(x, len(y))
        seasonal_on = m > 1
        D = min(nsdiffs(y, m), self.max_D) if seasonal_on else 0
        yd = _difference(y, _diff_poly(0, D, m))
        if x is not None:  # test the regression residuals, as the stepwise search models them
            xd = _difference(x, _diff_poly(0, D, m))
            yd = yd - xd @ np.linalg.lstsq(xd, yd, rcond=None)[0]
        d = ndiffs(yd, self.max_d)
        allow_const = d + D <= 1
        tried: dict[tuple[Order, Order, bool], ARIMAFit | None] = {}

        def score(o: Order, s: Order, c: bool) -> float:
            key = (o, s, c)
            if key not in tried:
                if len(tried) >= self.max_models or not self._allowed(o, s):
                    return math.inf
                f = _fit_order(y, m, o, s, c, x)
                tried[key] = f if f is not None and np.isfinite(f.aicc) and _roots_ok(f) else None
            f = tried[key]
            return f.aicc if f is not None else math.inf

        c0 = allow_const
        starts = [((2, d, 2), (1, D, 1)), ((0, d, 0), (0, D, 0)), ((1, d, 0), (1, D, 0)), ((0, d, 1), (0, D, 1))]
        if not seasonal_on:
            starts = [(o, (0, 0, 0)) for o, _ in starts]
        best, best_key = math.inf, None
        for o, s in starts:
            sc = score(o, s, c0)
            if sc < best:
                best, best_key = sc, (o, s, c0)
        if c0:
            sc = score((0, d, 0), (0, D, 0) if seasonal_on else (0, 0, 0), False)
            if sc < best:
                best, best_key = sc, ((0, d, 0), (0, D, 0) if seasonal_on else (0, 0, 0), False)
        improved = best_key is not None
        while improved and best_key is not None:
            improved = False
            (p, _, q), (P, _, Q), c = best_key
            moves: list[tuple[int, int, int, int, bool]] = []
            if seasonal_on:
                moves += [(p, q, P + dp, Q + dq, c) for dp, dq in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1), (-1, -1),
                                                                      (1, -1), (-1, 1))]
            moves += [(p + dp, q + dq, P, Q, c) for dp, dq in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1), (-1, -1),
                                                              (1, -1), (-1, 1))]
            if allow_const:
                moves.append((p, q, P, Q, not c))
            for np_, nq, nP, nQ, nc in moves:
                key = ((np_, d, nq), (nP, D, nQ) if seasonal_on else (0, 0, 0), nc)
                sc = score(*key)
                if sc < best:
                    best, best_key, improved = sc, key, True
                    break
        if best_key is None or tried.get(best_key) is None:
            fallback = _fit_order(y, m, (0, d, 0), (0, D, 0) if seasonal_on else (0, 0, 0), allow_const, x)
            if fallback is None:
                raise DataError(None, None, "a series long enough for ARIMA", f"{len(y)} values")
            return fallback
        result = tried[best_key]
        assert result is not None
        return result

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> ARIMAFit:
        return ARIMA().from_params(y, m, params, x)
