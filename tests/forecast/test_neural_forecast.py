"""Global neural forecasters (nbeats, global): windows, losses, bases, quantiles, ensembles,
determinism, resumption, save/load and batched backtesting, on tiny synthetic panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import ConfigError
from seqlab.forecast.backtest import backtest
from seqlab.forecast.nbeats import NBeats, seasonality_basis, trend_basis
from seqlab.forecast.neural import (
    EncoderForecaster,
    Panel,
    forecast_loss,
    pinball,
    sample_windows,
    windows_at,
)

H = 4
TINY: dict[str, Any] = {"blocks": 2, "width": 32, "layers": 2, "steps": 60, "steps_per_epoch": 20, "batch_size": 32,
                        "lr": 3e-3}


def _sines(n: int = 12, length: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    """Pure seasonal series of period 4 around different levels (no noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for i in range(n):
        level, amp, phase = 5 + 10 * rng.random(), 1 + 2 * rng.random(), rng.integers(4)
        out.append({"id": f"s{i}", "y": (level + amp * np.sin(2 * np.pi * (t + phase) / 4)).tolist(), "m": 4})
    return out


def _build(family: str = "nbeats", **kw: Any) -> Any:
    return seqlab.build(family, task="forecasting", task_options={"horizon": H, "season_length": 4}, **{**TINY, **kw})


def test_bases_by_hand() -> None:
    t = torch.tensor([0.0, 1 / 3, 2 / 3])
    assert torch.allclose(trend_basis(2, t), torch.tensor([[1.0, 1, 1], [0, 1 / 3, 2 / 3], [0, 1 / 9, 4 / 9]]))
    s = seasonality_basis(1, torch.tensor([0.0, 0.25, 0.5]))
    assert torch.allclose(s, torch.tensor([[1.0, 1, 1], [1, 0, -1], [0, 1, 0]]), atol=1e-6)


def test_network_shapes() -> None:
    x, obs = torch.randn(5, 12), torch.ones(5, 12, dtype=torch.bool)
    for kind in ("generic", "interpretable"):
        assert NBeats(12, H, kind=kind, blocks=2, width=16, layers=2, rows=3)(x, obs).shape == (5, 3, H)
    enc = EncoderForecaster("transformer", {"d_model": 16, "num_layers": 1}, 12, H, rows=2, patch=5)  # 12 -> 3 patches
    assert enc(x, obs).shape == (5, 2, H)
    assert EncoderForecaster("gru", {"d_model": 8, "hidden_size": 8}, 12, H, rows=1)(x, obs).shape == (5, 1, H)


def test_interpretable_trend_block_forecasts_a_polynomial() -> None:
    net = NBeats(8, 6, kind="interpretable", blocks=1, width=16, layers=2, degree=2)
    _, fc = net.stack[0](torch.randn(3, 8))  # (3, 1, 6): the trend block alone
    t = np.arange(6) / 6
    for row in fc[:, 0].detach().numpy():
        coef = np.polyfit(t, row, 2)
        assert np.allclose(np.polyval(coef, t), row, atol=1e-4)


def test_season_period_basis_repeats_every_season() -> None:
    net = NBeats(8, 10, kind="interpretable", blocks=1, width=16, layers=2, period=4)
    back, fc = net.stack[1](torch.randn(3, 8))  # the seasonality block: (3, 8), (3, 1, 10)
    assert torch.allclose(fc[:, 0, 4:], fc[:, 0, :-4], atol=1e-4)
    assert torch.allclose(back[:, 4:], back[:, :-4], atol=1e-4)


def test_windows_against_brute_force() -> None:
    ys = [np.arange(1.0, 11.0), np.arange(1.0, 4.0) * 10]
    panel = Panel.of(ys, [1, 1])
    b = windows_at(panel, np.array([0, 1, 0]), np.array([6, 2, 10]), 4, 3, "mean_abs")
    for j, (i, t) in enumerate([(0, 6), (1, 2), (0, 10)]):
        y = ys[i]
        lb = [y[p] if 0 <= p < len(y) else 0.0 for p in range(t - 4, t)]
        obs = [0 <= p < len(y) for p in range(t - 4, t)]
        scale = np.sum(np.abs(lb)) / sum(obs)
        tgt = [y[p] if p < len(y) else 0.0 for p in range(t, t + 3)]
        assert np.allclose(b["x"][j].numpy(), np.array(lb) / scale, atol=1e-6)
        assert b["observed"][j].tolist() == obs
        assert np.allclose(b["y"][j].numpy(), np.array(tgt) / scale, atol=1e-6)
        assert b["known"][j].tolist() == [p < len(y) for p in range(t, t + 3)]
    assert np.isclose(panel.mase_scale[0], 1.0) and np.isclose(panel.mase_scale[1], 10.0)
    one = sample_windows(panel, np.random.default_rng(3), 8, 4, 3, None, "mean_abs")
    two = sample_windows(panel, np.random.default_rng(3), 8, 4, 3, None, "mean_abs")
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert bool(one["observed"][:, -1].all())  # at least one observed value before every origin


def test_losses_by_hand() -> None:
    f = torch.tensor([[[1.0, 2.0, 4.0]]])  # (B=1, Q=1, H=3)
    batch = {"y": torch.tensor([[2.0, 2.0, 0.0]]), "known": torch.tensor([[True, True, False]]), "mase": torch.tensor([0.5])}
    expect = {"mse": 1.0, "mae": 1.0, "smape": 2 * 1 / 3, "mase": 2.0}
    for kind, want in expect.items():
        total, n = forecast_loss(kind, f, batch)
        assert float(n) == 2 and float(total) == pytest.approx(want)
    # pinball: q = 0.1, 0.9; y = 2; forecasts 1 (under by 1) and 3 (over by 1)
    fq = torch.tensor([[[1.0], [3.0]]])  # (1, Q=2, H=1)
    per = pinball(fq, torch.tensor([[2.0]]), torch.tensor([0.1, 0.9]))
    assert per.flatten().tolist() == pytest.approx([0.1 * 1, 0.1 * 1])  # 0.1*(2-1); (0.9-1)*(2-3)
    per = pinball(torch.tensor([[[3.0], [1.0]]]), torch.tensor([[2.0]]), torch.tensor([0.1, 0.9]))
    assert per.flatten().tolist() == pytest.approx([0.9, 0.9])


def test_skip_adds_the_naive_forecast() -> None:
    model = _build(skip=True)
    member = model._new_member(6, 0)
    for p in member.parameters():
        torch.nn.init.zeros_(p)  # the network alone forecasts 0
    panel = Panel.of([np.arange(1.0, 11.0)], [1])
    batch = windows_at(panel, np.array([0]), np.array([8]), 6, H, "mean_abs")
    out = member(batch)  # (1, 1, H)
    assert torch.equal(out[0, 0], batch["x"][0, -1].expand(H))  # the last value, scaled: naive


def test_nonnegative_floors_only_nonnegative_histories() -> None:
    data = _sines()
    free, floored = _build(steps=20).fit(data), _build(steps=20, nonnegative=True).fit(data)
    crash = [40.0] * 11 + [0.5]  # a collapse: the forecast from it may dip below zero
    inputs = [crash, [-v for v in crash], *[ex["y"] for ex in data]]
    a, b = np.asarray(free.predict(inputs)), np.asarray(floored.predict(inputs))
    assert np.array_equal(b[0], np.maximum(a[0], 0.0))
    assert np.array_equal(b[1:], a[1:])  # a history with a negative value, and positive ones: as they are
    assert (b[0] >= 0).all()


def test_seasonal_series_learned() -> None:
    data = _sines()
    train = [{**ex, "y": ex["y"][:-H]} for ex in data]
    model = _build(lookbacks=(8,), loss="mae", steps=200, width=64).fit(train)
    got = model.evaluate(data)
    print(got)
    assert got["smape"] < 1.0, got  # a pure seasonal series: seasonal naive would be exact
    snaive = seqlab.build("snaive", task="forecasting", task_options={"horizon": H, "season_length": 4}).fit(train)
    assert snaive.evaluate(data)["smape"] < 1e-9  # the oracle: the series repeats


def test_quantile_head_orders_and_gives_intervals() -> None:
    qs = (0.025, 0.1, 0.5, 0.9, 0.975)
    model = _build(loss="pinball", quantiles=qs).fit(_sines())
    q = model.quantile_forecasts([ex["y"] for ex in _sines(seed=1)])
    assert q.shape == (12, 5, H)
    assert (np.diff(q, axis=1) >= 0).all()
    (fc,) = model.forecast([_sines()[0]["y"]], levels=(80, 95))
    (q0,) = model.quantile_forecasts([_sines()[0]["y"]])
    assert set(fc.intervals) == {80.0, 95.0}
    assert np.array_equal(fc.mean, q0[2])
    assert np.array_equal(fc.intervals[80.0][0], q0[1]) and np.array_equal(fc.intervals[80.0][1], q0[3])
    assert np.array_equal(fc.intervals[95.0][0], q0[0]) and np.array_equal(fc.intervals[95.0][1], q0[4])
    metrics = model.evaluate(_sines())
    assert {"coverage_80", "coverage_95", "msis", "crps"} <= set(metrics)


@pytest.mark.parametrize("family,kw", [("nbeats", {"lookbacks": (8, 12), "steps": 30}),
                                       ("global", {"encoder": "gru", "encoder_options": {"d_model": 8, "hidden_size": 8}})])
def test_determinism_and_save_load(family: str, kw: dict[str, Any], tmp_path: Path) -> None:
    data, inputs = _sines(), [ex["y"] for ex in _sines(seed=2)]
    a = _build(family, **kw).fit(data).predict(inputs)
    model = _build(family, **kw).fit(data)
    assert model.predict(inputs) == a  # bit-identical
    other = _build(family, **{**kw, "seeds": (5,)}).fit(data).predict(inputs)
    assert other != a
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert again.predict(inputs) == a
    assert again.evaluate(data) == model.evaluate(data)


def test_median_ensemble_of_members() -> None:
    data, inputs = _sines(), [ex["y"] for ex in _sines(seed=2)]
    model = _build(lookbacks=(8, 12), seeds=(0, 3), steps=20).fit(data)
    singles = []
    for lb, seed in model.member_specs():
        singles.append(np.asarray(_build(lookbacks=(lb,), seeds=(seed,), steps=20).fit(data).predict(inputs)))
    assert np.array_equal(np.asarray(model.predict(inputs)), np.median(np.stack(singles), axis=0))


def test_chunked_fit_equals_one_fit(tmp_path: Path) -> None:
    data, inputs = _sines(), [ex["y"] for ex in _sines(seed=2)]
    whole = _build(seeds=(0, 1)).fit(data).predict(inputs)
    model = _build(seeds=(0, 1))
    model.task.fit(data)
    assert model.fit_members(data, tmp_path / "run", limit=1) == 1
    again = _build(seeds=(0, 1))
    again.task.fit(data)
    assert again.fit_members(data, tmp_path / "run", limit=1) == 0
    assert again.predict(inputs) == whole
    with pytest.raises(seqlab.errors.SeqlabError):  # another configuration into the same run
        _build(seeds=(0, 1), lr=1e-2).fit(data, run_dir=tmp_path / "run")


def test_batched_backtest_equals_per_window_evaluate() -> None:
    data = _sines(length=48)
    model = _build().fit(data)
    rows = backtest(model, data, windows=3, step=2)["windows"]
    for row, cut in zip(rows, (4, 2, 0)):
        part = [{**ex, "y": ex["y"][:len(ex["y"]) - cut]} for ex in data]
        ref = model.evaluate(part)
        assert row["origin_back"] == cut + H
        assert {k: row[k] for k in ref} == pytest.approx(ref, rel=1e-12)


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="quantiles"):
        _build(loss="pinball")
    with pytest.raises(ConfigError, match="0.5"):
        _build(loss="pinball", quantiles=(0.1, 0.9))
    with pytest.raises(ConfigError, match="encoder"):
        _build(encoder="crf")
    model = _build().fit(_sines())
    with pytest.raises(ConfigError, match="covariates"):
        model.predict([{"y": [1.0] * 10, "static": {"a": 1.0}}])
