"""The Kalman filter and smoother pinned to statsmodels' exact-diffuse state-space results
(UnobservedComponents), to SARIMAX's stationary ARMA likelihood, and to a brute-force Gaussian
likelihood on a tiny series."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov
from scipy.stats import multivariate_normal

from seqlab.inference.kalman import StateSpace, forecast, kalman_filter, kalman_loglik, rts_smoother

sm_structural = pytest.importorskip("statsmodels.tsa.statespace.structural")
sm_sarimax = pytest.importorskip("statsmodels.tsa.statespace.sarimax")


def _llt_data(n: int = 80) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = np.cumsum(np.cumsum(rng.normal(0, 0.1, n))) + rng.normal(0, 1, n)
    y[10] = np.nan
    y[11] = np.nan
    return y


def _llt(p: np.ndarray) -> StateSpace:
    return StateSpace(Z=np.array([1.0, 0.0]), T=np.array([[1.0, 1.0], [0.0, 1.0]]), RQR=np.diag(p[1:]),
                      H=float(p[0]), Pinf=np.eye(2))


def test_exact_diffuse_filter_and_smoother_match_statsmodels() -> None:
    y = _llt_data()
    p = np.array([1.0, 0.3, 0.02])
    mod = sm_structural.UnobservedComponents(y, "local linear trend")
    mod.ssm.initialize_diffuse()
    mod.loglikelihood_burn = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll_sm = mod.loglike(p)
        res = mod.smooth(p)
    ss = _llt(p)
    out = kalman_filter(y, ss)
    assert out.loglik == pytest.approx(ll_sm, rel=1e-10)
    assert kalman_loglik(y, ss) == out.loglik
    assert out.n_diffuse == 2
    np.testing.assert_allclose(out.a_filt, res.filtered_state.T, atol=1e-7)
    a_s, P_s = rts_smoother(y, ss)
    np.testing.assert_allclose(a_s, res.smoothed_state.T, atol=1e-6)
    # covariances after the diffuse start (the smoother's kappa approximation; module docstring)
    np.testing.assert_allclose(P_s[2:], res.smoothed_state_cov.transpose(2, 0, 1)[2:], atol=1e-6)
    mean, var = forecast(ss, out.a_pred[-1], out.P_pred[-1], 5)
    fc = res.get_forecast(5)
    np.testing.assert_allclose(mean, fc.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(var, fc.var_pred_mean, rtol=1e-8)


def _arma_ss(phi: np.ndarray, theta: np.ndarray, sigma2: float, mean: float) -> StateSpace:
    r = max(len(phi), len(theta) + 1)
    T = np.zeros((r, r))
    T[: len(phi), 0] = phi
    T[:-1, 1:] = np.eye(r - 1)
    R = np.zeros(r)
    R[0] = 1.0
    R[1: len(theta) + 1] = theta
    RQR = np.outer(R, R) * sigma2
    P0 = solve_discrete_lyapunov(T, RQR)
    Z = np.zeros(r)
    Z[0] = 1.0
    return StateSpace(Z=Z, T=T, RQR=RQR, d=mean, P0=P0)


def test_stationary_arma_matches_sarimax() -> None:
    rng = np.random.default_rng(1)
    n = 120
    e = rng.normal(0, 1.3, n + 2)
    y = np.empty(n)
    prev = [0.0, 0.0]
    for t in range(n):
        y[t] = 0.5 * prev[0] - 0.3 * prev[1] + e[t + 2] + 0.4 * e[t + 1]
        prev = [y[t], prev[0]]
    y = y + 3.0
    y[50] = np.nan
    mod = sm_sarimax.SARIMAX(y, order=(2, 0, 1), trend="c")
    params = np.array([3.0 * (1 - 0.5 + 0.3), 0.5, -0.3, 0.4, 1.69])  # intercept c = mean * phi(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll_sm = mod.loglike(params)
    ll = kalman_loglik(y, _arma_ss(np.array([0.5, -0.3]), np.array([0.4]), 1.69, 3.0))
    assert ll == pytest.approx(ll_sm, rel=1e-10)


def test_brute_force_gaussian_likelihood() -> None:
    # y = Z a + eps over 6 steps is jointly Gaussian: compare with its multivariate density
    phi, theta, s2 = np.array([0.6]), np.array([0.3]), 0.8
    ss = _arma_ss(phi, theta, s2, 0.0)
    ss.H = 0.25
    n = 6
    Z, T, RQR = ss.Z, ss.T, ss.RQR
    k = len(Z)
    # covariance of (a_1..a_n) then of y
    covs = [ss.P0]
    for _ in range(n - 1):
        covs.append(T @ covs[-1] @ T.T + RQR)
    C = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            lo, hi = min(i, j), max(i, j)
            cross = np.linalg.matrix_power(T, hi - lo) @ covs[lo]
            C[i, j] = Z @ cross @ Z + (ss.H if i == j else 0.0)
    y = np.random.default_rng(3).normal(size=n)
    assert k == 2
    assert kalman_loglik(y, ss) == pytest.approx(multivariate_normal(np.zeros(n), C).logpdf(y), rel=1e-10)
