"""Fast linear-chain forward-backward and Viterbi (the readable versions are in semiring.py).

Shapes: B batch, T time, N states; work tensors are time-major (T, B, N) so a step is a
contiguous slice.

Forward-backward runs in probability space with per-step rescaling (Rabiner 1989, sec. V.A;
hmmlearn's "scaling" implementation): with shared transitions a step is one (B, N) @ (N, N)
matrix product, i.e. BLAS, instead of a logsumexp over a (B, N, N) tensor. Scores are shifted
by their maxima before ``exp`` (transitions, start, end and emissions each by a scalar),
and the work is done in float64 whatever the input dtype. A sequence whose scale factor ever
falls below ``_TINY`` (probability mass lost to underflow, or no path at all) is recomputed in
log space by the reference recursions, so -inf scores and huge ranges stay exact.

Written by hand because no installed library runs a batched, masked chain DP this way:
pytorch-crf and pytorch-struct run logsumexp over (B, N, N) per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqlab.errors import SeqlabError
from seqlab.inference.semiring import log_alphas, log_betas

__all__ = [
    "ScaledForward", "scaled_forward", "scaled_marginals", "log_space_marginals", "viterbi_fast", "LogPartition",
    "row_chunks", "forward_chunk", "marginals_chunk", "viterbi_torch",
]

_TINY = 1e-200  # a scale factor below this (float64) sends the sequence to the log-space path
_CHUNK_ELEMS = 1 << 21  # float64 elements per (T, b, N) work buffer (16 MB)
_NO_SHIFT = 300.0  # emissions whose maximum is within +-this are exponentiated unshifted
_WORK = torch.float64


def _shifted_exp(x: Tensor) -> tuple[Tensor, Tensor]:
    """exp(x - max finite x) and that max (0 when nothing is finite)."""
    finite = x[torch.isfinite(x)]
    shift = finite.max() if finite.numel() else x.new_zeros(())
    return torch.exp(x - shift), shift


@dataclass
class ScaledForward:
    """What the backward pass reuses: scaled alphas (T, B, N), scales (T, B), exps of scores."""

    A: Tensor  # (T, B, N) normalised alphas, 0 on padding
    C: Tensor  # (T, B) scale factors, 1 on padding
    E: Tensor  # (T, B, N) exp(emissions - per-step max)
    P: Tensor  # (N, N) exp(transitions - max)
    F: Tensor  # (N,) exp(end - max)
    c_end: Tensor  # (B,)
    mask_t: Tensor  # (T, B) bool
    lengths: Tensor  # (B,)
    log_z: Tensor  # (B,) float64
    bad: Tensor  # (B,) bool: recompute in log space
    shifts: tuple[Tensor, Tensor, Tensor] | None = None  # emission, transition, start shifts (scalars)


def scaled_forward(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor, keep: bool = True
) -> ScaledForward:
    """Scaled forward pass; all inputs already validated, T >= 1. ``keep=False`` (log Z only)
    cycles two alpha rows instead of storing all T, so ``A`` is then (2, B, N) and unusable
    for marginals."""
    all_real = bool(mask.all())
    e = emissions.detach().to(_WORK)  # (B, T, N)
    if not all_real:
        e = e.masked_fill(~mask.unsqueeze(-1), 0.0)
    B, T, N = e.shape
    top = e.amax() if e.numel() else e.new_zeros(())
    shift = top if bool(torch.isfinite(top)) and abs(float(top)) > _NO_SHIFT else e.new_zeros(())
    # exp(e - shift), time-major; no shift in the usual case. A step whose scores all sit
    # ~700 below the top underflows to 0, and its sequence goes to the log-space path
    E = torch.empty(T, B, N, dtype=_WORK, device=e.device)  # (T, B, N)
    E.copy_(e.transpose(0, 1))  # copy, then exp in place: ~3x faster than exp on strided input
    if float(shift) != 0.0:
        E.sub_(shift)
    E.exp_()
    P, tau = _shifted_exp(transitions.detach().to(_WORK))
    S, sig = _shifted_exp(start.detach().to(_WORK))
    F, phi = _shifted_exp(end.detach().to(_WORK))
    mask_t = mask.t().contiguous()  # (T, B)
    A = torch.empty_like(E) if keep else E.new_empty(2, B, N)  # (T, B, N) or a 2-row ring
    C = torch.empty(T, B, 1, dtype=_WORK, device=e.device)  # (T, B, 1)
    torch.mul(S, E[0], out=A[0])
    torch.sum(A[0], -1, keepdim=True, out=C[0])
    A[0].div_(C[0])
    for t in range(1, T):
        cur, prev = (A[t], A[t - 1]) if keep else (A[t % 2], A[(t - 1) % 2])
        torch.mm(prev, P, out=cur)  # (B, N)
        cur.mul_(E[t])
        torch.sum(cur, -1, keepdim=True, out=C[t])
        cur.div_(C[t])
        if not keep and not all_real:  # carry finished rows' alphas to the end
            torch.where(mask_t[t].unsqueeze(-1), cur, prev, out=cur)
    lengths = mask.sum(-1)  # (B,)
    last = (lengths - 1).clamp(min=0)  # (B,)
    if keep:
        alpha_last = A[T - 1] if all_real else A[last, torch.arange(B, device=e.device)]  # (B, N)
    else:
        alpha_last = A[(T - 1) % 2]
    c_end = (alpha_last * F).sum(-1).masked_fill(lengths == 0, 1.0)  # (B,)
    if not all_real:
        pad = ~mask_t.unsqueeze(-1)  # (T, B, 1)
        C.masked_fill_(pad, 1.0)
        if keep:
            A.masked_fill_(pad, 0.0)
    C = C.squeeze(-1)  # (T, B)
    with torch.no_grad():
        log_z = (torch.log(C).sum(0) + lengths * shift + (lengths - 1).clamp(min=0) * tau
                 + sig + torch.log(c_end) + phi)  # (B,)
        nonempty = lengths > 0
        bad = nonempty & (~torch.isfinite(log_z) | (C < _TINY).any(0) | (c_end < _TINY) | ~torch.isfinite(C).all(0))
        log_z = torch.where(nonempty, log_z, torch.zeros_like(log_z))
        if bad.any():  # finite placeholders, so batch-wide sums stay finite; callers patch these rows
            A[:, bad] = 0.0
            C[:, bad] = 1.0
            c_end = c_end.masked_fill(bad, 1.0)
    return ScaledForward(A, C, E, P, F, c_end, mask_t, lengths, log_z, bad, (shift, tau, sig))


def _betas(sf: ScaledForward, consume: bool = False) -> tuple[Tensor, Tensor]:
    """Scaled betas (T, B, N) and G[t] = E[t] * beta[t] / C[t] on real steps (0 on padding).

    node[t] = A[t] * beta[t]; edge = P * sum_t A[t]^T G[t + 1].
    """
    T, B, N = sf.A.shape
    scale = (sf.mask_t / sf.C).unsqueeze(-1)  # (T, B, 1)
    W = sf.E.mul_(scale) if consume else sf.E * scale  # (T, B, N)
    Fn = sf.F / sf.c_end.unsqueeze(-1)  # (B, N) beta at each row's last step
    is_last = (sf.lengths.unsqueeze(0) - 1 == torch.arange(T, device=W.device).unsqueeze(-1)).to(_WORK)  # (T, B)
    Beta = torch.empty_like(W)  # (T, B, N)
    G = torch.empty_like(W)  # (T, B, N)
    PT = sf.P.t().contiguous()  # (N, N)
    torch.mul(Fn, is_last[T - 1].unsqueeze(-1), out=Beta[T - 1])
    torch.mul(Beta[T - 1], W[T - 1], out=G[T - 1])
    for t in range(T - 2, -1, -1):
        torch.addmm(Fn * is_last[t].unsqueeze(-1), G[t + 1], PT, out=Beta[t])  # (B, N)
        torch.mul(Beta[t], W[t], out=G[t])
    return Beta, G


def scaled_marginals(
    sf: ScaledForward, per_sequence: bool = True, weights: Tensor | None = None, consume: bool = False
) -> tuple[Tensor, Tensor]:
    """Node marginals (B, T, N) and edge counts (B, N, N), or with ``per_sequence=False`` the
    ``weights``-weighted sum of edge counts over the batch (N, N). float64; rows flagged
    ``bad`` are garbage here and must be replaced by the caller. ``consume`` reuses the
    buffers of ``sf`` (no second call on it then)."""
    Beta, G = _betas(sf, consume)
    A, Gn = sf.A[:-1], G[1:]  # (T-1, B, N)
    if per_sequence:
        edge = torch.bmm(A.permute(1, 2, 0), Gn.transpose(0, 1)) * sf.P  # (B, N, N)
    else:
        if weights is not None:
            Gn = Gn * weights.unsqueeze(-1)
        N = A.shape[-1]
        edge = (A.reshape(-1, N).t() @ Gn.reshape(-1, N)) * sf.P  # (N, N)
    node = (sf.A.mul_(Beta) if consume else sf.A * Beta).transpose(0, 1)  # (B, T, N)
    return node, edge


def log_space_marginals(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """log Z (B,), node (B, T, N) and edge (B, N, N) marginals by log-space recursions; exact
    for -inf scores and any range. A sequence without any valid path gets zero marginals."""
    a = log_alphas(emissions, transitions, start, mask)  # (B, T, N)
    b = log_betas(emissions, transitions, end, mask)  # (B, T, N)
    lengths = mask.sum(-1)  # (B,)
    B = emissions.shape[0]
    last = a[torch.arange(B, device=a.device), (lengths - 1).clamp(min=0)]  # (B, N)
    log_z = torch.where(lengths > 0, torch.logsumexp(last + end, -1), torch.zeros_like(lengths, dtype=a.dtype))
    ok = torch.isfinite(log_z).view(B, 1, 1)
    node = torch.where(ok, torch.exp(a + b - log_z.view(B, 1, 1)), torch.zeros_like(a))  # (B, T, N)
    e = emissions.masked_fill(~mask.unsqueeze(-1), 0.0)
    nxt = (e[:, 1:] + b[:, 1:]).unsqueeze(2)  # (B, T-1, 1, N)
    xi = a[:, :-1].unsqueeze(-1) + transitions + nxt - log_z.view(B, 1, 1, 1)  # (B, T-1, N, N)
    edge = torch.where(ok, torch.exp(xi).sum(1), torch.zeros_like(transitions).expand(B, -1, -1))  # (B, N, N)
    return log_z, node, edge


_CHUNK = 512  # max sequences per Viterbi slice (measured: 512 > 256 > 128 at N = 50)


def viterbi_fast(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Best paths (B, T) long (0 on padding) and their scores (B,); inputs validated, T >= 1.

    Max-plus forward keeping only the max, not its index (``max`` with indices is 4-6x slower
    than a plain max reduction on CPU), storing the alphas; the backtrack recomputes the one
    argmax it needs per step from the stored alpha and the chosen tag's transition column,
    i.e. (B, N) work instead of (B, N, N) backpointers. The recomputed sums are bit-identical
    to the forward's and max is exact, so the argmax is too. Rows of any length share one loop:
    the forward runs through padding (scores there are ignored), each row's best final tag is
    read at its own last step, and the backtrack starts a row when it reaches that step.
    Sums run in float64 whatever the input dtype (exact for float32 scores): torch 2.13's CPU
    ``amax`` is ~3x faster in float64 than in float32 (measured), which beats a float32 tree of
    elementwise ``maximum`` with two threads and ties it with one.
    """
    if emissions.device.type == "cpu":
        return _viterbi_cpu(emissions, transitions, start, end, mask)
    return viterbi_torch(emissions, transitions, start, end, mask)


def _viterbi_cpu(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The compiled kernel (:mod:`seqlab.inference.kernels`): the same sums and tie-breaking."""
    from seqlab.inference.kernels import torch_threads, viterbi_kernel

    def arr(x: Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.detach().to(_WORK).numpy())

    B, T, _ = emissions.shape
    path = np.zeros((B, T), dtype=np.int64)
    score = np.zeros(B, dtype=np.float64)
    lengths = mask.sum(-1).numpy().astype(np.int64)
    with torch_threads():
        viterbi_kernel(arr(emissions), arr(transitions), arr(start), arr(end), lengths, path, score)
    return torch.from_numpy(path), torch.from_numpy(score).to(emissions.dtype)


def viterbi_torch(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`viterbi_fast` in torch ops, for any device (the CPU uses the compiled kernel)."""
    B = emissions.shape[0]
    tr, st, en = (x.to(_WORK) for x in (transitions, start, end))
    paths, scores = [], []
    T, N = emissions.shape[1], emissions.shape[2]
    for sl in row_chunks(B, T, N, max_rows=_CHUNK):
        p, sc = _viterbi_chunk(emissions[sl].to(_WORK), tr, st, en, mask[sl])
        paths.append(p)
        scores.append(sc)
    return torch.cat(paths), torch.cat(scores).to(emissions.dtype)


def _viterbi_chunk(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    e = emissions.transpose(0, 1).contiguous()  # (T, B, N); padding is never read back
    T, B, N = e.shape
    lengths = mask.sum(-1)  # (B,)
    alphas = torch.empty_like(e)  # (T, B, N); steps past a row's end are computed and ignored
    torch.add(start, e[0], out=alphas[0])
    tmp = e.new_empty(B, N, N)  # (B, N_to, N_from)
    trans_t = transitions.t().contiguous()  # (N_to, N_from)
    for t in range(1, T):
        torch.add(alphas[t - 1].unsqueeze(1), trans_t, out=tmp)
        torch.amax(tmp, dim=-1, out=alphas[t]).add_(e[t])  # (B, N)
    rows = torch.arange(B, device=e.device)
    last = alphas[(lengths - 1).clamp(min=0), rows] + end  # (B, N) at each row's last step
    score, tag = last.max(-1)  # (B,)
    if e.device.type == "cpu":  # numpy's per-call overhead is ~5x lower on these (B, N) steps
        path = torch.from_numpy(_backtrack_np(alphas.numpy(), trans_t.numpy(), tag.numpy(), lengths.numpy()))
    else:
        path = torch.empty(T, B, dtype=torch.long, device=e.device)
        for t in range(T - 1, 0, -1):
            path[t] = tag
            prev = torch.add(alphas[t - 1], trans_t.index_select(0, tag)).argmax(-1)  # (B,) same sums as the forward
            tag = torch.where(t < lengths, prev, tag)  # rows not started yet keep their final tag
        path[0] = tag
    return path.t().masked_fill(~mask, 0), score


def _backtrack_np(alphas: np.ndarray, trans_t: np.ndarray, tag: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The backtrack of :func:`_viterbi_chunk` in numpy (same IEEE sums, same first-max argmax)."""
    T, B, N = alphas.shape
    tag = tag.copy()
    path = np.empty((T, B), dtype=np.int64)
    cols = np.empty((B, N), dtype=alphas.dtype)
    for t in range(T - 1, 0, -1):
        path[t] = tag
        np.take(trans_t, tag, axis=0, out=cols)
        np.add(alphas[t - 1], cols, out=cols)
        np.copyto(tag, cols.argmax(1), where=t < lengths)  # rows not started yet keep their final tag
    path[0] = tag
    return path


def _work(e: Tensor, tr: Tensor, s: Tensor, en: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return e.detach().to(_WORK), tr.detach().to(_WORK), s.detach().to(_WORK), en.detach().to(_WORK)


def row_chunks(B: int, T: int, N: int, max_rows: int | None = None) -> list[slice]:
    """Row slices whose (T, b, N) float64 work buffers stay ~16 MB: reused by the allocator
    instead of fresh pages per call (page faults cost more than the arithmetic at this size),
    and closer to cache."""
    rows = max(1, _CHUNK_ELEMS // max(1, T * N))
    rows = rows if max_rows is None else min(rows, max_rows)
    return [slice(lo, min(B, lo + rows)) for lo in range(0, B, rows)]


def forward_chunk(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor, keep: bool = True
) -> tuple[ScaledForward, Tensor]:
    """Scaled forward of one chunk and its exact log Z (flagged rows redone in log space)."""
    sf = scaled_forward(emissions, transitions, start, end, mask, keep)
    log_z = sf.log_z
    bad = sf.bad.nonzero().squeeze(-1)
    if bad.numel():
        lz, _, _ = log_space_marginals(*_work(emissions[bad], transitions, start, end), mask[bad])
        log_z = log_z.index_copy(0, bad, lz)
    return sf, log_z


def marginals_chunk(
    sf: ScaledForward, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor,
    per_sequence: bool, weights: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """float64 node (b, T, N) and edge marginals of one chunk, consuming ``sf``: per sequence
    (b, N, N), or their ``weights``-weighted sum (N, N)."""
    w = None if weights is None else weights.masked_fill(sf.bad, 0.0)
    node, edge = scaled_marginals(sf, per_sequence=per_sequence, weights=w, consume=True)
    bad = sf.bad.nonzero().squeeze(-1)
    if bad.numel():
        _, node_b, edge_b = log_space_marginals(*_work(emissions[bad], transitions, start, end), mask[bad])
        node = node.index_copy(0, bad, node_b)
        if per_sequence:
            edge = edge.index_copy(0, bad, edge_b)
        else:
            g = torch.ones(bad.numel(), dtype=_WORK, device=edge.device) if weights is None else weights[bad]
            edge = edge + (edge_b * g.view(-1, 1, 1)).sum(0)
    return node, edge


class LogPartition(torch.autograd.Function):
    """log Z with the marginals as its gradient (scaled forward-backward, log-space fallback).

    The backward reuses the forward's buffers, so it may run once per forward."""

    @staticmethod
    def forward(ctx: Any, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> Tensor:
        B, T, N = emissions.shape
        chunks = row_chunks(B, T, N)
        keep = any(ctx.needs_input_grad[:4])  # without a backward, buffers are reused per chunk
        sfs, log_zs = [], []
        for sl in chunks:
            sf, lz = forward_chunk(emissions[sl], transitions, start, end, mask[sl], keep)
            if keep:
                sfs.append(sf)
            log_zs.append(lz)
        ctx.chunks, ctx.sfs = chunks, sfs
        ctx.save_for_backward(emissions, transitions, start, end, mask)
        return torch.cat(log_zs).to(emissions.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        emissions, transitions, start, end, mask = ctx.saved_tensors
        if ctx.sfs is None:
            raise SeqlabError("log_partition's backward ran twice on one forward; compute it again")
        B, T, N = emissions.shape
        g = grad.detach().to(_WORK)  # (B,)
        g_em = torch.empty(B, T, N, dtype=emissions.dtype, device=emissions.device)
        g_tr = torch.zeros(N, N, dtype=_WORK, device=emissions.device)
        g_st = torch.zeros(N, dtype=_WORK, device=emissions.device)
        g_en = torch.zeros(N, dtype=_WORK, device=emissions.device)
        for sl, sf in zip(ctx.chunks, ctx.sfs):
            node, edge = marginals_chunk(sf, emissions[sl], transitions, start, end, mask[sl], False, g[sl])
            node.mul_(g[sl].view(-1, 1, 1))  # (b, T, N)
            g_em[sl] = node
            g_tr += edge
            g_st += node[:, 0].sum(0)
            b = node.shape[0]
            g_en += node[torch.arange(b, device=node.device), (sf.lengths - 1).clamp(min=0)].sum(0)  # empty rows are 0
        ctx.sfs = None
        return g_em, g_tr.to(transitions.dtype), g_st.to(start.dtype), g_en.to(end.dtype), None
