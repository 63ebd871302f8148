"""A word classifier's character CNN: the task emits each kept word's characters when the
network asks, so words unseen in training still speak through their spelling."""

from __future__ import annotations

import random
from typing import Any

import pytest

import seqlab
from seqlab.recipes import DataStats, derive

STEMS = ["walk", "talk", "jump", "play", "look", "call", "help", "work", "kick", "pull", "push", "turn",
         "yell", "melt", "hunt", "paint", "climb", "clean", "cook", "fold"]
FILLER = ["the", "a", "dog", "cat", "we", "they", "now", "then"]


def _data(stems: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for stem in stems:
        for suffix, label in (("ing", "ongoing"), ("ed", "done")):
            for _ in range(3):
                words = [rng.choice(FILLER), stem + suffix, rng.choice(FILLER)]
                rng.shuffle(words)
                out.append({"tokens": words, "label": label})
    rng.shuffle(out)
    return out


def _fit(char_filters: int) -> Any:
    model = seqlab.build("gru", task="classification", d_model=16, hidden_size=16, char_filters=char_filters,
                         char_dim=8, pooling="max", dropout=0.0, word_dropout=0.0,
                         train={"max_steps": 300, "batch_size": 8, "lr": 1e-2, "progress": False, "seed": 0})
    model.fit(_data(STEMS[:14], 0))
    return model


def test_characters_carry_unseen_words_and_survive_save(tmp_path) -> None:  # type: ignore[no-untyped-def]
    held_out = _data(STEMS[14:], 1)  # stems never seen in training: their words are <unk> to the embedding
    with_chars, without = _fit(6), _fit(0)
    assert with_chars.task.char_vocab_size > 0 and without.task.char_vocab_size == 0
    batch = with_chars.task.collate(with_chars.task.encode(held_out[:4]).items)
    assert batch["chars"].shape[:2] == batch["input_ids"].shape
    acc_chars = with_chars.evaluate(held_out)["accuracy"]
    acc_plain = without.evaluate(held_out)["accuracy"]
    assert acc_chars >= 0.8, acc_chars  # the suffix decides the label (0.92 measured)
    assert acc_plain <= 0.7, acc_plain  # without characters an unseen word is only <unk> (0.47 measured)
    with_chars.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    inputs = [ex["tokens"] for ex in held_out]
    assert again.predict(inputs) == with_chars.predict(inputs)
    assert again.task.char_vocab_size == with_chars.task.char_vocab_size


def test_text_inputs_get_the_characters_of_their_word_tokens() -> None:
    from seqlab.models.network import EndsConfig
    from seqlab.tasks.classification import ClassificationConfig, ClassificationTask

    task = ClassificationTask(ClassificationConfig(max_len=3, max_word_len=4))
    task.prepare_ends(EndsConfig(char_filters=2))
    task.fit([{"text": "Hello big world", "label": "a"}, {"text": "", "label": "b"}])
    items = task.encode([{"text": "Hello big world again", "label": "a"}, {"text": "", "label": "b"}]).items
    vocab = task.char_vocab
    assert vocab is not None
    # lowercased like the word ids, cut to 4 characters, truncated to the 3 kept words
    assert [[vocab.itos[c] for c in w] for w in items[0]["chars"]] == [list("hell"), list("big"), list("worl")]
    assert len(items[1]["chars"]) == len(items[1]["input_ids"]) == 1  # an empty text keeps one position


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_recipe_pools_recurrent_classifiers_by_mean_and_adds_no_characters(tokenizer: str) -> None:
    from seqlab.models.network import EndsConfig
    from seqlab.tasks.classification import ClassificationConfig, ClassificationTask
    from seqlab.train.contract import TrainConfig

    task = ClassificationTask(ClassificationConfig(tokenizer=tokenizer, vocab_size=300))  # type: ignore[arg-type]
    data = [{"text": "the quick brown fox jumps over lazy dogs", "label": "x"}] * 4
    task.fit(data)
    stats = DataStats(4, 32, task.chars_per_unit(data))
    from seqlab.models.rnn import RNNConfig

    r = derive("gru", task, RNNConfig(), EndsConfig(), TrainConfig(), stats, {})
    assert "char_filters" not in r.ends  # opt-in for classifiers: 0.2 points for 1.5x the time on tweets
    assert r.ends["pooling"] == "mean"
    assert task.chars_per_unit(data) == (33 / 8 if tokenizer == "word" else 1.0)
