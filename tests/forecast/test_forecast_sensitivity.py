"""The forecasting sensitivity probe against forecasts whose lags are known by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import seqlab
from seqlab.errors import ConfigError
from seqlab.forecast.probes import forecast_sensitivity, save_sensitivity_heatmap


def _model(name: str, h: int, m: int, **kw: object) -> object:
    rng = np.random.default_rng(0)
    train = [{"id": f"s{i}", "y": (10 + rng.normal(size=30).cumsum()).tolist(), "m": m} for i in range(2)]
    return seqlab.build(name, task="forecasting", task_options={"horizon": h, "season_length": m},
                        intervals="none", **kw).fit(train)


SERIES = {"id": "probe", "y": [5.0, 7.0, 6.0, 9.0, 8.0, 11.0, 10.0, 12.0, 13.0, 12.5, 14.0, 15.5], "m": 4}


def test_naive_uses_one_lag_and_seasonal_naive_one_season() -> None:
    res = forecast_sensitivity(_model("naive", 3, 4), SERIES)
    expected = np.zeros((12, 3))
    expected[0] = 1.0
    np.testing.assert_allclose(res.effect, expected, atol=1e-9)
    assert res.lags_used() == 1 and res.lags_for(0.99) == 1
    res = forecast_sensitivity(_model("snaive", 6, 4), SERIES)
    expected = np.zeros((12, 6))
    for k in range(1, 7):
        expected[4 - (k - 1) % 4 - 1, k - 1] = 1.0  # step k repeats the value m - (k - 1) mod m back
    np.testing.assert_allclose(res.effect, expected, atol=1e-9)
    assert res.lags_used() == 4


def test_drift_reads_the_first_and_last_values_through_its_slope() -> None:
    model = _model("drift", 3, 1)
    fixed = forecast_sensitivity(model, {**SERIES, "m": 1})  # the slope is an estimate: held, only y_n moves
    assert fixed.lags_used() == 1
    np.testing.assert_allclose(fixed.effect[0], 1.0)
    res = forecast_sensitivity(model, {**SERIES, "m": 1}, refit=True)
    n, k = 12, np.arange(1, 4)
    expected = np.zeros((n, 3))
    expected[0] = 1 + k / (n - 1)  # y_n + k (y_n - y_1) / (n - 1)
    expected[n - 1] = -k / (n - 1)
    np.testing.assert_allclose(res.effect, expected, atol=1e-7)
    assert res.lags_used() == n


def test_ses_weights_decay_geometrically_with_fixed_estimates() -> None:
    model = _model("ses", 2, 1)
    series = {**SERIES, "m": 1}
    res = forecast_sensitivity(model, series)
    alpha = model.method.fit(np.asarray(series["y"]), 1).params()["alpha"]
    weights = alpha * (1 - alpha) ** np.arange(12)
    np.testing.assert_allclose(res.effect, np.stack([weights, weights], axis=1), rtol=1e-6, atol=1e-9)


def test_refit_is_the_models_own_forecast_of_each_edited_series() -> None:
    model = _model("theta", 3, 1)
    series = {**SERIES, "m": 1}
    res = forecast_sensitivity(model, series, max_lag=3, delta=0.5, refit=True)
    base = model.forecast([series], levels=())[0].mean
    for lag in (1, 2, 3):
        y = list(series["y"])
        y[-lag] += 0.5
        np.testing.assert_allclose(res.effect[lag - 1], (model.forecast([{**series, "y": y}], levels=())[0].mean - base) / 0.5)
    with pytest.raises(ConfigError, match="max_lag must be in 1..12"):
        forecast_sensitivity(model, series, max_lag=13)


def test_heatmap_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    res = forecast_sensitivity(_model("snaive", 6, 4), SERIES)
    assert save_sensitivity_heatmap(res, tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lags used: 4 of 12 probed" in str(res)


def test_probe_commands_on_a_trained_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`seqlab probe forecast-sensitivity | fan-chart | horizon-errors` on a run trained from a file."""
    import json

    from seqlab.cli import main

    rng = np.random.default_rng(0)
    data = tmp_path / "fc.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "y": (10 + i + np.tile([1.0, 2.0, 3.0, 4.0], 6)
                                                                + 0.1 * rng.normal(size=24)).tolist(), "m": 4}) + "\n"
                            for i in range(6)))
    run = str(tmp_path / "run")
    assert main(["train", str(data), "--task", "forecasting", "--model", "snaive", "--task.horizon", "4",
                 "--task.season_length", "4", "--out", run]) == 0
    capsys.readouterr()
    assert main(["probe", "forecast-sensitivity", run, "--series", "s2", "--max-lag", "6"]) == 0
    out = capsys.readouterr().out
    assert "series s2:" in out and "lags used: 4 of 6 probed" in out
    assert main(["probe", "horizon-errors", run]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]] == ["t+1", "t+2", "t+3", "t+4"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert main(["probe", "fan-chart", run, "--series", "s1", "--out", str(tmp_path / "fan.png")]) == 0
        assert "series s1: forecast" in capsys.readouterr().out
        assert (tmp_path / "fan.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["probe", "fan-chart", run, "--series", "nope", "--out", str(tmp_path / "x.png")]) == 2
