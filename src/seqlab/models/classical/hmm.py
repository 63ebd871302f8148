"""Hidden Markov models as a seqlab family: a tagger (labeling) and a language model (lm).

* ``labeling``: supervised counting of words -> tags with TnT's suffix model for unknown words
  (Brants 2000), decoded by Viterbi (:class:`~seqlab.models.classical.hmm_tnt.HMMTagger`).
  ``evaluate`` reports the task's metrics; ``loss`` is -log p(tags | words) per token.
* ``lm``: a categorical HMM over the task's token ids fitted by Baum-Welch (Rabiner 1989) on the
  id stream cut after each ``<eos>`` and into pieces of at most ``block_size`` ids
  (:class:`~seqlab.models.classical.hmm_core.CategoricalHMM`). Per-token NLL is
  -log p(x_t | x_<t) from the forward variables; every token of a piece is scored, the first
  from the start distribution (the neural LM leaves the stream's first token unscored).

Numeric sequences (Gaussian emissions, segmentation) use the estimators directly:
:class:`~seqlab.models.classical.hmm_core.GaussianHMM`.

Shapes: B batch, T time, N states, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor

from seqlab.config import check_at_least
from seqlab.errors import ConfigError
from seqlab.inference import forward_filter
from seqlab.models.classical.base import ClassicalModel
from seqlab.models.classical.hmm_core import HMM, CategoricalHMM, GaussianHMM
from seqlab.models.classical.hmm_emissions import CategoricalEmission, Emission, GaussianEmission
from seqlab.models.classical.hmm_tnt import HMMTagger
from seqlab.tasks.base import Example, Task
from seqlab.tasks.labeling import LabelingTask, tokens_tags
from seqlab.tasks.lm import LMTask
from seqlab.tasks.text import as_tokens

__all__ = [
    "HMMConfig", "HMMModel", "HMM", "CategoricalHMM", "GaussianHMM", "HMMTagger",
    "Emission", "CategoricalEmission", "GaussianEmission",
]


@dataclass(frozen=True)
class HMMConfig:
    """Settings of the HMM family.

    ``n_states``, ``n_iter``, ``tol`` (nats, total), ``n_init``, ``block_size``, ``batch_size`` and
    ``dtype`` are for Baum-Welch (lm); ``suffix_length`` and ``rare_threshold`` for the TnT
    unknown-word model (labeling); ``smoothing`` is the pseudo-count added to every count
    (labeling) or expected count (lm). ``emission`` must be ``categorical`` for text tasks;
    ``gaussian`` is accepted for completeness and rejected with a pointer to ``GaussianHMM``.
    """

    n_states: int = 32
    emission: Literal["categorical", "gaussian"] = "categorical"
    smoothing: float = 0.1
    suffix_length: int = 10
    rare_threshold: int = 10
    n_init: int = 1
    n_iter: int = 50
    tol: float = 1e-2
    block_size: int = 256
    batch_size: int = 512
    dtype: Literal["float32", "float64"] = "float64"
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "n_states", "n_init", "block_size", "batch_size")
        check_at_least(self, 0, "smoothing", "suffix_length", "rare_threshold", "n_iter")
        if self.emission not in ("categorical", "gaussian"):
            raise ConfigError(f"emission must be 'categorical' or 'gaussian', found {self.emission!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be 'float32' or 'float64', found {self.dtype!r}")


def split_stream(stream: Sequence[int], eos: int, block: int) -> list[list[int]]:
    """Cut an id stream after every ``eos`` and into pieces of at most ``block`` ids."""
    pieces: list[list[int]] = []
    cur: list[int] = []
    for i in stream:
        cur.append(i)
        if i == eos or len(cur) == block:
            pieces.append(cur)
            cur = []
    if cur:
        pieces.append(cur)
    return pieces


class HMMModel(ClassicalModel):
    """The HMM family behind ``seqlab.build("hmm", task="labeling" | "lm")``."""

    serves = (LabelingTask, LMTask)

    def __init__(self, family: str, task: Task, config: HMMConfig) -> None:
        super().__init__(family, task, config)
        if config.emission != "categorical":
            raise ConfigError("text tasks need emission='categorical'; for numeric sequences use "
                              "seqlab.models.classical.hmm.GaussianHMM (fit / predict on (T, D) arrays)")
        self.tagger_: HMMTagger | None = None
        self.hmm_: CategoricalHMM | None = None

    # --- fitting ---------------------------------------------------------------------------
    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]] | None:
        c = self.config
        if isinstance(self.task, LabelingTask):
            words, tags = self._tagged(train)
            self.tagger_ = HMMTagger(c.smoothing, c.suffix_length, c.rare_threshold, c.batch_size)
            self.tagger_.fit(words, tags, tagset=self.task.tag_vocab.itos)
            return None
        pieces = self._pieces(train)
        self.hmm_ = CategoricalHMM(
            c.n_states, len(self.task.codec.fitted_vocab) if isinstance(self.task, LMTask) else None,
            emission_smoothing=c.smoothing, smoothing=c.smoothing, n_iter=c.n_iter, tol=c.tol, n_init=c.n_init,
            seed=c.seed, batch_size=c.batch_size, dtype=getattr(torch, c.dtype),
        )
        self.hmm_.fit(pieces)
        n = sum(len(p) for p in pieces)
        return [{"iteration": float(i + 1), "log_likelihood": ll, "nll_per_token": -ll / n} for i, ll in enumerate(self.hmm_.history_)]

    def _words(self, toks: Sequence[str]) -> list[str]:
        assert isinstance(self.task, LabelingTask)
        return self.task.codec.tokens(list(toks))

    def _tagged(self, examples: Sequence[Example]) -> tuple[list[list[str]], list[list[str]]]:
        pairs = [tokens_tags(ex, i) for i, ex in enumerate(examples)]
        return [self._words(t) for t, _ in pairs], [g for _, g in pairs]

    def _pieces(self, examples: Sequence[Example]) -> list[list[int]]:
        assert isinstance(self.task, LMTask)
        eos = self.task.codec.fitted_vocab.eos_id
        return split_stream(self.task.stream(examples), eos, self.config.block_size)

    # --- scoring ---------------------------------------------------------------------------
    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        self._check_fitted()
        if isinstance(self.task, LabelingTask):
            words, tags = self._tagged(examples)
            tagger = self._tagger()
            preds = tagger.predict(words)
            logp = tagger.log_prob_tags(words, tags)  # (B,)
            return preds, tags, float(-logp.sum()), sum(len(w) for w in words)
        pieces = self._pieces(examples)
        nll, lm_preds = self._lm_pass(pieces)
        return lm_preds, [None] * len(lm_preds), nll, sum(len(p) for p in pieces)

    def _tagger(self) -> HMMTagger:
        if self.tagger_ is None:
            raise ConfigError("the HMM tagger is not fitted")
        return self.tagger_

    def _lm(self) -> CategoricalHMM:
        if self.hmm_ is None:
            raise ConfigError("the HMM language model is not fitted")
        return self.hmm_

    def _filtered(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per-token log p(x_t | x_<t) (B, T) (0 on padding) and log p(s_t | x_<=t) (B, T, N)."""
        hmm = self._lm()
        start, trans, end = hmm._chain()
        return forward_filter(hmm._potentials(x), trans, start, mask)  # (B, T), (B, T, N)

    def _lm_pass(self, pieces: list[list[int]]) -> tuple[float, list[dict[str, int]]]:
        """Summed NLL and per-piece {"chars", "hits"} (top-1 next-token predictions)."""
        assert isinstance(self.task, LMTask)
        hmm = self._lm()
        probs = hmm.emissionprob_  # (N, V)
        start, trans = hmm.startprob_, hmm.transmat_
        assert start is not None and trans is not None
        char_len = self.task.char_lengths
        seqs = [torch.tensor(p, dtype=torch.long) for p in pieces]
        preds: list[dict[str, int]] = [{"chars": 0, "hits": 0}] * len(pieces)
        nll = 0.0
        rows = max(1, 2**22 // max(1, self.config.block_size * probs.shape[1]))  # bounds the (B, T, V) scores
        for idx, x, mask in hmm._batches(seqs, rows):
            tok_ll, filt = self._filtered(x, mask)  # (B, T), (B, T, N)
            nll -= float(tok_ll.sum())
            ahead = torch.cat([start.expand(x.shape[0], 1, -1), filt[:, :-1].exp() @ trans], 1)  # (B, T, N) p(s_t | x_<t)
            guess = (ahead @ probs).argmax(-1)  # (B, T)
            hits = ((guess == x) & mask).sum(-1)  # (B,)
            chars = (char_len[x] * mask).sum(-1)  # (B,)
            for r, i in enumerate(idx):
                preds[i] = {"chars": int(chars[r]), "hits": int(hits[r])}
        return nll, preds

    # --- prediction --------------------------------------------------------------------------
    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        """Tag lists (labeling) or the most likely next token after each prompt (lm)."""
        self._check_fitted()
        if isinstance(self.task, LabelingTask):
            sents = []
            for i, v in enumerate(inputs):
                t = as_tokens(v, "input", i)
                sents.append(self._words(t.split() if isinstance(t, str) else t))
            return self._tagger().predict(sents)
        assert isinstance(self.task, LMTask)
        vocab = self.task.codec.fitted_vocab
        hmm = self._lm()
        prompts = [it["ids"][:-1] for it in self.task.encode_inputs(inputs)]  # the task's trailing pad dropped
        out: list[str] = [""] * len(prompts)
        for idx, x, mask in hmm._batches([torch.tensor(p, dtype=torch.long) for p in prompts]):
            _, filt = self._filtered(x, mask)  # (B, T, N)
            last = filt[torch.arange(x.shape[0]), mask.sum(-1) - 1].exp()  # (B, N)
            assert hmm.transmat_ is not None
            best = (last @ hmm.transmat_ @ hmm.emissionprob_).argmax(-1)  # (B,)
            for r, i in enumerate(idx):
                out[i] = vocab.itos[int(best[r])]
        return out

    # --- probing: per-position output distributions (seqlab.probes) ----------------------------
    def tokenize(self, value: Any) -> list[str]:
        """The tokens the model sees: whitespace-split words (labeling; the tagger does not
        truncate) or the LM task's tokens (its last ``block_size``, as :meth:`predict`)."""
        if isinstance(self.task, LabelingTask):
            t = as_tokens(value, "input", 0)
            return self._words(t.split() if isinstance(t, str) else t)
        return cast(Any, self.task).input_tokens(value)

    def output_labels(self) -> list[str]:
        """Tags (labeling) or the task's vocabulary (lm): the K columns of :meth:`distributions`."""
        if isinstance(self.task, LabelingTask):
            return list(self._tagger().tags_)
        return list(self.task.codec.fitted_vocab.itos)  # type: ignore[attr-defined]

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """Per input a (J, K) float64 tensor. Labeling: the posterior tag marginals
        p(tag_j | all words) (forward-backward, not the Viterbi path). lm: row j =
        p(x_{j+1} | x_{<=j}) = filtered state posterior @ transitions @ emissions."""
        self._check_fitted()
        if isinstance(self.task, LabelingTask):
            return self._tagger().predict_proba([self.tokenize(v) for v in inputs])
        assert isinstance(self.task, LMTask)
        hmm = self._lm()
        assert hmm.transmat_ is not None
        prompts = [it["ids"][:-1] for it in self.task.encode_inputs(list(inputs))]  # the task's trailing pad dropped
        out: list[Tensor] = [torch.zeros(0)] * len(prompts)
        for idx, x, mask in hmm._batches([torch.tensor(p, dtype=torch.long) for p in prompts]):
            _, filt = self._filtered(x, mask)  # (B, T, N) log p(s_t | x_<=t)
            nxt = filt.exp() @ hmm.transmat_.to(filt.dtype) @ hmm.emissionprob_.to(filt.dtype)  # (B, T, V)
            for r, i in enumerate(idx):
                out[i] = nxt[r, : len(prompts[i])].clone()
        return out

    # --- state -------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if isinstance(self.task, LabelingTask):
            tagger = self._tagger()
            return tagger.tensors(), {"mode": "tagger", **tagger.extra()}
        hmm = self._lm()
        return hmm.get_tensors(), {"mode": "lm", "history": hmm.history_}

    def _set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        c = self.config
        if extra.get("mode") == "tagger":
            self.tagger_ = HMMTagger(c.smoothing, c.suffix_length, c.rare_threshold, c.batch_size)
            self.tagger_.set_state(tensors, extra)
            return
        self.hmm_ = CategoricalHMM(c.n_states, emission_smoothing=c.smoothing, smoothing=c.smoothing, n_iter=c.n_iter,
                                   tol=c.tol, n_init=c.n_init, seed=c.seed, batch_size=c.batch_size, dtype=getattr(torch, c.dtype))
        self.hmm_.set_tensors(tensors)
        self.hmm_.history_ = list(extra.get("history", []))
