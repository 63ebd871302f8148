"""CTC decoding against brute-force enumeration of every alignment of tiny inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError, DataError
from seqlab.inference.ctc import ctc_beam_search, ctc_greedy
from seqlab.inference.ctc_lm import NGramScorer, word_log10
from seqlab.models.classical.ngram import NGramLM, next_log10

TOKENS = ("", "a", "b", " ")  # blank 0, space 3
OPEN = dict(beam=10_000, prune=-1e9, token_min_logp=-1e9)  # no pruning: the search is exact


def posteriors(seed: int, T: int, V: int = 4, sharp: float = 1.0) -> np.ndarray:
    g = np.random.default_rng(seed)
    x = g.normal(size=(T, V)) * sharp
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
    return tuple(out)


def text_of(ids: tuple[int, ...]) -> str:
    return " ".join("".join(TOKENS[i] for i in ids).split())


def brute(lp: np.ndarray, extra=lambda text: 0.0, allowed=lambda text: True) -> dict[str, float]:
    """text -> log of the summed probability of its alignments + extra(text)."""
    acc: dict[str, list[float]] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=len(lp)):
        text = text_of(collapse(path))
        acc.setdefault(text, []).append(sum(lp[t, c] for t, c in enumerate(path)))
    return {k: float(np.logaddexp.reduce(v)) + extra(k) for k, v in acc.items() if allowed(k)}


def test_greedy_matches_per_frame_argmax() -> None:
    lp = np.stack([posteriors(s, 9) for s in range(3)])
    out = ctc_greedy(torch.from_numpy(lp), torch.tensor([9, 5, 0]), blank=0)
    for b, n in enumerate([9, 5, 0]):
        assert out[b] == list(collapse(tuple(lp[b, :n].argmax(-1))))
    assert ctc_greedy(lp[0], blank=0) == [list(collapse(tuple(lp[0].argmax(-1))))]


@pytest.mark.parametrize("seed", range(4))
def test_beam_without_lm_is_exact_when_nothing_is_pruned(seed: int) -> None:
    lp = posteriors(seed, 6)
    truth = sorted(brute(lp).items(), key=lambda kv: -kv[1])
    hyps = ctc_beam_search(lp, tokens=TOKENS, nbest=5, **OPEN)[0]
    assert [h.text for h in hyps] == [t for t, _ in truth[:5]]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in truth[:5]], abs=1e-9)
    assert all(h.acoustic == pytest.approx(h.score, abs=1e-12) for h in hyps)


def word_lm() -> NGramLM:
    return NGramLM(order=2, discount_fallback=(0.5, 1.0, 1.5)).fit_counts([["a", "b"], ["ab", "a"], ["b"], ["a", "a", "b"]])


def lm_text_score(lm: NGramLM, text: str, weight: float, bonus: float) -> float:
    words = text.split()
    log10 = float(lm.score_sentences([words])[0])
    unk = sum(w not in lm.index_ for w in words)
    return weight * (log10 - 10.0 * unk) * math.log(10) + bonus * len(words)


@pytest.mark.parametrize("seed", range(3))
def test_word_lm_fusion_is_exact_when_nothing_is_pruned(seed: int) -> None:
    lm = word_lm()
    lp = posteriors(10 + seed, 6)
    truth = sorted(brute(lp, lambda t: lm_text_score(lm, t, 0.7, 0.3)).items(), key=lambda kv: -kv[1])
    hyps = ctc_beam_search(lp, tokens=TOKENS, lm=lm, lm_weight=0.7, word_bonus=0.3, nbest=4, **OPEN)[0]
    assert [h.text for h in hyps] == [t for t, _ in truth[:4]]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in truth[:4]], abs=1e-9)


def test_char_lm_fusion_is_exact_when_nothing_is_pruned() -> None:
    sents = [list("ab a"), list("b"), list("a ab")]
    lm = NGramLM(order=3, discount_fallback=(0.5, 1.0, 1.5)).fit_counts([[c if c != " " else "|" for c in s] for s in sents])

    def extra(text: str) -> float:
        chars = ["|" if c == " " else c for c in text]
        return 0.4 * float(lm.score_sentences([chars])[0]) * math.log(10) + 0.2 * len(text.split())

    lp = posteriors(21, 6)
    truth = sorted(brute(lp, extra).items(), key=lambda kv: -kv[1])
    hyps = ctc_beam_search(lp, tokens=TOKENS, lm=lm, lm_level="char", lm_weight=0.4, word_bonus=0.2, nbest=3, **OPEN)[0]
    assert [h.text for h in hyps] == [t for t, _ in truth[:3]]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in truth[:3]], abs=1e-9)


def test_hotwords_and_lexicon_against_brute_force() -> None:
    lp = posteriors(5, 6)
    hot = sorted(brute(lp, lambda t: 2.0 * t.split().count("ab")).items(), key=lambda kv: -kv[1])
    hyps = ctc_beam_search(lp, tokens=TOKENS, hotwords=["ab"], hotword_weight=2.0, nbest=3, **OPEN)[0]
    assert [h.text for h in hyps] == [t for t, _ in hot[:3]]
    lex = {"a", "ba"}
    ok = sorted(brute(lp, allowed=lambda t: all(w in lex for w in t.split())).items(), key=lambda kv: -kv[1])
    hyps = ctc_beam_search(lp, tokens=TOKENS, lexicon=lex, nbest=3, **OPEN)[0]
    assert [h.text for h in hyps] == [t for t, _ in ok[:3]]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in ok[:3]], abs=1e-9)


def test_word_log10_matches_the_full_next_word_row() -> None:
    lm = NGramLM(order=3, discount_fallback=(0.5, 1.0, 1.5)).fit_counts([["x", "y", "z"], ["y", "y"], ["z", "x", "y", "x"]])
    for hist in ([], [3], [4, 3], [5, 5, 4], [0]):
        row = next_log10(lm.tables_, hist)
        for w in range(lm.tables_.vocab_size):
            if w != 1:
                assert word_log10(lm.tables_, hist, w) == pytest.approx(row[w], abs=1e-12)


def peaked(labels: list[int], V: int = 4, p: float = 0.98) -> np.ndarray:
    x = np.full((len(labels), V), (1 - p) / (V - 1))
    x[np.arange(len(labels)), labels] = p
    return np.log(x)


def test_word_timestamps_and_batching() -> None:
    # frames: a a _ _ ␣ b a _ b -> "a bab": "a" frames [0, 2), "bab" frames [5, 9)
    lp = peaked([1, 1, 0, 0, 3, 2, 1, 0, 2])
    hyp = ctc_beam_search(lp, tokens=TOKENS, beam=8)[0][0]
    assert hyp.text == "a bab" and hyp.tokens == [1, 3, 2, 1, 2]
    assert [(w.word, w.start, w.end) for w in hyp.words] == [("a", 0, 2), ("bab", 5, 9)]
    batch = np.stack([lp, peaked([2, 0, 0, 0, 0, 0, 0, 1, 1])])
    seq = ctc_beam_search(batch, [9, 9], tokens=TOKENS, beam=8, nbest=2)
    par = ctc_beam_search(batch, [9, 9], tokens=TOKENS, beam=8, nbest=2, processes=2)
    assert seq == par and seq[1][0].text == "ba"
    assert ctc_beam_search(batch, [9, 0], tokens=TOKENS)[1][0].text == ""


def test_blank_skip_and_top_k_keep_the_answer_on_peaked_posteriors() -> None:
    lp = peaked([1, 0, 0, 0, 0, 3, 2, 2, 0, 0, 0, 1], p=0.9995)
    base = ctc_beam_search(lp, tokens=TOKENS)[0][0]
    fast = ctc_beam_search(lp, tokens=TOKENS, blank_skip=0.999, top_k=2)[0][0]
    assert base.text == fast.text == "a ba"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(DataError, match="labels"):
        ctc_beam_search(posteriors(0, 3), tokens=("", "a"))
    with pytest.raises(ConfigError, match="beam"):
        ctc_beam_search(posteriors(0, 3), tokens=TOKENS, beam=0)
    with pytest.raises(DataError, match="lengths"):
        ctc_greedy(posteriors(0, 3), [5])
    with pytest.raises(ConfigError, match="level"):
        NGramScorer(word_lm(), level="phone")


def test_pyctcdecode_end_rule_scores_a_trailing_space_as_an_unknown_word() -> None:
    lm = word_lm()
    lp = peaked([1, 1, 3, 0], p=0.9999)  # "a" then a certain space: no hypothesis without it survives pruning
    plain = ctc_beam_search(lp, tokens=TOKENS, lm=lm, lm_weight=0.7, word_bonus=0.3)[0][0]
    compat = ctc_beam_search(lp, tokens=TOKENS, lm=lm, lm_weight=0.7, word_bonus=0.3, trailing_space_unk=True)[0][0]
    assert plain.text == compat.text == "a"
    assert plain.score == pytest.approx(plain.acoustic + lm_text_score(lm, "a", 0.7, 0.3), abs=1e-9)
    assert compat.score == pytest.approx(compat.acoustic + lm_text_score(lm, "a zzz", 0.7, 0.3), abs=1e-9)


def test_a_lexicon_never_empties_the_beam_when_pruning_leaves_only_refused_labels() -> None:
    lp = peaked([1, 2, 0], p=0.9999)  # frame 1: only "b" survives pruning, and "ab" starts no word
    hyp = ctc_beam_search(lp, tokens=TOKENS, lexicon={"a", "ba"})[0][0]
    assert hyp.text == "a"
