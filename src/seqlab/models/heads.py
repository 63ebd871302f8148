"""Task heads over any encoder's (B, T, H) states.

- :class:`SequenceHead` pools a sequence into one vector (last / mean / max / attention) and
  classifies it: (B, T, H) -> (B, C).
- :class:`TokenHead` classifies every position: (B, T, H) -> (B, T, C).
- :class:`LMHead` predicts tokens with the output matrix tied to the input embedding
  (Press & Wolf 2017; Inan et al. 2017): (B, T, H) -> (B, T, V).

Attention pooling scores each state with a one-hidden-layer MLP and takes the masked softmax
average (Yang et al. 2016, without the context vector's separate embedding).

- :class:`CRFTokenHead` is a TokenHead whose (B, T, C) scores are the emissions of a linear-chain
  CRF (Lample et al. 2016): the loss is the CRF negative log-likelihood and decoding is
  Viterbi, constrained to well-formed IOB2 / IOBES spans when the task uses one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.inference import Constraints, span_constraints
from seqlab.models.crf_layer import CRF
from seqlab.models.layers import last_index

__all__ = [
    "SequenceHead", "TokenHead", "CRFTokenHead", "LMHead", "masked_mean", "masked_max", "Pooling", "crf_constraints",
]

Pooling = Literal["last", "mean", "max", "attention"]
LastFn = Callable[[Tensor, Tensor], Tensor]


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """(B, T, H), (B, T) -> (B, H) mean over real positions."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def masked_max(h: Tensor, mask: Tensor) -> Tensor:
    """(B, T, H), (B, T) -> (B, H) max over real positions (0 for an empty row)."""
    filled = h.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    out = filled.max(1).values
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


def gather_last(h: Tensor, mask: Tensor) -> Tensor:
    """(B, T, H) -> (B, H) state at each row's last real position."""
    return h[torch.arange(h.shape[0], device=h.device), last_index(mask)]


class SequenceHead(nn.Module):
    """Pool then classify: (B, T, H) -> (B, C)."""

    def __init__(
        self, dim: int, n_classes: int, pooling: Pooling = "last", dropout: float = 0.0, last: LastFn | None = None
    ) -> None:
        super().__init__()
        if pooling not in ("last", "mean", "max", "attention"):
            raise ConfigError(f"unknown pooling {pooling!r}; valid: last, mean, max, attention")
        self.pooling = pooling
        self._last = last or gather_last
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1)) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, n_classes)

    def pool(self, h: Tensor, mask: Tensor) -> Tensor:
        """(B, T, H) -> (B, H)."""
        if self.pooling == "last":
            return self._last(h, mask)
        if self.pooling == "mean":
            return masked_mean(h, mask)
        if self.pooling == "max":
            return masked_max(h, mask)
        assert self.score is not None
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.nan_to_num(scores.softmax(-1))  # an empty row gets zeros
        return torch.einsum("bt,bth->bh", weights, h)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(self.pool(h, mask)))  # (B, C)


class TokenHead(nn.Module):
    """Per-position classifier: (B, T, H) -> (B, T, C)."""

    def __init__(self, dim: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, n_classes)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(h))  # (B, T, C)


def crf_constraints(tags: Sequence[str], scheme: str) -> Constraints | None:
    """Span well-formedness for a tag vocabulary (None when the scheme is "none").

    A tag outside the scheme (a special entry such as "<pad>") is constrained like "O": it
    closes any open span, so decoded paths stay well-formed whatever the vocabulary holds.
    """
    if scheme not in ("IOB2", "IOBES"):
        return None
    prefixes = ("B-", "I-") if scheme == "IOB2" else ("B-", "I-", "E-", "S-")
    as_scheme = [t if t == "O" or (t[:2] in prefixes and len(t) > 2) else "O" for t in tags]
    return span_constraints(as_scheme, scheme)


class CRFTokenHead(nn.Module):
    """Per-position emission scores (B, T, H) -> (B, T, C) plus the CRF that ties them."""

    def __init__(self, dim: int, n_classes: int, dropout: float = 0.0, constraints: Constraints | None = None) -> None:
        super().__init__()
        self.emit = TokenHead(dim, n_classes, dropout)
        self.crf = CRF(n_classes, constraints)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.emit(h, mask)  # (B, T, C) emissions

    def nll(self, emissions: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        """Summed CRF NLL over the batch; labels -100 (unknown) are summed out."""
        return self.crf.nll(emissions.float(), labels, mask, reduction="sum")

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """(B, T) best tag ids under the constraints, 0 on padding."""
        return self.crf.decode(emissions.float(), mask)


class LMHead(nn.Module):
    """Token prediction tied to the embedding matrix: (B, T, H) -> (B, T, V).

    When H differs from the embedding width E, a linear map H -> E comes first.
    """

    def __init__(self, dim: int, embedding: nn.Embedding | None, vocab_size: int, embed_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, embed_dim) if dim != embed_dim else nn.Identity()
        self.out = nn.Linear(embed_dim, vocab_size)
        if embedding is not None:
            self.out.weight = embedding.weight  # tied: one (V, E) matrix

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.proj(self.dropout(h)))  # (B, T, V)
