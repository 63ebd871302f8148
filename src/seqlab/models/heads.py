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
- :class:`RegressionHead` pools like :class:`SequenceHead` and maps to K real numbers: (B, K).

Every head is a :class:`Head`: besides ``forward(h, mask)`` it says how its output is decided
(``decide``: the scores the task decodes, or a structured head's best ids), turned into
probabilities (``probabilities``), and whether it owns the loss (``loss``: the CRF's NLL; None
= the task's loss on the output).
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
    "Head", "RegressionHead", "SequenceHead", "TokenHead", "CRFTokenHead", "LMHead", "masked_mean", "masked_max", "Pooling", "crf_constraints",
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


class Head(nn.Module):
    """The defaults every head shares: the output is decoded as it is, probabilities are its
    softmax over the last dimension, and the task's loss applies."""

    def decide(self, output: Tensor, mask: Tensor) -> Tensor:
        """What the task decodes: the output itself (scores; the task takes its argmax)."""
        return output

    def probabilities(self, output: Tensor, mask: Tensor, differentiable: bool = False) -> Tensor:
        """(B, T, K) or (B, K) float32 probabilities of the output's classes."""
        return output.float().softmax(-1)

    def loss(self, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor] | None:
        """``(summed loss, units)`` when the head owns its loss, else None (the task's loss)."""
        return None


class SequenceHead(Head):
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


class RegressionHead(SequenceHead):
    """Pool then regress: (B, T, H) -> (B, K) real values (no softmax: probabilities refuse)."""

    def probabilities(self, output: Tensor, mask: Tensor, differentiable: bool = False) -> Tensor:
        raise ConfigError("a regression head predicts values, not class probabilities")


class TokenHead(Head):
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


class CRFTokenHead(Head):
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

    def loss(self, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The CRF NLL summed over sequences; units = labelled tokens, so the reported loss is per
        token like the softmax head's (a sequence's NLL spread over its tokens)."""
        mask = batch["mask"]
        return self.nll(output, batch["labels"], mask), ((batch["labels"] != -100) & mask).sum()

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """(B, T) best tag ids under the constraints, 0 on padding."""
        return self.crf.decode(emissions.float(), mask)

    def decide(self, output: Tensor, mask: Tensor) -> Tensor:
        """The Viterbi path (B, T) long: the task decodes ids as they are."""
        return self.decode(output, mask)

    def probabilities(self, output: Tensor, mask: Tensor, differentiable: bool = False) -> Tensor:
        """Posterior node marginals p(y_t = k | x), (B, T, C) float32; ``differentiable=True``
        computes them as the gradient of the reference log-partition with ``create_graph``, so a
        saliency can differentiate through them."""
        em = output.float()  # (B, T, C)
        if not differentiable:
            return self.crf.marginals(em, mask)
        from seqlab.inference import log_partition_ref

        tr, st, en = self.crf._params(em)
        log_z = log_partition_ref(em, tr, st, en, mask)  # (B,)
        (node,) = torch.autograd.grad(log_z.sum(), em, create_graph=True)  # (B, T, C)
        return node


class LMHead(Head):
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
