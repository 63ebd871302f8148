"""CTC forced alignment: the best frame-by-frame path of a known transcript, run by the chain
dynamic programs of :mod:`seqlab.inference.chain`, not a DP of its own.

Shapes: T frames, V labels, L transcript labels, S = 2L + 1 CTC states.

The CTC topology (Graves et al. 2006) is a linear chain over the S states
``blank y1 blank y2 ... yL blank``: state s emits ``log_probs[:, ext[s]]``; a state may stay,
step to the next, or skip the blank between two different labels; a path starts in one of the
first two states and ends in one of the last two. Written as the chain's ``emissions`` (1, T, S),
``transitions`` (S, S) (0 where allowed, -inf elsewhere), ``start`` and ``end`` (S,), the chain's
Viterbi is the forced alignment and its log-partition is ``-ctc_loss`` (the tests pin both to
brute-force enumeration and to ``torch.nn.functional.ctc_loss``).

Memory. One Viterbi call keeps the (T, S) emissions and (T, S) forward scores. With ``chunk=C``
the alignment is checkpointed instead: emissions are gathered a chunk at a time, a first pass
keeps only the max-semiring forward vector at every C-th frame, then the chunks are solved last
to first, each a chain Viterbi started from its checkpoint and ended at the state where the
later chunk began. Beyond the (T, V) input that keeps (T/C + C) * S scores (C = sqrt(T):
2 sqrt(T) S). It is slower: the checkpoint pass is the per-step torch recursion
(:func:`~seqlab.inference.semiring.alphas`), not the compiled one-pass kernel (about 15x at
S = 401; ``bench/ctc_align.py``). The chain's dense
(S, S) transition matrix stays: S^2 scores, which bounds the transcript length per call (about
2,000 labels in 130 MB of float64), not the audio length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqlab.errors import DataError
from seqlab.inference.chain import log_partition, viterbi
from seqlab.inference.semiring import MaxSemiring, alphas

__all__ = ["Segment", "Alignment", "ctc_topology", "ctc_align", "ctc_log_likelihood", "token_segments", "word_segments"]

NEG = float("-inf")


@dataclass(frozen=True)
class Segment:
    """A label (or a word) and its frames ``[start, end)``; ``score`` the mean log posterior of
    its frames on the path."""

    label: str | int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Alignment:
    """``states`` (T,) CTC state per frame, ``labels`` (T,) the label each frame emits (blank
    included), ``score`` the path's log-probability, ``targets`` (L,) the transcript."""

    states: Tensor
    labels: Tensor
    score: float
    targets: list[int]


def ctc_topology(log_probs: Tensor, targets: Sequence[int], blank: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The CTC chain of one utterance: emissions (1, T, S), transitions (S, S), start (S,),
    end (S,) and the extended label of each state (S,)."""
    if log_probs.dim() != 2 or not log_probs.is_floating_point():
        raise DataError(None, None, "log_probs as a float tensor (T, V)", f"{log_probs.dtype} of shape {tuple(log_probs.shape)}")
    T, V = log_probs.shape
    y = torch.as_tensor(list(targets), dtype=torch.long)
    if bool(((y < 0) | (y >= V) | (y == blank)).any()):
        raise DataError(None, None, f"target ids in [0, {V}) other than blank {blank}", f"{y.tolist()}")
    S = 2 * len(y) + 1
    ext = torch.full((S,), blank, dtype=torch.long)
    ext[1::2] = y
    dt = log_probs.dtype
    s = torch.arange(S)
    trans = torch.full((S, S), NEG, dtype=dt)
    trans[s, s] = 0.0
    trans[s[:-1], s[1:]] = 0.0
    if S > 2:
        skip = (ext[2:] != blank) & (ext[2:] != ext[:-2])  # (S-2,)
        trans[s[:-2][skip], s[2:][skip]] = 0.0
    start = torch.full((S,), NEG, dtype=dt)
    start[: min(2, S)] = 0.0
    end = torch.full((S,), NEG, dtype=dt)
    end[max(S - 2, 0):] = 0.0
    emissions = log_probs[:, ext].unsqueeze(0)  # (1, T, S)
    return emissions, trans, start, end, ext


def ctc_log_likelihood(log_probs: Tensor, targets: Sequence[int], blank: int = 0) -> Tensor:
    """log p(targets | log_probs), the chain's log-partition over the CTC topology: () tensor,
    differentiable (``-F.ctc_loss(..., reduction='none')`` for one utterance)."""
    e, tr, st, en, _ = ctc_topology(log_probs, targets, blank)
    mask = torch.ones(1, e.shape[1], dtype=torch.bool)
    return log_partition(e, tr, st, en, mask)[0]


def ctc_align(log_probs: Any, targets: Sequence[int], blank: int = 0, chunk: int | None = None) -> Alignment:
    """The Viterbi (best) CTC path of ``targets`` through ``log_probs`` (T, V); ``chunk`` frames
    per checkpointed piece (see the module docstring), None: one pass. Raises a DataError when
    the transcript cannot fit the frames."""
    lp = torch.as_tensor(log_probs).detach().cpu()
    T = lp.shape[0] if lp.dim() == 2 else 0
    if chunk is not None and chunk < 1:
        raise DataError(None, None, "chunk >= 1", str(chunk))
    if chunk is None or chunk >= T:
        e, tr, st, en, ext = ctc_topology(lp, targets, blank)
        states, score = _viterbi(e, tr, st, en)
        path, best = states[0], float(score[0])
    else:
        _, tr, st, en, ext = ctc_topology(lp[:0], targets, blank)  # the chain alone; emissions per chunk
        path, best = _checkpointed(lp, ext, tr, st, en, chunk)
    if not math.isfinite(best) or T == 0 and len(targets):
        need = len(targets) + sum(a == b for a, b in zip(targets, list(targets)[1:]))
        raise DataError(None, None, f"at least {need} frames for {len(targets)} labels", f"{T} frames")
    return Alignment(path, ext[path], best, list(targets))


_PIECE = 8


def _viterbi(e: Tensor, tr: Tensor, st: Tensor, en: Tensor) -> tuple[Tensor, Tensor]:
    """chain.viterbi on one (1, T, S) piece, keeping torch's thread count: the compiled CPU
    kernel's OpenMP runtime resets it (to numba's thread count), which made the torch steps
    between pieces up to 100x slower on a busy machine (measured)."""
    n = torch.get_num_threads()
    try:
        return viterbi(e, tr, st, en, torch.ones(1, e.shape[1], dtype=torch.bool))
    finally:
        torch.set_num_threads(n)


def _checkpointed(lp: Tensor, ext: Tensor, tr: Tensor, st: Tensor, en: Tensor, C: int) -> tuple[Tensor, float]:
    """Viterbi over the (T, S) emissions ``lp[:, ext]``, built a chunk at a time, keeping
    (T/C + C, S) scores: checkpoints, then chunks last to first."""
    T = lp.shape[0]

    def emissions(a: int, b: int) -> Tensor:
        return lp[a:b, ext].unsqueeze(0)  # (1, b - a, S)

    bounds = list(range(0, T, C))
    starts = st.new_empty(len(bounds), st.shape[0])  # (T/C, S) start scores of each chunk, allocated once
    s = st
    for k, a in enumerate(bounds):
        starts[k] = s
        # the forward in pieces of _PIECE frames, the checkpoints in one preallocated tensor: kept
        # small tensors between the steps' (S, S) temporaries fragment the heap, and glibc then
        # cannot reuse or return them (measured: +165 MB peak at T=20,000, S=401 without this)
        for a2 in range(a, min(a + C, T), _PIECE):
            b2 = min(a2 + _PIECE, a + C, T)
            last = alphas(MaxSemiring, emissions(a2, b2), tr, s, torch.ones(1, b2 - a2, dtype=torch.bool))[0, -1]  # (S,)
            s = torch.amax(last.unsqueeze(-1) + tr, dim=0)  # (S,) best score of entering each state at b2
    path = torch.empty(T, dtype=torch.long)
    end, best = en, NEG
    for k in range(len(bounds) - 1, -1, -1):
        a = bounds[k]
        b = min(a + C, T)
        p, sc = _viterbi(emissions(a, b), tr, starts[k], end)
        path[a:b] = p[0]
        if k == len(bounds) - 1:
            best = float(sc[0])
        end = tr[:, int(p[0, 0])].clone()  # the previous chunk must end where this one can be entered from
    return path, best


def token_segments(alignment: Alignment, log_probs: Any, names: Sequence[str] | None = None) -> list[Segment]:
    """One segment per transcript label: the frames its CTC state holds (blanks excluded)."""
    lp = torch.as_tensor(log_probs).detach().cpu()
    states = alignment.states.tolist()
    out = []
    t = 0
    while t < len(states):
        s = states[t]
        u = t
        while u < len(states) and states[u] == s:
            u += 1
        if s % 2 == 1:
            lab = alignment.targets[s // 2]
            sc = float(lp[torch.arange(t, u), lab].mean())
            out.append(Segment(names[lab] if names is not None else lab, t, u, sc))
        t = u
    return out


def word_segments(tokens: list[Segment], space: str = " ") -> list[Segment]:
    """Words from label segments (string labels, ``space`` between words): each word spans its
    first label's first frame to its last label's end; its score is the frame-weighted mean."""
    words: list[Segment] = []
    cur: list[Segment] = []
    for seg in [*tokens, Segment(space, -1, -1, 0.0)]:
        if seg.label == space:
            if cur:
                n = sum(c.end - c.start for c in cur)
                sc = sum(c.score * (c.end - c.start) for c in cur) / n
                words.append(Segment("".join(str(c.label) for c in cur), cur[0].start, cur[-1].end, sc))
            cur = []
        else:
            cur.append(seg)
    return words
