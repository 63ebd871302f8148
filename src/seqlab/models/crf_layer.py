"""A linear-chain CRF output layer over per-token emission scores (Lafferty et al. 2001;
Lample et al. 2016 for the BiLSTM-CRF tagger).

Shapes: B batch, T time, N tags, k paths. ``mask`` (B, T) bool, True = real token, a
left-aligned prefix; rows may have any length, including 0, in any order.

The layer holds the parameters (``transitions[i, j]`` scores tag i followed by tag j,
``start``, ``end``); the dynamic programs are :mod:`seqlab.inference`. ``constraints``
(e.g. :func:`seqlab.inference.span_constraints`) restrict decoding to well-formed paths; the
likelihood stays over all paths, as in pytorch-crf and AllenNLP's default.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.inference import Constraints, forward_backward, log_partition, nbest, score, viterbi

__all__ = ["CRF", "Reduction"]

Reduction = Literal["none", "sum", "mean", "token_mean"]


class CRF(nn.Module):
    """Linear-chain CRF: negative log-likelihood, marginals, Viterbi and n-best decoding."""

    def __init__(self, num_tags: int, constraints: Constraints | None = None) -> None:
        super().__init__()
        if num_tags < 1:
            raise ConfigError(f"num_tags must be >= 1, found {num_tags}")
        if constraints is not None and constraints.num_tags != num_tags:
            raise ConfigError(f"constraints are for {constraints.num_tags} tags, the CRF has {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # (N, N)
        self.start = nn.Parameter(torch.empty(num_tags))  # (N,)
        self.end = nn.Parameter(torch.empty(num_tags))  # (N,)
        for p in (self.transitions, self.start, self.end):
            nn.init.uniform_(p, -0.1, 0.1)
        # derived from the task, so not saved with the weights (persistent=False)
        self.register_buffer("allowed", None if constraints is None else constraints.transitions, persistent=False)
        self.register_buffer("allowed_start", None if constraints is None else constraints.start, persistent=False)
        self.register_buffer("allowed_end", None if constraints is None else constraints.end, persistent=False)

    @property
    def constraints(self) -> Constraints | None:
        allowed, first, last = self.allowed, self.allowed_start, self.allowed_end
        if not isinstance(allowed, Tensor) or not isinstance(first, Tensor) or not isinstance(last, Tensor):
            return None
        return Constraints(allowed, first, last)

    def _params(self, emissions: Tensor, detach: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        dt = emissions.dtype
        tr, st, en = self.transitions.to(dt), self.start.to(dt), self.end.to(dt)
        return (tr.detach(), st.detach(), en.detach()) if detach else (tr, st, en)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: Reduction = "sum") -> Tensor:
        """-log p(tags | emissions): (B,) for "none", else summed / averaged over sequences
        ("mean") or over real tokens ("token_mean").

        A negative tag at a real position (e.g. -100) is an unknown label: it is summed out,
        -log sum_{paths agreeing with the known tags} p(path) (Tsuboi et al. 2008).
        """
        tr, st, en = self._params(emissions)
        log_z = log_partition(emissions, tr, st, en, mask)  # (B,)
        unknown = (tags < 0) & mask  # (B, T)
        if bool(unknown.any()):
            known = mask & ~unknown
            keep = F.one_hot(tags.clamp(min=0), self.num_tags).bool() | ~known.unsqueeze(-1)  # (B, T, N)
            clamped = emissions.masked_fill(~keep, float("-inf"))  # only the known tag where known
            per_seq = log_z - log_partition(clamped, tr, st, en, mask)
        else:
            per_seq = log_z - score(emissions, tr, st, en, tags.masked_fill(~mask, 0), mask)  # (B,)
        if reduction == "none":
            return per_seq
        if reduction == "sum":
            return per_seq.sum()
        if reduction == "mean":
            return per_seq.mean()
        if reduction == "token_mean":
            return per_seq.sum() / mask.sum().clamp(min=1)
        raise ConfigError(f"unknown reduction {reduction!r}; valid: none, sum, mean, token_mean")

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Posterior p(y_t = j | x): (B, T, N), 0 on padding (no gradient)."""
        return forward_backward(emissions, *self._params(emissions), mask).node

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Best (constrained) tag path: (B, T) long, 0 on padding."""
        tr, st, en = self._params(emissions, detach=True)
        paths, _ = viterbi(emissions.detach(), tr, st, en, mask, self.constraints)
        return paths

    def nbest(self, emissions: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The k best (constrained) paths (B, k, T) and their scores (B, k), best first."""
        tr, st, en = self._params(emissions, detach=True)
        return nbest(emissions.detach(), tr, st, en, mask, k, self.constraints)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, constrained={self.allowed is not None}"
