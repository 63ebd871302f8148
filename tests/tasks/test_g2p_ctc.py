"""Grapheme-to-phoneme as CTC: symbol strings as repeated one-hot frames (against hand answers),
why the letters are repeated (CTC cannot fit a pronunciation longer than one frame per letter),
and a BiLSTM-CTC that learns a known spelling rule, generalises to unseen words and round-trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import seqlab
from seqlab.data.symbol_frames import as_transcription, symbol_frames
from seqlab.errors import ConfigError, DataError
from seqlab.tasks import make_task
from seqlab.tasks.transcription import TranscriptionTask

# a spelling rule with a digraph (th -> TH), a letter with two phonemes (x -> K S) and a silent e at the end
RULE = {"a": ["AE"], "b": ["B"], "c": ["K"], "x": ["K", "S"], "t": ["T"], "h": ["HH"], "o": ["AA"], "e": ["EH"]}


def pronounce(word: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(word):
        if word[i:i + 2] == "th":
            out.append("TH")
            i += 2
            continue
        if word[i] == "e" and i == len(word) - 1 and i > 0:
            break
        out += RULE[word[i]]
        i += 1
    return out


def words(seed: int, n: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = "".join(rng.choice("abcxthoe") for _ in range(rng.randint(2, 6)))
        out.append({"source": list(w), "target": pronounce(w), "id": w})
    return out


def test_symbol_frames_against_hand_answers() -> None:
    got = symbol_frames(["b", "a", "?"], ["a", "b"], repeat=2)
    want = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1]], dtype=np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(symbol_frames(["a"], ["a"], repeat=1), np.array([[1, 0]], dtype=np.float32))
    with pytest.raises(ConfigError, match="repeat must be >= 1"):
        symbol_frames(["a"], ["a"], repeat=0)
    (ex,) = as_transcription([{"source": ["x", "t"], "target": ["K", "S", "T"], "id": "xt"}])
    assert ex == {"id": "xt", "symbols": ["x", "t"], "text": "K S T"}
    with pytest.raises(DataError, match="'source' and 'target'"):
        as_transcription([{"source": ["a"]}])


def test_repeating_letters_makes_longer_pronunciations_alignable(capsys: pytest.CaptureFixture[str]) -> None:
    data = as_transcription([{"source": list("xx"), "target": ["K", "S", "K", "S"]}, {"source": list("ab"), "target": ["AE", "B"]}])
    for repeat, refused in ((1, True), (2, False)):
        task = make_task("transcription", {"output": "phonemes", "subsampling": 1, "symbol_repeat": repeat}).fit(data)
        assert isinstance(task, TranscriptionTask) and task.input_kind == "symbols" and task.symbols == ["a", "b", "x"]
        enc = task.encode(data)
        assert enc.items[0]["signal"].shape == (2 * repeat, 4)
        assert ("1 of 2 utterance(s)" in capsys.readouterr().err) == refused


def test_bad_symbol_inputs_are_refused_clearly() -> None:
    task = make_task("transcription", {"output": "phonemes"}).fit(as_transcription(words(0, 4)))
    with pytest.raises(DataError, match="'symbols' as a non-empty list of strings"):
        task.encode([{"symbols": [], "text": "AE"}])
    with pytest.raises(DataError, match="'symbols' as a non-empty list of strings"):
        task.encode([{"symbols": [1, 2], "text": "AE"}])
    with pytest.raises(DataError, match="the model was trained on symbols"):
        task.check_input([0.0, 0.1], 0)


def test_a_bilstm_ctc_learns_a_spelling_rule_and_round_trips(tmp_path: Path) -> None:
    """The rule is known and local, so a small BiLSTM-CTC over letters x2 must pronounce unseen
    words exactly (greedy); a saved model loads with the alphabet and predicts the same."""
    train, test = as_transcription(words(0, 300)), words(1, 40)
    seen = {ex["id"] for ex in train}
    test = [ex for ex in test if ex["id"] not in seen]
    model = seqlab.build("lstm", task="transcription", d_model=32, hidden_size=32, num_layers=1, bidirectional=True, dropout=0.0,
                         task_options={"output": "phonemes", "subsampling": 1, "normalize": False, "spec_augment": False},
                         train={"epochs": 25, "batch_size": 16, "lr": 1e-2, "patience": None, "progress": False, "seed": 0})
    model.fit(train)
    metrics = model.evaluate(as_transcription(test))
    assert metrics["wer"] == 0.0, metrics  # phoneme error rate
    preds = model.predict([ex["source"] for ex in test])
    assert [p.split() for p in preds] == [ex["target"] for ex in test]
    model.save(tmp_path / "g2p")
    again = seqlab.load(tmp_path / "g2p")
    assert again.task.symbols == model.task.symbols
    assert again.predict([{"symbols": ex["source"]} for ex in test]) == preds
