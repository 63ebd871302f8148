"""Good-Turing and Katz back-off against oracles: NLTK's SimpleGoodTuringProbDist, a tiny
count table worked through Gale & Sampson's steps, a Katz bigram model worked by hand, a
dict-based Katz reference (``KatzRef``) on random corpora, every context summing to one over the
vocabulary, ARPA out and in, and the kenlm module reading our ARPA files."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import DataError
from seqlab.models.classical.ngram import BOS, NGramLM, count_ngrams, sentence_stream
from seqlab.models.classical.ngram_estimate import (
    katz_discounts,
    katz_tables,
    simple_good_turing,
)

kenlm = pytest.importorskip("kenlm")
nltk_probability = pytest.importorskip("nltk.probability")
FALLBACK = (0.5, 1.0, 1.5)
WORDS = ["a", "b", "c", "d", "e"]
FAST = settings(max_examples=25, deadline=None)
corpus = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=8), min_size=1, max_size=8)


# --- simple Good-Turing ----------------------------------------------------------------------------
def _zipf_sample(seed: int, n: int, types: int) -> list[str]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, types + 1) ** 1.1
    return [f"w{i}" for i in rng.choice(types, size=n, p=p / p.sum())]


@pytest.mark.parametrize("seed,n,types", [(0, 2000, 400), (1, 300, 200), (2, 20000, 3000)])
def test_simple_good_turing_matches_nltk(seed: int, n: int, types: int) -> None:
    fd = nltk_probability.FreqDist(_zipf_sample(seed, n, types))
    bins = types + 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nltk_probability.SimpleGoodTuringProbDist(fd, bins=bins)
    r, n_r = np.unique(list(fd.values()), return_counts=True)
    p, p0 = simple_good_turing(r, n_r)
    by_count = dict(zip(r.tolist(), p.tolist()))
    for word, count in list(fd.items())[:300]:
        assert by_count[count] == pytest.approx(ref.prob(word), rel=1e-10)
    assert p0 / (bins - fd.B()) == pytest.approx(ref.prob("never-seen"), rel=1e-10)
    assert p0 + float((p * n_r).sum()) == pytest.approx(1.0)


def test_simple_good_turing_by_hand() -> None:
    """Counts 1, 2, 3 held by 3, 2, 1 items (N = 10), through Gale & Sampson's steps."""
    p, p0 = simple_good_turing(np.array([1, 2, 3]), np.array([3, 2, 1]))
    assert p0 == pytest.approx(3 / 10)  # N_1 / N
    # Z_r = 2 n_r / (t - q): 2*3/(2-0) = 3, 2*2/(3-1) = 2, 2*1/((2*3-2)-2) = 1
    x = [0.0, math.log(2), math.log(3)]
    y = [math.log(3), math.log(2), 0.0]
    mx, my = sum(x) / 3, sum(y) / 3
    b = sum((a - mx) * (c - my) for a, c in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    # r = 1: Turing 2 * 2/3 = 4/3 vs smoothed 2 * 2^b; sd = sqrt(4 * (2/9) * (1 + 2/3)): close, so
    # the smoothed estimates r* = (r+1) ((r+1)/r)^b are used from r = 1 on
    assert abs(4 / 3 - 2 * 2**b) <= 1.96 * math.sqrt(4 * (2 / 9) * (5 / 3))
    r_star = [(r + 1) * ((r + 1) / r) ** b for r in (1, 2, 3)]
    seen = sum(n * rs / 10 for n, rs in zip((3, 2, 1), r_star))
    want = [(1 - 0.3) * rs / 10 / seen for rs in r_star]
    np.testing.assert_allclose(p, want, rtol=1e-12)


def test_unigram_good_turing_lm_is_nltk_with_the_vocabulary_as_bins() -> None:
    """Order 1: p(w) is the simple Good-Turing probability of w's count (the tokens and </s>), and
    the unseen mass N_1/N goes to the words never seen: here <unk> alone."""
    words = _zipf_sample(3, 3000, 300)
    sents = [words[i : i + 10] for i in range(0, len(words), 10)]
    lm = NGramLM(1, "good_turing").fit_counts(sents)
    fd = nltk_probability.FreqDist([*words, *["</s>"] * len(sents)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nltk_probability.SimpleGoodTuringProbDist(fd, bins=fd.B() + 1)  # + <unk>
    p = 10 ** lm.tables_.logp[0]
    for w, i in lm.index_.items():
        if w != "<s>":
            assert p[i] == pytest.approx(ref.prob("zz-unseen" if w == "<unk>" else w), rel=1e-9), w


# --- Katz back-off ----------------------------------------------------------------------------------
def test_katz_discounts_by_hand() -> None:
    raw = np.array([1] * 20 + [2] * 8 + [3] * 4 + [4] * 2 + [6, 9])  # n_1, n_2, n_3 = 20, 8, 4
    d = katz_discounts(raw, 1, cutoff=2, fallback=None)
    # mu = (k+1) n_3 / n_1 = 0.6; d_1 = (2 n_2 / n_1 - mu) / (1 - mu); d_2 = (3 n_3 / (2 n_2) - mu) / (1 - mu)
    assert d[1] == pytest.approx(0.5)
    assert d[2] == pytest.approx(0.375)
    np.testing.assert_array_equal(d[3:], 1.0)


def test_katz_bigrams_by_hand() -> None:
    """<s> a b </s>, <s> a b </s>, <s> a </s> with d_1 = 0.5, d_2 = 0.75, d_3 = 0.8 at both orders."""
    lm = NGramLM(2, "katz")
    vocab = ["<unk>", "<s>", "</s>", "a", "b"]
    tokens, offset = sentence_stream([[3, 4], [3, 4], [3]])
    d = np.array([1.0, 0.5, 0.75, 0.8])
    t = katz_tables(count_ngrams(tokens, offset, 2, 5), [d, d])
    lm.tables_, lm.vocab_, lm.index_ = t, vocab, {w: i for i, w in enumerate(vocab)}
    uni = {"a": 0.8 * 3 / 8, "b": 0.75 * 2 / 8, "</s>": 0.8 * 3 / 8}
    uni["<unk>"] = 1 - sum(uni.values())  # the only word never seen takes the freed mass
    for h, want in {
        "<s>": {"a": 0.8, "b": 0.2 / (1 - uni["a"]) * uni["b"], "<unk>": 0.2 / (1 - uni["a"]) * uni["<unk>"]},
        "a": {"b": 0.75 * 2 / 3, "</s>": 0.5 / 3, "a": (1 - 0.5 - 0.5 / 3) / (1 - uni["b"] - uni["</s>"]) * uni["a"]},
        "b": {"</s>": 0.75, "b": 0.25 / (1 - uni["</s>"]) * uni["b"]},
    }.items():
        p = 10 ** lm.next_log10([] if h == "<s>" else [h])
        for w, v in want.items():
            assert p[lm.index_[w]] == pytest.approx(v, rel=1e-12), (h, w)
        assert p.sum() == pytest.approx(1.0)


class KatzRef:
    """Katz back-off, one dict per order, recursion per query (Katz 1987), given the discount
    coefficients d[n][r] of each order."""

    def __init__(self, sents: Sequence[Sequence[str]], order: int, d: Sequence[np.ndarray], vocab: list[str]) -> None:
        self.order, self.d, self.vocab = order, d, [w for w in vocab if w != "<s>"]
        self.c: Counter[tuple[str, ...]] = Counter()
        for s in sents:
            padded = ["<s>", *s, "</s>"]
            for end in range(1, len(padded)):
                for n in range(1, min(order, end + 1) + 1):
                    self.c[tuple(padded[end - n + 1 : end + 1])] += 1
        self.n_tokens = sum(v for k, v in self.c.items() if len(k) == 1)
        self.follow: dict[tuple[str, ...], list[str]] = {}
        for g in self.c:
            if len(g) > 1:
                self.follow.setdefault(g[:-1], []).append(g[-1])

    def _discounted(self, h: tuple[str, ...], w: str) -> float:
        r = self.c[(*h, w)]
        if not h:
            return float(self.d[0][r]) * r / self.n_tokens
        return float(self.d[len(h)][r]) * r / sum(self.c[(*h, v)] for v in self.follow[h])

    def p(self, w: str, h: tuple[str, ...]) -> float:
        h = h[-(self.order - 1):] if self.order > 1 else ()
        if not h:
            if self.c[(w,)]:
                return self._discounted((), w)
            unseen = [v for v in self.vocab if not self.c[(v,)]]
            return (1 - sum(self._discounted((), v) for v in self.vocab if self.c[(v,)])) / len(unseen)
        if h not in self.follow:
            return self.p(w, h[1:])
        seen = self.follow[h]
        room = 1 - sum(self.p(v, h[1:]) for v in seen)
        if room <= 1e-12:  # the lower order has no mass for the unseen words: the seen share it all
            return self._discounted(h, w) / sum(self._discounted(h, v) for v in seen)
        if self.c[(*h, w)]:
            return self._discounted(h, w)
        return (1 - sum(self._discounted(h, v) for v in seen)) / room * self.p(w, h[1:])


@FAST
@given(corpus, corpus, st.integers(1, 4), st.sampled_from(["good_turing", "katz"]))
def test_katz_matches_the_dict_reference(sents: list[list[str]], tests: list[list[str]], order: int, smoothing: str) -> None:
    lm = NGramLM(order, smoothing, discount_fallback=FALLBACK, katz_cutoff=3).fit_counts(sents)  # type: ignore[arg-type]
    ref = KatzRef(sents, order, lm.discounts_, lm.vocab_)
    tests = [[w if w in lm.index_ else "<unk>" for w in s] for s in tests]
    for s, got in zip(tests, lm.token_log10(tests)):
        padded = ["<s>", *s, "</s>"]
        want = [ref.p(padded[i], tuple(padded[:i])) for i in range(1, len(padded))]
        np.testing.assert_allclose(10**got, want, rtol=1e-9, atol=1e-15)


@FAST
@given(corpus, st.lists(st.sampled_from([*WORDS, "zz"]), max_size=7), st.integers(1, 5),
       st.sampled_from(["good_turing", "katz"]))
def test_every_context_sums_to_one(sents: list[list[str]], history: list[str], order: int, smoothing: str) -> None:
    lm = NGramLM(order, smoothing, discount_fallback=FALLBACK).fit_counts(sents)  # type: ignore[arg-type]
    for cut in range(len(history) + 1):
        p = 10 ** lm.next_log10(history[:cut])  # (V,) over the whole vocabulary; <s> has 0
        assert p[BOS] == 0 and len(p) == len(lm.vocab_)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_bad_counts_of_counts_are_a_clear_error() -> None:
    with pytest.raises(DataError, match="positive Katz discounts"):
        NGramLM(2, "katz", discount_fallback=None).fit_counts([["a", "b"], ["c", "d"]])


# --- ARPA and kenlm ----------------------------------------------------------------------------------
def _markov_corpus(seed: int, n: int = 300, v: int = 40) -> list[list[str]]:
    """Sentences from a random first-order Markov chain over ``v`` words. Good-Turing gives unseen
    n-grams the mass N_1/N of their order, none when an order has no singletons, so the corpus is
    kept sparse enough (40 words, 300 sentences) to have singletons at every order."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(v)]
    trans = rng.dirichlet(np.full(v, 0.5), size=v)
    out = []
    for _ in range(n):
        w, s = int(rng.integers(v)), []
        for _ in range(int(rng.integers(1, 15))):
            s.append(words[w])
            w = int(rng.choice(v, p=trans[w]))
        out.append(s)
    return out


@pytest.mark.parametrize("order,smoothing", [(2, "good_turing"), (3, "good_turing"), (4, "good_turing"), (3, "katz")])
def test_arpa_round_trip_and_kenlm(tmp_path: Path, order: int, smoothing: str) -> None:
    lm = NGramLM(order, smoothing, discount_fallback=FALLBACK).fit_counts(_markov_corpus(order))  # type: ignore[arg-type]
    path = str(tmp_path / "lm.arpa")
    lm.to_arpa(path)
    back = NGramLM.from_arpa(path)
    for x, y in zip(back.tables_.logp + back.tables_.backoff, lm.tables_.logp + lm.tables_.backoff):
        np.testing.assert_allclose(np.maximum(x, -99), np.maximum(y, -99), atol=1e-8)
    tests = _markov_corpus(99, 60) + [[]]  # in-vocabulary: no unigram is a singleton, so <unk> gets N_1/N = 0
    ours = lm.token_log10(tests)
    assert all(np.isfinite(o).all() for o in ours)  # no context here keeps all its mass
    np.testing.assert_allclose(np.concatenate(back.token_log10(tests)), np.concatenate(ours), atol=1e-7)
    peer = kenlm.Model(path)
    np.testing.assert_allclose(lm.score_sentences(tests), [peer.score(" ".join(s), bos=True, eos=True) for s in tests], atol=1e-4)
    for o, s in zip(ours[:20], tests[:20]):
        np.testing.assert_allclose(o, [p for p, _, _ in peer.full_scores(" ".join(s))], atol=1e-5)


def test_the_ngram_family_fits_good_turing(tmp_path: Path) -> None:
    import seqlab

    train = [{"text": " ".join(s)} for s in _markov_corpus(7, 300, 12)]
    held = [{"text": " ".join(s)} for s in _markov_corpus(7, 350, 12)[300:]]  # the same chain
    for smoothing in ("good_turing", "katz"):
        m = seqlab.build("ngram", task="lm", task_options={"tokenizer": "word"}, order=3, smoothing=smoothing)
        ppl = m.fit(train).evaluate(held)["perplexity"]
        assert 1 < ppl < 13, (smoothing, ppl)  # beats the uniform distribution over 12 words + </s>
        m.save(tmp_path / smoothing)
        assert seqlab.load(tmp_path / smoothing).evaluate(held)["perplexity"] == pytest.approx(ppl)
