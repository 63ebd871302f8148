"""Bag-of-n-grams linear classifier: the ``linear`` family of the registry (classification).

A document's n-gram features x (F,) (:mod:`.linear_features`) score every class through a
weight matrix W (F, C) and an intercept b (C,); p(c | x) = softmax(x W + b). Training minimises
multinomial logistic regression's penalised negative log-likelihood over the N training
documents, in float64, full batch:

    sum_i -log p(y_i | x_i) + ||W||_2^2 / (2 C)      (penalty "l2": L-BFGS)
    sum_i -log p(y_i | x_i) + ||W||_1 / C            (penalty "l1": OWL-QN, exact zeros)

which is scikit-learn's ``LogisticRegression`` objective (``C * sum loss + penalty``) divided by
C; as there, the intercept is not penalised. Both optimisers are seqlab's own
(:mod:`seqlab.models.classical.optim`). The intercept is profiled out: every evaluation solves
for the best b given W by Newton's method (C unknowns, a few steps), so the outer optimiser sees
a function of W alone and OWL-QN never touches b (the envelope theorem makes the W-gradient at
the best b the exact gradient of the profiled function).

``nb=True`` adds NB-SVM-style log-count ratios (Wang & Manning 2012, "Baselines and bigrams"):
for each class c, ``r_c = log((p_c / |p_c|_1) / (q_c / |q_c|_1))`` with ``p_c = alpha + sum of
the binarised feature vectors of class c`` and ``q_c`` the same over the other classes, and
class c's logit reads the scaled features: ``z_c = (r_c * x) . w_c + b_c``. For two classes this
is Wang & Manning's NB logistic regression (``r_0 = -r_1``); for more classes it is one softmax
over one-vs-rest ratios (the multiclass generalisation, not C separate binary models). Their
interpolation with the mean weight (beta) is an SVM device and is not used.

``C=None`` (the default) chooses C from ``c_grid`` by accuracy (then log-loss) on the
validation split when ``fit`` gets one; without one, on a stratified, seeded 10% of the
training set, after which the model is refitted on all of it (C = 1 when the training set is too
small to hold anything out). The grid runs from strong to
weak regularisation, each fit warm-started from the previous one.

Shapes: N documents, F feature columns, C classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from seqlab.errors import ConfigError, SeqlabError
from seqlab.models.classical.base import ClassicalModel
from seqlab.models.classical.linear_features import NgramFeatureConfig, NgramFeaturizer
from seqlab.models.classical.optim import OptimResult, minimize_lbfgs
from seqlab.tasks import Example, Task
from seqlab.tasks.classification import ClassificationTask
from seqlab.tasks.text import as_tokens, text_field

__all__ = ["LinearConfig", "LinearModel", "LogisticProblem", "log_count_ratios", "softmax_rows"]


@dataclass(frozen=True)
class LinearConfig(NgramFeatureConfig):
    """Features (the fields of :class:`NgramFeatureConfig`), the model and the optimiser.

    ``penalty``: ``l2`` or ``l1``; ``C``: inverse regularisation strength as in scikit-learn
    (None: chosen from ``c_grid``, see the module docstring). ``nb``/``nb_alpha``: log-count-ratio
    features and their smoothing. ``max_iterations``, ``num_memories``, ``epsilon``, ``period``,
    ``delta`` mean what they mean in :func:`~seqlab.models.classical.optim.minimize_lbfgs`.
    The objective is convex and fitting starts from zeros, so ``seed`` only picks the held-out
    10% that chooses C when no validation split is given.
    """

    penalty: Literal["l2", "l1"] = "l2"
    C: float | None = None
    c_grid: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    nb: bool = False
    nb_alpha: float = 1.0
    fit_intercept: bool = True
    max_iterations: int = 300
    num_memories: int = 10
    epsilon: float = 1e-5
    period: int = 10
    delta: float = 1e-6
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.penalty not in ("l2", "l1"):
            raise ConfigError(f"penalty must be 'l2' or 'l1', found {self.penalty!r}")
        if self.C is not None and not self.C > 0:
            raise ConfigError(f"C must be > 0 (or None: chosen from c_grid), found {self.C}")
        if not self.c_grid or any(not c > 0 for c in self.c_grid):
            raise ConfigError(f"c_grid must hold at least one C > 0, found {self.c_grid}")
        if self.nb_alpha <= 0:
            raise ConfigError(f"nb_alpha must be > 0, found {self.nb_alpha}")
        for name in ("max_iterations", "num_memories"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, found {getattr(self, name)}")

    def features(self) -> NgramFeatureConfig:
        return NgramFeatureConfig(**{f.name: getattr(self, f.name) for f in fields(NgramFeatureConfig)})


# --- the math -------------------------------------------------------------------------------------
def softmax_rows(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) logits -> (N, C) probabilities and (N,) log-sum-exp."""
    m = Z.max(1, keepdims=True)
    E = np.exp(Z - m)
    s = E.sum(1, keepdims=True)
    return E / s, (np.log(s) + m).ravel()


def log_count_ratios(X: sp.csr_matrix, y: np.ndarray, n_classes: int, alpha: float) -> np.ndarray:
    """(F, C) NB log-count ratios r_c of class c against the rest, from binarised features
    (Wang & Manning 2012, section 2.1)."""
    B = X.copy()
    B.data = np.ones_like(B.data)  # x-hat = 1{x > 0}
    Y = sp.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)), shape=(len(y), n_classes))
    per_class = np.asarray((B.T @ Y).todense())  # (F, C) summed binarised features per class
    p = alpha + per_class
    q = alpha + per_class.sum(1, keepdims=True) - per_class
    return np.log(p / p.sum(0, keepdims=True)) - np.log(q / q.sum(0, keepdims=True))


def best_intercept(Z: np.ndarray, counts: np.ndarray, b0: np.ndarray, tol: float = 1e-11) -> np.ndarray:
    """(C,) the b minimising ``sum_i logsumexp(Z_i + b) - counts . b`` (the NLL's intercept part;
    ``counts`` (C,) the class sizes), by damped Newton from ``b0``. The function is shift
    invariant, so b is returned with mean 0."""
    b = b0 - b0.mean()
    n_classes = len(counts)

    def value(bb: np.ndarray) -> float:
        return float(softmax_rows(Z + bb)[1].sum() - counts @ bb)

    f = value(b)
    for _ in range(50):
        P, _ = softmax_rows(Z + b)
        g = P.sum(0) - counts  # (C,) sums to 0
        if np.abs(g).max() <= tol * max(1.0, float(counts.sum())):
            break
        H = np.diag(P.sum(0)) - P.T @ P + np.ones((n_classes, n_classes)) / n_classes  # the 1/C ones fix the shift
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-12:
            f_new = value(b - t * step)
            if f_new <= f - 1e-4 * t * float(g @ step):
                break
            t *= 0.5
        if t <= 1e-12:
            break
        b, f = b - t * step, f_new
    return b - b.mean()


class LogisticProblem:
    """The penalised multinomial NLL as a function of W (flattened (F*C,)), with the intercept
    profiled out (see the module docstring). ``ratios`` (F, C): NB scaling, or None.
    ``c2``: the L2 coefficient (``1 / C``, or 0 when OWL-QN carries an L1 term)."""

    def __init__(self, X: sp.csr_matrix, y: np.ndarray, n_classes: int, c2: float,
                 ratios: np.ndarray | None = None, fit_intercept: bool = True) -> None:
        self.X = X.tocsr()
        self.XT = self.X.T.tocsr()
        self.y = y
        self.n_classes = n_classes
        self.c2 = c2
        self.ratios = ratios
        self.fit_intercept = fit_intercept
        self.counts = np.bincount(y, minlength=n_classes).astype(np.float64)  # (C,)
        self.b = np.zeros(n_classes)

    def effective(self, w: np.ndarray) -> np.ndarray:
        """(F, C) the weights the features meet: W, or R * W with NB ratios."""
        W = w.reshape(-1, self.n_classes)
        return W * self.ratios if self.ratios is not None else W

    def __call__(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        W = w.reshape(-1, self.n_classes)  # (F, C)
        Z = np.asarray(self.X @ self.effective(w))  # (N, C)
        if self.fit_intercept:
            self.b = best_intercept(Z, self.counts, self.b)
            Z = Z + self.b
        P, lse = softmax_rows(Z)
        rows = np.arange(len(self.y))
        f = float(lse.sum() - Z[rows, self.y].sum())
        P[rows, self.y] -= 1.0  # P - Y
        G = np.asarray(self.XT @ P)  # (F, C)
        if self.ratios is not None:
            G *= self.ratios
        if self.c2:
            f += 0.5 * self.c2 * float(np.dot(w, w))
            G += self.c2 * W
        return f, G.ravel()


# --- the family ---------------------------------------------------------------------------------
class LinearModel(ClassicalModel):
    """Bag-of-n-grams logistic regression serving the ``classification`` task."""

    config: LinearConfig
    serves = (ClassificationTask,)

    def __init__(self, family: str, task: Task, config: LinearConfig) -> None:
        super().__init__(family, task, config)
        self.featurizer_: NgramFeaturizer | None = None
        self.weights_: np.ndarray | None = None  # (F, C) effective weights (NB ratios folded in)
        self.intercept_: np.ndarray | None = None  # (C,)
        self.C_: float = 0.0
        self.n_iterations_ = 0
        self.status_ = ""
        self.selection_: list[dict[str, float]] = []

    # --- plumbing ---------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.task.label_vocab.itos)  # type: ignore[attr-defined]

    def tokenize(self, value: Any) -> list[str]:
        """The tokens the n-grams are read from (the task's tokenizer, no length limit)."""
        return list(self.task.codec.tokens(as_tokens(value, "input", 0)))  # type: ignore[attr-defined]

    def _docs(self, values: Sequence[Any]) -> list[list[str]]:
        codec = self.task.codec  # type: ignore[attr-defined]
        return [list(codec.tokens(as_tokens(v, "input", i))) for i, v in enumerate(values)]

    def _labels(self, examples: Sequence[Example]) -> np.ndarray:
        """(N,) class ids, -1 for a label unseen in training."""
        stoi = self.task.label_vocab.stoi  # type: ignore[attr-defined]
        return np.array([stoi.get(ClassificationTask._label(ex, i), -1) for i, ex in enumerate(examples)], dtype=np.int64)

    def _features(self, examples: Sequence[Example]) -> sp.csr_matrix:
        assert self.featurizer_ is not None
        return self.featurizer_.transform(self._docs([text_field(ex, i) for i, ex in enumerate(examples)]))

    # --- fitting ------------------------------------------------------------------------------
    def _solve(self, X: sp.csr_matrix, y: np.ndarray, C: float, w0: np.ndarray | None,
               ratios: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, OptimResult]:
        """Fit at one C: (F*C_classes,) weights (before NB scaling), (C_classes,) intercept, result."""
        c = self.config
        K = len(self.classes)
        l1 = c.penalty == "l1"
        prob = LogisticProblem(X, y, K, 0.0 if l1 else 1.0 / C, ratios, c.fit_intercept)
        x0 = np.zeros(X.shape[1] * K) if w0 is None else w0
        res = minimize_lbfgs(prob, x0, c1=1.0 / C if l1 else 0.0, m=c.num_memories, max_iterations=c.max_iterations,
                             epsilon=c.epsilon, past=c.period, delta=c.delta)
        prob(res.x)  # the intercept at the final point
        return res.x, prob.b.copy(), res

    def _path(self, X: sp.csr_matrix, y: np.ndarray, Xv: sp.csr_matrix, yv: np.ndarray,
              ratios: np.ndarray | None) -> tuple[float, np.ndarray, OptimResult]:
        """Fit along ``c_grid`` (ascending, warm-started); the C with the best held-out accuracy
        (then log-loss), its weights and its optimiser result."""
        best: tuple[float, float, float, np.ndarray, OptimResult] | None = None
        w: np.ndarray | None = None
        self.selection_ = []
        known = yv >= 0
        for C in sorted(self.config.c_grid):
            w, b, res = self._solve(X, y, C, w, ratios)
            W = w.reshape(-1, len(self.classes))
            P, _ = softmax_rows(np.asarray(Xv @ (W * ratios if ratios is not None else W)) + b)
            acc = float((P.argmax(1)[known] == yv[known]).mean()) if known.any() else 0.0
            nll = float(-np.log(np.maximum(P[known, yv[known]], 1e-300)).mean()) if known.any() else 0.0
            self.selection_.append({"C": C, "accuracy": acc, "log_loss": nll})
            if best is None or (acc, -nll) > (best[1], -best[2]):
                best = (C, acc, nll, w.copy(), res)
        assert best is not None
        return best[0], best[3], best[4]

    def _intercept(self, X: sp.csr_matrix, y: np.ndarray, C: float, w: np.ndarray, ratios: np.ndarray | None) -> np.ndarray:
        prob = LogisticProblem(X, y, len(self.classes), 0.0 if self.config.penalty == "l1" else 1.0 / C, ratios,
                               self.config.fit_intercept)
        prob(w)
        return prob.b.copy()

    def _holdout(self, y: np.ndarray) -> np.ndarray:
        """(N,) bool: a stratified, seeded 10% of the training set (at least one example of a
        class stays in training)."""
        rng = np.random.default_rng(self.config.seed)
        held = np.zeros(len(y), dtype=bool)
        for k in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == k))
            held[idx[: min(int(round(0.1 * len(idx))), len(idx) - 1)]] = True
        return held

    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]]:
        c = self.config
        K = len(self.classes)
        self.featurizer_ = NgramFeaturizer(c.features()).fit(self._docs([text_field(ex, i) for i, ex in enumerate(train)]))
        X, y = self._features(train), self._labels(train)
        if (y < 0).any():
            raise SeqlabError("the training labels differ from those the task was fitted on; build a new model")
        ratios = log_count_ratios(X, y, K, c.nb_alpha) if c.nb else None
        if c.C is None and valid:  # the path's fit at the chosen C is the model
            C, w, res = self._path(X, y, self._features(valid), self._labels(valid), ratios)
            b = self._intercept(X, y, C, w, ratios)
        else:
            C, w0 = (c.C, None) if c.C is not None else (1.0, None)
            held = self._holdout(y) if c.C is None else np.zeros(len(y), dtype=bool)
            if held.any():  # choose C on the held-out part, then refit on all of train
                part = log_count_ratios(X[~held], y[~held], K, c.nb_alpha) if c.nb else None
                C, w0, _ = self._path(X[~held], y[~held], X[held], y[held], part)
            w, b, res = self._solve(X, y, C, w0, ratios)
        history, self.n_iterations_, self.status_ = res.history, res.n_iterations, res.status
        W = w.reshape(-1, K)
        self.weights_ = W * ratios if ratios is not None else W.copy()
        self.intercept_ = b
        self.C_ = C
        return history

    # --- inference ------------------------------------------------------------------------------
    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, C) class probabilities for raw inputs (strings or token lists)."""
        self._check_fitted()
        assert self.featurizer_ is not None
        return self._proba(self.featurizer_.transform(self._docs(inputs)))

    def _proba(self, X: sp.csr_matrix) -> np.ndarray:
        assert self.weights_ is not None and self.intercept_ is not None
        return softmax_rows(np.asarray(X @ self.weights_) + self.intercept_)[0]

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        P = self.predict_proba(inputs)
        return [self.classes[j] for j in P.argmax(1)] if len(P) else []

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        self._check_fitted()
        P = self._proba(self._features(examples))  # (N, C)
        y = self._labels(examples)
        known = y >= 0
        nll = float(-np.log(np.maximum(P[known, y[known]], 1e-300)).sum())
        preds = [self.classes[j] for j in P.argmax(1)]
        refs = [ClassificationTask._label(ex, i) for i, ex in enumerate(examples)]
        return preds, refs, nll, int(known.sum())

    def output_labels(self) -> list[str]:
        """The classes: the K columns of :meth:`distributions`."""
        return self.classes

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """Per input a (1, K) float64 row: p(class | whole input)."""
        P = self.predict_proba(inputs)
        return [torch.from_numpy(P[i : i + 1].copy()) for i in range(len(P))]

    # --- persistence ------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert self.weights_ is not None and self.intercept_ is not None and self.featurizer_ is not None
        tensors = {"weights": torch.from_numpy(np.ascontiguousarray(self.weights_)),
                   "intercept": torch.from_numpy(self.intercept_)}
        extra = {"features": self.featurizer_.state(), "C": self.C_, "n_iterations": self.n_iterations_,
                 "status": self.status_, "selection": self.selection_}
        return tensors, extra

    def _set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.weights_ = tensors["weights"].to(torch.float64).numpy()
        self.intercept_ = tensors["intercept"].to(torch.float64).numpy()
        self.featurizer_ = NgramFeaturizer(self.config.features())
        self.featurizer_.load_state(extra.get("features") or {})
        self.C_ = float(extra.get("C", 0.0))
        self.n_iterations_ = int(extra.get("n_iterations", 0))
        self.status_ = str(extra.get("status", ""))
        self.selection_ = list(extra.get("selection", []))
