"""Attention over an encoder's states for RNN sequence-to-sequence decoders.

Bahdanau et al. 2015 (additive): ``score(q, h_j) = v^T tanh(W_q q + W_k h_j)``.
Luong et al. 2015 (multiplicative): "dot" ``score(q, h_j) = q^T h_j`` and "general"
``score(q, h_j) = q^T W_a h_j``.

Each scorer splits into ``keys(memory)``, computed once per source (and kept in a decoder's
state), and ``scores(query, keys)``; :func:`masked_softmax` turns scores into weights that are a
distribution over real source positions and exactly zero on padding.

Shapes: B batch, T decoder steps, S source positions, M memory features (encoder output),
Q query features (decoder hidden size), A additive attention size. Masks are (B, S) bool,
True = real source token.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError

__all__ = [
    "AttentionKind", "masked_softmax", "additive_scores", "dot_scores", "SourceAttention",
]

AttentionKind = Literal["bahdanau", "luong_dot", "luong_general"]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax of ``scores`` (B, T, S) over real positions of ``mask`` (B, S); zeros on padding.

    A row with no real position gets all-zero weights (never NaN)."""
    m = mask.unsqueeze(1)  # (B, 1, S)
    filled = scores.masked_fill(~m, float("-inf"))  # (B, T, S)
    # a row without any real position would be all -inf: shift it to 0 so softmax stays finite
    filled = torch.where(m.any(-1, keepdim=True), filled, torch.zeros_like(filled))
    return torch.softmax(filled, dim=-1) * m  # (B, T, S)


def additive_scores(query: Tensor, keys: Tensor, w_query: nn.Linear, v: Tensor) -> Tensor:
    """Bahdanau scores: ``query`` (B, T, Q), ``keys`` = W_k h (B, S, A) -> (B, T, S)."""
    q = w_query(query)  # (B, T, A)
    e = torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
    return e @ v  # (B, T, S)


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """Luong dot scores: ``query`` (B, T, Q), ``keys`` (B, S, Q) -> (B, T, S)."""
    return query @ keys.transpose(1, 2)  # (B, T, S)


class SourceAttention(nn.Module):
    """Attention of decoder states (queries) over encoder states (memory).

    ``kind``: "bahdanau" (additive, ``attention_dim`` = A), "luong_dot" or "luong_general".
    For "luong_dot" the score needs ``memory_dim == query_dim``; when they differ (a
    bidirectional encoder has M = 2H) the memory is first mapped to Q by a learned linear
    layer, which makes it the "general" score in all but name. The context is always a mix of
    the raw memory (B, T, M).
    """

    def __init__(self, kind: AttentionKind, query_dim: int, memory_dim: int, attention_dim: int | None = None) -> None:
        super().__init__()
        if kind not in ("bahdanau", "luong_dot", "luong_general"):
            raise ConfigError(f"unknown attention {kind!r}; valid: bahdanau, luong_dot, luong_general")
        self.kind = kind
        self.key_proj: nn.Module
        if kind == "bahdanau":
            a = attention_dim or query_dim
            self.key_proj = nn.Linear(memory_dim, a, bias=False)  # W_k
            self.query_proj = nn.Linear(query_dim, a, bias=True)  # W_q (+ bias)
            self.v = nn.Parameter(torch.empty(a).uniform_(-a**-0.5, a**-0.5))
        elif kind == "luong_general" or memory_dim != query_dim:
            self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)  # W_a
        else:
            self.key_proj = nn.Identity()

    def keys(self, memory: Tensor) -> Tensor:
        """(B, S, M) memory -> (B, S, K) keys, once per source."""
        keys: Tensor = self.key_proj(memory)  # (B, S, K)
        return keys

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """``query`` (B, T, Q), ``keys`` (B, S, K) -> unnormalised scores (B, T, S)."""
        if self.kind == "bahdanau":
            return additive_scores(query, keys, self.query_proj, self.v)
        return dot_scores(query, keys)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """-> context (B, T, M) and weights (B, T, S) (zero on padded source positions)."""
        weights = masked_softmax(self.scores(query, keys), mask)  # (B, T, S)
        return weights @ memory, weights  # (B, T, M), (B, T, S)
