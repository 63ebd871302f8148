"""The RNN transducer (Graves 2012): its loss, a memory-bounded fused variant, and greedy and
beam decoding.

Shapes: B batch, T encoder frames, U target labels (U + 1 predictor positions, the first after
the start symbol), V labels (the blank included), H hidden widths. ``logits`` (B, T, U+1, V) are
the joiner's outputs; ``targets`` (B, U) long; ``logit_lengths`` / ``target_lengths`` (B,).

Decoding: :func:`rnnt_greedy` (batched; :func:`rnnt_greedy_ref` is its one-utterance reading),
:func:`rnnt_beam_search` (Graves 2012's search for the best single alignment, no merging) and
:func:`rnnt_prefix_beam_search` (frame-synchronous, hypotheses with the same labels merged: it
ranks label sequences by p(y | x) summed over their alignments; with ``max_symbols=1`` it is the
"modified beam search" of k2/icefall; without pruning it is exact, which the tests check by
enumeration).

The loss is -log p(y | x), summed over every alignment of the lattice: from (t, u) a blank moves
to (t+1, u), label y_{u+1} to (t, u+1), and the path ends with a blank from (T-1, U). Only two
numbers per lattice node matter, so the log-softmax is fused into a gather: ``blank(t, u)`` and
``emit(t, u)`` are read as ``logit - logsumexp(logits)``, and the (B, T, U+1, V) log-softmax is
never stored. The forward variables are computed one lattice column u at a time: along t the
recursion ``alpha(t, u) = logaddexp(alpha(t-1, u) + blank(t-1, u), alpha(t, u-1) + emit(t, u-1))``
is linear in the log domain, so a column is one ``logcumsumexp`` over t
(``alpha(., u) = C + logcumsumexp(alpha(., u-1) + emit - C)`` with C the running sum of blanks).
That is U + 1 vectorised steps instead of the T + U of an anti-diagonal sweep (targets are
shorter than frames), each over (B, T) numbers in float64; autograd differentiates it (the
backward is the same U + 1 steps), so there is no hand-written beta pass to get wrong.

Memory: :func:`rnnt_loss` needs the logits (B, T, U+1, V) and their gradient. When those do
not fit, :func:`rnnt_loss_fused` is function merging (Li et al. 2019): it takes the encoder
(B, T, H) and predictor (B, U+1, H) outputs and the joiner, builds the logits ``chunk`` frames at
a time, keeps only their (B, chunk, U+1) blank and emit scores, and recomputes each chunk in the
backward pass (activation checkpointing): peak memory (B, chunk, U+1, V), the same loss and
gradients. :func:`rnnt_loss_ref` enumerates nothing but is the plain per-node recursion, and the
tests pin both to brute-force enumeration of alignments.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from seqlab.errors import DataError

__all__ = [
    "rnnt_loss", "rnnt_loss_fused", "rnnt_loss_ref", "lattice_scores", "lattice_log_likelihood",
    "TransducerHypothesis", "rnnt_greedy", "rnnt_greedy_ref", "rnnt_beam_search", "rnnt_prefix_beam_search",
]


def _check(logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> None:
    if logits.dim() != 4 or not logits.is_floating_point():
        raise DataError(None, None, "logits as a float tensor (B, T, U+1, V)", f"{logits.dtype} of shape {tuple(logits.shape)}")
    B, T, U1, V = logits.shape
    if tuple(targets.shape) != (B, U1 - 1):
        raise DataError(None, None, f"targets of shape {(B, U1 - 1)} (logits are {tuple(logits.shape)})", f"{tuple(targets.shape)}")
    for name, n, hi in (("logit_lengths", logit_lengths, T), ("target_lengths", target_lengths, U1 - 1)):
        if tuple(n.shape) != (B,) or bool((n < 0).any()) or bool((n > hi).any()):
            raise DataError(None, None, f"{name} (B={B},) each in [0, {hi}]", f"{n.tolist()}")
    if bool((logit_lengths < 1).any()):
        raise DataError(None, None, "at least one frame per utterance", f"logit_lengths {logit_lengths.tolist()}")


def lattice_scores(logits: Tensor, targets: Tensor, blank: int) -> tuple[Tensor, Tensor]:
    """(blank (B, T, U+1), emit (B, T, U)) log-probabilities, the log-softmax fused into a gather."""
    lse = torch.logsumexp(logits, dim=-1)  # (B, T, U+1)
    blank_lp = logits[..., blank] - lse
    y = targets.clamp(min=0)[:, None, :, None].expand(-1, logits.shape[1], -1, 1)  # (B, T, U, 1)
    emit = logits[:, :, :-1].gather(-1, y).squeeze(-1) - lse[:, :, :-1]  # (B, T, U)
    return blank_lp, emit


def lattice_log_likelihood(blank: Tensor, emit: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """log p(y | x) (B,) from the lattice's blank (B, T, U+1) and emit (B, T, U) scores, one
    ``logcumsumexp`` per lattice column (see the module docstring); float64 inside."""
    b, e = blank.double(), emit.double()
    B, T, U1 = b.shape
    zero = b.new_zeros(B, 1, U1)
    run = torch.cat([zero, b[:, :-1].cumsum(1)], dim=1)  # (B, T, U+1): sum of blanks before t, per column
    col = run[:, :, 0]  # (B, T) alpha(., 0): blanks only
    cols = [col]
    for u in range(1, U1):
        c = run[:, :, u]  # (B, T)
        col = c + torch.logcumsumexp(cols[-1] + e[:, :, u - 1] - c, dim=1)
        cols.append(col)
    alpha = torch.stack(cols, dim=2)  # (B, T, U+1)
    rows = torch.arange(B, device=b.device)
    t_last, u_last = logit_lengths.long() - 1, target_lengths.long()
    return alpha[rows, t_last, u_last] + b[rows, t_last, u_last]  # (B,)


def _reduce(nll: Tensor, target_lengths: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    if reduction == "mean":
        return nll.mean()
    raise DataError(None, None, "reduction 'none', 'sum' or 'mean'", repr(reduction))


def rnnt_loss(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int = 0, reduction: str = "mean",
) -> Tensor:
    """-log p(targets | logits): (B,) with ``reduction='none'``, else its sum or mean over the
    batch. ``logits`` are unnormalised (the log-softmax is fused in). Differentiable; the result
    has the logits' dtype."""
    _check(logits, targets, logit_lengths, target_lengths)
    b, e = lattice_scores(logits, targets, blank)
    nll = -lattice_log_likelihood(b, e, logit_lengths, target_lengths).to(logits.dtype)
    return _reduce(nll, target_lengths, reduction)


def rnnt_loss_fused(
    encoder_out: Tensor, predictor_out: Tensor, joiner: Callable[[Tensor, Tensor], Tensor], targets: Tensor,
    logit_lengths: Tensor, target_lengths: Tensor, blank: int = 0, reduction: str = "mean", chunk: int = 16,
) -> Tensor:
    """:func:`rnnt_loss` without the (B, T, U+1, V) logits: ``joiner(enc (B, t, 1, H), pred (B, 1,
    U+1, H)) -> (B, t, U+1, V)`` runs ``chunk`` frames at a time and is recomputed in the
    backward pass (function merging); ``encoder_out`` (B, T, H), ``predictor_out`` (B, U+1, H)."""
    B, T = encoder_out.shape[:2]
    if chunk < 1:
        raise DataError(None, None, "chunk >= 1", str(chunk))
    pred = predictor_out.unsqueeze(1)  # (B, 1, U+1, H)

    def piece(enc: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        return lattice_scores(joiner(enc.unsqueeze(2), p), targets, blank)

    blanks, emits = [], []
    for a in range(0, T, chunk):
        enc = encoder_out[:, a:a + chunk]  # (B, c, H)
        b, e = checkpoint(piece, enc, pred, use_reentrant=False)  # (B, c, U+1), (B, c, U)
        blanks.append(b)
        emits.append(e)
    b, e = torch.cat(blanks, 1), torch.cat(emits, 1)
    fake = b.new_empty(B, T, targets.shape[1] + 1, 1)
    _check(fake, targets, logit_lengths, target_lengths)
    nll = -lattice_log_likelihood(b, e, logit_lengths, target_lengths).to(b.dtype)
    return _reduce(nll, target_lengths, reduction)


def rnnt_loss_ref(logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int = 0) -> Tensor:
    """(B,) losses by the textbook per-node recursion (Graves 2012, eq. 16), one row at a time."""
    _check(logits, targets, logit_lengths, target_lengths)
    lp = logits.log_softmax(-1)
    out = []
    for i in range(logits.shape[0]):
        T, U = int(logit_lengths[i]), int(target_lengths[i])
        a: dict[tuple[int, int], Tensor] = {}
        for t in range(T):
            for u in range(U + 1):
                terms = []
                if t == 0 and u == 0:
                    terms.append(lp.new_zeros(()))
                if t > 0:
                    terms.append(a[t - 1, u] + lp[i, t - 1, u, blank])
                if u > 0:
                    terms.append(a[t, u - 1] + lp[i, t, u - 1, targets[i, u - 1]])
                a[t, u] = torch.logsumexp(torch.stack(terms), 0)
        out.append(-(a[T - 1, U] + lp[i, T - 1, U, blank]))
    return torch.stack(out)


# --- decoding ---------------------------------------------------------------------------------

# A predictor step: (labels (N,) long, state or None) -> (outputs (N, H), state); ``None`` state
# means the start (the labels are then the start symbol). A joiner: (enc (N, H), pred (N, H)) -> (N, V).
Step = Callable[[Tensor, Any], tuple[Tensor, Any]]
Join = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class TransducerHypothesis:
    """Labels emitted (blank excluded) and the log-probability of the alignment that emitted them."""

    tokens: list[int]
    score: float


def rnnt_greedy(
    encoder_out: Tensor, lengths: Tensor, step: Step, join: Join, blank: int = 0, max_symbols: int = 10,
) -> list[list[int]]:
    """Batched greedy decoding: at each frame emit the best label until blank wins (or
    ``max_symbols`` labels were emitted there). ``encoder_out`` (B, T, H); the predictor state
    is a tensor or a tuple of tensors, batch first; the start symbol fed first is ``blank``."""
    B, T = encoder_out.shape[:2]
    dev = encoder_out.device
    pred, state = step(torch.full((B,), blank, dtype=torch.long, device=dev), None)  # (B, H)
    out: list[list[int]] = [[] for _ in range(B)]
    with torch.no_grad():
        for t in range(T):
            active = torch.nonzero(lengths > t).flatten()  # rows still in their frames
            for _ in range(max_symbols):
                if len(active) == 0:
                    break
                logits = join(encoder_out[active, t], pred[active])  # (M, V)
                best = logits.argmax(-1)  # (M,)
                go = best != blank
                active, best = active[go], best[go]
                if len(active) == 0:
                    break
                for r, k in zip(active.tolist(), best.tolist()):
                    out[r].append(k)
                p, s = step(best, _rows(state, active))
                pred = pred.clone()
                pred[active] = p
                state = _scatter_state(state, s, active)
    return out


def _rows(state: Any, rows: Tensor) -> Any:
    """Rows ``rows`` of a batch-first state (a tensor or a tuple of tensors)."""
    return state[rows] if isinstance(state, Tensor) else type(state)(_rows(s, rows) for s in state)


def _scatter_state(full: Any, part: Any, rows: Tensor) -> Any:
    """``full`` with rows ``rows`` replaced by ``part`` (tensors, or tuples of tensors, batch first)."""
    if isinstance(full, Tensor):
        new = full.clone()
        new[rows] = part
        return new
    return type(full)(_scatter_state(f, p, rows) for f, p in zip(full, part))


def rnnt_beam_search(
    encoder_out: Tensor, step: Step, join: Join, blank: int = 0, beam: int = 4, max_symbols: int = 10, nbest: int = 1,
) -> list[TransducerHypothesis]:
    """Beam search over one utterance's ``encoder_out`` (T, H) (Graves 2012, sec. 2.6, without
    prefix merging): per frame, expand the best open hypothesis; its blank extension closes it
    for the frame, its label extensions stay open; stop when ``beam`` closed hypotheses beat
    every open one (or ``max_symbols`` labels were emitted in the frame). Scores are alignment
    log-probabilities. Predictor outputs are cached per label prefix."""
    dev = encoder_out.device
    cache: dict[tuple[int, ...], tuple[Tensor, Any]] = {}

    def predict(prefix: tuple[int, ...]) -> tuple[Tensor, Any]:
        if prefix not in cache:
            if prefix:
                _, st = predict(prefix[:-1])
                cache[prefix] = step(torch.tensor([prefix[-1]], device=dev), st)
            else:
                cache[prefix] = step(torch.tensor([blank], device=dev), None)
        return cache[prefix]

    kept: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    with torch.no_grad():
        for t in range(encoder_out.shape[0]):
            open_: list[tuple[float, int, tuple[int, ...]]] = [(-s, 0, y) for s, y in kept]  # min-heap on -score
            heapq.heapify(open_)
            closed: dict[tuple[int, ...], float] = {}
            while open_:
                neg, n, y = heapq.heappop(open_)
                lp = join(encoder_out[t:t + 1], predict(y)[0]).log_softmax(-1)[0].double()  # (V,)
                s = -neg
                closed[y] = max(closed.get(y, float("-inf")), s + float(lp[blank]))
                if n < max_symbols:
                    lp[blank] = float("-inf")
                    top = lp.topk(min(beam, lp.numel() - 1))
                    for v, k in zip(top.values.tolist(), top.indices.tolist()):
                        heapq.heappush(open_, (-(s + v), n + 1, (*y, k)))
                best_open = -open_[0][0] if open_ else float("-inf")
                if sum(c > best_open for c in closed.values()) >= beam:
                    break
            kept = heapq.nlargest(beam, ((sc, y) for y, sc in closed.items()))
    return [TransducerHypothesis(list(y), s) for s, y in kept[:nbest]]


def rnnt_greedy_ref(encoder_out: Tensor, step: Step, join: Join, blank: int = 0, max_symbols: int = 10) -> list[int]:
    """:func:`rnnt_greedy` for one utterance ``encoder_out`` (T, H), written plainly: at frame t,
    while fewer than ``max_symbols`` labels were emitted there, take the argmax of the joiner; a
    blank moves to the next frame, a label is emitted and fed to the predictor."""
    with torch.no_grad():
        pred, state = step(torch.tensor([blank], device=encoder_out.device), None)
        out: list[int] = []
        for t in range(encoder_out.shape[0]):
            for _ in range(max_symbols):
                k = int(join(encoder_out[t:t + 1], pred).argmax(-1)[0])
                if k == blank:
                    break
                out.append(k)
                pred, state = step(torch.tensor([k], device=encoder_out.device), state)
    return out


def _cat_states(states: list[Any]) -> Any:
    """Row-stack batch-first states (tensors, or tuples of tensors)."""
    if isinstance(states[0], Tensor):
        return torch.cat(states, 0)
    return type(states[0])(_cat_states([s[i] for s in states]) for i in range(len(states[0])))


def _top(scores: dict[tuple[int, ...], float], beam: int | None) -> dict[tuple[int, ...], float]:
    if beam is None or len(scores) <= beam:
        return scores
    return dict(heapq.nlargest(beam, scores.items(), key=lambda kv: kv[1]))


def _logadd(a: float, b: float) -> float:
    hi, lo = (a, b) if a >= b else (b, a)
    return hi if lo == float("-inf") else hi + math.log1p(math.exp(lo - hi))


def rnnt_prefix_beam_search(
    encoder_out: Tensor, step: Step, join: Join, blank: int = 0, beam: int | None = 4, max_symbols: int = 1,
    nbest: int = 1,
) -> list[TransducerHypothesis]:
    """Frame-synchronous beam search over label sequences for one utterance ``encoder_out`` (T, H).

    Each kept hypothesis is a label sequence y with log p(y, first t frames), summed over every
    alignment that emits y within those frames with at most ``max_symbols`` labels per frame. At
    frame t every hypothesis emits 0 to ``max_symbols`` labels and then the blank; extensions
    reaching the same y are added (log-sum-exp), and ``beam`` keeps the best after every
    emission round and after the frame (``beam=None``: no pruning, exact under the per-frame
    limit). With ``max_symbols=1`` this is the "modified beam search" of k2 / icefall (Kang et al.
    2023 call it one symbol per frame). The joiner and predictor run once per round on all
    hypotheses together; predictor outputs are cached per label sequence. Scores are log
    p(y | x) under the limit, best first."""
    dev = encoder_out.device
    cache: dict[tuple[int, ...], tuple[Tensor, Any]] = {}
    out0, st0 = step(torch.tensor([blank], device=dev), None)
    cache[()] = (out0, st0)

    def outputs(prefixes: list[tuple[int, ...]]) -> Tensor:
        """(N, P) predictor outputs after each prefix; the missing ones (a cached parent plus one
        label) are computed in one step."""
        missing = [y for y in prefixes if y not in cache]
        if missing:
            states = _cat_states([cache[y[:-1]][1] for y in missing])
            outs, new = step(torch.tensor([y[-1] for y in missing], device=dev), states)
            for i, y in enumerate(missing):
                cache[y] = (outs[i:i + 1], _rows(new, torch.tensor([i], device=dev)))
        return torch.cat([cache[y][0] for y in prefixes], 0)

    hyps: dict[tuple[int, ...], float] = {(): 0.0}
    with torch.no_grad():
        for t in range(encoder_out.shape[0]):
            frame: dict[tuple[int, ...], float] = {}  # hypotheses after frame t (closed by a blank)
            frontier = hyps
            for n in range(max_symbols + 1):
                if not frontier:
                    break
                ys = list(frontier)
                pred = outputs(ys)  # (N, P)
                lp = join(encoder_out[t:t + 1].expand(len(ys), -1), pred).log_softmax(-1).double()  # (N, V)
                grown: dict[tuple[int, ...], float] = {}
                for i, y in enumerate(ys):
                    s = frontier[y]
                    frame[y] = _logadd(frame.get(y, float("-inf")), s + float(lp[i, blank]))
                    if n == max_symbols:
                        continue
                    row = lp[i].clone()
                    row[blank] = float("-inf")
                    k = row.numel() - 1 if beam is None else min(beam, row.numel() - 1)
                    top = row.topk(k)
                    for v, label in zip(top.values.tolist(), top.indices.tolist()):
                        z = (*y, label)
                        grown[z] = _logadd(grown.get(z, float("-inf")), s + v)
                frontier = _top(grown, beam)
            hyps = _top(frame, beam)
            keep = set(hyps)
            cache = {y: v for y, v in cache.items() if y in keep}  # children of the kept only
    best = sorted(hyps.items(), key=lambda kv: -kv[1])[:nbest]
    return [TransducerHypothesis(list(y), s) for y, s in best]
