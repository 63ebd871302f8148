"""The structural model's components plot and `seqlab probe components`: the components add back
to the smoothed signal and the data (oracle: statsmodels' UnobservedComponents smoother at the
same variances), the PNG is written, and the command works on a run trained from a tiny file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from seqlab.errors import ConfigError
from seqlab.forecast.structural import Structural, StructuralFit, save_components_plot

PNG = b"\x89PNG\r\n\x1a\n"


def _data(n: int = 48) -> np.ndarray:
    rng = np.random.default_rng(3)
    return 20 + 0.3 * np.arange(n) + np.tile([2.0, -1.0, 1.5, -2.5], n // 4) + rng.normal(0, 0.4, n)


def test_components_sum_to_statsmodels_smoothed_signal() -> None:
    structural = pytest.importorskip("statsmodels.tsa.statespace.structural")
    y = _data()
    p = [0.16, 0.04, 0.001, 0.01]  # irregular, level, trend, seasonal
    comp = StructuralFit(y, 4, True, True, p).components()
    mod = structural.UnobservedComponents(y, level="local linear trend", seasonal=4)
    mod.ssm.initialize_diffuse()
    mod.loglikelihood_burn = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.smooth(np.array(p))
    signal = res.smoother_results.smoothed_forecasts[0]  # Z a_{t|n}: E[y_t | all of y] without the noise
    np.testing.assert_allclose(comp["level"] + comp["season"], signal, atol=1e-6)
    np.testing.assert_allclose(comp["irregular"], res.smoothed_measurement_disturbance[0], atol=1e-6)
    np.testing.assert_allclose(comp["level"] + comp["season"] + comp["irregular"], y, atol=1e-9)
    # the trend is the level's slope: the smoothed level moves by it, up to the level noise
    np.testing.assert_allclose(np.mean(np.diff(comp["level"])), np.mean(comp["trend"][:-1]), atol=0.05)


def test_plot_is_written_for_each_model_shape(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    y = _data()
    for i, (trend, seasonal) in enumerate([(True, True), (False, False)]):
        fit = Structural(trend=trend, seasonal=seasonal, max_iter=30).fit(y, 4)
        comps = fit.components()
        assert set(comps) == ({"level", "irregular"} | ({"trend"} if trend else set()) | ({"season"} if seasonal else set()))
        out = save_components_plot(y, comps, tmp_path / f"c{i}.png", title="t")
        assert out.read_bytes()[:8] == PNG
    with pytest.raises(ConfigError, match="length"):
        save_components_plot(y, {"level": y[:-1]}, tmp_path / "bad.png")


def test_probe_components_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from seqlab.cli import main

    data = tmp_path / "fc.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "y": (_data(32) + i).tolist(), "m": 4}) + "\n" for i in range(3)))
    run = str(tmp_path / "run")
    assert main(["train", str(data), "--task", "forecasting", "--model", "structural",
                 "--task.horizon", "4", "--task.season_length", "4", "--out", run]) == 0
    capsys.readouterr()
    png = tmp_path / "comp.png"
    assert main(["probe", "components", run, "--series", "s1", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "series s1: 28 values, m = 4" in out and "season: last" in out and "trend: last" in out
    assert png.read_bytes()[:8] == PNG
    assert main(["probe", "components", run, "--series", "nope", "--out", str(tmp_path / "x.png")]) == 2
    snaive = str(tmp_path / "snaive")
    assert main(["train", str(data), "--task", "forecasting", "--model", "snaive", "--task.horizon", "4",
                 "--task.season_length", "4", "--out", snaive]) == 0
    assert main(["probe", "components", snaive, "--out", str(tmp_path / "y.png")]) == 2
