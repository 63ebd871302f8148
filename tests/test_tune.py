"""seqlab tune: trials under a step budget scored on the validation split, the best saved as a run
whose own evaluation gives back the recorded score; seeded, so the same search twice is the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqlab
from seqlab.cli import main
from seqlab.data.splits import Dataset, DatasetInfo
from seqlab.errors import ConfigError
from seqlab.tune import parse_space, tune
from tests_support import ner_data

pytest.importorskip("optuna")

SPACE = {"lr": ("log", 1e-3, 3e-2), "d_model": ("choice", (8, 16))}


def _ds() -> Dataset:
    data = ner_data(48)
    return Dataset("toy", "labeling", data[:32], data[32:40], data[40:],
                   DatasetInfo("toy", "labeling", "", "", "", ""))


def test_the_best_trial_is_saved_and_scores_what_was_recorded(tmp_path: Path) -> None:
    ds = _ds()
    res = tune("gru", ds, trials=3, max_steps=8, space=SPACE, out=tmp_path / "run", verbose=False,
               train={"batch_size": 8}, char_filters=0)
    assert len(res.trials) == 3 and res.metric == "f1"
    assert res.best["value"] == max(t["value"] for t in res.trials)
    assert all(t["steps"] == 8 for t in res.trials)  # the step budget held in every trial
    model = seqlab.load(tmp_path / "run")
    assert model.evaluate(ds.valid)["f1"] == pytest.approx(res.best["value"], abs=1e-12)
    assert model.config.d_model == res.best["params"]["d_model"] == model.config.hidden_size
    assert model.train_config.lr == pytest.approx(res.best["params"]["lr"])
    record = json.loads((tmp_path / "run" / "tune.json").read_text())
    assert [t["params"] for t in record["trials"]] == [t["params"] for t in res.trials]
    again = tune("gru", ds, trials=3, max_steps=8, space=SPACE, verbose=False, train={"batch_size": 8},
                 char_filters=0)
    assert [t["params"] for t in again.trials] == [t["params"] for t in res.trials]
    assert [t["value"] for t in again.trials] == [t["value"] for t in res.trials]


def test_bad_requests_are_refused() -> None:
    ds = _ds()
    with pytest.raises(ConfigError, match="both searched and fixed"):
        tune("gru", ds, trials=1, space=SPACE, d_model=8)
    with pytest.raises(ConfigError, match="fitted by its own estimator"):
        tune("hmm", ds, trials=1)
    with pytest.raises(ConfigError, match="expected NAME=log"):
        parse_space(["lr=uniform:0:1"])
    assert parse_space(["lr=log:1e-4:1e-2", "d_model=choice:64,128"]) == {
        "lr": ("log", 1e-4, 1e-2), "d_model": ("choice", (64, 128))}


def test_cli_tune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqlab.data.readers import write_conll

    data = ner_data(48)
    for name, part in (("train", data[:32]), ("valid", data[32:40]), ("test", data[40:])):
        write_conll(tmp_path / f"{name}.conll", part)
    out = tmp_path / "tuned"
    code = main(["tune", str(tmp_path / "train.conll"), "--task", "labeling", "--model", "gru", "--trials", "2",
                 "--budget-steps", "4", "--space", "lr=log:1e-3:1e-2", "--valid", str(tmp_path / "valid.conll"),
                 "--test", str(tmp_path / "test.conll"), "--out", str(out), "--model.d_model", "8",
                 "--train.batch_size", "8"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["trials"] == 2 and "f1" in printed["test"]
    assert main(["evaluate", str(out), "--split", "valid"]) == 0  # an ordinary run
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(printed["best"]["value"], abs=1e-12)
