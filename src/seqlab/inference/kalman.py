"""The linear-Gaussian state-space machinery, written once: Kalman filter, smoother, forecasts.

Model, for a univariate series y (n,) and a state a_t (k,):

    y_t     = Z a_t + d + eps_t,        eps_t ~ N(0, H)
    a_{t+1} = T a_t + c + R eta_t,      eta_t ~ N(0, Q)      (RQR = R Q R', (k, k))
    a_1     ~ N(a0, P0 + kappa Pinf),   kappa -> infinity

Shapes: ``Z`` (k,), ``T`` (k, k), ``RQR`` (k, k), ``a0`` (k,), ``P0``/``Pinf`` (k, k); ``d``, ``H``
scalars. A NaN in ``y`` is a missing observation: the update step is skipped and the point adds
nothing to the likelihood.

The filter treats the diffuse part exactly (Koopman & Durbin 2000, univariate form; Durbin &
Koopman 2012, sec. 5.2): while ``Z Pinf Z' > 0`` an observation only pins the diffuse directions
and adds ``-1/2 (log 2 pi + log F_inf)`` to the log-likelihood, so the likelihood needs no large
constant. The RTS smoother (Rauch, Tung & Striebel 1965) runs over a filter with the diffuse
part replaced by ``kappa = 1e7`` (documented approximation: relative error of order 1/kappa in
the first few smoothed states). Loops are numba-compiled; ARIMA and the structural models call
them many times per fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np

__all__ = ["StateSpace", "FilterResult", "kalman_filter", "kalman_loglik", "rts_smoother", "forecast"]

_LOG2PI = math.log(2.0 * math.pi)
KAPPA = 1e7


@dataclass
class StateSpace:
    """A time-invariant linear-Gaussian state-space model (shapes in the module docstring)."""

    Z: np.ndarray
    T: np.ndarray
    RQR: np.ndarray
    H: float = 0.0
    d: float = 0.0
    c: np.ndarray | None = None
    a0: np.ndarray | None = None
    P0: np.ndarray | None = None
    Pinf: np.ndarray | None = None

    def arrays(self) -> tuple[np.ndarray, ...]:
        k = len(self.Z)
        f64 = np.float64
        c = np.zeros(k) if self.c is None else np.asarray(self.c, f64)
        a0 = np.zeros(k) if self.a0 is None else np.asarray(self.a0, f64)
        P0 = np.zeros((k, k)) if self.P0 is None else np.asarray(self.P0, f64)
        Pinf = np.zeros((k, k)) if self.Pinf is None else np.asarray(self.Pinf, f64)
        return (np.asarray(self.Z, f64), np.ascontiguousarray(self.T, f64), np.ascontiguousarray(self.RQR, f64),
                c, a0, np.ascontiguousarray(P0), np.ascontiguousarray(Pinf))


@dataclass
class FilterResult:
    """``loglik``; one-step predicted states ``a_pred`` (n+1, k) and covariances ``P_pred``
    (n+1, k, k) (the last row predicts t = n+1); filtered ``a_filt`` (n, k), ``P_filt``
    (n, k, k); innovations ``v`` (n,) and their variances ``F`` (n,) (NaN where missing or
    diffuse); ``n_diffuse`` observations spent on the diffuse part."""

    loglik: float
    a_pred: np.ndarray
    P_pred: np.ndarray
    a_filt: np.ndarray
    P_filt: np.ndarray
    v: np.ndarray
    F: np.ndarray
    n_diffuse: int
    extra: dict[str, float] = field(default_factory=dict)


@nb.njit(cache=True)
def _filter(y, Z, d, H, T, c, RQR, a0, P0, Pinf0, store):  # type: ignore[no-untyped-def]
    n = y.shape[0]
    k = Z.shape[0]
    a = a0.copy()
    Ps = P0.copy()
    Pi = Pinf0.copy()
    diffuse = np.max(np.abs(Pi)) > 0.0
    ns = n if store else 0
    a_pred = np.zeros((ns + 1, k))
    P_pred = np.zeros((ns + 1, k, k))
    a_filt = np.zeros((ns, k))
    P_filt = np.zeros((ns, k, k))
    v_out = np.full(n, np.nan)
    F_out = np.full(n, np.nan)
    ll = 0.0
    n_diffuse = 0
    for t in range(n):
        if store:
            a_pred[t] = a
            P_pred[t] = Ps
        if not np.isnan(y[t]):
            v = y[t] - Z @ a - d
            Ms = Ps @ Z
            Fs = Z @ Ms + H
            Fi = 0.0
            if diffuse:
                Mi = Pi @ Z
                Fi = Z @ Mi
            if diffuse and Fi > 1e-8:
                n_diffuse += 1
                a = a + Mi * (v / Fi)
                Ps = Ps + np.outer(Mi, Mi) * (Fs / (Fi * Fi)) - (np.outer(Ms, Mi) + np.outer(Mi, Ms)) / Fi
                Pi = Pi - np.outer(Mi, Mi) / Fi
                ll += -0.5 * (_LOG2PI + math.log(Fi))
            else:
                if Fs <= 0.0:
                    return -np.inf, a_pred, P_pred, a_filt, P_filt, v_out, F_out, n_diffuse
                a = a + Ms * (v / Fs)
                Ps = Ps - np.outer(Ms, Ms) / Fs
                ll += -0.5 * (_LOG2PI + math.log(Fs) + v * v / Fs)
                v_out[t] = v
                F_out[t] = Fs
        if store:
            a_filt[t] = a
            P_filt[t] = Ps
        a = T @ a + c
        Ps = T @ Ps @ T.T + RQR
        Ps = 0.5 * (Ps + Ps.T)
        if diffuse:
            Pi = T @ Pi @ T.T
            if np.max(np.abs(Pi)) < 1e-10:
                diffuse = False
    if store:
        a_pred[n] = a
        P_pred[n] = Ps
    return ll, a_pred, P_pred, a_filt, P_filt, v_out, F_out, n_diffuse


def kalman_filter(y: np.ndarray, ss: StateSpace) -> FilterResult:
    """Run the filter over ``y`` (n,), storing predicted and filtered moments."""
    Z, T, RQR, c, a0, P0, Pinf = ss.arrays()
    out = _filter(np.ascontiguousarray(y, dtype=np.float64), Z, float(ss.d), float(ss.H), T, c, RQR, a0, P0,
                  Pinf, True)
    ll, a_pred, P_pred, a_filt, P_filt, v, F, nd = out
    return FilterResult(float(ll), a_pred, P_pred, a_filt, P_filt, v, F, int(nd))


def kalman_loglik(y: np.ndarray, ss: StateSpace) -> float:
    """The exact (diffuse) Gaussian log-likelihood of ``y`` alone, storing nothing."""
    Z, T, RQR, c, a0, P0, Pinf = ss.arrays()
    return float(_filter(np.ascontiguousarray(y, dtype=np.float64), Z, float(ss.d), float(ss.H), T, c, RQR,
                         a0, P0, Pinf, False)[0])


@nb.njit(cache=True)
def _rts(T, a_pred, P_pred, a_filt, P_filt):  # type: ignore[no-untyped-def]
    n, k = a_filt.shape
    a_s = np.empty((n, k))
    P_s = np.empty((n, k, k))
    a_s[n - 1] = a_filt[n - 1]
    P_s[n - 1] = P_filt[n - 1]
    for t in range(n - 2, -1, -1):
        J = P_filt[t] @ T.T @ np.linalg.pinv(P_pred[t + 1])
        a_s[t] = a_filt[t] + J @ (a_s[t + 1] - a_pred[t + 1])
        P_s[t] = P_filt[t] + J @ (P_s[t + 1] - P_pred[t + 1]) @ J.T
    return a_s, P_s


def rts_smoother(y: np.ndarray, ss: StateSpace) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed states E[a_t | y_1..n] (n, k) and their covariances (n, k, k).

    The diffuse part enters as ``P0 + 1e7 Pinf`` (see the module docstring)."""
    Z, T, RQR, c, a0, P0, Pinf = ss.arrays()
    y = np.ascontiguousarray(y, dtype=np.float64)
    approx = _filter(y, Z, float(ss.d), float(ss.H), T, c, RQR, a0, P0 + KAPPA * Pinf, np.zeros_like(Pinf), True)
    _, a_pred, P_pred, a_filt, P_filt = approx[:5]
    return _rts(T, a_pred, P_pred, a_filt, P_filt)


def forecast(ss: StateSpace, a: np.ndarray, P: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (h,) and variance (h,) of y_{n+1..n+h} from the predicted state ``a``, ``P`` at n+1
    (``FilterResult.a_pred[-1]``, ``P_pred[-1]``)."""
    Z, T, RQR, c, *_ = ss.arrays()
    mean = np.empty(h)
    var = np.empty(h)
    a, P = np.asarray(a, dtype=np.float64).copy(), np.asarray(P, dtype=np.float64).copy()
    for i in range(h):
        mean[i] = Z @ a + ss.d
        var[i] = Z @ P @ Z + ss.H
        a = T @ a + c
        P = T @ P @ T.T + RQR
    return mean, var
