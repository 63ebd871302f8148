"""Linear-chain inference shared by HMMs and CRFs: partition, marginals, score, Viterbi,
n-best, sampling.

Shapes: B batch, T time, N states/tags, k paths, n samples.

- ``emissions`` (B, T, N): per-position scores (log-potentials, or log emission probabilities);
- ``transitions`` (N, N): ``transitions[i, j]`` scores moving from i to j;
- ``start`` / ``end`` (N,): scores of the first / last tag;
- ``mask`` (B, T) bool, True = real position, a left-aligned prefix; lengths may differ and may
  be 0 (an empty sequence has log-partition 0 and the empty path).

A path y scores ``start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] +
end[y_last]``. Everything works in float32 and float64, gives the same answer for a sequence
alone or padded inside a batch, and :func:`log_partition` is differentiable (its gradient is
the marginals). Fast paths live in :mod:`seqlab.inference.fast`; the ``*_ref`` functions
here are the readable per-step versions the tests pin them to.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from seqlab.errors import DataError
from seqlab.inference.constraints import Constraints
from seqlab.inference.fast import (
    LogPartition,
    forward_chunk,
    marginals_chunk,
    row_chunks,
    scaled_forward,
    viterbi_fast,
)
from seqlab.inference.semiring import LogSemiring, MaxSemiring, chain_forward, log_alphas

__all__ = [
    "ChainPosteriors", "log_partition", "forward_backward", "score", "viterbi", "nbest", "sample",
    "forward_filter", "log_partition_ref", "forward_backward_ref", "viterbi_ref", "forward_filter_ref",
    "check_chain",
]


class ChainPosteriors(NamedTuple):
    log_z: Tensor  # (B,)
    node: Tensor  # (B, T, N) posterior marginals, 0 on padding
    edge: Tensor  # (B, N, N) expected transition counts summed over time


def check_chain(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> None:
    """Raise a DataError naming the first argument whose shape, dtype or layout is wrong."""
    if emissions.dim() != 3 or not emissions.is_floating_point():
        raise DataError(None, None, "emissions as a float tensor (B, T, N)", f"{emissions.dtype} of shape {tuple(emissions.shape)}")
    B, T, N = emissions.shape
    for name, t, shape in (("transitions", transitions, (N, N)), ("start", start, (N,)), ("end", end, (N,))):
        if tuple(t.shape) != shape or t.dtype != emissions.dtype:
            raise DataError(None, None, f"{name} of shape {shape} and dtype {emissions.dtype}", f"{t.dtype} of shape {tuple(t.shape)}")
    if tuple(mask.shape) != (B, T) or mask.dtype != torch.bool:
        raise DataError(None, None, f"mask as a bool tensor of shape {(B, T)}", f"{mask.dtype} of shape {tuple(mask.shape)}")
    if T > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise DataError(None, None, "a left-aligned mask (each row True then False)", "a True after a False")


def _constrained(transitions: Tensor, start: Tensor, end: Tensor, c: Constraints | None) -> tuple[Tensor, Tensor, Tensor]:
    return (transitions, start, end) if c is None else c.apply(transitions, start, end)


def log_partition(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> Tensor:
    """log of the sum over all paths of exp(path score): (B,). Differentiable (first order)."""
    check_chain(emissions, transitions, start, end, mask)
    if emissions.shape[1] == 0:
        return emissions.sum((1, 2)) + 0.0 * (transitions.sum() + start.sum() + end.sum())
    out: Tensor = LogPartition.apply(emissions, transitions, start, end, mask)
    return out


def forward_backward(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> ChainPosteriors:
    """log Z (B,), node marginals (B, T, N) and expected transition counts (B, N, N); no grad.

    Node rows are 0 on padding; a sequence without any valid path gets zero marginals.
    """
    check_chain(emissions, transitions, start, end, mask)
    B, T, N = emissions.shape
    if T == 0:
        return ChainPosteriors(emissions.new_zeros(B), emissions.new_zeros(B, 0, N), emissions.new_zeros(B, N, N))
    log_z = emissions.new_empty(B)
    node = emissions.new_empty(B, T, N)
    edge = emissions.new_empty(B, N, N)
    with torch.no_grad():
        for sl in row_chunks(B, T, N):
            args = (emissions[sl], transitions, start, end, mask[sl])
            sf, lz = forward_chunk(*args)
            n, e = marginals_chunk(sf, *args, per_sequence=True)
            log_z[sl], node[sl], edge[sl] = lz, n, e
    return ChainPosteriors(log_z, node, edge)


def score(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
    """Score of the given paths ``tags`` (B, T) long (padding ignored): (B,). Differentiable."""
    check_chain(emissions, transitions, start, end, mask)
    B, T, N = emissions.shape
    if tuple(tags.shape) != (B, T) or tags.dtype != torch.long:
        raise DataError(None, None, f"tags as a long tensor of shape {(B, T)}", f"{tags.dtype} of shape {tuple(tags.shape)}")
    y = tags.masked_fill(~mask, 0)  # (B, T)
    if bool(((y < 0) | (y >= N)).any()):
        raise DataError(None, None, f"tag ids in [0, {N})", f"ids from {int(y.min())} to {int(y.max())}")
    zero = emissions.new_zeros(())
    em = torch.where(mask, emissions.gather(-1, y.unsqueeze(-1)).squeeze(-1), zero).sum(-1)  # (B,)
    tr = torch.where(mask[:, 1:], transitions[y[:, :-1], y[:, 1:]], zero).sum(-1) if T > 1 else zero  # (B,)
    lengths = mask.sum(-1)  # (B,)
    nonempty = lengths > 0
    first = y[:, 0] if T else torch.zeros(B, dtype=torch.long, device=y.device)
    last = y.gather(1, (lengths - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1) if T else first  # (B,)
    ends = torch.where(nonempty, start[first] + end[last], zero)
    return em + tr + ends


def viterbi(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor, constraints: Constraints | None = None
) -> tuple[Tensor, Tensor]:
    """Best paths (B, T) long (0 on padding) and their scores (B,) (0 for an empty sequence,
    -inf when constraints leave no valid path)."""
    check_chain(emissions, transitions, start, end, mask)
    B, T, _ = emissions.shape
    if T == 0:
        return torch.zeros(B, 0, dtype=torch.long, device=emissions.device), emissions.new_zeros(B)
    tr, st, en = _constrained(transitions, start, end, constraints)
    with torch.no_grad():
        paths, scores = viterbi_fast(emissions, tr, st, en, mask)
    return paths, torch.where(mask[:, 0], scores, torch.zeros_like(scores))


def nbest(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor, k: int,
    constraints: Constraints | None = None,
) -> tuple[Tensor, Tensor]:
    """The k best paths (B, k, T) and scores (B, k), best first (list Viterbi, keeping the k
    best partial paths per state). Where fewer than k paths exist the extra scores are -inf."""
    check_chain(emissions, transitions, start, end, mask)
    if k < 1:
        raise DataError(None, None, "k >= 1", str(k))
    B, T, N = emissions.shape
    tr, st, en = _constrained(transitions, start, end, constraints)
    neg = float("-inf")
    if T == 0:
        sc = emissions.new_full((B, k), neg)
        sc[:, 0] = 0.0
        return torch.zeros(B, k, 0, dtype=torch.long, device=emissions.device), sc
    e = emissions.detach().masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, N)
    alpha = e.new_full((B, N, k), neg)  # (B, N, k): k best partial scores ending in each tag
    alpha[:, :, 0] = st.detach() + e[:, 0]
    keep = (torch.arange(N, device=e.device).view(N, 1) * k + torch.arange(k, device=e.device)).expand(B, N, k)
    bps = []
    for t in range(1, T):
        cand = alpha.unsqueeze(-1) + tr.detach().view(1, N, 1, N)  # (B, N_from, k, N_to)
        vals, idx = cand.reshape(B, N * k, N).topk(k, dim=1)  # (B, k, N_to)
        vals, idx = vals.transpose(1, 2) + e[:, t].unsqueeze(-1), idx.transpose(1, 2)  # (B, N, k)
        m = mask[:, t].view(B, 1, 1)
        alpha = torch.where(m, vals, alpha)
        bps.append(torch.where(m, idx, keep))  # flat (from tag * k + rank)
    scores, flat = (alpha + en.detach().view(1, N, 1)).reshape(B, N * k).topk(k, dim=1)  # (B, k)
    paths = torch.empty(B, k, T, dtype=torch.long, device=e.device)
    paths[:, :, T - 1] = flat // k
    for t in range(T - 1, 0, -1):
        flat = bps[t - 1].reshape(B, N * k).gather(1, flat)  # (B, k)
        paths[:, :, t - 1] = flat // k
    empty = ~mask[:, 0]
    scores = torch.where(empty.unsqueeze(-1), torch.full_like(scores, neg), scores)
    scores[:, 0] = torch.where(empty, torch.zeros_like(scores[:, 0]), scores[:, 0])
    return paths.masked_fill(~mask.unsqueeze(1), 0), scores


def sample(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor, n: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """n exact samples per sequence from p(y) = exp(score(y)) / Z: (B, n, T) long, 0 on padding.

    Forward filtering, backward sampling (Chib 1996), each draw by the Gumbel-max trick.
    """
    check_chain(emissions, transitions, start, end, mask)
    if n < 1:
        raise DataError(None, None, "n >= 1", str(n))
    B, T, N = emissions.shape
    out = torch.zeros(B, n, T, dtype=torch.long, device=emissions.device)
    if T == 0:
        return out
    with torch.no_grad():
        a = log_alphas(emissions, transitions, start, mask)  # (B, T, N)
        lengths = mask.sum(-1).view(B, 1)  # (B, 1)
        y = torch.zeros(B, n, dtype=torch.long, device=emissions.device)
        for t in range(T - 1, -1, -1):
            at = a[:, t].unsqueeze(1)  # (B, 1, N)
            logits = torch.where((lengths == t + 1).unsqueeze(-1), at + end, at + transitions[:, y].permute(1, 2, 0))  # (B, n, N)
            u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
            y = torch.where(t < lengths, (logits - torch.log(-torch.log(u))).argmax(-1), torch.zeros_like(y))
            out[:, :, t] = y
    return out


# --- readable references ----------------------------------------------------------------------


def log_partition_ref(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> Tensor:
    """Per-step logsumexp recursion (autograd-differentiable): (B,)."""
    check_chain(emissions, transitions, start, end, mask)
    return chain_forward(LogSemiring, emissions, transitions, start, end, mask)


def forward_backward_ref(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> ChainPosteriors:
    """Marginals as the gradient of the reference log-partition (pytorch-struct's identity)."""
    leaves = [x.detach().clone().requires_grad_(True) for x in (emissions, transitions)]
    log_z = log_partition_ref(leaves[0], leaves[1], start.detach(), end.detach(), mask)
    B, T, N = emissions.shape
    nodes, edges = [], []
    for b in range(B):  # one backward per sequence: edge counts are per sequence
        g_e, g_t = torch.autograd.grad(log_z[b], leaves, retain_graph=True, allow_unused=True)
        nodes.append(g_e if g_e is not None else emissions.new_zeros(B, T, N))
        edges.append(g_t if g_t is not None else emissions.new_zeros(N, N))
    node = torch.stack([nodes[b][b] for b in range(B)]) if B else emissions.new_zeros(0, T, N)
    edge = torch.stack(edges) if B else emissions.new_zeros(0, N, N)
    return ChainPosteriors(log_z.detach(), node, edge)


def viterbi_ref(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> Tensor:
    """Best path score per sequence by the max-semiring recursion: (B,)."""
    check_chain(emissions, transitions, start, end, mask)
    return chain_forward(MaxSemiring, emissions, transitions, start, end, mask)


def forward_filter(emissions: Tensor, transitions: Tensor, start: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Filtering (online) quantities, as an HMM language model needs them:
    ``step`` (B, T) log-normaliser increments log Z_{<=t} - log Z_{<t} (for an HMM, the
    per-token log p(x_t | x_<t)), 0 on padding; ``filtered`` (B, T, N) log p(s_t | x_<=t), i.e.
    normalised log alphas (padding repeats the last real row). No end scores: nothing is
    known about the future while filtering.

    The scaled forward pass gives both directly: its normalised alphas are the filtered
    posteriors and its scale factors the increments (plus the shifts it took out of the
    exponentials). Rows that underflow there are redone by :func:`forward_filter_ref`."""
    N = emissions.shape[-1]
    check_chain(emissions, transitions, start, start.new_zeros(N), mask)
    B, T, _ = emissions.shape
    if T == 0:
        return emissions.new_zeros(B, 0), emissions.new_zeros(B, 0, N)
    steps, filts = [], []
    for sl in row_chunks(B, T, N):
        e, m = emissions[sl], mask[sl]
        sf = scaled_forward(e, transitions, start, start.new_zeros(N), m, keep=True)
        assert sf.shifts is not None
        shift, tau, sig = sf.shifts
        t_idx = torch.arange(T, device=e.device).unsqueeze(1)  # (T, 1)
        step = torch.log(sf.C) + shift + torch.where(t_idx == 0, sig, tau)  # (T, b)
        step = torch.where(sf.mask_t, step, torch.zeros_like(step)).t()  # (b, T)
        filt = torch.log(sf.A).transpose(0, 1)  # (b, T, N); -inf on padding for now
        lengths = sf.lengths
        last = filt[torch.arange(filt.shape[0]), (lengths - 1).clamp(min=0)]  # (b, N)
        filt = torch.where(m.unsqueeze(-1), filt, last.unsqueeze(1))
        if sf.bad.any():
            rs, rf = forward_filter_ref(e[sf.bad].double(), transitions.double(), start.double(), m[sf.bad])
            step[sf.bad], filt[sf.bad] = rs, rf
        steps.append(step.to(emissions.dtype))
        filts.append(filt.to(emissions.dtype))
    return torch.cat(steps), torch.cat(filts)


def forward_filter_ref(emissions: Tensor, transitions: Tensor, start: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`forward_filter` from the log-space forward variables, readably."""
    alpha = log_alphas(emissions, transitions, start, mask)  # (B, T, N)
    log_px = torch.logsumexp(alpha, -1)  # (B, T) log Z_{<=t}
    prev = torch.cat([log_px.new_zeros(log_px.shape[0], 1), log_px[:, :-1]], 1)  # (B, T)
    step = torch.where(mask, log_px - prev, torch.zeros_like(log_px))
    return step, alpha - log_px.unsqueeze(-1)
