"""N-gram LMs against oracles: a dict-based modified Kneser-Ney written from Chen & Goodman's
formulas (``kn_ref``), counts ratios, the Jurafsky & Martin bigram example, probabilities that
sum to one over the vocabulary, the kenlm module reading our ARPA files, and sampling
frequencies. Corpora are tiny and random (hypothesis), orders 1..5 and 7."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import kenlm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import DataError
from seqlab.models.classical.ngram import (
    BOS,
    NGramLM,
    count_ngrams,
    counts_of_counts,
    kn_discounts,
    kneser_ney_tables,
    lookup_ref,
    score_stream,
    score_stream_ref,
    sentence_stream,
)

Gram = tuple[str, ...]
FALLBACK = (0.5, 1.0, 1.5)


# --- the readable reference -------------------------------------------------------------------
class KNRef:
    """Interpolated modified Kneser-Ney, one dict per order, per-token loops (Chen & Goodman 1998,
    sections 3-4; Heafield et al. 2013 for lmplz's conventions):

    p(w | h) = max(a(hw) - D(a(hw)), 0) / sum_v a(hv) + gamma(h) p(w | h minus its first word),
    gamma(h) = sum_j D_j N_j(h .) / sum_v a(hv), an unseen h backs off with weight 1, and the
    empty history interpolates with 1/|V| (V: the words, </s> and <unk>). a() is the raw count at
    the highest order and for n-grams starting with <s>, else the number of distinct left words.
    """

    def __init__(self, sents: Sequence[Sequence[str]], order: int, fallback: tuple[float, float, float] | None = FALLBACK) -> None:
        self.order = order
        words = list(dict.fromkeys(w for s in sents for w in s))
        self.vocab = ["<unk>", "<s>", "</s>", *words]
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        raw: Counter[Gram] = Counter()
        for s in sents:
            padded = ["<s>", *s, "</s>"]
            for end in range(1, len(padded)):
                for n in range(1, min(order, end + 1) + 1):
                    raw[tuple(padded[end - n + 1 : end + 1])] += 1
        self.raw = raw
        left: dict[Gram, set[str]] = {}
        for g in raw:
            if len(g) > 1:
                left.setdefault(g[1:], set()).add(g[0])
        self.adj = {g: (c if len(g) == order or g[0] == "<s>" else len(left.get(g, ()))) for g, c in raw.items()}
        self.discounts = [self._discount(n, fallback) for n in range(1, order + 1)]

    def _discount(self, n: int, fallback: tuple[float, float, float] | None) -> list[float]:
        cc = Counter(a for g, a in self.adj.items() if len(g) == n)
        # lmplz tallies the greatest lower-order n-grams in suffix order (by word id, last word
        # first) with their raw count: restate that so the discounts match
        if n < self.order:
            chain: Gram = ()
            for m in range(1, n + 1):
                ext = [g for g in self.adj if len(g) == m and g[1:] == chain]
                if not ext:
                    chain = ()
                    break
                chain = max(ext, key=lambda g: [self.ids[w] for w in reversed(g)])
                if chain[0] == "<s>":
                    chain = ()
                    break
            if chain:
                cc[self.adj[chain]] -= 1
                cc[self.raw[chain]] += 1
        if any(cc[j] == 0 for j in (1, 2, 3)):
            assert fallback is not None
            return [0.0, *fallback]
        y = cc[1] / (cc[1] + 2 * cc[2])
        d = [0.0] + [j - (j + 1) * y * cc[j + 1] / cc[j] for j in (1, 2, 3)]
        if not all(0 <= d[j] <= j for j in (1, 2, 3)):
            assert fallback is not None
            return [0.0, *fallback]
        return d

    def prob(self, w: str, h: Gram) -> float:
        if not h:
            n_v = len(self.vocab) - 1
            uni = {g: a for g, a in self.adj.items() if len(g) == 1}
            total = sum(uni.values())
            gamma = sum(self.discounts[0][min(a, 3)] for a in uni.values() if a > 0) / total
            a = uni.get((w,), 0)
            return max(a - self.discounts[0][min(a, 3)], 0) / total * (a > 0) + gamma / n_v
        n = len(h) + 1
        ext = {g: a for g, a in self.adj.items() if len(g) == n and g[:-1] == h}
        if not ext:
            return self.prob(w, h[1:])
        d = self.discounts[n - 1]
        total = sum(ext.values())
        gamma = sum(d[min(a, 3)] for a in ext.values()) / total
        a = ext.get((*h, w), 0)
        return (a - d[min(a, 3)]) / total * (a > 0) + gamma * self.prob(w, h[1:])

    def history(self, prefix: Sequence[str]) -> Gram:
        h = ("<s>", *(w if w in self.ids else "<unk>" for w in prefix))
        return h[max(0, len(h) - self.order + 1) :] if self.order > 1 else ()

    def sentence_log10(self, s: Sequence[str]) -> float:
        words = [w if w in self.ids else "<unk>" for w in s]
        return sum(math.log10(self.prob(w, self.history(words[:i]))) for i, w in enumerate([*words, "</s>"]))


def additive_ref(sents: Sequence[Sequence[str]], order: int, k: float, s: Sequence[str]) -> float:
    """log10 p(s) for add-k (k = 0: maximum likelihood): (c(hw) + k) / (c(h) + k|V|) with h the
    last order-1 words (or back to <s>); an unseen history gives 1/|V|."""
    vocab = {"<unk>", "</s>", *(w for x in sents for w in x)}
    counts: Counter[Gram] = Counter()  # n-grams
    hist: Counter[Gram] = Counter()  # histories
    for x in sents:
        padded = ["<s>", *x, "</s>"]
        for end in range(1, len(padded)):
            h = tuple(padded[max(0, end - order + 1) : end])
            hist[h] += 1
            counts[(*h, padded[end])] += 1
    words = ["<s>", *(w if w in vocab else "<unk>" for w in s), "</s>"]
    total = 0.0
    for end in range(1, len(words)):
        h = tuple(words[max(0, end - order + 1) : end])
        ch = hist[h]
        p = (counts[(*h, words[end])] + k) / (ch + k * len(vocab)) if ch else 1 / len(vocab)
        total += math.log10(p) if p > 0 else -math.inf
    return total


# --- strategies ---------------------------------------------------------------------------------
WORDS = ["a", "b", "c", "d", "e"]
sentence = st.lists(st.sampled_from(WORDS), min_size=0, max_size=7)
corpus = st.lists(sentence, min_size=1, max_size=8)
queries = st.lists(st.lists(st.sampled_from([*WORDS, "zz"]), max_size=6), min_size=1, max_size=4)
FAST = settings(max_examples=40, deadline=None)


@FAST
@given(corpus, queries, st.integers(1, 5))
def test_kneser_ney_matches_reference(sents: list[list[str]], tests: list[list[str]], order: int) -> None:
    ref = KNRef(sents, order)
    lm = NGramLM(order, discount_fallback=FALLBACK).fit_counts(sents)
    np.testing.assert_allclose(np.concatenate(lm.discounts_), np.concatenate(ref.discounts), atol=1e-12)
    want = [ref.sentence_log10(s) for s in tests + sents]
    np.testing.assert_allclose(lm.score_sentences(tests + sents), want, atol=1e-9)


@FAST
@given(corpus, queries, st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0]))
def test_additive_matches_reference(sents: list[list[str]], tests: list[list[str]], order: int, k: float) -> None:
    lm = NGramLM(order, smoothing="ml" if k == 0 else "add_k", k=k).fit_counts(sents)
    want = [additive_ref(sents, order, k, s) for s in tests]
    np.testing.assert_allclose(lm.score_sentences(tests), want, atol=1e-9)


@FAST
@given(corpus, st.lists(st.sampled_from([*WORDS, "zz"]), max_size=7), st.integers(1, 5),
       st.sampled_from(["kneser_ney", "add_k", "ml"]))
def test_every_context_sums_to_one(sents: list[list[str]], history: list[str], order: int, smoothing: str) -> None:
    lm = NGramLM(order, smoothing=smoothing, k=0.3, discount_fallback=FALLBACK).fit_counts(sents)  # type: ignore[arg-type]
    for cut in range(len(history) + 1):
        p = 10 ** lm.next_log10(history[:cut])  # (V,) <s> has probability 0
        assert p[BOS] == 0 and len(p) == len(lm.vocab_)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_textbook_bigrams_ml_and_add_one() -> None:
    """Jurafsky & Martin, Speech and Language Processing (3rd ed.), section 3.1: the bigram
    maximum likelihood estimates of the 'I am Sam' corpus, and Laplace smoothing by hand."""
    sents = [s.split() for s in ("I am Sam", "Sam I am", "I do not like green eggs and ham")]
    ml = NGramLM(2, smoothing="ml").fit_counts(sents)
    book = {("I", "<s>"): 2 / 3, ("Sam", "<s>"): 1 / 3, ("am", "I"): 2 / 3, ("</s>", "Sam"): 1 / 2,
            ("Sam", "am"): 1 / 2, ("do", "I"): 1 / 3}
    for (w, h), p in book.items():
        dist = 10 ** ml.next_log10([] if h == "<s>" else [h])
        assert dist[ml.vocab_.index(w)] == pytest.approx(p)
    add1 = NGramLM(2, smoothing="add_k", k=1.0).fit_counts(sents)
    n_v = 10 + 2  # ten word types, </s> and <unk>
    assert 10 ** add1.next_log10([])[add1.vocab_.index("I")] == pytest.approx((2 + 1) / (3 + n_v))
    assert 10 ** add1.next_log10(["am"])[add1.vocab_.index("ham")] == pytest.approx(1 / (2 + n_v))


@settings(max_examples=25, deadline=None)
@given(corpus, st.integers(1, 3))
def test_ml_is_the_counts_ratio(sents: list[list[str]], order: int) -> None:
    lm = NGramLM(order, smoothing="ml").fit_counts(sents)
    pairs: Counter[tuple[Gram, str]] = Counter()
    for s in sents:
        padded = ["<s>", *s, "</s>"]
        for i in range(1, len(padded)):
            pairs[(tuple(padded[max(0, i - order + 1) : i]), padded[i])] += 1
    hist = Counter[Gram]()
    for (h, _), c in pairs.items():
        hist[h] += c
    for (h, w), c in pairs.items():
        dist = 10 ** lm.next_log10([x for x in h if x != "<s>"])
        assert dist[lm.vocab_.index(w)] == pytest.approx(c / hist[h])


def test_order_seven_has_no_cap() -> None:
    rng = np.random.default_rng(7)
    sents = [[str(x) for x in rng.integers(0, 4, size=rng.integers(3, 12))] for _ in range(60)]
    ref = KNRef(sents, 7)
    lm = NGramLM(7, discount_fallback=FALLBACK).fit_counts(sents)
    assert lm.tables_.order == 7 and len(lm.tables_.keys[6]) > 0
    tests = sents[:10] + [["0", "1", "9", "2"]]
    np.testing.assert_allclose(lm.score_sentences(tests), [ref.sentence_log10(s) for s in tests], atol=1e-9)
    assert (10 ** lm.next_log10(sents[0])).sum() == pytest.approx(1.0)


def test_unseen_words_give_finite_perplexity() -> None:
    sents = [s.split() for s in ("the cat sat", "the dog sat", "a cat ran", "the cat ran", "a dog sat")] * 3
    lm = NGramLM(3, discount_fallback=FALLBACK).fit_counts(sents)
    unk = lm.score_sentences([["the", "zebra", "sat"], ["quux"]])
    assert np.isfinite(unk).all()
    assert math.isfinite(lm.perplexity([["the", "zebra", "sat"]]))
    assert NGramLM(2, smoothing="ml").fit_counts(sents).score_sentences([["the", "zebra"]])[0] == -np.inf


def test_discount_failure_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="discount_fallback"):
        NGramLM(2).fit_counts([["a", "b"], ["a", "b"]])


# --- fast paths against their readable versions ---------------------------------------------------
@FAST
@given(corpus, queries, st.integers(1, 5))
def test_fast_scoring_equals_reference_scoring(sents: list[list[str]], tests: list[list[str]], order: int) -> None:
    lm = NGramLM(order, discount_fallback=FALLBACK).fit_counts(sents)
    tokens, offset = lm.encode(tests + sents)
    np.testing.assert_array_equal(score_stream(lm.tables_, tokens, offset), score_stream_ref(lm.tables_, tokens, offset))


@FAST
@given(st.lists(st.integers(0, 10**12), max_size=300, unique=True), st.lists(st.integers(-1, 10**12), max_size=300))
def test_hash_index_equals_searchsorted(keys: list[int], misses: list[int]) -> None:
    from seqlab.models.classical.ngram import HashIndex

    k = np.sort(np.asarray(keys, dtype=np.int64))
    q = np.asarray(keys + misses, dtype=np.int64)
    np.testing.assert_array_equal(HashIndex(k).find(q), lookup_ref(k, q))


def test_counts_follow_lmplz_conventions() -> None:
    """<s> a b </s> with order 3: '<s> a' keeps its raw count, 'a' counts distinct left words."""
    tokens, offset = sentence_stream([[3, 4], [3, 4], [4]])
    c = count_ngrams(tokens, offset, 3, 5)
    assert c.adjusted[0].tolist() == [0, 0, 1, 1, 2]  # <unk> <s> </s>=1 (b) a=1 (<s>) b=2 (<s>, a)
    bigram = {int(k): int(a) for k, a in zip(c.keys[1], c.adjusted[1])}
    assert bigram[1 * 5 + 3] == 2  # '<s> a' starts with <s>: raw count 2
    stats = counts_of_counts(c)
    assert len(stats) == 3 and all(s[0] == 0 for s in stats)
    assert kn_discounts(np.array([0, 3, 2, 1, 1]), 1, None)[1] == pytest.approx(1 - 2 * 3 / 7 * 2 / 3)


def test_kneser_ney_tables_backoff_is_gamma() -> None:
    sents = [["a", "b"], ["a", "c"], ["b", "a"]]
    lm = NGramLM(2, discount_fallback=FALLBACK).fit_counts(sents)
    ref = KNRef(sents, 2)
    tokens, offset = sentence_stream([[3]])
    c = count_ngrams(*sentence_stream([[3, 4], [3, 5], [4, 3]]), 2, 6)
    t = kneser_ney_tables(c, [np.array(d) for d in ref.discounts])
    # 'a' is followed by b and c (adjusted count 1 each): gamma(a) = 2 D1 / 2
    assert t.backoff[0][3] == pytest.approx(math.log10(ref.discounts[1][1]))
    np.testing.assert_allclose(t.logp[1], lm.tables_.logp[1])
    assert tokens.tolist() == [1, 3, 2] and offset.tolist() == [0, 1, 2]


# --- ARPA ------------------------------------------------------------------------------------------
def _markov_corpus(seed: int, n: int = 300) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    trans = rng.dirichlet(np.full(12, 0.3), size=12)
    out = []
    for _ in range(n):
        w, s = int(rng.integers(12)), []
        for _ in range(int(rng.integers(1, 15))):
            s.append(words[w])
            w = int(rng.choice(12, p=trans[w]))
        out.append(s)
    return out


@pytest.mark.parametrize("order,smoothing", [(2, "kneser_ney"), (3, "kneser_ney"), (5, "kneser_ney"), (3, "add_k")])
def test_arpa_export_scores_like_kenlm(tmp_path: Path, order: int, smoothing: str) -> None:
    sents = _markov_corpus(order)
    lm = NGramLM(order, smoothing=smoothing, k=0.1, discount_fallback=FALLBACK).fit_counts(sents)  # type: ignore[arg-type]
    lm.to_arpa(str(tmp_path / "lm.arpa"))
    peer = kenlm.Model(str(tmp_path / "lm.arpa"))
    tests = _markov_corpus(99, 80) + [["w1", "zebra", "w2"], []]
    want = [peer.score(" ".join(s), bos=True, eos=True) for s in tests]
    np.testing.assert_allclose(lm.score_sentences(tests), want, atol=1e-4)
    full = [[p for p, _, _ in peer.full_scores(" ".join(s))] for s in tests[:20]]
    for ours, theirs in zip(lm.token_log10(tests[:20]), full):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("order", [1, 3])
def test_arpa_round_trip(tmp_path: Path, order: int) -> None:
    lm = NGramLM(order, discount_fallback=FALLBACK).fit_counts(_markov_corpus(1, 120))
    lm.to_arpa(str(tmp_path / "lm.arpa"))
    back = NGramLM.from_arpa(str(tmp_path / "lm.arpa"))
    assert back.vocab_ == lm.vocab_
    for a, b in zip(back.tables_.keys, lm.tables_.keys):
        np.testing.assert_array_equal(a, b)
    for x, y in zip(back.tables_.logp + back.tables_.backoff, lm.tables_.logp + lm.tables_.backoff):
        np.testing.assert_allclose(x, y, atol=1e-8)
    tests = _markov_corpus(5, 30)
    np.testing.assert_allclose(back.score_sentences(tests), lm.score_sentences(tests), atol=1e-7)


GOOD = "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1\t<unk>\t0\n0\t<s>\t-0.3\n-0.5\t</s>\t0\n-0.4\ta\t-0.2\n\n\\2-grams:\n-0.2\t<s> a\n-0.1\ta </s>\n\n\\end\\\n"


@pytest.mark.parametrize("text,line,what", [
    (GOOD.replace("\\data\\", "data"), 1, "\\data\\"),
    (GOOD.replace("ngram 2=2", "ngram 2=x"), 3, "ngram 2="),
    (GOOD.replace("-0.4\ta\t-0.2", "-0.4"), 9, "1-gram line"),
    (GOOD.replace("-0.2\t<s> a", "oops\t<s> a"), 12, "log10 probability"),
    (GOOD.replace("-0.1\ta </s>", "-0.1\tb </s>"), 13, "unigram vocabulary"),
    (GOOD.replace("ngram 2=2", "ngram 2=3"), 14, "3 2-gram lines"),
    (GOOD.replace("\\end\\\n", ""), None, "\\end\\"),
])
def test_malformed_arpa_names_file_and_line(tmp_path: Path, text: str, line: int | None, what: str) -> None:
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        NGramLM.from_arpa(str(path))
    assert str(path) in str(e.value) and what in str(e.value)
    if line is not None:
        assert e.value.line == line


def test_good_arpa_loads(tmp_path: Path) -> None:
    (tmp_path / "ok.arpa").write_text(GOOD)
    lm = NGramLM.from_arpa(str(tmp_path / "ok.arpa"))
    # p(a | <s>) listed; p(</s> | a) listed: -0.2 + -0.1
    assert lm.score_sentences([["a"]])[0] == pytest.approx(-0.3)
    # p(a | a) backs off: bo(a) + p(a); then p(</s> | a) = -0.1
    assert lm.score_sentences([["a", "a"]])[0] == pytest.approx(-0.2 + (-0.2 - 0.4) - 0.1)


@FAST
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=200), st.sampled_from([2**41, 2**33, 2**20]))
def test_unique_paths_equal_numpy(values: list[int], space: int) -> None:
    """Counting uses a bincount (small key spaces), an int32 sort or an int64 sort."""
    from seqlab.models.classical.ngram_estimate import _unique

    x = np.asarray(values, dtype=np.int64) % space
    want = np.unique(x, return_inverse=True, return_counts=True)
    for got, ref in zip(_unique(x, space), want):
        np.testing.assert_array_equal(got, ref.reshape(-1))


@pytest.mark.parametrize("order", [2, 4])
def test_sorted_and_hashed_paths_equal_dense_paths(monkeypatch: pytest.MonkeyPatch, order: int) -> None:
    """Small key spaces count with a bincount and look up through a dense array; large ones
    sort and hash. Force the large-space paths on the same corpus: same tables, same scores."""
    import seqlab.models.classical.ngram_estimate as estimate
    import seqlab.models.classical.ngram_tables as tables

    sents = _markov_corpus(11, 200)
    tests = _markov_corpus(12, 50) + [["w3", "zebra", "w4"]]
    dense = NGramLM(order, discount_fallback=FALLBACK).fit_counts(sents)
    monkeypatch.setattr(estimate, "DENSE_LIMIT", 0)  # counting sorts
    monkeypatch.setattr(tables, "DENSE_LIMIT", 0)  # lookups hash
    hashed = NGramLM(order, discount_fallback=FALLBACK).fit_counts(sents)
    for name in ("keys", "logp", "backoff"):
        for a, b in zip(getattr(dense.tables_, name), getattr(hashed.tables_, name)):
            np.testing.assert_array_equal(a, b)
    tokens, offset = hashed.encode(tests)
    fast = score_stream(hashed.tables_, tokens, offset)
    assert all(type(i).__name__ == "HashIndex" for i in hashed.tables_.__dict__["_index"].values())
    np.testing.assert_array_equal(fast, score_stream_ref(hashed.tables_, tokens, offset))
    np.testing.assert_array_equal(hashed.score_sentences(tests), dense.score_sentences(tests))
