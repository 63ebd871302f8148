"""Feature-based linear-chain CRF (Lafferty, McCallum & Pereira 2001), CRFsuite's corner.

A token's sparse features x_t (F,) score every tag through a weight matrix W (F, N), so a
sentence's emission scores are one sparse matmul ``X @ W`` (T, F) @ (F, N) -> (T, N); tag
transitions (N, N) and, optionally, start/end scores (N,) complete the chain. Training
minimises CRFsuite's objective

    -sum_s log p(y_s | x_s) + c1 * ||theta||_1 + c2 * ||theta||_2^2

(c2 scales the squared norm, so its gradient is 2 c2 theta: CRFsuite's train_lbfgs.c), over all
parameters theta, in float64, full batch. The gradient is observed minus expected feature
counts: ``X^T (P - Y)`` for W with P the node marginals, edge marginals minus observed
transition counts for the transitions, both from the shared :func:`seqlab.inference.forward_backward`
over length-sorted, padded chunks of the training sentences. L-BFGS (OWL-QN when c1 > 0) from
:mod:`seqlab.models.classical.optim`; Adam (torch) as an option. Decoding is Viterbi, limited
to well-formed spans (:func:`seqlab.inference.span_constraints`) for IOB2/IOBES tag sets.

Shapes: S sentences, N_tok tokens of a split, F features, N tags, B sentences in a chunk,
T its padded length, P parameters (F*N + N*N [+ 2N]).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from seqlab.config import check_at_least
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.inference import Constraints, forward_backward, log_partition, span_constraints, viterbi
from seqlab.models.classical.base import ClassicalModel
from seqlab.models.classical.features import (
    FeatureConfig,
    FeatureExtractor,
    FeatureFn,
    SparseFeatures,
)
from seqlab.models.classical.optim import _dot, minimize_lbfgs
from seqlab.tasks import Example, Task
from seqlab.tasks.labeling import LabelingTask, tokens_tags
from seqlab.tasks.text import as_tokens

__all__ = ["CRFConfig", "CRFModel", "ChainData", "CRFParams", "crf_objective", "single_threaded"]


@dataclass(frozen=True)
class CRFConfig(FeatureConfig):
    """Feature templates (the fields of :class:`FeatureConfig`), regularisation and the optimiser.

    ``boundary=False`` drops the start/end scores, which is CRFsuite's model. ``c1``/``c2``,
    ``max_iterations``, ``num_memories``, ``epsilon``, ``period``, ``delta``, ``linesearch`` and
    ``max_linesearch`` mean what they mean in CRFsuite's L-BFGS trainer (same defaults, except
    max_iterations). ``chunk_size``: sentences per forward-backward batch (0 = all at once).
    The objective is convex and training starts from zeros (Adam too), so ``seed`` changes
    nothing today; it is kept for the API.
    """

    boundary: bool = True
    c1: float = 0.0
    c2: float = 1.0
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    max_iterations: int = 100
    num_memories: int = 6
    epsilon: float = 1e-5
    period: int = 10
    delta: float = 1e-5
    linesearch: Literal["morethuente", "backtracking"] = "morethuente"  # c1 = 0 only (OWL-QN backtracks)
    max_linesearch: int = 20
    lr: float = 0.05  # Adam only
    constrained: bool = True
    chunk_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.c1 < 0 or self.c2 < 0:
            raise ConfigError(f"c1 and c2 must be >= 0, found c1={self.c1}, c2={self.c2}")
        check_at_least(self, 1, "max_iterations", "num_memories", "max_linesearch")
        if self.chunk_size < 0:
            raise ConfigError(f"chunk_size must be >= 0 (0 = one chunk), found {self.chunk_size}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, found {self.lr}")
        self.features()  # validates the template settings

    def features(self) -> FeatureConfig:
        return FeatureConfig(**{f.name: getattr(self, f.name) for f in fields(FeatureConfig)})


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the previous setting.

    The chain DPs multiply (B, N) by (N, N) once per time step: tiny products where intra-op
    threads only add synchronisation (measured on the 2-core dev machine: a (300, 9) @ (9, 9)
    float64 product takes 8 us on one thread and 120 us on two when the cores are busy).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class CRFParams:
    """The chain's parameters as float64 tensors (views of one flat vector when unpacked)."""

    weights: Tensor  # (F, N)
    transitions: Tensor  # (N, N)
    start: Tensor  # (N,), zeros without boundary scores
    end: Tensor  # (N,)

    @staticmethod
    def size(n_features: int, n_tags: int, boundary: bool) -> int:
        return n_features * n_tags + n_tags * n_tags + (2 * n_tags if boundary else 0)

    @classmethod
    def unpack(cls, theta: np.ndarray, n_features: int, n_tags: int, boundary: bool) -> CRFParams:
        t = torch.from_numpy(theta)
        fn, nn_ = n_features * n_tags, n_tags * n_tags
        zeros = torch.zeros(n_tags, dtype=torch.float64)
        start = t[fn + nn_: fn + nn_ + n_tags] if boundary else zeros
        end = t[fn + nn_ + n_tags:] if boundary else zeros
        return cls(t[:fn].view(n_features, n_tags), t[fn: fn + nn_].view(n_tags, n_tags), start, end)


@dataclass
class _Chunk:
    """Sentences padded together. Their tokens are rows ``lo:hi`` of the chunk-ordered matrix;
    ``slots`` (hi - lo,) are those tokens' flat positions in (B * T); ``mask`` (B, T);
    ``first``/``last`` the slots of each non-empty row's first/last token."""

    lo: int
    hi: int
    slots: Tensor
    mask: Tensor
    first: Tensor
    last: Tensor


class ChainData:
    """A split laid out for the chain DPs: sentences sorted by length and cut into chunks of
    ``chunk_size`` (0 = one chunk). ``X`` (N_tok, F) holds the token rows in chunk order
    (``perm`` (N_tok,): original row of each), so a chunk's rows are one contiguous slice;
    ``gold`` (N_tok,) tag ids in the original order, or None."""

    def __init__(self, feats: SparseFeatures, gold: np.ndarray | None, chunk_size: int) -> None:
        self.offsets = feats.offsets
        self.gold = gold
        lengths = feats.lengths
        order = np.argsort(-lengths, kind="stable")
        size = chunk_size or max(len(order), 1)
        self.chunks: list[_Chunk] = []
        perms: list[np.ndarray] = []
        lo = 0
        for i in range(0, len(order), size):
            rows, chunk = self._chunk(order[i: i + size], lengths, lo)
            perms.append(rows)
            self.chunks.append(chunk)
            lo = chunk.hi
        self.perm = np.concatenate(perms) if perms else np.zeros(0, dtype=np.int64)
        self.X = feats.matrix[self.perm]  # (N_tok, F) CSR, chunk order
        self.XT = self.X.T.tocsr()  # (F, N_tok): X^T @ dense is a CSR product too

    def _chunk(self, sents: np.ndarray, lengths: np.ndarray, lo: int) -> tuple[np.ndarray, _Chunk]:
        lens = lengths[sents]
        B, T, n = len(sents), max(int(lens.max()), 1), int(lens.sum())
        within = np.arange(n) - np.repeat(np.cumsum(lens) - lens, lens)  # (n,) position in sentence
        rows = np.repeat(self.offsets[sents], lens) + within
        slots = torch.from_numpy(np.repeat(np.arange(B) * T, lens) + within)
        mask = torch.zeros(B * T, dtype=torch.bool)
        mask[slots] = True
        base = torch.from_numpy(np.arange(B) * T)
        nonempty = torch.from_numpy(lens > 0)
        first, last = base[nonempty], (base + torch.from_numpy(lens) - 1)[nonempty]
        return rows, _Chunk(lo, lo + n, slots, mask.view(B, T), first, last)

    def emissions(self, E: Tensor, c: _Chunk) -> Tensor:
        """Chunk-ordered token scores (N_tok, N) -> one chunk's padded emissions (B, T, N)."""
        B, T = c.mask.shape
        em = E.new_zeros(B * T, E.shape[1])  # (B*T, N)
        em[c.slots] = E[c.lo: c.hi]
        return em.view(B, T, -1)

    def unpermute(self, values: np.ndarray) -> np.ndarray:
        """Per-token values in chunk order -> the original token order."""
        out = np.empty_like(values)
        out[self.perm] = values
        return out

    def observed(self, n_tags: int, boundary: bool) -> np.ndarray:
        """Observed feature counts (P,) of the gold paths: the constant half of the gradient."""
        assert self.gold is not None
        Y = np.zeros((len(self.gold), n_tags))  # (N_tok, N) one-hot gold, chunk order
        Y[np.arange(len(self.gold)), self.gold[self.perm]] = 1.0
        trans = np.zeros((n_tags, n_tags))
        nonempty = np.diff(self.offsets) > 0
        firsts, lasts = self.offsets[:-1][nonempty], self.offsets[1:][nonempty] - 1
        inner = np.ones(len(self.gold), dtype=bool)  # token t has a successor in its sentence
        inner[lasts] = False
        idx = np.flatnonzero(inner)
        np.add.at(trans, (self.gold[idx], self.gold[idx + 1]), 1.0)
        parts = [np.asarray(self.XT @ Y).ravel(), trans.ravel()]
        if boundary:
            parts += [np.bincount(self.gold[firsts], minlength=n_tags), np.bincount(self.gold[lasts], minlength=n_tags)]
        return np.concatenate(parts).astype(np.float64)


def crf_objective(
    theta: np.ndarray, data: ChainData, observed: np.ndarray, n_tags: int, boundary: bool, c2: float
) -> tuple[float, np.ndarray]:
    """CRFsuite's smooth objective ``-loglik + c2 ||theta||^2`` and its gradient (P,)."""
    F = data.X.shape[1]
    FN, NN = F * n_tags, n_tags * n_tags
    p = CRFParams.unpack(theta, F, n_tags, boundary)
    E = torch.from_numpy(np.asarray(data.X @ p.weights.numpy()))  # (N_tok, N) emission scores
    marg = torch.empty_like(E)  # (N_tok, N) node marginals, chunk order
    grad = np.empty_like(theta)  # (P,) filled in place: fresh 10 MB temporaries cost page faults
    g = torch.from_numpy(grad)
    trans_g = g[FN: FN + NN].view(n_tags, n_tags)
    trans_g.zero_()
    if boundary:
        g[FN + NN:].zero_()
    log_z = 0.0
    for c in data.chunks:
        post = forward_backward(data.emissions(E, c), p.transitions, p.start, p.end, c.mask)
        log_z += float(post.log_z.sum())
        node = post.node.reshape(-1, n_tags)  # (B*T, N)
        marg[c.lo: c.hi] = node[c.slots]
        trans_g += post.edge.sum(0)
        if boundary:
            g[FN + NN: FN + NN + n_tags] += node[c.first].sum(0)
            g[FN + NN + n_tags:] += node[c.last].sum(0)
    grad[:FN] = np.asarray(data.XT @ marg.numpy()).ravel()
    t, obs = torch.from_numpy(theta), torch.from_numpy(observed)
    g -= obs
    f = log_z - float(torch.dot(obs, t))
    if c2 > 0:
        f += c2 * float(torch.dot(t, t))
        g.add_(t, alpha=2.0 * c2)
    return f, grad


class CRFModel(ClassicalModel):
    """``seqlab.build("crf", task="labeling", c1=0.1, c2=0.01)``: fit / evaluate / predict / save.

    Whole sentences are used (the labeling task's ``max_len`` truncation is for neural
    models); ``valid`` is not used (no early stopping: L-BFGS stops on its own tests).

    ``feature_functions`` (user templates, ``(tokens, i) -> iterable of str or (str, float)``)
    are code and are not saved: after ``seqlab.load`` set ``model.feature_functions`` to the
    same functions, in the same order, before predicting (a clear error says so otherwise).
    """

    serves = (LabelingTask,)

    def __init__(self, family: str, task: Task, config: CRFConfig, feature_functions: Sequence[FeatureFn] = ()) -> None:
        super().__init__(family, task, config)
        self.feature_functions = tuple(feature_functions)
        self.feature_names_: list[str] | None = None
        self.n_functions_ = 0
        self.params_: CRFParams | None = None
        self.n_iterations_ = 0
        self.status_ = ""

    # --- plumbing --------------------------------------------------------------------------
    @property
    def tags(self) -> list[str]:
        return list(self.task.tag_vocab.itos)  # type: ignore[attr-defined]

    def _extractor(self) -> FeatureExtractor:
        if len(self.feature_functions) != self.n_functions_:
            raise SeqlabError(
                f"this CRF was trained with {self.n_functions_} user feature function(s) and has "
                f"{len(self.feature_functions)}: set model.feature_functions to the same functions, in order")
        ext = FeatureExtractor(self.config.features(), self.feature_functions)
        ext.load_state({"names": self.feature_names_})
        return ext

    def _data(self, tokens: Sequence[Sequence[str]], gold: np.ndarray | None) -> ChainData:
        return ChainData(self._extractor().transform(tokens), gold, self.config.chunk_size)

    def _constraints(self) -> Constraints | None:
        scheme = getattr(self.task, "scheme", "none")
        if not self.config.constrained or scheme not in ("IOB2", "IOBES"):
            return None
        return span_constraints(self.tags, scheme)

    # --- fitting -----------------------------------------------------------------------------
    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]]:
        c = self.config
        pairs = [tokens_tags(ex, i) for i, ex in enumerate(train)]
        for i, (toks, tags) in enumerate(pairs):
            if len(tags) != len(toks):
                raise DataError(None, None, f"training example {i}: one tag per token ({len(toks)})", f"{len(tags)} tags")
        stoi = self.task.tag_vocab.stoi  # type: ignore[attr-defined]
        ext = FeatureExtractor(c.features(), self.feature_functions).fit([t for t, _ in pairs])
        self.feature_names_ = None if c.n_buckets else ext.names()
        self.n_functions_ = len(self.feature_functions)
        gold = np.array([stoi[g] for _, tags in pairs for g in tags], dtype=np.int64)
        data = ChainData(ext.transform([t for t, _ in pairs]), gold, c.chunk_size)
        N, F = len(stoi), ext.n_features
        observed = data.observed(N, c.boundary)
        theta0 = np.zeros(CRFParams.size(F, N, c.boundary))

        def fun_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return crf_objective(theta, data, observed, N, c.boundary, c.c2)

        with single_threaded():
            if c.optimizer == "lbfgs":
                res = minimize_lbfgs(fun_grad, theta0, c1=c.c1, m=c.num_memories, max_iterations=c.max_iterations,
                                     epsilon=c.epsilon, past=c.period, delta=c.delta,
                                     max_linesearch=c.max_linesearch, linesearch=c.linesearch)
                theta, history, self.n_iterations_, self.status_ = res.x, res.history, res.n_iterations, res.status
            else:
                theta, history = _adam(fun_grad, theta0, c)
                self.n_iterations_, self.status_ = c.max_iterations, "max_iterations"
        p = CRFParams.unpack(theta, F, N, c.boundary)
        self.params_ = CRFParams(p.weights.clone(), p.transitions.clone(), p.start.clone(), p.end.clone())
        return history

    # --- inference -----------------------------------------------------------------------------
    def _decode(self, data: ChainData) -> list[list[str]]:
        assert self.params_ is not None
        p, itos = self.params_, self.tags
        E = torch.from_numpy(np.asarray(data.X @ p.weights.numpy()))  # (N_tok, N), chunk order
        best = np.zeros(E.shape[0], dtype=np.int64)
        cons = self._constraints()
        with single_threaded():
            for c in data.chunks:
                paths, _ = viterbi(data.emissions(E, c), p.transitions, p.start, p.end, c.mask, constraints=cons)
                best[c.lo: c.hi] = paths.reshape(-1)[c.slots].numpy()
        best = data.unpermute(best)
        return [[itos[j] for j in best[a:b]] for a, b in zip(data.offsets[:-1], data.offsets[1:])]

    def _nll(self, data: ChainData) -> float:
        """Summed NLL (nats) of the gold paths: log Z - score(gold)."""
        assert self.params_ is not None and data.gold is not None
        p = self.params_
        E = torch.from_numpy(np.asarray(data.X @ p.weights.numpy()))  # (N_tok, N), chunk order
        theta = torch.cat([p.weights.reshape(-1), p.transitions.reshape(-1)]
                          + ([p.start, p.end] if self.config.boundary else [])).numpy()
        observed = np.asarray(data.observed(len(self.tags), self.config.boundary), dtype=np.float64)
        with single_threaded():  # one thread: the sums' rounding must not depend on the thread count
            log_z = sum(float(log_partition(data.emissions(E, c), p.transitions, p.start, p.end, c.mask).sum())
                        for c in data.chunks)
            # numpy's ``@`` is a threaded BLAS dot whose rounding depends on the thread count
            return log_z - _dot(observed, theta)

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        """Predictions for every sentence; the NLL over the sentences whose tags are all known
        (a tag unseen in training has no score), units = their tokens."""
        self._check_fitted()
        pairs = [tokens_tags(ex, i) for i, ex in enumerate(examples)]
        preds = self._decode(self._data([t for t, _ in pairs], None))
        stoi = self.task.tag_vocab.stoi  # type: ignore[attr-defined]
        known = [(t, g) for t, g in pairs if len(g) == len(t) and all(x in stoi for x in g)]
        gold = np.array([stoi[x] for _, g in known for x in g], dtype=np.int64)
        nll = self._nll(self._data([t for t, _ in known], gold)) if known else 0.0
        return preds, [g for _, g in pairs], nll, int(len(gold))

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        """Tag lists for token lists (or whitespace-split strings)."""
        self._check_fitted()
        toks = []
        for i, v in enumerate(inputs):
            t = as_tokens(v, "input", i)
            toks.append(t.split() if isinstance(t, str) else t)
        return self._decode(self._data(toks, None))

    # --- probing: per-position output distributions (seqlab.probes) ----------------------------
    def tokenize(self, value: Any) -> list[str]:
        """The tokens the features see: a token list as given, a string split on whitespace."""
        t = as_tokens(value, "input", 0)
        return t.split() if isinstance(t, str) else list(t)

    def output_labels(self) -> list[str]:
        """The tag set: the K columns of :meth:`distributions`."""
        return self.tags

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """Per input the (J, K) float64 posterior tag marginals p(y_j = k | x) by
        forward-backward over all paths (the likelihood's, so span constraints, which only
        limit decoding, do not apply), not the Viterbi path."""
        self._check_fitted()
        assert self.params_ is not None
        p = self.params_
        data = self._data([self.tokenize(v) for v in inputs], None)
        E = torch.from_numpy(np.asarray(data.X @ p.weights.numpy()))  # (N_tok, N), chunk order
        node = np.zeros(tuple(E.shape))
        with single_threaded():
            for c in data.chunks:
                post = forward_backward(data.emissions(E, c), p.transitions, p.start, p.end, c.mask).node  # (B, T, N)
                node[c.lo: c.hi] = post.reshape(-1, E.shape[1])[c.slots].numpy()
        node = data.unpermute(node)
        return [torch.from_numpy(node[a:b].copy()) for a, b in zip(data.offsets[:-1], data.offsets[1:])]

    # --- persistence ---------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert self.params_ is not None
        p = self.params_
        tensors = {"weights": p.weights, "transitions": p.transitions}
        if self.config.boundary:
            tensors.update(start=p.start, end=p.end)
        extra = {"feature_names": self.feature_names_, "n_functions": self.n_functions_,
                 "function_names": [getattr(f, "__qualname__", repr(f)) for f in self.feature_functions],
                 "n_iterations": self.n_iterations_, "status": self.status_}
        return tensors, extra

    def _set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        w, tr = tensors["weights"].to(torch.float64), tensors["transitions"].to(torch.float64)
        zeros = torch.zeros(tr.shape[0], dtype=torch.float64)
        self.params_ = CRFParams(w, tr, tensors.get("start", zeros).to(torch.float64), tensors.get("end", zeros).to(torch.float64))
        self.feature_names_ = extra.get("feature_names")
        self.n_functions_ = int(extra.get("n_functions", 0))
        self.n_iterations_ = int(extra.get("n_iterations", 0))
        self.status_ = str(extra.get("status", ""))


def _adam(fun_grad: Any, theta0: np.ndarray, c: CRFConfig) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Full-batch Adam on the same objective (L1 by its subgradient c1 * sign(theta))."""
    param = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
    opt = torch.optim.Adam([param], lr=c.lr)
    history: list[dict[str, float]] = []
    for k in range(c.max_iterations):
        x = param.detach().numpy()
        f, g = fun_grad(x)
        f += c.c1 * float(np.abs(x).sum())
        param.grad = torch.from_numpy(g + c.c1 * np.sign(x))
        opt.step()
        history.append({"iteration": float(k), "objective": f})  # f at the point the step leaves
    return param.detach().numpy().copy(), history
