"""ARIMA pinned to statsmodels' SARIMAX (likelihood at given parameters, forecasts and their
variances, ML estimates), the KPSS statistic to statsmodels' kpss, and AutoARIMA's choices to
series whose answer is known."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from seqlab.errors import DataError
from seqlab.forecast.arima import (
    ARIMA,
    AutoARIMA,
    _coef_to_pacf,
    _pacf_to_coef,
    kpss_stat,
    ndiffs,
    nsdiffs,
    seasonal_strength,
)
from seqlab.forecast.local import LocalFit, LocalMethod

sarimax = pytest.importorskip("statsmodels.tsa.statespace.sarimax")


def _arima_data(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    e = rng.normal(size=n)
    w = np.zeros(n)
    for t in range(1, n):
        w[t] = 0.5 * w[t - 1] + e[t] + 0.3 * e[t - 1]
    return np.cumsum(w) + 2 * x[:, 0] + 10, x


def _seasonal_data(n: int = 120, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=n)) * 0.5 + np.tile([3.0, -1.0, 2.0, -4.0], n // 4) + rng.normal(0, 0.5, n)




@pytest.mark.parametrize("case", ["exog", "seasonal"])
def test_loglik_and_forecast_match_sarimax(case: str) -> None:
    if case == "exog":
        y, x = _arima_data()
        order, seas, m = (1, 1, 1), (0, 0, 0), 1
        coef = {"ar": [0.4], "ma": [0.2], "sar": [], "sma": [], "mu": 0.0, "beta": [1.8]}
        sm_params = [1.8, 0.4, 0.2]
        x_future = np.random.default_rng(5).normal(size=(6, 1))
    else:
        y, x = _seasonal_data(), None
        order, seas, m = (1, 0, 1), (0, 1, 1), 4
        coef = {"ar": [0.6], "ma": [-0.2], "sar": [], "sma": [-0.5], "mu": 0.0, "beta": []}
        sm_params = [0.6, -0.2, -0.5]
        x_future = None
    fit = ARIMA(order, seas).from_params(y, m, {"order": order, "seasonal": seas, "const": False, **coef}, x=x)
    so = (*seas, m) if m > 1 else (0, 0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diffd = sarimax.SARIMAX(y, exog=x, order=order, seasonal_order=so, simple_differencing=True)
        assert fit.loglik == pytest.approx(diffd.loglike(np.r_[sm_params, fit.sigma2]), rel=1e-10)
        full = sarimax.SARIMAX(y, exog=x, order=order, seasonal_order=so)
        fc = full.smooth(np.r_[sm_params, fit.sigma2]).get_forecast(6, exog=x_future)
    mine = fit.forecast(6, (95,), x_future=x_future)
    np.testing.assert_allclose(mine.mean, fc.predicted_mean, rtol=1e-8)
    sd = (mine.intervals[95.0][1] - mine.mean) / 1.959963984540054
    np.testing.assert_allclose(sd**2, fc.var_pred_mean, rtol=1e-6)


def test_ml_fit_matches_sarimax() -> None:
    y, x = _arima_data(n=150, seed=2)
    fit = ARIMA((1, 1, 1)).fit(y, 1, x=x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sarimax.SARIMAX(y, exog=x, order=(1, 1, 1), simple_differencing=True).fit(disp=False)
    assert fit.loglik >= res.llf - 1e-4
    np.testing.assert_allclose([fit.beta[0], fit.ar[0], fit.ma[0]], res.params[:3], atol=5e-3)
    assert fit.sigma2 == pytest.approx(res.params[3], rel=1e-2)


def test_pacf_transform_gives_stationary_polynomials() -> None:
    rng = np.random.default_rng(0)
    for k in (1, 2, 4):
        u = rng.normal(size=k) * 2
        phi = _pacf_to_coef(u)
        roots = np.roots(np.r_[1.0, -phi][::-1])
        assert np.all(np.abs(roots) > 1)
        np.testing.assert_allclose(_coef_to_pacf(phi), u, rtol=1e-8)


def test_kpss_matches_statsmodels() -> None:
    stattools = pytest.importorskip("statsmodels.tsa.stattools")
    rng = np.random.default_rng(3)
    for y in (rng.normal(size=80), np.cumsum(rng.normal(size=120))):
        lags = int(3 * math.sqrt(len(y)) / 13)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = stattools.kpss(y, regression="c", nlags=lags)[0]
        assert kpss_stat(y) == pytest.approx(ref, rel=1e-10)


def test_difference_tests_on_known_series() -> None:
    rng = np.random.default_rng(4)
    assert ndiffs(rng.normal(size=100)) == 0
    assert ndiffs(np.cumsum(rng.normal(size=100))) == 1
    seas = np.tile([5.0, -3.0, 1.0, -3.0], 20) + rng.normal(0, 0.3, 80)
    assert seasonal_strength(seas, 4) > 0.9 and nsdiffs(seas, 4) == 1
    assert nsdiffs(rng.normal(size=80), 4) == 0


def test_auto_arima_choices() -> None:
    rng = np.random.default_rng(0)  # a draw whose KPSS statistic is well below 0.463
    n = 120
    e = rng.normal(size=n)
    ar = np.zeros(n)
    for t in range(1, n):
        ar[t] = 0.6 * ar[t - 1] + e[t]
    fit = AutoARIMA().fit(ar + 5, 1)
    assert fit.order[1] == 0 and fit.order[0] >= 1 and fit.const
    assert AutoARIMA().fit(np.cumsum(e), 1).order[1] == 1
    seas_fit = AutoARIMA().fit(_seasonal_data(), 4)
    assert seas_fit.seasonal[1] == 1
    x = rng.normal(size=(n, 1))
    xfit = AutoARIMA().fit(3 * x[:, 0] + ar, 1, x=x)
    assert xfit.beta[0] == pytest.approx(3.0, abs=0.15)
    with pytest.raises(DataError, match="x_future"):
        xfit.forecast(4)


def test_contract_and_round_trip() -> None:
    y, x = _arima_data(n=80)
    for method, xx in ((AutoARIMA(), None), (AutoARIMA(), x), (ARIMA((2, 1, 0)), None)):
        assert isinstance(method, LocalMethod)
        fit = method.fit(y, 1, x=xx)
        assert isinstance(fit, LocalFit)
        xf = None if xx is None else np.ones((5, 1))
        again = method.from_params(y, 1, json.loads(json.dumps(fit.params())), x=xx)
        a, b = fit.forecast(5, (80,), x_future=xf), again.forecast(5, (80,), x_future=xf)
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.intervals[80.0][1], b.intervals[80.0][1])


def test_fast_arma_likelihood_matches_generic_kalman() -> None:
    # the O(r^2) Harvey-form recursion with a doubling start vs the generic filter + Lyapunov solve
    from seqlab.forecast.arima import _arma_fast, arma_loglik

    rng = np.random.default_rng(0)
    for _ in range(6):
        p, q = (int(v) for v in rng.integers(0, 4, 2))
        ar = _pacf_to_coef(rng.normal(size=p))
        ma = -_pacf_to_coef(rng.normal(size=q))
        sar = _pacf_to_coef(rng.normal(size=1))
        full_ar = -np.convolve(np.r_[1.0, -ar], np.r_[1.0, np.zeros(3), -sar])[1:]
        w = rng.normal(size=90)
        assert _arma_fast(w, full_ar, ma) == pytest.approx(arma_loglik(w, full_ar, ma)[0], rel=1e-10)
