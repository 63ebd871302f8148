"""Hidden Markov model estimators: a Markov chain of hidden states plus an emission family.

``HMM`` holds the chain (``startprob_`` (N,), ``transmat_`` (N, N), optional ``endprob_`` (N,))
and one :class:`~seqlab.models.classical.hmm_emissions.Emission`; ``CategoricalHMM`` and
``GaussianHMM`` are the two ready-made pairings. Every dynamic program (forward-backward,
Viterbi, sampling) is :mod:`seqlab.inference`'s, shared with the CRFs; this module only turns
parameters into log-potentials and expected counts back into parameters.

Fitting is Baum-Welch (Baum et al. 1970; Rabiner 1989): an E-step of forward-backward
posteriors over all sequences, an M-step of normalised expected counts, repeated ``n_iter``
times or until the log-likelihood gains less than ``tol``; ``n_init`` random restarts, the best
kept. The log-likelihood of the parameters *before* each M-step is recorded in ``history_``
(as hmmlearn's monitor does), so with no smoothing it never decreases.

Sequences are passed as a list (different lengths welcome), never concatenated with lengths.
Internally they are sorted by length, padded in batches of ``batch_size`` with a (B, T) mask.

Conventions and differences from hmmlearn (0.3): no end state unless ``endprob_`` is set (the
supervised tagger sets it), as hmmlearn; the M-step is hmmlearn's with its default priors
(``smoothing=0`` is ``startprob_prior=transmat_prior=emissionprob_prior=1``); ``fit(init=False)``
is ``init_params=""`` (start from the parameters set by hand). Differences: random
initialisation draws its own numbers (start and transition rows ``U(0.5, 1.5)`` normalised,
categorical rows ``U(0, 1)`` normalised, Gaussian means by k-means++ and the data variance plus
``min_covar``), an unvisited state keeps its previous parameters (hmmlearn zeroes its rows),
and Gaussian variances are floored at ``min_covar`` after each M-step.

Shapes: B batch, T time, N states, V symbols, D features.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from seqlab.errors import ConfigError, DataError
from seqlab.inference import forward_backward, log_partition, sample, viterbi
from seqlab.models.classical.hmm_emissions import CategoricalEmission, Emission, GaussianEmission

__all__ = ["HMM", "CategoricalHMM", "GaussianHMM"]

Batch = tuple[list[int], Tensor, Tensor]  # original indices, (B, T[, D]) observations, (B, T) mask


def _normalise(counts: Tensor, old: Tensor) -> Tensor:
    """Rows of ``counts`` divided by their sums; an all-zero row keeps ``old``'s row."""
    total = counts.sum(-1, keepdim=True)
    return torch.where(total > 0, counts / total.clamp(min=1e-300), old)


class HMM:
    """A hidden Markov model with ``n_states`` states and the given emission family.

    Args:
        emission: the emission family (its parameters are learned or set by the user).
        n_states: number of hidden states N.
        n_iter, tol: Baum-Welch stops after ``n_iter`` iterations or when the log-likelihood
            gains less than ``tol`` (nats, summed over sequences) in one iteration.
        n_init: random restarts; the one with the highest final log-likelihood is kept.
        smoothing: pseudo-count added to start and transition expected counts (0 = ML).
        seed: seeds initialisation and sampling.
        batch_size: sequences per padded batch in the E-step, Viterbi and scoring.
        dtype: float64 (default, as hmmlearn) or float32 (faster).
    """

    def __init__(
        self, emission: Emission, n_states: int, *, n_iter: int = 100, tol: float = 1e-4, n_init: int = 1,
        smoothing: float = 0.0, seed: int = 0, batch_size: int = 2048, dtype: torch.dtype = torch.float64,
    ) -> None:
        if n_states < 1 or n_iter < 0 or n_init < 1 or batch_size < 1:
            raise ConfigError(f"need n_states >= 1, n_iter >= 0, n_init >= 1, batch_size >= 1; found {n_states}, {n_iter}, {n_init}, {batch_size}")
        if smoothing < 0:
            raise ConfigError(f"smoothing must be >= 0, found {smoothing}")
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"dtype must be torch.float32 or torch.float64, found {dtype}")
        self.emission = emission
        self.n_states = n_states
        self.n_iter, self.tol, self.n_init = n_iter, tol, n_init
        self.smoothing, self.seed, self.batch_size, self.dtype = smoothing, seed, batch_size, dtype
        self.startprob_: Tensor | None = None
        self.transmat_: Tensor | None = None
        self.endprob_: Tensor | None = None
        self.history_: list[float] = []
        self.restarts_: list[list[float]] = []  # the history of every restart (fit with init=True)
        self.converged_ = False

    # --- data ---------------------------------------------------------------------------
    def _check(self, seqs: Sequence[Any]) -> list[Tensor]:
        if isinstance(seqs, Tensor) or not isinstance(seqs, (list, tuple)):
            raise DataError(None, None, "a list of sequences (one array per sequence)", type(seqs).__name__)
        return [self.emission.check(torch.as_tensor(s), f"sequence {i}") for i, s in enumerate(seqs)]

    def _batches(self, seqs: list[Tensor], batch_size: int | None = None) -> Iterator[Batch]:
        """Padded batches of similar lengths: (indices, (B, T[, D]) observations, (B, T) mask)."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        size = batch_size or self.batch_size
        for a in range(0, len(order), size):
            idx = order[a : a + size]
            rows = [seqs[i] for i in idx]
            lengths = torch.tensor([len(s) for s in rows])  # (B,)
            x = pad_sequence(rows, batch_first=True)  # (B, T[, D]), zeros on padding
            mask = torch.arange(x.shape[1]) < lengths[:, None]  # (B, T)
            yield idx, x, mask

    # --- parameters -----------------------------------------------------------------------
    def _chain(self) -> tuple[Tensor, Tensor, Tensor]:
        """Log start (N,), log transitions (N, N), log end (N,)."""
        if self.startprob_ is None or self.transmat_ is None:
            raise ConfigError("the HMM has no parameters yet: call fit() or set startprob_ and transmat_")
        start = self.startprob_.to(self.dtype).log()
        trans = self.transmat_.to(self.dtype).log()
        end = torch.zeros_like(start) if self.endprob_ is None else self.endprob_.to(self.dtype).log()
        return start, trans, end

    def _potentials(self, x: Tensor) -> Tensor:
        return self.emission.log_prob(x).to(self.dtype)  # (B, T, N)

    def _init_params(self, seqs: list[Tensor], generator: torch.Generator) -> None:
        n = self.n_states
        s = torch.rand(n, generator=generator, dtype=torch.float64) + 0.5  # (N,)
        t = torch.rand(n, n, generator=generator, dtype=torch.float64) + 0.5  # (N, N)
        self.startprob_ = (s / s.sum()).to(self.dtype)
        self.transmat_ = (t / t.sum(-1, keepdim=True)).to(self.dtype)
        self.emission.init_params(n, torch.cat(seqs), generator, self.dtype)

    # --- Baum-Welch -----------------------------------------------------------------------
    def _e_step(self, seqs: list[Tensor]) -> tuple[float, dict[str, Tensor]]:
        start, trans, end = self._chain()
        stats = {"start": torch.zeros_like(start), "trans": torch.zeros_like(trans)}
        em_stats = self.emission.new_stats()
        total = 0.0
        for _, x, mask in self._batches(seqs):
            if x.shape[1] == 0:  # only empty sequences: nothing to count
                continue
            post = forward_backward(self._potentials(x), trans, start, end, mask)
            total += float(post.log_z.sum())
            stats["start"] += post.node[:, 0].sum(0)  # (N,), 0 for empty rows
            stats["trans"] += post.edge.sum(0)  # (N, N)
            self.emission.accumulate(em_stats, x, post.node, mask)
        stats.update({f"em_{k}": v for k, v in em_stats.items()})
        return total, stats

    def _m_step(self, stats: dict[str, Tensor]) -> None:
        assert self.startprob_ is not None and self.transmat_ is not None
        k = self.smoothing
        self.startprob_ = _normalise(stats["start"] + k, self.startprob_.to(self.dtype))
        self.transmat_ = _normalise(stats["trans"] + k, self.transmat_.to(self.dtype))
        self.emission.m_step({k_[3:]: v for k_, v in stats.items() if k_.startswith("em_")})

    def _em(self, seqs: list[Tensor]) -> tuple[list[float], bool]:
        history: list[float] = []
        for _ in range(self.n_iter):
            ll, stats = self._e_step(seqs)
            self._m_step(stats)
            history.append(ll)
            if len(history) >= 2 and history[-1] - history[-2] < self.tol:
                return history, True
        return history, False

    def fit(self, sequences: Sequence[Any], *, init: bool = True) -> HMM:
        """Baum-Welch on a list of sequences; ``init=False`` starts from the current parameters
        (one run, as hmmlearn with ``init_params=""``). Returns self."""
        seqs = self._check(sequences)
        if not any(len(s) for s in seqs):
            raise DataError(None, None, "at least one non-empty sequence", "none")
        if not init:
            self.history_, self.converged_ = self._em(seqs)
            return self
        gen = torch.Generator().manual_seed(self.seed)
        best: tuple[float, dict[str, Tensor], list[float], bool] | None = None
        self.restarts_ = []
        for _ in range(self.n_init):
            self._init_params(seqs, gen)
            history, converged = self._em(seqs)
            self.restarts_.append(history)
            final = history[-1] if history else float("-inf")
            if best is None or final > best[0]:
                best = (final, self.get_tensors(), history, converged)
        assert best is not None
        self.set_tensors(best[1])
        self.history_, self.converged_ = best[2], best[3]
        return self

    # --- inference --------------------------------------------------------------------------
    def score_samples(self, sequences: Sequence[Any]) -> Tensor:
        """(B,) log p(x) of each sequence (forward algorithm), in input order."""
        seqs = self._check(sequences)
        start, trans, end = self._chain()
        out = torch.zeros(len(seqs), dtype=self.dtype)
        for idx, x, mask in self._batches(seqs):
            out[idx] = log_partition(self._potentials(x), trans, start, end, mask)
        return out

    def score(self, sequences: Sequence[Any]) -> float:
        """Total log-likelihood of the sequences (nats), as hmmlearn's ``score``."""
        return float(self.score_samples(sequences).sum())

    def decode(self, sequences: Sequence[Any]) -> tuple[list[Tensor], Tensor]:
        """Viterbi: the most likely state path of each sequence ((T_i,) long) and its log-probability (B,)."""
        seqs = self._check(sequences)
        start, trans, end = self._chain()
        paths: list[Tensor] = [torch.zeros(0, dtype=torch.long)] * len(seqs)
        scores = torch.zeros(len(seqs), dtype=self.dtype)
        for idx, x, mask in self._batches(seqs):
            best, sc = viterbi(self._potentials(x), trans, start, end, mask)
            scores[idx] = sc.to(self.dtype)
            for r, i in enumerate(idx):
                paths[i] = best[r, : len(seqs[i])].clone()
        return paths, scores

    def predict(self, sequences: Sequence[Any]) -> list[Tensor]:
        """The Viterbi state path of each sequence, (T_i,) long."""
        return self.decode(sequences)[0]

    def predict_proba(self, sequences: Sequence[Any]) -> list[Tensor]:
        """Posterior state marginals p(s_t = i | x) of each sequence, (T_i, N)."""
        seqs = self._check(sequences)
        start, trans, end = self._chain()
        out: list[Tensor] = [torch.zeros(0, self.n_states)] * len(seqs)
        for idx, x, mask in self._batches(seqs):
            node = forward_backward(self._potentials(x), trans, start, end, mask).node  # (B, T, N)
            for r, i in enumerate(idx):
                out[i] = node[r, : len(seqs[i])].clone()
        return out

    def sample(self, n: int, length: int, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` sequences of ``length`` steps: observations (n, length[, D]) and states (n, length).

        States come from the chain's exact sampler (zero emission potentials leave the prior
        Markov chain; with an end state the paths are conditioned on ending at ``length``).
        """
        if n < 1 or length < 1:
            raise ConfigError(f"n and length must be >= 1, found {n}, {length}")
        start, trans, end = self._chain()
        gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
        zeros = torch.zeros(1, length, self.n_states, dtype=self.dtype)  # (1, T, N)
        mask = torch.ones(1, length, dtype=torch.bool)  # (1, T)
        states = sample(zeros, trans, start, end, mask, n, generator=gen)[0]  # (n, T)
        return self.emission.sample(states, gen), states

    # --- state ------------------------------------------------------------------------------
    def get_tensors(self) -> dict[str, Tensor]:
        """All learned tensors, by name (chain and emission)."""
        start, trans, _ = self._chain()
        out = {"startprob": start.exp().clone(), "transmat": trans.exp().clone()}
        if self.endprob_ is not None:
            out["endprob"] = self.endprob_.clone()
        out.update({f"emission.{k}": v.clone() for k, v in self.emission.tensors().items()})
        return out

    def set_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.startprob_ = tensors["startprob"].to(self.dtype)
        self.transmat_ = tensors["transmat"].to(self.dtype)
        self.endprob_ = tensors["endprob"].to(self.dtype) if "endprob" in tensors else None
        self.emission.set_tensors({k[9:]: v.to(self.dtype) for k, v in tensors.items() if k.startswith("emission.")})
        self.n_states = int(self.startprob_.shape[0])

    @property
    def n_parameters(self) -> int:
        """Free parameters: N - 1 start, N (N - 1) transitions, plus the emission's."""
        n = self.n_states
        return n - 1 + n * (n - 1) + self.emission.n_parameters

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_states={self.n_states}, emission={self.emission.kind}, n_iter={self.n_iter}, n_init={self.n_init}, seed={self.seed})"


class CategoricalHMM(HMM):
    """HMM over discrete symbols ``0 .. V-1`` (``emissionprob_`` (N, V))."""

    def __init__(self, n_states: int, n_symbols: int | None = None, *, emission_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(CategoricalEmission(n_symbols, emission_smoothing), n_states, **kwargs)

    @property
    def emissionprob_(self) -> Tensor:
        assert isinstance(self.emission, CategoricalEmission)
        return self.emission._probs()

    @emissionprob_.setter
    def emissionprob_(self, value: Tensor) -> None:
        self.emission.set_tensors({"probs": torch.as_tensor(value).to(self.dtype)})


class GaussianHMM(HMM):
    """HMM over real vectors (T, D) with diagonal-covariance Gaussian states (``means_``, ``covars_`` (N, D)).

    Used for unsupervised segmentation: ``predict`` gives the Viterbi state path of each series.
    """

    def __init__(self, n_states: int, n_features: int | None = None, *, covar_prior: float = 1e-2, min_covar: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(GaussianEmission(n_features, covar_prior, min_covar), n_states, **kwargs)

    def _em_params(self) -> GaussianEmission:
        assert isinstance(self.emission, GaussianEmission)
        return self.emission

    @property
    def means_(self) -> Tensor:
        return self._em_params()._params()[0]

    @property
    def covars_(self) -> Tensor:
        return self._em_params()._params()[1]

    def set_gaussians(self, means: Tensor, covars: Tensor) -> None:
        """Set the per-state means and diagonal variances, (N, D) each."""
        self.emission.set_tensors({"means": torch.as_tensor(means).to(self.dtype), "covars": torch.as_tensor(covars).to(self.dtype)})
