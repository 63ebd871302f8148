"""Class-conditional n-gram language models as a classifier: the ``ngram`` family serving the
``classification`` task.

One n-gram LM per class is fitted on that class's training documents (each document one
sentence, ``<s> w1 .. wk </s>``), with any of the n-gram smoothings (:class:`NGramConfig`), all
over one vocabulary (the task's), so every class scores every word, ``<unk>`` included. A
document x is classified by Bayes' rule with the class prior (the class's share of the training
documents):

    log p(c | x) = log p(c) + log p_c(x) - log sum_c' p(c') p_c'(x)

normalised by log-sum-exp. When every class gives x probability 0 (maximum-likelihood models
and an unseen n-gram), the prior decides. The method is old (naive Bayes is its order-1 case);
Peng, Schuurmans & Wang (2003) showed character n-gram LMs per class to be strong text
classifiers. The tokens are the task's: set the task's ``tokenizer="char"`` for character LMs.

Shapes: S stream length (all documents with their ``<s>`` and ``</s>``), N documents, C classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from seqlab.errors import ConfigError, SeqlabError
from seqlab.models.classical.base import ClassicalModel
from seqlab.models.classical.ngram_estimate import estimate
from seqlab.models.classical.ngram_tables import (
    BOS,
    EOS,
    SPECIALS,
    UNK,
    NGramTables,
    _wrap,
    score_stream,
    sentence_stream,
)
from seqlab.tasks import Example, Task
from seqlab.tasks.classification import ClassificationTask
from seqlab.tasks.text import as_tokens, text_field

if TYPE_CHECKING:  # the ngram module builds this class for classification: no runtime import back
    from seqlab.models.classical.ngram import NGramConfig

__all__ = ["NGramClassifier", "class_posteriors"]


def class_posteriors(log_prior: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    """(N, C) p(c | x) from the (C,) log prior and the (N, C) log likelihoods (nats), by
    log-sum-exp; a row whose likelihoods are all 0 gets the prior."""
    joint = log_lik + log_prior  # (N, C)
    top = joint.max(1, keepdims=True)
    dead = ~np.isfinite(top[:, 0])
    joint[dead] = log_prior
    top[dead, 0] = log_prior.max()
    e = np.exp(joint - top)
    return e / e.sum(1, keepdims=True)


class NGramClassifier(ClassicalModel):
    """One n-gram LM per class and Bayes' rule (see the module docstring)."""

    config: NGramConfig
    serves = (ClassificationTask,)

    def __init__(self, family: str, task: Task, config: NGramConfig) -> None:
        super().__init__(family, task, config)
        self.tables_: list[NGramTables] = []
        self.log_prior_: np.ndarray | None = None  # (C,)

    # --- plumbing -------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.task.label_vocab.itos)  # type: ignore[attr-defined]

    def _vocab(self) -> list[str]:
        itos = self.task.codec.fitted_vocab.itos  # type: ignore[attr-defined]
        if tuple(itos[:5]) != ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>"):
            raise ConfigError("the n-gram family needs a task vocabulary with the reserved specials")
        return [*SPECIALS, *itos[5:]]

    def _stream(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model ids of every document: tokens (S,), offsets (S,) and each document's start (N,)."""
        codec = self.task.codec  # type: ignore[attr-defined]
        ids = [codec.encode(as_tokens(v, "input", i)) for i, v in enumerate(values)]
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for doc in ids for t in doc), dtype=np.int64, count=int(lens.sum()))
        model = np.where(flat >= 5, flat - 2, np.where(flat == 2, BOS, np.where(flat == 3, EOS, UNK)))
        tokens, offset = _wrap(model, lens)
        return tokens, offset, np.cumsum(lens + 2) - (lens + 2)

    def _labels(self, examples: Sequence[Example]) -> np.ndarray:
        stoi = self.task.label_vocab.stoi  # type: ignore[attr-defined]
        return np.array([stoi.get(ClassificationTask._label(ex, i), -1) for i, ex in enumerate(examples)], dtype=np.int64)

    # --- fitting ----------------------------------------------------------------------------------
    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> None:
        c = self.config
        fb = None if c.discount_fallback is None else (c.discount_fallback[0], c.discount_fallback[1], c.discount_fallback[2])
        y = self._labels(train)
        if (y < 0).any():
            raise SeqlabError("the training labels differ from those the task was fitted on; build a new model")
        codec = self.task.codec  # type: ignore[attr-defined]
        docs = [codec.encode(text_field(ex, i)) for i, ex in enumerate(train)]
        vocab = self._vocab()
        self.tables_ = []
        for k in range(len(self.classes)):
            mine = [[t - 2 if t >= 5 else UNK for t in d] for d, yy in zip(docs, y) if yy == k]
            tables, _ = estimate(*sentence_stream(mine), len(vocab), c.order, c.smoothing, c.k, fb, c.katz_cutoff)
            self.tables_.append(tables)
        counts = np.bincount(y, minlength=len(self.classes)).astype(np.float64)
        self.log_prior_ = np.log(counts / counts.sum())

    # --- inference ----------------------------------------------------------------------------------
    def log_likelihoods(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, C) log p_c(x) in nats: each class's LM scoring each whole document with its ``</s>``."""
        self._check_fitted()
        tokens, offset, starts = self._stream(inputs)
        out = np.zeros((len(starts), len(self.tables_)))
        for k, t in enumerate(self.tables_):
            lp = score_stream(t, tokens, offset)  # (S,) log10
            out[:, k] = np.add.reduceat(lp, starts) * math.log(10) if len(starts) else 0.0
        return out

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, C) p(class | x) by Bayes' rule."""
        self._check_fitted()
        assert self.log_prior_ is not None
        return class_posteriors(self.log_prior_, self.log_likelihoods(inputs))

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        P = self.predict_proba(inputs)
        return [self.classes[j] for j in P.argmax(1)] if len(P) else []

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        P = self.predict_proba([text_field(ex, i) for i, ex in enumerate(examples)])
        y = self._labels(examples)
        known = y >= 0
        nll = float(-np.log(np.maximum(P[known, y[known]], 1e-300)).sum())
        refs = [ClassificationTask._label(ex, i) for i, ex in enumerate(examples)]
        return [self.classes[j] for j in P.argmax(1)], refs, nll, int(known.sum())

    def tokenize(self, value: Any) -> list[str]:
        """The tokens the LMs read (the task's tokenizer)."""
        return list(self.task.codec.tokens(as_tokens(value, "input", 0)))  # type: ignore[attr-defined]

    def output_labels(self) -> list[str]:
        """The classes: the K columns of :meth:`distributions`."""
        return self.classes

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """Per input a (1, K) float64 row: p(class | whole input)."""
        P = self.predict_proba(inputs)
        return [torch.from_numpy(P[i : i + 1].copy()) for i in range(len(P))]

    # --- persistence ---------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert self.log_prior_ is not None
        tensors: dict[str, Tensor] = {"log_prior": torch.from_numpy(self.log_prior_)}
        for k, t in enumerate(self.tables_):
            for n in range(1, t.order + 1):
                tensors[f"class{k}_keys_{n}"] = torch.from_numpy(t.keys[n - 1])
                tensors[f"class{k}_logp_{n}"] = torch.from_numpy(t.logp[n - 1])
                tensors[f"class{k}_backoff_{n}"] = torch.from_numpy(t.backoff[n - 1])
        return tensors, {"vocab_size": self.tables_[0].vocab_size if self.tables_ else 0, "n_classes": len(self.tables_)}

    def _set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        n = self.config.order
        self.log_prior_ = tensors["log_prior"].numpy()
        self.tables_ = []
        for k in range(int(extra["n_classes"])):
            try:
                cols = [[tensors[f"class{k}_{name}_{i}"].numpy() for i in range(1, n + 1)] for name in ("keys", "logp", "backoff")]
            except KeyError as e:
                raise SeqlabError(f"the saved n-gram tables lack {e}; they do not fit order {n}") from None
            self.tables_.append(NGramTables(int(extra["vocab_size"]), *cols))
