"""The supervised HMM tagger: hand counts, TnT's suffix model worked by hand, capitalised
unknown words, p(tags | words) against enumeration, and a synthetic NER run."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from seqlab.models.classical.hmm import HMMTagger

SENTS = [["the", "dog", "barks"], ["the", "cat"]]
TAGS = [["D", "N", "V"], ["D", "N"]]


def test_maximum_likelihood_counts_equal_hand_counts() -> None:
    t = HMMTagger(smoothing=0.0).fit(SENTS, TAGS)
    assert t.tags_ == ["D", "N", "V"]
    torch.testing.assert_close(t.log_start_.exp(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    # D -> N twice of twice; N -> V once, N -> end once; V -> end once
    trans = torch.tensor([[0, 1, 0], [0, 0, 0.5], [0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(t.log_trans_.exp(), trans)
    torch.testing.assert_close(t.log_end_.exp(), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    words = t.counts_.words  # type: ignore[union-attr]
    emit = t.log_known_.exp()  # (N, W): p(w | t) = c(w, t) / c(t)
    assert emit[0, words.index("the")] == pytest.approx(1.0)
    assert emit[1, words.index("dog")] == pytest.approx(0.5)
    assert emit[1, words.index("cat")] == pytest.approx(0.5)
    assert emit[2, words.index("barks")] == pytest.approx(1.0)
    assert emit[2, words.index("dog")] == 0.0


def test_additive_smoothing_equals_hand_counts() -> None:
    t = HMMTagger(smoothing=0.5).fit(SENTS, TAGS)
    # row N: c(N, V) = 1, c(N, end) = 1, others 0; denominator 2 + 0.5 * (3 tags + end) = 4
    torch.testing.assert_close(t.log_trans_[1].exp(), torch.tensor([0.125, 0.125, 0.375], dtype=torch.float64))
    assert math.exp(float(t.log_end_[1])) == pytest.approx(0.375)
    # start: 2 sentences, both D: (2 + .5) / (2 + 1.5)
    assert math.exp(float(t.log_start_[0])) == pytest.approx(2.5 / 3.5)


def _suffix_corpus() -> tuple[list[list[str]], list[list[str]]]:
    sents, tags = [], []
    for w in ["walking", "talking", "jumped", "table", "apple", "singing"]:
        sents.append(["the", w])
        tags.append(["D", "V" if w.endswith(("ing", "ed")) else "N"])
    sents += [["the"]] * 10  # "the" is frequent (16 > rare_threshold = 10): no suffix statistics
    tags += [["D"]] * 10
    return sents, tags


def test_unseen_word_gets_successive_abstraction_of_its_suffixes() -> None:
    sents, tags = _suffix_corpus()
    t = HMMTagger(smoothing=0.0, rare_threshold=10).fit(sents, tags)
    counts = t.counts_
    assert counts is not None
    # unconditioned tag probabilities over all 22 tokens: D 16, N 2, V 4 -> theta = sample std
    p = [16 / 22, 2 / 22, 4 / 22]
    mean = sum(p) / 3
    theta = math.sqrt(sum((q - mean) ** 2 for q in p) / 2)
    assert counts.theta == pytest.approx(theta)
    # "running": rare lowercase words (6): D 0, N 2, V 4; suffixes g, ng, ing all V only; "ning" unseen
    dist = [0.0, 2 / 6, 4 / 6]
    for _ in ("g", "ng", "ing"):
        dist = [(hat + theta * d) / (1 + theta) for hat, d in zip([0.0, 0.0, 1.0], dist)]
    torch.testing.assert_close(counts.suffix_dist("running"), torch.tensor(dist, dtype=torch.float64))
    # "beetle" ends like "table" (suffix "le"): N, and "Xyzed" (capitalised, no capitalised rare
    # words) falls back to the lowercase trie: "ed" -> V
    assert t.predict([["the", "running"], ["the", "beetle"], ["the", "Xyzed"]]) == [["D", "V"], ["D", "N"], ["D", "V"]]


def test_capitalised_unknown_words_use_their_own_trie() -> None:
    sents = [["i", "saw", "Marnie"], ["i", "saw", "Ostrava"], ["i", "saw", "kittens"], ["i", "saw", "bridges"]]
    tags = [["P", "V", "B-PER"], ["P", "V", "B-LOC"], ["P", "V", "N"], ["P", "V", "N"]]
    t = HMMTagger(smoothing=0.1, rare_threshold=1).fit(sents, tags)  # only the hapaxes feed the tries
    cap = t.counts_.suffix_dist("Quinnie")  # type: ignore[union-attr]  # shares "nie" with Marnie
    low = t.counts_.suffix_dist("quinnie")  # type: ignore[union-attr]
    i = t.tags_.index
    assert float(cap[i("B-PER")]) > 0.5 and float(cap[i("N")]) == 0.0
    assert float(low[i("B-PER")]) == 0.0 and float(low[i("N")]) == pytest.approx(1.0)
    assert t.predict([["i", "saw", "Quinnie"], ["i", "saw", "quinnie"]]) == [["P", "V", "B-PER"], ["P", "V", "N"]]


def test_conditional_tag_probabilities_sum_to_one_and_viterbi_is_their_argmax() -> None:
    sents, tags = _suffix_corpus()
    t = HMMTagger(smoothing=0.3).fit(sents, tags)
    sent = ["the", "running", "table", "xyz"]  # known and unknown words
    cands = [list(c) for c in itertools.product(t.tags_, repeat=len(sent))]
    logp = t.log_prob_tags([sent] * len(cands), cands)
    assert float(torch.logsumexp(logp, 0)) == pytest.approx(0.0, abs=1e-9)
    assert cands[int(logp.argmax())] == t.predict([sent])[0]
    marg = t.predict_proba([sent])[0]  # (T, N)
    for pos in range(len(sent)):
        for k, tag in enumerate(t.tags_):
            mass = sum(math.exp(float(lp)) for c, lp in zip(cands, logp) if c[pos] == tag)
            assert float(marg[pos, k]) == pytest.approx(mass, abs=1e-9)


def synthetic_ner(n: int, seed: int) -> list[dict[str, list[str]]]:
    """WNUT-like sentences: names (mostly unseen) and places after fixed cues, open-class words by suffix."""
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ran", "tes", "vo", "zu", "bel", "dor", "nik"]

    def name() -> str:
        return "".join(rng.choice(syll) for _ in range(rng.randint(2, 3))).capitalize()

    out = []
    for _ in range(n):
        verb = rng.choice(["walk", "talk", "jump", "play", "call"]) + rng.choice(["ing", "ed", "s"])
        toks, tags = ["@user", verb, "with"], ["O", "O", "O"]
        first, last = name(), name() + rng.choice(["son", "ova", "ski"])
        toks += [first, last] if rng.random() < 0.5 else [first]
        tags += ["B-person", "I-person"] if len(toks) == 5 else ["B-person"]
        toks += ["in", name() + rng.choice(["burg", "ville", "ton"]), "lol"]
        tags += ["O", "B-location", "O"]
        out.append({"tokens": toks, "tags": tags})
    return out


def test_synthetic_ner_tagging_is_accurate_on_unseen_names() -> None:
    import seqlab

    model = seqlab.build("hmm", task="labeling").fit(synthetic_ner(300, 0))
    metrics = model.evaluate(synthetic_ner(100, 1))
    assert metrics["token_accuracy"] >= 0.97
    assert metrics["f1"] >= 0.9
    assert 0 < metrics["loss"] < 0.5


def test_impossible_taggings_have_log_probability_minus_infinity() -> None:
    t = HMMTagger(smoothing=0.0).fit(SENTS, TAGS)
    logp = t.log_prob_tags([["the", "dog"], ["the", "cat"], ["dog", "the"], ["the"], []], [["D", "V"], ["D", "N"], ["N", "D"], ["X"], []])
    assert logp.tolist() == [-math.inf, 0.0, -math.inf, -math.inf, 0.0]
