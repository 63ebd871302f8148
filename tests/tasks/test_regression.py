"""The regression task: metrics pinned to scikit-learn, standardization, errors, the adding
problem end to end through the CLI, save/load, and the probes that read numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

import seqlab
from seqlab.cli import main
from seqlab.data.synthetic import ADDING_CHANCE_MSE, adding
from seqlab.errors import ConfigError, DataError
from seqlab.metrics import regression as rm
from seqlab.probes import padding_audit, value_saliency, value_sensitivity
from seqlab.tasks import make_task

TRAIN = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "progress": False, "patience": None}


@pytest.mark.parametrize("k", [1, 3])
def test_metrics_equal_scikit_learn(k: int) -> None:
    rng = np.random.default_rng(k)
    y = rng.normal(size=(50, k))
    p = y + rng.normal(scale=0.3, size=(50, k))
    pred, ref = (p[:, 0].tolist(), y[:, 0].tolist()) if k == 1 else (p.tolist(), y.tolist())
    assert rm.mae(pred, ref) == pytest.approx(mean_absolute_error(y, p))
    assert rm.mse(pred, ref) == pytest.approx(mean_squared_error(y, p))
    assert rm.r2(pred, ref) == pytest.approx(r2_score(y, p))
    assert rm.rmse(pred, ref) == pytest.approx(np.mean(np.sqrt(((y - p) ** 2).mean(0))))
    assert rm.r2([1.0, 1.0], [1.0, 1.0]) == 1.0 and rm.r2([1.0, 2.0], [1.0, 1.0]) == 0.0  # constant references


def test_standardized_loss_and_original_units() -> None:
    data = [{"values": [1.0, 2.0], "target": 10.0}, {"values": [3.0, 4.0, 5.0], "target": 30.0}]
    task = make_task("regression").fit(data)
    assert task.y_mean.tolist() == [20.0] and task.y_std.tolist() == [10.0]
    batch = task.collate(task.encode(data).items)
    assert batch["values"].shape == (2, 3, 1) and batch["mask"].tolist() == [[True, True, False], [True] * 3]
    exact = torch.tensor([[-1.0], [1.0]])  # the standardized targets
    total, n = task.loss(exact, batch)
    assert float(total) == 0.0 and int(n) == 2
    assert task.decode(exact, batch) == pytest.approx([10.0, 30.0])
    huber = make_task("regression", {"loss": "huber", "huber_delta": 0.5}).fit(data)
    total, _ = huber.loss(torch.tensor([[1.0], [1.0]]), batch)  # errors 2 and 0: 0.5 * (2 - 0.25)
    assert float(total) == pytest.approx(0.5 * (2 - 0.25))


def test_bad_input_is_a_clear_error() -> None:
    task = make_task("regression", {"channels": ("values", "markers")})
    with pytest.raises(DataError, match="'markers'"):
        task.fit([{"values": [1.0], "target": 1.0}])
    with pytest.raises(DataError, match="as many steps"):
        task.fit([{"values": [1.0, 2.0], "markers": [0], "target": 1.0}])
    with pytest.raises(DataError, match="finite"):
        make_task("regression").fit([{"values": [1.0, math.nan], "target": 1.0}])
    task = make_task("regression").fit([{"values": [1.0, 2.0], "target": 1.0}])
    with pytest.raises(DataError, match="a record"):
        task.check_input("1 2 3", 0)
    assert task.parse_input("1, 2 3") == [1.0, 2.0, 3.0]
    assert task.parse_input('{"values": [1]}') == {"values": [1]}
    with pytest.raises(DataError, match="invalid JSON"):  # a broken record is a DataError, not a raw traceback
        task.parse_input('{"values": [1,')
    with pytest.raises(DataError, match="numbers separated"):
        task.parse_input("1 two 3")


def test_adding_problem_end_to_end_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """seqlab train adding --model lstm, evaluate, predict, save/load: a GRU beats always-1 (chance)."""
    out = tmp_path / "run"
    assert main(["train", "adding", "--model", "gru", "--out", str(out), "--train.epochs", "2", "--train.max_steps", "300", "--train.progress",
                 "false", "--model.hidden_size", "32", "--model.d_model", "16"]) == 0
    test = json.loads(capsys.readouterr().out)["test"]
    assert set(test) == {"loss", "mae", "rmse", "r2", "mse"}
    assert test["mse"] < 0.5 * ADDING_CHANCE_MSE  # it reads the markers: far below predicting the mean (0.020 here)
    assert main(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(test)
    record = json.dumps({"values": [0.5, 0.1, 0.2], "markers": [1, 0, 1]})
    assert main(["predict", str(out), "--text", record]) == 0
    row = json.loads(capsys.readouterr().out)
    model = seqlab.load(out)
    assert row["prediction"] == pytest.approx(model.predict([json.loads(record)])[0])


@pytest.mark.parametrize("family", ["lstm", "transformer", "mamba"])
def test_families_serve_regression_and_probes_read_numbers(family: str, tmp_path: Path) -> None:
    data = adding(96, T=12, seed=1)
    model = seqlab.build(family, task="regression", task_options={"channels": ("values", "markers")}, d_model=16,
                         train=TRAIN).fit(data)
    x = {"values": data[0]["values"], "markers": data[0]["markers"]}
    again = seqlab.load(model.save(tmp_path / "m"))
    assert again.predict([x]) == model.predict([x]) and isinstance(model.predict([x])[0], float)
    assert padding_audit(model, [x, data[1]], extra=(1, 3)).passed
    sal = value_saliency(model, x)  # (K, T)
    assert tuple(sal.shape) == (1, 12) and bool((sal >= 0).all())
    # oracle: the saliency is the norm, over the two channels, of finite-difference derivatives
    # taken one step and one channel at a time through value_sensitivity (an exact edit, no autograd)
    eps = 1e-3
    fd = torch.stack([torch.stack([value_sensitivity(model, x, t, eps, feature=f) for f in range(2)], -1)
                      for t in range(12)], 1) / eps  # (K, T, F)
    torch.testing.assert_close(sal, fd.norm(dim=-1).float(), atol=2e-2, rtol=2e-2)


def test_value_probes_refuse_other_tasks() -> None:
    model = seqlab.build("gru", task="classification", d_model=8, hidden_size=8, train=TRAIN)
    model.prepare([{"tokens": ["a"], "label": "x"}])
    with pytest.raises(ConfigError, match="values"):
        value_saliency(model, ["a"])
