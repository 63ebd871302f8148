"""The n-gram family on the lm task: metrics against a direct recomputation, predictions against
the argmax of the next-token distribution, save/load, and sampling frequencies against the
model's own distribution (fixed seed)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import ConfigError
from seqlab.models.classical.ngram import EOS, NGramLM, NGramModel, next_log10

TEXTS = ["the cat sat on the mat", "a cat ran", "the dog sat", "the cat ran to the dog", "a dog sat on a mat"] * 4


def _model(order: int = 3, tokenizer: str = "word", **config: Any) -> NGramModel:
    model = seqlab.build("ngram", task="lm", task_options={"tokenizer": tokenizer}, order=order, **config)
    assert isinstance(model, NGramModel)
    return model.fit([{"text": t} for t in TEXTS])


def _direct(model: NGramModel, smoothing: str = "kneser_ney") -> NGramLM:
    """The same estimator fitted directly on the token lists, over the model's word ids."""
    vocab = model._vocab()  # noqa: SLF001
    index = {w: i for i, w in enumerate(vocab)}
    sents = [[index[w] for w in model.task.codec.tokens(t)] for t in TEXTS]  # type: ignore[attr-defined]
    return NGramLM(model.config.order, smoothing=smoothing, discount_fallback=(0.5, 1.0, 1.5)).fit_ids(sents, vocab)  # type: ignore[arg-type]


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_evaluate_equals_direct_scoring(smoothing: str) -> None:
    model = _model(3, smoothing=smoothing)
    test = [{"text": "the cat sat on a dog"}, {"text": "zebra ran"}, {"text": ""}]
    task = model.task
    sents = [task.codec.tokens(ex["text"]) for ex in test]  # type: ignore[attr-defined]
    direct = _direct(model, smoothing)
    log10 = direct.score_sentences(sents)
    units = sum(len(s) + 1 for s in sents)
    nll = -float(log10.sum()) * math.log(10)
    m = model.evaluate(test)
    assert m["loss"] == pytest.approx(nll / units)
    assert m["perplexity"] == pytest.approx(math.exp(nll / units))
    # a word spells its characters and a space; <eos> and <unk> count one
    chars = sum(len(w) + 1 if w in direct.index_ else 1 for s in sents for w in s) + len(sents)
    assert m["bits_per_char"] == pytest.approx(nll / chars / math.log(2))
    hits = 0
    for s in sents:  # brute force: the argmax of every next-token distribution
        for i, w in enumerate([*s, "</s>"]):
            dist = direct.next_log10(s[:i])
            hits += direct.vocab_[int(np.argmax(dist))] == (w if w in direct.index_ else "<unk>")
    assert m["accuracy"] == pytest.approx(hits / units)


def test_predict_is_the_most_likely_next_token() -> None:
    model = _model(3)
    prompts = ["the cat", "a", "", "zebra zebra"]
    got = model.predict(prompts)
    direct = _direct(model)
    want = []
    for p in prompts:
        best = direct.vocab_[int(np.argmax(direct.next_log10(p.split())))]
        want.append("<eos>" if best == "</s>" else best)
    assert got == want


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _model(4, tokenizer="char")
    test = [{"text": "the cat sat"}, {"text": "a mat"}]
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    again = seqlab.load(tmp_path / "m")
    assert again.evaluate(test) == model.evaluate(test)
    assert again.predict(["the c", "a "]) == model.predict(["the c", "a "])
    assert again.generate(["the"], 20, seed=3) == model.generate(["the"], 20, seed=3)


def test_only_the_lm_task() -> None:
    with pytest.raises(ConfigError, match="serves"):  # classification it serves too (one LM per class)
        seqlab.build("ngram", task="labeling")
    with pytest.raises(ConfigError, match="order"):
        seqlab.build("ngram", task="lm", order=0)


def test_sampling_frequencies_match_the_distribution() -> None:
    """A bigram character model: empirical next-token frequencies after each token (20k
    samples, fixed seed) against the model's probabilities: total variation < 0.05."""
    model = _model(2, tokenizer="char")
    seq = model.sample_ids([], 20000, 1.0, None, torch.Generator().manual_seed(0))
    contexts = [-1, *seq[:-1]]  # -1: a sentence start (after </s>, the history restarts)
    contexts = [-1 if c == EOS else c for c in contexts]
    pairs = Counter(zip(contexts, seq))
    seen = Counter(contexts)
    checked = 0
    for ctx, n in seen.items():
        if n < 1500:
            continue
        p = 10 ** next_log10(model.tables_, [] if ctx == -1 else [ctx])
        freq = np.zeros_like(p)
        for (a, b), c in pairs.items():
            if a == ctx:
                freq[b] += c / n
        assert 0.5 * np.abs(freq - p).sum() < 0.05, (ctx, freq, p)
        checked += 1
    assert checked >= 3


def test_greedy_generation_follows_predict() -> None:
    model = _model(3)
    out = model.generate(["the cat"], max_new_tokens=1, temperature=0.0)[0]
    assert out == model.predict(["the cat"])[0] or model.predict(["the cat"])[0] == "<eos>"
    assert model.generate(["a"], 10, seed=5) == model.generate(["a"], 10, seed=5)


def test_arpa_export_refuses_whitespace_words(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="whitespace"):
        _model(2, tokenizer="char").to_arpa(str(tmp_path / "c.arpa"))
    model = _model(2)
    model.to_arpa(str(tmp_path / "w.arpa"))
    back = NGramLM.from_arpa(str(tmp_path / "w.arpa"))
    direct = _direct(model)
    np.testing.assert_allclose(back.score_sentences([["the", "cat"]]), direct.score_sentences([["the", "cat"]]), atol=1e-7)
