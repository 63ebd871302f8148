"""Forecast metrics against hand-computed answers and against utilsforecast on the same input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqlab.metrics import forecasting as fm

Y = np.array([10.0, 12.0, 8.0])
F = np.array([11.0, 12.0, 10.0])
HIST = np.array([1.0, 3.0, 2.0, 6.0, 4.0])  # lag-1 |diffs| 2, 1, 4, 2 -> mean 2.25; lag-2: 1, 3, 2 -> 2


def test_point_metrics_by_hand() -> None:
    assert fm.mae(Y, F) == pytest.approx(1.0)  # (1 + 0 + 2) / 3
    assert fm.rmse(Y, F) == pytest.approx(math.sqrt(5 / 3))
    assert fm.mape(Y, F) == pytest.approx((10 + 0 + 25) / 3)
    assert fm.smape(Y, F) == pytest.approx((200 / 21 + 0 + 400 / 18) / 3)
    assert fm.mase(Y, F, HIST, m=1) == pytest.approx(1.0 / 2.25)
    assert fm.mase(Y, F, HIST, m=2) == pytest.approx(1.0 / 2.0)
    assert fm.rmsse(Y, F, HIST, m=1) == pytest.approx(math.sqrt((5 / 3) / ((4 + 1 + 16 + 4) / 4)))
    assert fm.owa(10.0, 1.0, 20.0, 0.5) == pytest.approx(0.5 * (0.5 + 2.0))


def test_smape_variants_differ_only_off_the_positive_quadrant() -> None:
    assert fm.smape(Y, F) == fm.smape_abs(Y, F)
    y, f = np.array([2.0, 0.0]), np.array([-2.0, 0.0])
    assert fm.smape_abs(y, f) == pytest.approx((200.0 + 0.0) / 2)  # 0/0 counts as 0
    assert not math.isfinite(fm.smape(y, f))  # M3's form divides by y + f = 0


def test_a_season_longer_than_the_history_falls_back_to_lag_one() -> None:
    assert fm.seasonal_scale(HIST, m=12) == pytest.approx(2.25)


def test_interval_metrics_by_hand() -> None:
    lo, hi = np.array([9.0, 13.0, 7.0]), np.array([11.0, 14.0, 9.0])
    assert fm.coverage(Y, lo, hi) == pytest.approx(2 / 3)
    # widths 2, 1, 2; the middle actual is 1 below its interval: penalty 2/0.05 * 1 = 40
    assert fm.msis(Y, lo, hi, HIST, m=1) == pytest.approx(((2 + 1 + 2) + 40) / 3 / 2.25)
    # pinball at tau = 0.9: errors y - q = -1, 0, -2 -> 0.1 each unit: (0.1 + 0 + 0.2) / 3
    assert fm.pinball(Y, F, 0.9) == pytest.approx(0.1)
    q = fm.interval_quantiles(F, {95.0: (lo, hi)})
    assert sorted(q) == [0.025, 0.5, 0.975]
    assert fm.crps(Y, q) == pytest.approx(2 * np.mean([fm.pinball(Y, q[t], t) for t in q]))


def test_crps_from_many_quantiles_approaches_the_closed_form() -> None:
    """For a Gaussian forecast N(0, 1) and y = 0.3, CRPS has a closed form (Gneiting & Raftery
    2007); twice the mean pinball loss over a fine grid of levels converges to it."""
    from statistics import NormalDist

    nd, y = NormalDist(), 0.3
    taus = np.linspace(0.0005, 0.9995, 1000)
    qs = {float(t): np.array([nd.inv_cdf(float(t))]) for t in taus}
    exact = y * (2 * nd.cdf(y) - 1) + 2 * nd.pdf(y) - 1 / math.sqrt(math.pi)
    assert fm.crps(np.array([y]), qs) == pytest.approx(exact, rel=2e-3)


def _panel() -> list[fm.SeriesForecast]:
    rng = np.random.default_rng(0)
    out = []
    for i, h in enumerate([3, 3, 5]):
        hist = 50 + rng.normal(0, 3, 20).cumsum()
        y = hist[-1] + rng.normal(0, 3, h)
        f = np.full(h, hist[-1])
        iv = {80.0: (f - 3.0, f + 3.0), 95.0: (f - 5.0, f + 5.0)}
        out.append(fm.SeriesForecast(y, f, hist, m=1 + i, intervals=iv, naive2=f + 0.5))
    return out


def test_panel_metrics_are_point_weighted() -> None:
    panel = _panel()
    got = fm.panel_metrics(panel)
    all_y = np.concatenate([s.y for s in panel])
    all_f = np.concatenate([s.mean for s in panel])
    assert got["smape"] == pytest.approx(fm.smape(all_y, all_f))
    assert got["mae"] == pytest.approx(fm.mae(all_y, all_f))
    sae = np.concatenate([np.abs(s.y - s.mean) / fm.seasonal_scale(s.insample, s.m) for s in panel])
    assert got["mase"] == pytest.approx(sae.mean())
    hs = np.array([3, 3, 5])
    assert got["rmse"] == pytest.approx(np.sum([fm.rmse(s.y, s.mean) * h for s, h in zip(panel, hs)]) / hs.sum())
    n2 = fm.panel_metrics([fm.SeriesForecast(s.y, s.naive2, s.insample, s.m) for s in panel])  # type: ignore[arg-type]
    assert got["owa"] == pytest.approx(0.5 * (got["smape"] / n2["smape"] + got["mase"] / n2["mase"]))
    cov = np.concatenate([(s.y >= s.intervals[95.0][0]) & (s.y <= s.intervals[95.0][1]) for s in panel])
    assert got["coverage_95"] == pytest.approx(cov.mean())
    assert set(got) >= {"msis", "crps", "pinball_0.025", "pinball_0.1", "pinball_0.5", "pinball_0.9", "coverage_80"}


def test_per_horizon_reaches_the_longest_horizon_and_averages_back() -> None:
    panel = _panel()
    steps = fm.per_horizon(panel)
    assert len(steps) == 5
    assert steps[4]["mae"] == pytest.approx(abs(panel[2].y[4] - panel[2].mean[4]))
    # the point-weighted mean of the per-step sMAPEs (weights: series at each step) is the panel's
    weights = np.array([3, 3, 3, 1, 1])
    assert np.sum(weights * [s["smape"] for s in steps]) / weights.sum() == pytest.approx(fm.panel_metrics(panel)["smape"])


def test_metrics_agree_with_utilsforecast() -> None:
    pd = pytest.importorskip("pandas")
    losses = pytest.importorskip("utilsforecast.losses")
    panel = _panel()
    rows, train = [], []
    for i, s in enumerate(panel):
        for t, (y, f) in enumerate(zip(s.y, s.mean)):
            lo80, hi80 = s.intervals[80.0][0][t], s.intervals[80.0][1][t]
            rows.append({"unique_id": i, "ds": len(s.insample) + t, "y": y, "m": f, "m-lo-80": lo80, "m-hi-80": hi80})
        train += [{"unique_id": i, "ds": t, "y": v} for t, v in enumerate(s.insample)]
    df, tdf = pd.DataFrame(rows), pd.DataFrame(train)
    for i, s in enumerate(panel):
        def peer(fn, i=i, **kw):  # type: ignore[no-untyped-def]
            out = fn(df, models=kw.pop("models", ["m"]), **kw)
            return float(out.loc[out["unique_id"] == i].iloc[0, -1])

        assert fm.mae(s.y, s.mean) == pytest.approx(peer(losses.mae))
        assert fm.rmse(s.y, s.mean) == pytest.approx(peer(losses.rmse))
        assert fm.mape(s.y, s.mean) == pytest.approx(100 * peer(losses.mape))
        assert fm.smape_abs(s.y, s.mean) == pytest.approx(200 * peer(losses.smape))  # theirs: |e| / (|y| + |f|)
        # one seasonality for the whole frame: compare with m = 1
        assert fm.mase(s.y, s.mean, s.insample, 1) == pytest.approx(peer(losses.mase, seasonality=1, train_df=tdf))
        assert fm.rmsse(s.y, s.mean, s.insample, 1) == pytest.approx(peer(losses.rmsse, seasonality=1, train_df=tdf))
        assert fm.coverage(s.y, *s.intervals[80.0]) == pytest.approx(peer(losses.coverage, level=80))
        q = fm.interval_quantiles(s.mean, {80.0: s.intervals[80.0]})
        df["m-q-10"], df["m-q-50"], df["m-q-90"] = df["m-lo-80"], df["m"], df["m-hi-80"]
        theirs = peer(losses.mqloss, models={"m": ["m-q-10", "m-q-50", "m-q-90"]}, quantiles=np.array([0.1, 0.5, 0.9]))
        assert fm.crps(s.y, q) == pytest.approx(2 * theirs)
        assert fm.pinball(s.y, q[0.9], 0.9) == pytest.approx(peer(losses.quantile_loss, models={"m": "m-q-90"}, q=0.9))
