"""The simple local methods and the Theta family against statsforecast (reference forecasts
held below as literals) and against answers known by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seqlab.errors import ConfigError, DataError
from seqlab.forecast import seasonal as sz
from seqlab.forecast.simple import SBA, TSB, Croston, Drift, Naive, Naive2, SeasonalNaive
from seqlab.forecast.theta import (
    DynamicOptimizedTheta,
    DynamicTheta,
    OptimizedTheta,
    Theta,
    theta_pass,
)


def _series() -> dict[str, tuple[list[float], int]]:
    """The inputs of bench/forecast_reference.py, rebuilt from the same formula."""
    def noise(t: int) -> float:
        return math.sin(12.9898 * t + 78.233) * 4.0

    seasonal = [round(200 + 1.5 * t + 30 * math.sin(2 * math.pi * t / 12) + noise(t), 2) for t in range(60)]
    trend = [round(50 + 3 * t + 2 * noise(t), 2) for t in range(24)]
    intermittent = [float(max(0, round(noise(t) * 1.5 - 2))) for t in range(40)]
    return {"seasonal": (seasonal, 12), "trend": (trend, 1), "intermittent": (intermittent, 1)}


# Produced by `/work/peerenvs/statsforecast/bin/python bench/forecast_reference.py` (statsforecast
# 2.1.1, pandas 2.3.3): each method's 8-step forecast (and the upper 95% bound where it has one),
# rounded to 6 decimals. statsforecast's TSB takes alpha_d for sizes and alpha_p for the probability.
STATSFORECAST = {
    'seasonal': {
        'naive': [275.27, 275.27, 275.27, 275.27, 275.27, 275.27, 275.27, 275.27],
        'naive_hi95': [297.061047, 306.087194, 313.013201, 318.852094, 323.996262, 328.646946, 332.923691, 336.904388],
        'snaive': [268.32, 284.5, 297.37, 303.91, 302.88, 295.07, 283.15, 270.85],
        'snaive_hi95': [304.707867, 320.887867, 333.757867, 340.297867, 339.267867, 331.457867, 319.537867, 307.237867],
        'drift': [276.525254, 277.780508, 279.035763, 280.291017, 281.546271, 282.801525, 284.05678, 285.312034],
        'drift_hi95': [298.35969, 308.915322, 317.479254, 325.038295, 331.970741, 338.468633, 344.644881, 350.572286],
        'theta': [294.792584, 314.126509, 328.394516, 334.084947, 329.966247, 317.406409, 298.676858, 280.013853],
        'otm': [295.567492, 315.76539, 330.953462, 337.54401, 334.22348, 322.306193, 304.040705, 285.745006],
        'dstm': [294.792584, 314.128394, 328.39954, 334.093501, 329.977772, 317.419592, 298.689972, 280.025263],
        'dotm': [295.572246, 315.780525, 330.984494, 337.595326, 334.297457, 322.403037, 304.158769, 285.883279],
        'croston': [270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443],
        'sba': [256.537471, 256.537471, 256.537471, 256.537471, 256.537471, 256.537471, 256.537471, 256.537471],
        'tsb': [270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443, 270.039443],
    },
    'trend': {
        'naive': [119.06, 119.06, 119.06, 119.06, 119.06, 119.06, 119.06, 119.06],
        'naive_hi95': [126.449651, 129.510544, 131.859251, 133.839302, 135.583761, 137.160874, 138.611178, 139.961089],
        'snaive': [119.06, 119.06, 119.06, 119.06, 119.06, 119.06, 119.06, 119.06],
        'snaive_hi95': [126.449651, 129.510544, 131.859251, 133.839302, 135.583761, 137.160874, 138.611178, 139.961089],
        'drift': [121.957391, 124.854783, 127.752174, 130.649565, 133.546957, 136.444348, 139.341739, 142.23913],
        'drift_hi95': [126.787554, 131.826522, 136.459873, 140.895887, 145.212907, 149.449958, 153.629552, 157.76593],
        'theta': [120.495515, 121.979518, 123.46352, 124.947522, 126.431524, 127.915526, 129.399528, 130.883531],
        'otm': [121.994474, 124.962445, 127.930415, 130.898386, 133.866357, 136.834328, 139.802299, 142.77027],
        'dstm': [120.495515, 121.981188, 123.461745, 124.932371, 126.389618, 127.831045, 129.254966, 130.660253],
        'dotm': [121.766861, 124.523537, 127.289308, 130.060633, 132.834852, 135.609954, 138.384417, 141.157082],
        'croston': [92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855],
        'sba': [88.058212, 88.058212, 88.058212, 88.058212, 88.058212, 88.058212, 88.058212, 88.058212],
        'tsb': [92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855, 92.692855],
    },
    'intermittent': {
        'naive': [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        'naive_hi95': [2.630789, 3.306283, 3.824609, 4.261577, 4.646554, 4.9946, 5.314661, 5.612567],
        'snaive': [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        'snaive_hi95': [2.630789, 3.306283, 3.824609, 4.261577, 4.646554, 4.9946, 5.314661, 5.612567],
        'drift': [1.025641, 1.051282, 1.076923, 1.102564, 1.128205, 1.153846, 1.179487, 1.205128],
        'drift_hi95': [2.67642, 3.414838, 4.006766, 4.525693, 4.999626, 5.442697, 5.863165, 6.266322],
        'theta': [0.991706, 0.993394, 0.995083, 0.996771, 0.99846, 1.000148, 1.001837, 1.003525],
        'otm': [0.993336, 0.996639, 0.999941, 1.003244, 1.006547, 1.00985, 1.013152, 1.016455],
        'dstm': [0.991706, 0.99361, 0.995695, 0.997933, 1.000301, 1.00278, 1.005351, 1.008001],
        'dotm': [0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99],
        'croston': [0.428575, 0.428575, 0.428575, 0.428575, 0.428575, 0.428575, 0.428575, 0.428575],
        'sba': [0.407146, 0.407146, 0.407146, 0.407146, 0.407146, 0.407146, 0.407146, 0.407146],
        'tsb': [0.692176, 0.692176, 0.692176, 0.692176, 0.692176, 0.692176, 0.692176, 0.692176],
    },
}

METHODS = {"naive": Naive(), "snaive": SeasonalNaive(), "drift": Drift(), "theta": Theta(), "dstm": DynamicTheta(),
           "croston": Croston(), "sba": SBA(), "tsb": TSB(), "otm": OptimizedTheta(), "dotm": DynamicOptimizedTheta()}
EXACT = ["naive", "snaive", "drift", "theta", "dstm", "croston", "sba", "tsb"]


@pytest.mark.parametrize("key", sorted(STATSFORECAST))
@pytest.mark.parametrize("name", EXACT)
def test_matches_statsforecast(key: str, name: str) -> None:
    y, m = _series()[key]
    method = METHODS[name]
    levels = (95.0,) if f"{name}_hi95" in STATSFORECAST[key] else ()
    fc = method.fit(np.array(y), m).forecast(8, levels)
    np.testing.assert_allclose(fc.mean, STATSFORECAST[key][name], rtol=1e-6, atol=1e-6)
    if levels:
        np.testing.assert_allclose(fc.intervals[95.0][1], STATSFORECAST[key][f"{name}_hi95"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["otm", "dotm"])
def test_optimized_theta_reaches_the_grid_minimum_and_is_near_statsforecast(name: str) -> None:
    """theta is free, so optimisers may stop at different points of a flat valley: the oracle is
    a brute-force grid over (alpha, theta) (l_0 at the fitted value); the forecast is within a few
    percent of statsforecast's."""
    y, m = _series()["trend"]
    arr = np.array(y)
    method = METHODS[name]
    p = method.fit(arr, m).params()
    dynamic = name == "dotm"

    def mse(alpha: float, theta: float) -> float:
        return float(np.mean((arr - theta_pass(arr, p["level0"], alpha, theta, dynamic)[0]) ** 2))

    grid = min(mse(a, t) for a in np.linspace(0.1, 0.99, 90) for t in np.linspace(1.0, 60.0, 119))
    assert mse(p["alpha"], p["theta"]) <= grid * (1 + 1e-9)
    fc = method.fit(arr, m).forecast(8).mean
    np.testing.assert_allclose(fc, STATSFORECAST["trend"][name], rtol=0.01)


def test_pure_season_trend_and_level_are_forecast_exactly() -> None:
    season = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    y = np.tile(season, 6)
    np.testing.assert_allclose(SeasonalNaive().fit(y, 5).forecast(7).mean, np.tile(season, 2)[:7])
    line = 2.0 + 0.5 * np.arange(20)
    np.testing.assert_allclose(Drift().fit(line, 1).forecast(4).mean, 2.0 + 0.5 * np.arange(20, 24))
    assert np.all(Naive().fit(np.full(5, 7.0), 1).forecast(3).mean == 7.0)
    # a pure multiplicative season around a flat level: Naive2 deseasonalises it exactly
    idx = np.array([0.8, 1.2, 1.1, 0.9])
    flat = 100.0 * np.tile(idx, 8)
    np.testing.assert_allclose(Naive2().fit(flat, 4).forecast(6).mean, 100.0 * np.tile(idx, 2)[:6])
    # Theta on a straight line: the slope is exact, the level follows it (SES with drift)
    fc = Theta().fit(line, 1).forecast(3).mean
    np.testing.assert_allclose(np.diff(fc), 0.5 * 0.5, rtol=1e-6)  # theta = 2: half the slope


def test_naive2_is_naive_without_season() -> None:
    y, m = _series()["trend"]
    np.testing.assert_array_equal(Naive2().fit(np.array(y), m).forecast(5).mean, Naive().fit(np.array(y), m).forecast(5).mean)


def test_croston_sba_tsb_by_hand() -> None:
    y = np.array([0.0, 3.0, 0.0, 0.0, 5.0])
    # sizes 3, 5 -> SES(0.5) from 3: 4; intervals 2, 3 -> 2.5; rate 1.6
    assert Croston(alpha=0.5).fit(y, 1).forecast(2).mean.tolist() == pytest.approx([1.6, 1.6])
    assert SBA(alpha=0.5).fit(y, 1).forecast(1).mean[0] == pytest.approx(1.6 * 0.75)
    # probability 0,1,0,0,1 -> SES(0.5) from 0: 0.5625; size 4
    assert TSB(alpha_d=0.5, alpha_p=0.5).fit(y, 1).forecast(1).mean[0] == pytest.approx(0.5625 * 4)
    assert Croston().fit(np.zeros(4), 1).forecast(2).mean.tolist() == [0.0, 0.0]


def test_seasonality_test_and_indices_agree_with_statsmodels() -> None:
    stattools = pytest.importorskip("statsmodels.tsa.stattools")
    seasonal_decompose = pytest.importorskip("statsmodels.tsa.seasonal").seasonal_decompose
    y, m = _series()["seasonal"]
    arr = np.array(y)
    np.testing.assert_allclose(sz.acf(arr, m), stattools.acf(arr, nlags=m, fft=False)[1:], rtol=1e-10)
    assert sz.seasonality_test(arr, m) and not sz.seasonality_test(np.array(_series()["trend"][0]), 4)
    for multiplicative, odd in [(True, False), (False, False), (True, True)]:
        period = 5 if odd else m
        ref = seasonal_decompose(arr, model="multiplicative" if multiplicative else "additive", period=period).seasonal
        np.testing.assert_allclose(np.resize(sz.seasonal_indices(arr, period, multiplicative), len(arr)), ref, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_from_params_reproduces_the_forecast_bit_for_bit(name: str) -> None:
    y, m = _series()["seasonal"]
    method = METHODS[name]
    fit = method.fit(np.array(y), m)
    levels = (80.0, 95.0) if method.has_intervals else ()
    again = method.from_params(np.array(y), m, json.loads(json.dumps(fit.params())))
    a, b = fit.forecast(6, levels), again.forecast(6, levels)
    assert a.mean.tobytes() == b.mean.tobytes()
    for lv in levels:
        lo80, hi80 = a.intervals[80.0]
        assert np.all(a.intervals[95.0][0] <= lo80) and np.all(hi80 <= a.intervals[95.0][1])
        assert a.intervals[lv][0].tobytes() == b.intervals[lv][0].tobytes()


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(DataError, match="position 2"):
        Naive().fit(np.array([1.0, 2.0, np.nan]), 1)
    with pytest.raises(ConfigError, match="no covariates"):
        Theta().fit(np.arange(10.0), 1, x=np.ones((10, 1)))
    with pytest.raises(ConfigError, match="no model-based intervals"):
        Naive2().fit(np.arange(10.0), 1).forecast(3, levels=(95,))
    with pytest.raises(DataError, match="at least 2"):
        Drift().fit(np.array([1.0]), 1)
    with pytest.raises(ConfigError, match="alpha"):
        Croston(alpha=0.0)
