"""`seqlab train --model ets | nbeats` and `seqlab predict` from the command line on a tiny
forecasting file: the printed test MAE is the MAE of the method's own forecasts computed by
hand (ETS fitted directly to each history; the saved N-BEATS run's predictions), `predict`
gives the same numbers, and a second N-BEATS training with the same seed is bit-identical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.forecast.ets import ETS

H, M = 4, 4


def _data(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    ys = [10 + i + np.tile([1.0, 2.0, 3.0, 4.0], 8) + 0.05 * np.arange(32) + 0.1 * rng.normal(size=32) for i in range(4)]
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "y": y.tolist(), "m": M}) + "\n" for i, y in enumerate(ys)))
    return path, ys


def _train(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *args: str) -> dict[str, float]:
    capsys.readouterr()
    assert main(["train", str(data), "--task", "forecasting", "--task.horizon", str(H), "--task.season_length", str(M),
                 "--out", str(out), *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (out / "model").is_dir() and (out / "run.json").exists()
    return dict(printed["test"])


def _predict(capsys: pytest.CaptureFixture[str], run: Path, values: np.ndarray) -> np.ndarray:
    capsys.readouterr()
    assert main(["predict", str(run), "--text", " ".join(f"{v!r}" for v in values.tolist())]) == 0
    return np.asarray(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["prediction"])


def test_train_ets_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, ys = _data(tmp_path)
    metrics = _train(capsys, data, tmp_path / "ets", "--model", "ets")
    by_hand = [ETS().fit(y[:-H], M).forecast(H).mean for y in ys]
    assert metrics["mae"] == pytest.approx(np.mean([np.abs(y[-H:] - f) for y, f in zip(ys, by_hand)]), rel=1e-9)
    assert metrics["mae"] < 0.3  # a trend plus a season: ETS gets it
    np.testing.assert_allclose(_predict(capsys, tmp_path / "ets", ys[2][:-H]), by_hand[2], rtol=1e-9)


def test_train_nbeats_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import seqlab

    data, ys = _data(tmp_path)
    args = ["--model", "nbeats", "--model.steps", "40", "--model.width", "16", "--model.blocks", "2",
            "--model.lookbacks", "[8]", "--model.seeds", "[0]", "--model.skip", "true"]
    metrics = _train(capsys, data, tmp_path / "nb", *args)
    model = seqlab.load(tmp_path / "nb" / "model")
    fcs = np.asarray(model.predict([{"id": f"s{i}", "y": y[:-H].tolist(), "m": M} for i, y in enumerate(ys)]))
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(np.stack([y[-H:] for y in ys]) - fcs)), rel=1e-6)
    np.testing.assert_allclose(_predict(capsys, tmp_path / "nb", ys[1][:-H]), fcs[1], rtol=1e-6)
    again = _train(capsys, data, tmp_path / "nb2", *args)
    assert again == metrics
    assert (tmp_path / "nb" / "model" / "model.safetensors").read_bytes() == \
        (tmp_path / "nb2" / "model" / "model.safetensors").read_bytes()
