"""The structural model pinned to statsmodels' UnobservedComponents (exact diffuse start):
likelihood at given variances, smoothed components, forecasts, and the ML fit."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from seqlab.errors import ConfigError
from seqlab.forecast.local import LocalFit, LocalMethod
from seqlab.forecast.structural import Structural, StructuralFit

structural = pytest.importorskip("statsmodels.tsa.statespace.structural")


def _data(n: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    slope = np.cumsum(rng.normal(0, 0.05, n))
    return np.cumsum(slope + rng.normal(0, 0.3, n)) + np.tile([3.0, -1.0, 2.0, -4.0], n // 4) + rng.normal(0, 0.5, n)


def _uc(y: np.ndarray, **kw: object) -> object:
    mod = structural.UnobservedComponents(y, **kw)
    mod.ssm.initialize_diffuse()
    mod.loglikelihood_burn = 0
    return mod


def test_likelihood_components_and_forecast_match_statsmodels() -> None:
    y = _data()
    p = [0.25, 0.09, 0.0025, 0.01]
    mod = _uc(y, level="local linear trend", seasonal=4)
    fit = StructuralFit(y, 4, True, True, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit.loglik == pytest.approx(mod.loglike(np.array(p)), rel=1e-10)
        res = mod.smooth(np.array(p))
    comp = fit.components()
    np.testing.assert_allclose(comp["level"], res.smoothed_state[0], atol=1e-6)
    np.testing.assert_allclose(comp["trend"], res.smoothed_state[1], atol=1e-6)
    np.testing.assert_allclose(comp["season"], res.smoothed_state[2], atol=1e-6)
    fc = res.get_forecast(6)
    mine = fit.forecast(6, (95,))
    np.testing.assert_allclose(mine.mean, fc.predicted_mean, rtol=1e-8)
    sd = (mine.intervals[95.0][1] - mine.mean) / 1.959963984540054
    np.testing.assert_allclose(sd**2, fc.var_pred_mean, rtol=1e-6)


@pytest.mark.parametrize("trend,seasonal", [(False, False), (True, False), (True, True)])
def test_ml_fit_matches_statsmodels(trend: bool, seasonal: bool) -> None:
    y = _data()
    kw: dict[str, object] = {"level": "local linear trend" if trend else "local level"}
    if seasonal:
        kw["seasonal"] = 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _uc(y, **kw).fit(disp=False)  # type: ignore[attr-defined]
    fit = Structural(trend=trend, seasonal=seasonal).fit(y, 4)
    assert fit.loglik >= res.llf - 1e-5
    assert fit.loglik == pytest.approx(res.llf, abs=1e-3)


def test_components_recover_a_known_season() -> None:
    rng = np.random.default_rng(1)
    pattern = np.array([3.0, -1.0, 2.0, -4.0])
    y = 10 + 0.2 * np.arange(80) + np.tile(pattern, 20) + rng.normal(0, 0.1, 80)
    comp = Structural().fit(y, 4).components()
    np.testing.assert_allclose(comp["season"][-4:], np.tile(pattern, 20)[-4:], atol=0.15)
    np.testing.assert_allclose(comp["trend"][-10:], 0.2, atol=0.05)


def test_contract_and_round_trip() -> None:
    y = _data(48)
    method = Structural()
    assert isinstance(method, LocalMethod)
    fit = method.fit(y, 4)
    assert isinstance(fit, LocalFit)
    again = method.from_params(y, 4, json.loads(json.dumps(fit.params())))
    a, b = fit.forecast(5, (80,)), again.forecast(5, (80,))
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.intervals[80.0][0], b.intervals[80.0][0])
    with pytest.raises(ConfigError, match="covariates"):
        method.fit(y, 4, x=np.zeros((48, 1)))
