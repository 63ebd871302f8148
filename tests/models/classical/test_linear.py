"""The linear (bag-of-n-grams logistic regression) family: features against their definition,
the objective's gradient against finite differences, the fit against scikit-learn's
LogisticRegression on the same features (L2: lbfgs; L1: saga), NB log-count ratios against a
hand count and the two-class NB-LR against scikit-learn on the scaled features."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import seqlab
from seqlab.errors import ConfigError
from seqlab.models.classical.linear import (
    LogisticProblem,
    best_intercept,
    log_count_ratios,
    softmax_rows,
)
from seqlab.models.classical.linear_features import (
    NgramFeatureConfig,
    NgramFeaturizer,
    document_ngrams,
)

sklearn = pytest.importorskip("sklearn.linear_model")


def _sk_lr(C: float, penalty: str, solver: str, tol: float, max_iter: int) -> object:
    """scikit-learn's LogisticRegression with an L1 or L2 penalty (``penalty=`` is deprecated from 1.8)."""
    import sklearn as sk

    major, minor = (int(v) for v in sk.__version__.split(".")[:2])
    how = {"l1_ratio": 1.0 if penalty == "l1" else 0.0} if (major, minor) >= (1, 8) else {"penalty": penalty}
    return sklearn.LogisticRegression(C=C, solver=solver, tol=tol, max_iter=max_iter, **how)


# --- features -------------------------------------------------------------------------------------
def test_document_ngrams_by_hand() -> None:
    c = NgramFeatureConfig(word_ngrams=(1, 2), char_ngrams=(3, 3))
    got = document_ngrams(["ab", "c"], c)
    assert got == ["w:ab", "w:c", "w:ab c", "c: ab", "c:ab ", "c:b c", "c: c "]
    assert document_ngrams(["x"], NgramFeatureConfig(word_ngrams=(2, 3), char_ngrams=())) == []


@pytest.mark.parametrize("tf", ["binary", "count", "sublinear"])
@pytest.mark.parametrize("normalize", [False, True])
def test_featurizer_matches_a_brute_force_count(tf: str, normalize: bool) -> None:
    docs = [["a", "b", "a"], ["b", "c"], ["a", "a", "a", "d"], []]
    c = NgramFeatureConfig(word_ngrams=(1, 2), char_ngrams=(1, 2), tf=tf, normalize=normalize, min_count=1)  # type: ignore[arg-type]
    f = NgramFeaturizer(c).fit(docs[:3])
    X = f.transform(docs).toarray()
    names = f.names()
    assert names is not None and len(names) == X.shape[1]
    for i, d in enumerate(docs):
        counts = Counter(document_ngrams(d, c))
        want = np.array([{"binary": 1.0, "count": float(counts[g]), "sublinear": 1 + math.log(counts[g])}[tf]
                         if counts[g] else 0.0 for g in names])
        if normalize and want.any():
            want /= np.linalg.norm(want)
        np.testing.assert_allclose(X[i], want, rtol=1e-12)


def test_min_count_and_hashing() -> None:
    docs = [["a", "b"], ["a"], ["c"]]
    f = NgramFeaturizer(NgramFeatureConfig(word_ngrams=(1, 1), char_ngrams=(), min_count=2)).fit(docs)
    assert f.names() == ["w:a"]
    assert NgramFeaturizer(NgramFeatureConfig(word_ngrams=(1, 1), char_ngrams=())).fit(docs).names() == ["w:a"]  # default 2
    assert NgramFeaturizer(NgramFeatureConfig(word_ngrams=(1, 1), char_ngrams=(), min_count=1)).fit(docs).names() == ["w:a", "w:b", "w:c"]
    h = NgramFeaturizer(NgramFeatureConfig(word_ngrams=(1, 1), char_ngrams=(), n_buckets=7, normalize=False)).fit(docs)
    X = h.transform([["a", "b", "a"]]).toarray()[0]
    want = np.zeros(7)
    for g in ("w:a", "w:b"):
        want[zlib.crc32(g.encode()) % 7] += 1.0
    np.testing.assert_allclose(X, want)
    with pytest.raises(ConfigError, match="min_count"):
        NgramFeatureConfig(n_buckets=8, min_count=2)
    with pytest.raises(ConfigError, match="word_ngrams"):
        NgramFeatureConfig(word_ngrams=(2, 1))


# --- the objective ----------------------------------------------------------------------------------
def _problem_data(seed: int, n: int = 60, f: int = 25, k: int = 3) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, f, density=0.3, random_state=seed, format="csr") * 2.0
    W = rng.normal(size=(f, k))
    y = (np.asarray(X @ W) + rng.gumbel(size=(n, k))).argmax(1)
    return X, y


def test_best_intercept_zeroes_its_gradient() -> None:
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(40, 4))
    counts = np.array([5.0, 20.0, 10.0, 5.0])
    b = best_intercept(Z, counts, np.zeros(4))
    P, _ = softmax_rows(Z + b)
    np.testing.assert_allclose(P.sum(0), counts, atol=1e-8)
    assert abs(b.mean()) < 1e-12


@pytest.mark.parametrize("nb", [False, True])
def test_gradient_matches_finite_differences(nb: bool) -> None:
    X, y = _problem_data(1)
    R = log_count_ratios(X, y, 3, 1.0) if nb else None
    prob = LogisticProblem(X, y, 3, c2=0.7, ratios=R)
    w = np.random.default_rng(2).normal(size=X.shape[1] * 3) * 0.3
    f, g = prob(w)
    eps = 1e-6
    for j in range(0, len(w), 7):
        e = np.zeros_like(w)
        e[j] = eps
        num = (prob(w + e)[0] - prob(w - e)[0]) / (2 * eps)
        assert num == pytest.approx(g[j], rel=1e-5, abs=1e-6)
    # the profiled value is the joint minimum over b: no b does better
    Z = np.asarray(X @ prob.effective(w))
    rows = np.arange(len(y))
    for shift in (np.array([0.1, 0, 0]), np.array([0, -0.2, 0.1])):
        Zb = Z + prob.b + shift
        f_other = softmax_rows(Zb)[1].sum() - Zb[rows, y].sum() + 0.35 * float(w @ w)
        assert f <= f_other + 1e-12


def _fit_seqlab(X: sp.csr_matrix, y: np.ndarray, k: int, C: float, penalty: str) -> tuple[np.ndarray, np.ndarray, float]:
    from seqlab.models.classical.optim import minimize_lbfgs

    l1 = penalty == "l1"
    prob = LogisticProblem(X, y, k, 0.0 if l1 else 1.0 / C)
    res = minimize_lbfgs(prob, np.zeros(X.shape[1] * k), c1=1.0 / C if l1 else 0.0, m=10, max_iterations=2000,
                         epsilon=1e-10, past=0)
    prob(res.x)
    return res.x.reshape(-1, k), prob.b.copy(), res.fun


def _sklearn_objective(X: sp.csr_matrix, y: np.ndarray, W: np.ndarray, b: np.ndarray, C: float, penalty: str) -> float:
    """scikit-learn's objective C * sum(loss) + penalty, computed from the weights."""
    Z = np.asarray(X @ W) + b
    _, lse = softmax_rows(Z)
    nll = float(lse.sum() - Z[np.arange(len(y)), y].sum())
    pen = float(np.abs(W).sum()) if penalty == "l1" else 0.5 * float((W * W).sum())
    return C * nll + pen


@pytest.mark.parametrize("C", [0.3, 3.0])
def test_l2_matches_sklearn_lbfgs(C: float) -> None:
    X, y = _problem_data(3)
    W, b, fun = _fit_seqlab(X, y, 3, C, "l2")
    ref = _sk_lr(C, "l2", "lbfgs", 1e-12, 10000).fit(X, y)  # type: ignore[attr-defined]
    Ws, bs = ref.coef_.T, ref.intercept_ - ref.intercept_.mean()
    np.testing.assert_allclose(W, Ws, atol=1e-5)
    np.testing.assert_allclose(b, bs, atol=1e-5)
    ours, theirs = _sklearn_objective(X, y, W, b, C, "l2"), _sklearn_objective(X, y, Ws, bs, C, "l2")
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert fun * C == pytest.approx(ours, rel=1e-9)  # the optimiser's value is that objective / C


def test_l1_matches_sklearn_saga() -> None:
    X, y = _problem_data(4)
    C = 2.0
    W, b, _ = _fit_seqlab(X, y, 3, C, "l1")
    ref = _sk_lr(C, "l1", "saga", 1e-10, 100000).fit(X, y)  # type: ignore[attr-defined]
    Ws, bs = ref.coef_.T, ref.intercept_ - ref.intercept_.mean()
    ours, theirs = _sklearn_objective(X, y, W, b, C, "l1"), _sklearn_objective(X, y, Ws, bs, C, "l1")
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert ours <= theirs * (1 + 1e-9)
    np.testing.assert_allclose(W, Ws, atol=2e-3)
    assert (W == 0).sum() > 0 and ((W == 0) == (np.abs(Ws) < 1e-6)).mean() > 0.95  # the same sparsity


# --- NB log-count ratios ------------------------------------------------------------------------------
def test_log_count_ratios_by_hand() -> None:
    X = sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]]))
    y = np.array([0, 0, 1])
    R = log_count_ratios(X, y, 2, alpha=1.0)
    p0, q0 = np.array([1 + 2, 1 + 1]), np.array([1 + 0, 1 + 1])  # binarised counts: class 0 vs the rest
    r0 = np.log((p0 / p0.sum()) / (q0 / q0.sum()))
    np.testing.assert_allclose(R[:, 0], r0)
    np.testing.assert_allclose(R[:, 1], -r0)  # two classes: r_1 = -r_0


def test_two_class_nb_lr_is_sklearn_lr_on_scaled_features() -> None:
    """With two classes, z_1 - z_0 = (r * x) . (w_1 + w_0) + b_1 - b_0; the L2 penalty on (w_0, w_1)
    at its best split is ||w_1 + w_0||^2 / 2, so it is binary LR on r * x with C doubled."""
    X, y3 = _problem_data(5, k=3)
    y = (y3 == 0).astype(np.int64)
    C = 1.5
    R = log_count_ratios(X, y, 2, 1.0)
    from seqlab.models.classical.optim import minimize_lbfgs

    prob = LogisticProblem(X, y, 2, 1.0 / C, ratios=R)
    res = minimize_lbfgs(prob, np.zeros(X.shape[1] * 2), m=10, max_iterations=2000, epsilon=1e-10, past=0)
    prob(res.x)
    We = prob.effective(res.x)
    ours = np.asarray(X @ (We[:, 1] - We[:, 0])) + prob.b[1] - prob.b[0]
    Xs = sp.csr_matrix(X.multiply(R[:, 1][None, :]))
    ref = _sk_lr(2 * C, "l2", "lbfgs", 1e-12, 10000).fit(Xs, y)  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, ref.decision_function(Xs), atol=1e-5)


# --- the family ----------------------------------------------------------------------------------------
def _toy(seed: int, n: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    pos, neg, filler = ["good", "great", "fine"], ["bad", "awful", "poor"], ["the", "a", "movie", "plot", "was", "is"]
    out = []
    for _ in range(n):
        lab = int(rng.integers(3))
        words = [str(w) for w in rng.choice(filler, size=4)]
        if lab < 2:
            words.insert(int(rng.integers(5)), str(rng.choice(pos if lab == 0 else neg)))
        out.append({"text": " ".join(words), "label": ["pos", "neg", "neutral"][lab]})
    return out


def test_fit_chooses_C_on_valid_and_predicts_the_rule(tmp_path: Path) -> None:
    train, valid, test = _toy(0, 150), _toy(1, 40), _toy(2, 60)
    m = seqlab.build("linear", task="classification", char_ngrams=())
    m.fit(train, valid=valid)
    assert m.C_ in m.config.c_grid and len(m.selection_) == len(m.config.c_grid)  # type: ignore[attr-defined]
    best = max(m.selection_, key=lambda r: (r["accuracy"], -r["log_loss"]))  # type: ignore[attr-defined]
    assert best["C"] == m.C_  # type: ignore[attr-defined]
    assert m.evaluate(test)["accuracy"] > 0.9
    assert m.predict(["a great movie", "the plot was awful", "the movie"]) == ["pos", "neg", "neutral"]


@pytest.mark.parametrize("settings", [{"nb": True, "penalty": "l1", "C": 3.0}, {"n_buckets": 512, "tf": "sublinear"}])
def test_save_load_round_trip(settings: dict, tmp_path: Path) -> None:
    train, test = _toy(3, 120), _toy(4, 30)
    m = seqlab.build("linear", task="classification", **settings).fit(train)
    P = m.predict_proba([ex["text"] for ex in test])  # type: ignore[attr-defined]
    np.testing.assert_allclose(P.sum(1), 1.0)
    m.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba([ex["text"] for ex in test]), P)  # type: ignore[attr-defined]
    assert again.evaluate(test) == pytest.approx(m.evaluate(test))
    if settings.get("penalty") == "l1":
        assert (m.weights_ == 0).mean() > 0.5  # type: ignore[attr-defined]


def test_without_valid_a_stratified_tenth_chooses_C_then_all_of_train_fits() -> None:
    train = _toy(5, 200)
    m = seqlab.build("linear", task="classification", char_ngrams=(), c_grid=(0.5, 5.0)).fit(train)
    assert [r["C"] for r in m.selection_] == [0.5, 5.0] and m.C_ in (0.5, 5.0)  # type: ignore[attr-defined]
    y = m._labels(train)  # type: ignore[attr-defined]
    held = m._holdout(y)  # type: ignore[attr-defined]
    for k in np.unique(y):  # 10% of each class, rounded
        assert held[y == k].sum() == round(0.1 * (y == k).sum())
    # the final model is the fit at the chosen C on all of train: the same as asking for that C
    fixed = seqlab.build("linear", task="classification", char_ngrams=(), C=m.C_).fit(train)  # type: ignore[attr-defined]
    assert fixed.selection_ == []  # type: ignore[attr-defined]
    texts = [ex["text"] for ex in _toy(6, 30)]
    np.testing.assert_allclose(m.predict_proba(texts), fixed.predict_proba(texts), atol=1e-3)  # type: ignore[attr-defined]
