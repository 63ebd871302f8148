"""N-gram language models: :class:`NGramLM` over string tokens and :class:`NGramModel`, the
``ngram`` family of the registry (the ``lm`` task), with its :class:`NGramConfig`.

The pieces live in their own modules and are re-exported here: the backoff tables, the token
stream and the lookups in :mod:`.ngram_tables`; counting and smoothing (maximum likelihood,
add-k, interpolated modified Kneser-Ney as KenLM's ``lmplz``, Good-Turing / Katz back-off) in
:mod:`.ngram_estimate`; the
decoding stepper in :mod:`.ngram_stepper`.

Shapes: S stream length (all sentences with their ``<s>`` and ``</s>``), V vocabulary size (ids
0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then words), B sentences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqlab.errors import ConfigError, SeqlabError
from seqlab.inference.continuation import decode_continuation
from seqlab.models.classical.arpa import read_arpa, write_arpa
from seqlab.models.classical.base import ClassicalModel
from seqlab.models.classical.ngram_estimate import (
    Smoothing,
    additive_tables,
    count_ngrams,
    counts_of_counts,
    estimate,
    kn_discounts,
    kneser_ney_tables,
)
from seqlab.models.classical.ngram_stepper import NGramStepper
from seqlab.models.classical.ngram_tables import (
    BOS,
    DENSE_LIMIT,
    EOS,
    F64,
    I64,
    SPECIALS,
    UNK,
    HashIndex,
    NGramTables,
    _context_chain,
    _flatten,
    _wrap,
    argmax_stream,
    lookup_ref,
    next_log10,
    next_log10_rows,
    score_stream,
    score_stream_ref,
    sentence_stream,
    stream_indices,
)
from seqlab.tasks import Example, Task
from seqlab.tasks.classification import ClassificationTask
from seqlab.tasks.lm import LMTask
from seqlab.tasks.text import as_tokens

__all__ = [
    "NGramConfig", "NGramModel", "NGramLM", "NGramTables", "UNK", "BOS", "EOS", "SPECIALS",
    "kn_discounts", "sentence_stream",
    # re-exported from .ngram_tables, .ngram_estimate and .ngram_stepper
    "DENSE_LIMIT", "HashIndex", "NGramStepper", "Smoothing", "additive_tables", "argmax_stream",
    "count_ngrams", "counts_of_counts", "kneser_ney_tables", "lookup_ref", "next_log10",
    "next_log10_rows", "score_stream", "score_stream_ref", "stream_indices",
]


class _UnkIndex(dict[str, int]):
    """Word -> id with unknown words -> ``<unk>`` (``__missing__``: the fast ``__getitem__``)."""

    def __missing__(self, key: str) -> int:
        return UNK


class NGramLM:
    """An n-gram LM over string tokens, for users with their own token lists (and the KenLM
    parity work). ``fit_counts`` numbers words by first appearance as lmplz does."""

    def __init__(
        self, order: int = 3, smoothing: Smoothing = "kneser_ney", k: float = 1.0,
        discount_fallback: tuple[float, float, float] | None = None, katz_cutoff: int = 5,
    ) -> None:
        if order < 1:
            raise ConfigError(f"order must be >= 1, found {order}")
        if smoothing not in ("kneser_ney", "add_k", "ml", "good_turing", "katz"):
            raise ConfigError(f"smoothing must be one of kneser_ney, add_k, ml, good_turing, katz; found {smoothing!r}")
        if katz_cutoff < 0:
            raise ConfigError(f"katz_cutoff must be >= 0, found {katz_cutoff}")
        if k < 0:
            raise ConfigError(f"k must be >= 0, found {k}")
        self.order = order
        self.smoothing = smoothing
        self.k = k
        self.discount_fallback = discount_fallback
        self.katz_cutoff = katz_cutoff

    # --- estimation -----------------------------------------------------------------------
    def fit_counts(self, sentences: Sequence[Sequence[str]]) -> NGramLM:
        """Fit on tokenized sentences. ``<s>``, ``</s>`` and ``<unk>`` in the text are skipped
        (lmplz reads them as whitespace)."""
        flat, lens = _flatten(sentences)
        words = [w for w in dict.fromkeys(flat) if w not in SPECIALS]  # by first appearance
        index = dict.fromkeys(SPECIALS, -1) | {w: i for i, w in enumerate(words, start=3)}
        ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
        if (ids < 0).any():  # drop the specials, shortening their sentences
            sent = np.repeat(np.arange(len(lens)), lens)
            lens = lens - np.bincount(sent[ids < 0], minlength=len(lens))
            ids = ids[ids >= 0]
        return self._fit_stream(*_wrap(ids, lens), [*SPECIALS, *words])

    def fit_ids(self, sentences: Sequence[Sequence[int]], vocab: list[str]) -> NGramLM:
        """Fit on id sentences over ``vocab`` (``vocab[:3]`` must be ``<unk> <s> </s>``)."""
        return self._fit_stream(*sentence_stream(sentences), vocab)

    def _fit_stream(self, tokens: I64, offset: I64, vocab: list[str]) -> NGramLM:
        if tuple(vocab[:3]) != SPECIALS:
            raise ConfigError(f"vocab must start with {SPECIALS}, found {tuple(vocab[:3])}")
        self.tables_, self.discounts_ = estimate(tokens, offset, len(vocab), self.order, self.smoothing, self.k,
                                                 self.discount_fallback, self.katz_cutoff)
        self.vocab_ = list(vocab)
        self.index_ = {w: i for i, w in enumerate(vocab)}
        return self

    # --- querying ---------------------------------------------------------------------------
    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[I64, I64]:
        """The id stream of ``sentences`` (unknown words -> ``<unk>``): tokens (S,), offsets (S,)."""
        index = _UnkIndex(self._fitted_index())
        lens = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        flat = itertools.chain.from_iterable(sentences)
        ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=int(lens.sum()))
        return _wrap(ids, lens)

    def token_log10(self, sentences: Sequence[Sequence[str]]) -> list[F64]:
        """Per sentence: log10 p of each word and of ``</s>`` (like kenlm's ``full_scores``)."""
        tokens, offset = self.encode(sentences)
        lp = score_stream(self.tables_, tokens, offset)
        starts = np.flatnonzero(offset == 0)
        return [lp[a + 1 : b] for a, b in zip(starts, [*starts[1:], len(lp)])]

    def score_sentences(self, sentences: Sequence[Sequence[str]]) -> F64:
        """(B,) log10 p(sentence) with ``<s>``/``</s>``, as ``kenlm.Model.score(s, bos=True, eos=True)``."""
        tokens, offset = self.encode(sentences)
        lp = score_stream(self.tables_, tokens, offset)
        starts = np.flatnonzero(offset == 0)
        return np.add.reduceat(lp, starts) if len(starts) else np.zeros(0)

    def next_log10(self, history: Sequence[str]) -> F64:
        """(V,) log10 p(w | history) over ``vocab_`` (``-inf`` for ``<s>``)."""
        tokens, _ = self.encode([history])
        return next_log10(self.tables_, tokens[1:-1].tolist())

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        total = float(self.score_sentences(sentences).sum())
        n = sum(len(s) + 1 for s in sentences)
        return math.pow(10.0, -total / max(n, 1))

    # --- ARPA -------------------------------------------------------------------------------
    def to_arpa(self, path: str) -> None:
        write_arpa(path, self._fitted_vocab(), self.tables_)

    @classmethod
    def from_arpa(cls, path: str) -> NGramLM:
        vocab, tables = read_arpa(path)
        lm = cls(order=tables.order)
        lm.tables_, lm.vocab_, lm.discounts_ = tables, vocab, []
        lm.index_ = {w: i for i, w in enumerate(vocab)}
        return lm

    def _fitted_vocab(self) -> list[str]:
        if not hasattr(self, "vocab_"):
            raise SeqlabError("the n-gram model is not fitted: call fit_counts() or from_arpa() first")
        return self.vocab_

    def _fitted_index(self) -> dict[str, int]:
        self._fitted_vocab()
        return self.index_


@dataclass(frozen=True)
class NGramConfig:
    """Settings of the n-gram family.

    ``order``: n (any n >= 1). ``smoothing``: ``kneser_ney`` (interpolated modified KN, as
    lmplz), ``add_k`` (add ``k``), ``ml`` (maximum likelihood: the order-1 Markov chain),
    ``good_turing`` (Katz back-off with simple Good-Turing discounts for every count) or ``katz``
    (Katz back-off with Katz's discounts for counts up to ``katz_cutoff``, larger counts kept).
    ``discount_fallback``: absolute discounts (D1, D2, D3+) for an order whose counts of counts
    give none (tiny or artificial data), as lmplz's ``--discount_fallback`` (Good-Turing and Katz
    too); ``None`` raises instead. Good-Turing and Katz reserve for unseen events what the
    singletons suggest: an order with no singletons (saturated data), or under Katz a context
    whose continuations all exceed ``katz_cutoff``, keeps no mass for unseen words, which then
    get probability 0; ``<unk>`` gets the unigrams' whole unseen mass N_1/N (Kneser-Ney gives it
    a 1/|V| share), which flatters held-out perplexities over text with unknown words.
    """

    order: int = 3
    smoothing: Smoothing = "kneser_ney"
    k: float = 1.0
    discount_fallback: tuple[float, ...] | None = (0.5, 1.0, 1.5)
    seed: int = 0
    katz_cutoff: int = 5

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ConfigError(f"order must be >= 1, found {self.order}")
        if self.k < 0:
            raise ConfigError(f"k must be >= 0, found {self.k}")
        if self.katz_cutoff < 0:
            raise ConfigError(f"katz_cutoff must be >= 0, found {self.katz_cutoff}")
        fb = self.discount_fallback
        if fb is not None and (len(fb) != 3 or not all(0 <= d <= j for j, d in enumerate(fb, start=1))):
            raise ConfigError(f"discount_fallback must be three discounts D1 <= 1, D2 <= 2, D3+ <= 3; found {fb}")


class NGramModel(ClassicalModel):
    """An n-gram language model serving the ``lm`` task: every example is one sentence
    (``<s>`` + its tokens + the task's ``<eos>`` as ``</s>``), over the task's vocabulary. Built
    for the ``classification`` task it is an :class:`NGramClassifier` instead."""

    config: NGramConfig
    serves = (LMTask, ClassificationTask)

    def __new__(cls, family: str, task: Task, config: NGramConfig) -> Any:
        """For the classification task the family is one LM per class and Bayes' rule
        (:class:`~seqlab.models.classical.ngram_classifier.NGramClassifier`)."""
        if cls is NGramModel and isinstance(task, ClassificationTask):
            from seqlab.models.classical.ngram_classifier import NGramClassifier

            return NGramClassifier(family, task, config)
        return super().__new__(cls)

    # --- vocabulary: task ids (pad unk bos eos mask words...) <-> model ids (unk <s> </s> words...)
    def _vocab(self) -> list[str]:
        itos = self.task.codec.fitted_vocab.itos  # type: ignore[attr-defined]
        if tuple(itos[:5]) != ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>"):
            raise ConfigError("the n-gram family needs a task vocabulary with the reserved specials")
        return [*SPECIALS, *itos[5:]]

    def _to_model(self, ids: I64) -> I64:
        return np.where(ids >= 5, ids - 2, np.where(ids == 2, BOS, np.where(ids == 3, EOS, UNK)))

    def _to_task(self, ids: I64) -> I64:
        return np.where(ids >= 3, ids + 2, ids + 1)

    def _stream(self, examples: Sequence[Example]) -> tuple[I64, I64, I64]:
        """Model tokens (S,), offsets (S,) and each example's end in the stream (B,)."""
        task: Any = self.task
        ids = np.asarray(task.stream(examples), dtype=np.int64)  # each example + <eos>
        ends = np.flatnonzero(ids == task.codec.fitted_vocab.eos_id)
        lens = np.diff(np.concatenate([[-1], ends])) - 1  # (B,)
        tokens, offset = _wrap(self._to_model(ids[ids != task.codec.fitted_vocab.eos_id]), lens)
        return tokens, offset, np.cumsum(lens + 2)

    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> None:
        c = self.config
        fb = None if c.discount_fallback is None else (c.discount_fallback[0], c.discount_fallback[1], c.discount_fallback[2])
        lm = NGramLM(c.order, c.smoothing, c.k, fb, c.katz_cutoff)
        tokens, offset, _ = self._stream(train)
        lm._fit_stream(tokens, offset, self._vocab())
        self.tables_ = lm.tables_
        self.discounts_ = lm.discounts_

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        self._check_fitted()
        tokens, offset, ends = self._stream(examples)
        lp = score_stream(self.tables_, tokens, offset)  # (S,) log10
        hits = (argmax_stream(self.tables_, tokens, offset) == tokens) & (offset >= 1)
        chars = self.task.char_lengths.numpy()[self._to_task(tokens)] * (offset >= 1)  # type: ignore[attr-defined]
        starts = np.concatenate([[0], ends[:-1]])
        preds = [{"chars": int(c), "hits": int(h)} for c, h in zip(np.add.reduceat(chars, starts), np.add.reduceat(hits, starts))] if len(starts) else []
        nll = -float(lp.sum()) * math.log(10)
        return preds, [None] * len(preds), nll, int((offset >= 1).sum())

    def _history(self, prompt: Any, i: int) -> list[int]:
        ids = np.asarray(self.task.codec.encode(as_tokens(prompt, "prompt", i)), dtype=np.int64)  # type: ignore[attr-defined]
        return self._to_model(ids).tolist()

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        """The most likely next token after each prompt (a prompt starts a sentence)."""
        self._check_fitted()
        chains = np.stack([_context_chain(self.tables_, self._history(v, i)) for i, v in enumerate(inputs)]) if inputs else np.zeros((0, self.config.order - 1), dtype=np.int64)
        best = self._to_task(next_log10_rows(self.tables_, chains).argmax(1))
        return list(self.task.codec.fitted_vocab.decode(best.tolist()))  # type: ignore[attr-defined]

    # --- probing: per-position next-token distributions (seqlab.probes) -------------------------
    def tokenize(self, value: Any) -> list[str]:
        """The tokens of a prompt as the model sees them (the task's tokenizer; no truncation:
        a prompt starts a sentence, as in :meth:`predict`)."""
        return list(self.task.codec.tokens(as_tokens(value, "prompt", 0)))  # type: ignore[attr-defined]

    def output_labels(self) -> list[str]:
        """The task's vocabulary: the K columns of :meth:`distributions`."""
        return list(self.task.codec.fitted_vocab.itos)  # type: ignore[attr-defined]

    def distributions(self, inputs: Sequence[Any]) -> list[torch.Tensor]:
        """Per prompt a (J, K) float64 tensor: row j = p(next token | <s> tokens[: j + 1]) over
        the task's vocabulary (``next_log10`` of every prefix; ``<pad>``, ``<bos>`` and
        ``<mask>`` get 0, ``</s>`` is ``<eos>``)."""
        self._check_fitted()
        K = len(self.output_labels())
        out = []
        for i, v in enumerate(inputs):
            hist = self._history(v, i)
            chains = np.stack([_context_chain(self.tables_, hist[: j + 1]) for j in range(len(hist))]) if hist \
                else np.zeros((0, max(self.config.order - 1, 0)), dtype=np.int64)
            p = np.power(10.0, next_log10_rows(self.tables_, chains))  # (J, V_model): unk <s> </s> words...
            rows = np.zeros((len(hist), K))  # (J, K) task ids: pad unk bos eos mask words...
            rows[:, 1:4] = p[:, [UNK, BOS, EOS]]
            rows[:, 5:] = p[:, 3:]
            out.append(torch.from_numpy(rows))
        return out

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 200, temperature: float = 1.0,
        top_k: int | None = None, seed: int = 0, *, top_p: float | None = None,
        method: str = "sample", beam: int = 4, stop_at_eos: bool = False,
    ) -> list[str]:
        """Continuations through :mod:`seqlab.inference.decoding`: ``method`` "sample"
        (temperature, top-k, top-p; ``temperature == 0`` is greedy), "greedy" or "beam". After
        ``</s>`` a new sentence starts, as in the training stream, unless ``stop_at_eos``."""
        self._check_fitted()
        gen = torch.Generator().manual_seed(seed)
        codec: Any = getattr(self.task, "codec")  # noqa: B009 (the lm task's)
        stepper = NGramStepper(self.tables_)
        outs = []
        for i, prompt in enumerate(prompts):
            new = decode_continuation(
                stepper, self._history(prompt, i), max_new_tokens, EOS if stop_at_eos else None,
                method, temperature, top_k, top_p, beam, gen,  # type: ignore[arg-type]
            )
            outs.append(codec.detokenize(codec.decode(self._to_task(np.asarray(new, dtype=np.int64)).tolist())))
        return outs

    def sample_ids(
        self, history: list[int], n: int, temperature: float, top_k: int | None, generator: torch.Generator,
        top_p: float | None = None,
    ) -> list[int]:
        """``n`` model ids sampled one by one after ``history`` (model ids, from ``<s>``)."""
        return decode_continuation(NGramStepper(self.tables_), history, n, None, "sample", temperature, top_k, top_p, 1, generator)

    def to_arpa(self, path: str) -> None:
        """Export as an ARPA file (readable by KenLM and SRILM)."""
        self._check_fitted()
        write_arpa(path, self._vocab(), self.tables_)

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        t = self.tables_
        tensors: dict[str, torch.Tensor] = {}
        for n in range(1, t.order + 1):
            tensors[f"keys_{n}"] = torch.from_numpy(t.keys[n - 1])
            tensors[f"logp_{n}"] = torch.from_numpy(t.logp[n - 1])
            tensors[f"backoff_{n}"] = torch.from_numpy(t.backoff[n - 1])
        return tensors, {"vocab_size": t.vocab_size, "discounts": [d.tolist() for d in self.discounts_]}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        n = self.config.order
        try:
            cols = [[tensors[f"{name}_{i}"].numpy() for i in range(1, n + 1)] for name in ("keys", "logp", "backoff")]
        except KeyError as e:
            raise SeqlabError(f"the saved n-gram tables lack {e}; they do not fit order {n}") from None
        self.tables_ = NGramTables(int(extra["vocab_size"]), *cols)
        self.discounts_ = [np.asarray(d) for d in extra.get("discounts", [])]

