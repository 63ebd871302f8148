"""ETS: the recursion pinned to statsmodels' ETSModel and to a per-class textbook twin, the
estimates to statsmodels' ML fit, the analytic intervals to simulation, and textbook series."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from seqlab.errors import ConfigError
from seqlab.forecast.ets import (
    ETS,
    SES,
    DampedTrend,
    ETSFit,
    Holt,
    HoltWinters,
    _roots_inside,
    _run,
    _Spec,
    ets_filter_ref,
    ets_loglik,
)
from seqlab.forecast.local import LocalFit, LocalMethod

SPECS = [(e, t, s) for e in "AM" for t in ("N", "A", "Ad") for s in "NAM"]


def _series(n: int = 60, m: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)


def _params(e: str, t: str, s: str) -> tuple[list[float], np.ndarray]:
    s0 = np.array([1.2, 0.9, 1.05, 0.85]) if s == "M" else np.array([3.0, -2.0, 1.0, -2.0])
    p = [0.3] + ([0.05] if t != "N" else []) + ([0.1] if s != "N" else []) + ([0.9] if t == "Ad" else [])
    p += [50.0] + ([0.5] if t != "N" else [])
    return p, s0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "".join(s))
def test_recursion_matches_textbook_twin(spec: tuple[str, str, str]) -> None:
    e, t, s = spec
    y = _series()
    _, s0 = _params(e, t, s)
    beta, phi = (0.05 if t != "N" else 0.0), (0.9 if t == "Ad" else 1.0)
    mu_ref, _ = ets_filter_ref(y, e, t, s, 4, 0.3, beta, 0.1, phi, 50.0, 0.5 if t != "N" else 0.0, s0)
    mu = np.empty(len(y))
    _run(y, "AM".index(e), ["N", "A", "Ad"].index(t), "NAM".index(s), 4, 0.3, beta, 0.1, phi, 50.0,
         0.5 if t != "N" else 0.0, s0 if s != "N" else np.zeros(1), mu)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-12)


@pytest.mark.parametrize("spec", [sp for sp in SPECS if sp[2] != "M"], ids=lambda s: "".join(s))
def test_loglik_and_forecast_match_statsmodels(spec: tuple[str, str, str]) -> None:
    # statsmodels writes the multiplicative season in Holt-Winters component form (its seasonal
    # update uses y / l_t), not the state-space form, so only the other 12 classes compare.
    ets_mod = pytest.importorskip("statsmodels.tsa.exponential_smoothing.ets")
    e, t, s = spec
    y = _series()
    p, s0 = _params(e, t, s)
    kw = dict(error={"A": "add", "M": "mul"}[e], trend=None if t == "N" else "add", damped_trend=t == "Ad",
              seasonal=None if s == "N" else "add", seasonal_periods=4 if s != "N" else None)
    model = ets_mod.ETSModel(y, **kw)
    full = np.array(p + (list(s0) if s != "N" else []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll_sm = model.loglike(full)
        fc_sm = model.smooth(full).forecast(6)
    beta, phi = (0.05 if t != "N" else 0.0), (0.9 if t == "Ad" else 1.0)
    ll = ets_loglik(y, e, t, s, 4, 0.3, beta, 0.1, phi, 50.0, 0.5 if t != "N" else 0.0, s0)
    assert ll == pytest.approx(ll_sm, rel=1e-10)
    theta = p + (list(s0[:-1]) if s != "N" else [])  # s0 sums to 0: the last state is implied
    fit = ETS(e, t, s).from_params(y, 4, {"model": f"{e}{t}{s}", "theta": theta})
    np.testing.assert_allclose(fit.forecast(6).mean, fc_sm, rtol=1e-10)


@pytest.mark.parametrize("spec", [("A", "A", "N"), ("M", "Ad", "N"), ("A", "N", "A")], ids=lambda s: "".join(s))
def test_fit_reaches_statsmodels_likelihood(spec: tuple[str, str, str]) -> None:
    ets_mod = pytest.importorskip("statsmodels.tsa.exponential_smoothing.ets")
    e, t, s = spec
    y = _series(n=80, seed=3)
    kw = dict(error={"A": "add", "M": "mul"}[e], trend=None if t == "N" else "add", damped_trend=t == "Ad",
              seasonal=None if s == "N" else "add", seasonal_periods=4 if s != "N" else None)
    # the same box as ours: slope weight <= 0.2 / m, season weight <= 1 - 0.2 / m
    bounds = {"smoothing_trend": (1e-4, 0.05)} if t != "N" else {}
    if s != "N":
        bounds["smoothing_seasonal"] = (1e-4, 0.95)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ets_mod.ETSModel(y, bounds=bounds, **kw).fit(disp=False)
    fit = ETS(e, t, s).fit(y, 4)
    # both maximise the same likelihood over the same box: ours is no worse, up to the
    # Nelder-Mead stopping rule (simplex values within 1e-4), 1e-4 relative here
    assert fit.loglik >= res.llf - 1e-4 * abs(res.llf)
    np.testing.assert_allclose(fit.forecast(8).mean, res.forecast(8), rtol=0.02)


@pytest.mark.parametrize("spec", [("A", "Ad", "A"), ("M", "A", "N"), ("M", "N", "A")], ids=lambda s: "".join(s))
def test_analytic_intervals_match_simulation(spec: tuple[str, str, str]) -> None:
    e, t, s = spec
    y = _series(n=80, seed=5)
    fit = ETS(e, t, s, n_paths=40000, seed=1).fit(y, 4)
    h = 9
    fc = fit.forecast(h, levels=(80, 95))
    paths = fit._simulate(h)
    for lv in (80.0, 95.0):
        a = (100 - lv) / 200
        lo, hi = np.quantile(paths, [a, 1 - a], axis=0)
        width = fc.intervals[lv][1] - fc.intervals[lv][0]
        # class 2 intervals are Gaussian around a skewed path distribution: compare widths
        np.testing.assert_allclose(hi - lo, width, rtol=0.03)
    np.testing.assert_allclose(paths.mean(axis=0), fc.mean, rtol=0.01)


def test_textbook_series() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(60, dtype=float)
    line = 10 + 2 * t + rng.normal(0, 1e-3, 60)
    fc = Holt().fit(line, 1).forecast(5).mean
    np.testing.assert_allclose(fc, 10 + 2 * np.arange(60, 65), rtol=1e-3)
    flat = 7 + rng.normal(0, 1e-3, 40)
    np.testing.assert_allclose(SES().fit(flat, 1).forecast(3).mean, 7, rtol=1e-3)
    pattern = np.array([3.0, -1.0, 2.0, -4.0])
    seas = 100 + 0.5 * t + np.tile(pattern, 15) + rng.normal(0, 1e-3, 60)
    fc = HoltWinters().fit(seas, 4).forecast(8).mean
    np.testing.assert_allclose(fc, 100 + 0.5 * np.arange(60, 68) + np.tile(pattern, 2), atol=0.05)


def test_auto_selection_respects_data() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(96)
    mult = (100 + t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.01, 96))
    fit = ETS().fit(mult, 12)
    assert fit.spec.season != "N"
    neg = rng.normal(0, 1, 50)
    assert all(c not in ETS().fit(neg, 12).name for c in "M")
    short = ETS().fit(rng.normal(10, 1, 11), 12)  # shorter than two seasons: no season
    assert short.spec.season == "N"


def test_contract_and_round_trip() -> None:
    y = _series(n=48)
    for method in (ETS(), SES(), Holt(), DampedTrend(), HoltWinters(), HoltWinters("multiplicative")):
        assert isinstance(method, LocalMethod)
        fit = method.fit(y, 4)
        assert isinstance(fit, LocalFit)
        state = json.loads(json.dumps(fit.params()))
        again = method.from_params(y, 4, state)
        a, b = fit.forecast(6, (80, 95)), again.forecast(6, (80, 95))
        assert np.array_equal(a.mean, b.mean)
        for lv in (80.0, 95.0):
            assert np.array_equal(a.intervals[lv][0], b.intervals[lv][0])
            assert np.all(a.intervals[lv][0] < a.mean) and np.all(a.mean < a.intervals[lv][1])
    assert ETSFit is type(fit) and isinstance(fit.spec, _Spec)


def test_constant_series_forecasts_itself() -> None:
    fc = ETS().fit(np.full(30, 4.0), 12).forecast(5, (95,))
    np.testing.assert_array_equal(fc.mean, 4.0)
    np.testing.assert_array_equal(fc.intervals[95.0][0], 4.0)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="trend"):
        ETS(trend="M")
    with pytest.raises(ConfigError, match="covariates"):
        ETS().fit(_series(), 4, x=np.zeros((60, 1)))


def test_schur_cohn_matches_roots() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        c = rng.normal(size=int(rng.integers(2, 15)))
        c[-1] = 1.0
        c[:-1] *= rng.uniform(0.01, 1)
        assert _roots_inside(c) == bool(np.max(np.abs(np.roots(c[::-1]))) < 1)
