"""Class-conditional n-gram LMs as a classifier: a posterior worked by hand (Laplace unigrams),
Bayes' rule against per-class NGramLM models fitted separately (brute force over the classes),
normalisation, the prior deciding when every class gives probability 0, save and load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import seqlab
from seqlab.models.classical.ngram import NGramLM
from seqlab.models.classical.ngram_classifier import NGramClassifier, class_posteriors

TRAIN = [{"text": "good good", "label": "pos"}, {"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]


def test_posterior_by_hand_with_add_one_unigrams() -> None:
    """Vocabulary <unk> </s> good bad (|V| = 4 without <s>). pos: good 3, </s> 2 (N = 5);
    neg: bad 1, </s> 1 (N = 2). Prior 2/3, 1/3. x = "good": p_pos(x) = 4/9 * 3/9, p_neg(x) = 1/6 * 2/6."""
    m = seqlab.build("ngram", task="classification", order=1, smoothing="add_k", k=1.0).fit(TRAIN)
    assert isinstance(m, NGramClassifier)
    joint_pos, joint_neg = 2 / 3 * (4 / 9) * (3 / 9), 1 / 3 * (1 / 6) * (2 / 6)
    P = m.predict_proba(["good", "bad bad", ""])
    labels = m.output_labels()
    assert P[0, labels.index("pos")] == pytest.approx(joint_pos / (joint_pos + joint_neg), rel=1e-12)
    jp, jn = 2 / 3 * (1 / 9) ** 2 * (3 / 9), 1 / 3 * (2 / 6) ** 2 * (2 / 6)  # "bad bad"
    assert P[1, labels.index("neg")] == pytest.approx(jn / (jp + jn), rel=1e-12)
    jp, jn = 2 / 3 * 3 / 9, 1 / 3 * 2 / 6  # the empty document: just </s>
    assert P[2, labels.index("pos")] == pytest.approx(jp / (jp + jn), rel=1e-12)
    assert m.predict(["good", "bad bad"]) == ["pos", "neg"]


def _corpus(seed: int, n: int) -> list[dict[str, str]]:
    """Three classes, each a first-order Markov chain over the same six words (fixed chains;
    ``seed`` draws the documents)."""
    chains = np.random.default_rng(1234)
    words = ["a", "b", "c", "d", "e", "f"]
    trans = {lab: chains.dirichlet(np.full(6, 0.5), size=6) for lab in ("x", "y", "z")}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lab = str(rng.choice(["x", "y", "z"], p=[0.5, 0.3, 0.2]))
        w, toks = int(rng.integers(6)), []
        for _ in range(int(rng.integers(1, 9))):
            toks.append(words[w])
            w = int(rng.choice(6, p=trans[lab][w]))
        out.append({"text": " ".join(toks), "label": lab})
    return out


@pytest.mark.parametrize("order,smoothing", [(2, "kneser_ney"), (3, "kneser_ney"), (3, "good_turing"), (2, "add_k")])
def test_bayes_rule_over_separately_fitted_class_lms(order: int, smoothing: str) -> None:
    train, test = _corpus(0, 150), _corpus(1, 40) + [{"text": "a zz b", "label": "x"}]
    m = seqlab.build("ngram", task="classification", order=order, smoothing=smoothing, k=0.5).fit(train)
    P = m.predict_proba([ex["text"] for ex in test])  # type: ignore[attr-defined]
    np.testing.assert_allclose(P.sum(1), 1.0)
    vocab = ["<unk>", "<s>", "</s>", *m.task.codec.fitted_vocab.itos[5:]]  # type: ignore[attr-defined]
    known = set(vocab)
    labels = m.output_labels()
    log_joint = np.zeros((len(test), len(labels)))
    for k, lab in enumerate(labels):
        docs = [ex["text"].split() for ex in train if ex["label"] == lab]
        index = {w: i for i, w in enumerate(vocab)}
        lm = NGramLM(order, smoothing, 0.5, (0.5, 1.0, 1.5)).fit_ids([[index[w] for w in d] for d in docs], vocab)  # type: ignore[arg-type]
        scores = lm.score_sentences([[w if w in known else "<unk>" for w in ex["text"].split()] for ex in test])
        log_joint[:, k] = math.log(len(docs) / len(train)) + scores * math.log(10)
    want = np.exp(log_joint - log_joint.max(1, keepdims=True))
    np.testing.assert_allclose(P, want / want.sum(1, keepdims=True), rtol=1e-9, atol=1e-12)
    metrics = m.evaluate(test)
    nll = -np.mean([math.log(max(P[i, labels.index(ex["label"])], 1e-300)) for i, ex in enumerate(test)])  # as evaluate
    assert metrics["loss"] == pytest.approx(nll)
    assert metrics["accuracy"] == pytest.approx(np.mean([labels[j] == ex["label"] for j, ex in zip(P.argmax(1), test)]))


def test_all_zero_likelihoods_fall_back_to_the_prior() -> None:
    P = class_posteriors(np.log(np.array([0.2, 0.8])), np.array([[-np.inf, -np.inf], [-1.0, -np.inf]]))
    np.testing.assert_allclose(P, [[0.2, 0.8], [1.0, 0.0]])


def test_learns_and_round_trips(tmp_path: Path) -> None:
    train, test = _corpus(2, 300), _corpus(3, 100)
    m = seqlab.build("ngram", task="classification", order=2).fit(train)
    majority = max(np.mean([ex["label"] == lab for ex in test]) for lab in "xyz")
    acc = m.evaluate(test)["accuracy"]
    assert acc > majority + 0.15, (acc, majority)  # the classes differ only in word order statistics
    m.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert isinstance(again, NGramClassifier)
    np.testing.assert_allclose(again.predict_proba([ex["text"] for ex in test]), m.predict_proba([ex["text"] for ex in test]))  # type: ignore[attr-defined]
