"""Semirings and the one readable linear-chain dynamic program written over them.

Shapes: B batch, T time, N states/tags.

A semiring gives the "sum" of the chain DP (the "product" is always ``+`` in log space):
the log semiring (``logsumexp``) gives the log-partition, the max semiring (``amax``) the best
path score. The marginals are the gradient of the log-partition (Eisner 2016; Rush 2020,
pytorch-struct), which is how the tests pin the fast forward-backward to this reference.

:func:`chain_forward` is the per-step reference: short, obviously right, slow. The fast paths
in :mod:`seqlab.inference.fast` are tested against it.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

__all__ = ["Semiring", "LogSemiring", "MaxSemiring", "alphas", "chain_forward", "log_alphas", "log_betas"]


class Semiring(Protocol):
    @staticmethod
    def sum(x: Tensor, dim: int) -> Tensor: ...


class LogSemiring:
    """(logsumexp, +): sums over paths of exp(score)."""

    @staticmethod
    def sum(x: Tensor, dim: int) -> Tensor:
        return torch.logsumexp(x, dim=dim)


class MaxSemiring:
    """(max, +): the best path's score."""

    @staticmethod
    def sum(x: Tensor, dim: int) -> Tensor:
        return torch.amax(x, dim=dim)


def chain_forward(
    sr: type[Semiring], emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor
) -> Tensor:
    """Semiring sum over all tag paths of each sequence: (B, T, N) -> (B,).

    The path score is ``start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t]
    + end[y_last]``. Positions past a row's length leave its alpha unchanged; an empty row
    gives 0 (the empty path). Differentiable through autograd.
    """
    B, T, _ = emissions.shape
    if T == 0:  # still attached to the graph, so callers can always backpropagate
        return emissions.sum((1, 2)) + 0.0 * (transitions.sum() + start.sum() + end.sum())
    e = emissions.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, N) padding cannot leak NaN
    alpha = start + e[:, 0]  # (B, N)
    for t in range(1, T):
        nxt = sr.sum(alpha.unsqueeze(-1) + transitions, dim=1) + e[:, t]  # (B, N)
        alpha = torch.where(mask[:, t, None], nxt, alpha)
    total = sr.sum(alpha + end, dim=-1)  # (B,)
    return torch.where(mask[:, 0], total, torch.zeros_like(total))


def log_alphas(emissions: Tensor, transitions: Tensor, start: Tensor, mask: Tensor) -> Tensor:
    """Log forward variables (B, T, N): alpha[b, t, j] = log-sum of prefixes ending in j at t
    (emission at t included). Padding positions repeat the last real alpha."""
    return alphas(LogSemiring, emissions, transitions, start, mask)


def alphas(sr: type[Semiring], emissions: Tensor, transitions: Tensor, start: Tensor, mask: Tensor) -> Tensor:
    """Forward variables (B, T, N) in any semiring: alpha[b, t, j] = semiring sum of the scores
    of prefixes ending in j at t (emission at t included); padding repeats the last real alpha.
    The max semiring's are the Viterbi scores (a checkpointed backtrace restarts from them)."""
    B, T, _ = emissions.shape
    e = emissions.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, N)
    out = []
    alpha = start + e[:, 0] if T else e.new_zeros(0)
    for t in range(T):
        if t:
            nxt = sr.sum(alpha.unsqueeze(-1) + transitions, dim=1) + e[:, t]  # (B, N)
            alpha = torch.where(mask[:, t, None], nxt, alpha)
        out.append(alpha)
    return torch.stack(out, dim=1) if out else emissions.new_zeros(emissions.shape)


def log_betas(emissions: Tensor, transitions: Tensor, end: Tensor, mask: Tensor) -> Tensor:
    """Log backward variables (B, T, N): beta[b, t, i] = log-sum of suffixes after state i at t
    (end score included, emission at t excluded). -inf on padding."""
    B, T, N = emissions.shape
    e = emissions.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, N)
    lengths = mask.sum(-1)  # (B,)
    neg = torch.full((B, N), float("-inf"), dtype=emissions.dtype, device=emissions.device)
    beta = neg
    out = []
    for t in range(T - 1, -1, -1):
        nxt = torch.logsumexp(transitions + (e[:, t + 1] + beta).unsqueeze(1), dim=-1) if t + 1 < T else neg  # (B, N)
        is_last = (lengths == t + 1).unsqueeze(-1)  # (B, 1)
        beta = torch.where(is_last, end.expand(B, N), torch.where(mask[:, t, None], nxt, neg))
        out.append(beta)
    out.reverse()
    return torch.stack(out, dim=1) if out else emissions.new_zeros(emissions.shape)
