"""Default recipes (seqlab.recipes): the rules, user settings never overridden, the recipe printed,
saved and reloaded, and ``recipe=False`` keeping the plain defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqlab
from seqlab.models.network import EndsConfig
from seqlab.models.rnn import RNNConfig
from seqlab.models.transformer import TransformerConfig
from seqlab.recipes import MAX_EPOCHS, MIN_STEPS, DataStats, derive
from seqlab.tasks import make_task
from seqlab.train.trainer import TrainConfig
from tests_support import ner_data

NONE: dict[str, set[str]] = {}


def test_a_small_word_tagging_set_gets_the_small_data_recipe() -> None:
    task = make_task("labeling")
    r = derive("lstm", task, RNNConfig(), EndsConfig(), TrainConfig(), DataStats(1000, 20_000, 4.2), NONE)
    assert r.model == {"bidirectional": True, "dropout": 0.3}
    assert r.ends == {"word_dropout": 0.1, "char_filters": 50}
    per_epoch = -(-1000 // 32)
    assert r.train == {"lr": 3e-3, "epochs": min(MAX_EPOCHS, -(-MIN_STEPS // per_epoch)), "patience": 8}
    assert set(r.notes) == {*r.model, *r.ends, *r.train}  # every choice has its reason


def test_large_data_keeps_the_family_defaults_and_a_causal_task_stays_causal() -> None:
    lm = make_task("lm")
    r = derive("gru", lm, RNNConfig(), EndsConfig(), TrainConfig(), DataStats(200_000, 5_000_000), NONE)
    assert "bidirectional" not in r.model and "dropout" not in r.model and "epochs" not in r.train
    assert "patience" not in r.train and r.train == {"lr": 3e-3}


def test_character_units_get_no_character_cnn_and_transformers_get_warmup() -> None:
    task = make_task("labeling")
    r = derive("transformer", task, TransformerConfig(), EndsConfig(), TrainConfig(),
               DataStats(2000, 30_000, chars_per_unit=1.0), NONE)
    assert "char_filters" not in r.ends and "bidirectional" not in r.model
    total = r.train["epochs"] * -(-2000 // 32)
    assert r.train["warmup_steps"] == min(400, total // 20) and "lr" not in r.train  # 1e-3 is already the default


def test_what_the_user_set_is_never_changed() -> None:
    task = make_task("labeling")
    explicit = {"model": {"dropout", "bidirectional"}, "ends": {"char_filters"}, "train": {"epochs", "lr"}}
    cfg = RNNConfig(dropout=0.05, bidirectional=False)
    r = derive("lstm", task, cfg, EndsConfig(char_filters=0), TrainConfig(epochs=2, lr=1e-2),
               DataStats(500, 5_000, 5.0), explicit)
    assert not {"dropout", "bidirectional"} & set(r.model)
    assert "char_filters" not in r.ends and not {"epochs", "lr"} & set(r.train)
    # a step budget is the user's too: no epoch scaling
    r2 = derive("lstm", task, RNNConfig(), EndsConfig(), TrainConfig(max_steps=50), DataStats(500, 5_000, 5.0),
                {"train": {"max_steps"}})
    assert "epochs" not in r2.train


def test_the_recipe_is_applied_printed_saved_and_reloaded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ner_data(40)
    model = seqlab.build("gru", task="labeling", train={"epochs": 1, "batch_size": 8}, d_model=8, hidden_size=8)
    model.fit(data[:30], data[30:])
    err = capsys.readouterr().err
    assert "[seqlab] recipe for gru on labeling (30 examples" in err and "bidirectional=True" in err
    assert model.config.bidirectional and model.config.dropout == 0.3 and model.ends.char_filters == 50
    assert model.train_config.epochs == 1 and model.config.d_model == 8  # given: kept
    model.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["recipe"]["model"] == {"bidirectional": True, "dropout": 0.3}
    assert saved["recipe"]["data"]["examples"] == 30
    again = seqlab.load(tmp_path / "m")
    assert again.config == model.config and again.ends == model.ends and again.recipe_ == saved["recipe"]
    assert again.predict([data[0]["tokens"]]) == model.predict([data[0]["tokens"]])


def test_recipe_false_keeps_the_plain_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    data = ner_data(20)
    model = seqlab.build("gru", task="labeling", train={"epochs": 1, "batch_size": 8}, d_model=8, hidden_size=8,
                         recipe=False)
    model.fit(data)
    assert "recipe" not in capsys.readouterr().err
    assert model.config == RNNConfig(cell="gru", d_model=8, hidden_size=8) and model.ends == EndsConfig()
    assert model.recipe_ is None


def test_an_lm_counts_its_blocks_not_its_texts() -> None:
    """42 long texts are 8,000 blocks: steps per epoch and patience follow the blocks (the old rule
    counted texts, so a whole book got 60 epochs and the small-data patience)."""
    lm = make_task("lm")
    r = derive("lstm", lm, RNNConfig(), EndsConfig(), TrainConfig(), DataStats(42, 900_000, 1.0, items=8000), NONE)
    per_epoch = -(-8000 // 32)
    assert r.train["epochs"] == -(-MIN_STEPS // per_epoch) == 12 and r.train["patience"] == 5
    texts = [{"text": " ".join(f"w{i % 7}" for i in range(400))} for _ in range(3)]
    model = seqlab.build("gru", task="lm", task_options={"block_size": 16}, train={"epochs": 1, "progress": False},
                         d_model=8, hidden_size=8)
    model.fit(texts)
    data = model.recipe_["data"]
    assert data["examples"] == 3 and data["items"] == len(model.task.encode(texts).items) > 3
