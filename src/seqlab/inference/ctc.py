"""CTC decoding (Graves et al. 2006): greedy, and prefix beam search with pruning, blank
skipping, n-gram shallow fusion, hotwords, a lexicon constraint and word timestamps.

Shapes: B utterances, T frames, V labels (the blank included). ``log_probs`` are per-frame log
posteriors (a log-softmax), a tensor or an ndarray, (T, V) for one utterance or (B, T, V);
``lengths`` (B,) the real frames of each row (``None``: all T). Every function returns one entry
per utterance.

The beam search keeps hypotheses as (words so far, partial word, last label) and merges those
that agree, so a hypothesis ending in blank and one ending in a label are separate beams; this
is the prefix beam search as pyctcdecode runs it, chosen so the two rank hypotheses alike on
the same posteriors (``bench/ctc_decode.py`` measures the agreement). A word LM scores each word
when its space is emitted, ``lm_weight * ln p(word | history) + word_bonus``, and ``</s>`` at the
end; a character LM scores each character as it is emitted. Pruning per frame: labels with log
posterior below ``token_min_logp`` are skipped (the best label always stays, and at most
``top_k`` labels are kept), then hypotheses scoring below the best by more than ``-prune`` are
dropped, then all but the ``beam`` best. Blank skipping: a run of frames whose only surviving
label is blank only adds a constant to every beam, so it is applied at once (exact); with
``blank_skip`` set, frames whose blank posterior is at least that are treated so (approximate,
faster).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import torch

from seqlab.errors import ConfigError, DataError
from seqlab.inference.ctc_lm import Hotwords, Lexicon, NGramScorer

__all__ = ["Hypothesis", "WordSpan", "BeamOptions", "ctc_greedy", "ctc_beam_search", "as_batch"]

_START = -2  # "last label" of the empty start hypothesis (pyctcdecode's None); -1 is blank


@dataclass(frozen=True)
class WordSpan:
    """A word and its frames: the first frame of its first label to one past its last label's
    last frame."""

    word: str
    start: int
    end: int


@dataclass(frozen=True)
class Hypothesis:
    """One decoded transcript: label ids (blanks and repeats removed), the text (words joined by
    one space), the total score (acoustic + LM + bonuses), the acoustic log-probability of the
    merged alignments kept, and word spans."""

    tokens: list[int]
    text: str
    score: float
    acoustic: float
    words: list[WordSpan] = field(default_factory=list)


def as_batch(log_probs: Any, lengths: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, V) float64 array and (B,) int64 lengths from a tensor/ndarray (T, V) or (B, T, V)."""
    x = log_probs.detach().cpu().double().numpy() if isinstance(log_probs, torch.Tensor) else np.asarray(log_probs, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise DataError(None, None, "log_probs of shape (T, V) or (B, T, V)", f"shape {x.shape}")
    B, T, _ = x.shape
    if lengths is None:
        n = np.full(B, T, dtype=np.int64)
    else:
        n = (lengths.detach().cpu().numpy() if isinstance(lengths, torch.Tensor) else np.asarray(lengths)).astype(np.int64).reshape(-1)
        if n.shape != (B,) or (n < 0).any() or (n > T).any():
            raise DataError(None, None, f"lengths (B={B},) each in [0, {T}]", f"{n.tolist()}")
    return x, n


def ctc_greedy(log_probs: Any, lengths: Any = None, blank: int = 0) -> list[list[int]]:
    """Best label per frame, repeats merged, blanks removed: one id list per utterance."""
    x, n = as_batch(log_probs, lengths)
    best = x.argmax(-1)  # (B, T)
    out = []
    for b in range(len(best)):
        path = best[b, : n[b]]
        keep = (path != blank) & np.concatenate([[True], path[1:] != path[:-1]])
        out.append(path[keep].tolist())
    return out


@dataclass(frozen=True)
class BeamOptions:
    """The beam search's settings (see the module docstring); plain data, so it pickles."""

    tokens: tuple[str, ...]
    blank: int = 0
    beam: int = 100
    prune: float = -10.0
    token_min_logp: float = -5.0
    top_k: int | None = None
    blank_skip: float | None = None
    lm: NGramScorer | None = None
    lm_weight: float = 0.5
    word_bonus: float = 1.5
    hotwords: Hotwords | None = None
    lexicon: Lexicon | None = None
    nbest: int = 1
    trailing_space_unk: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.blank < len(self.tokens):
            raise ConfigError(f"blank must index tokens (0..{len(self.tokens) - 1}), found {self.blank}")
        if self.beam < 1 or self.nbest < 1 or (self.top_k is not None and self.top_k < 1):
            raise ConfigError(f"beam, nbest and top_k must be >= 1, found {self.beam}, {self.nbest}, {self.top_k}")
        if self.prune > 0 or self.token_min_logp > 0:
            raise ConfigError(f"prune and token_min_logp are log-probabilities <= 0, found {self.prune}, {self.token_min_logp}")
        if self.blank_skip is not None and not 0 < self.blank_skip <= 1:
            raise ConfigError(f"blank_skip is a probability in (0, 1], found {self.blank_skip}")

    @property
    def space(self) -> int:
        return self.tokens.index(" ") if " " in self.tokens else -1


def ctc_beam_search(
    log_probs: Any, lengths: Any = None, blank: int = 0, *, tokens: Sequence[str], beam: int = 100,
    prune: float = -10.0, token_min_logp: float = -5.0, top_k: int | None = None, blank_skip: float | None = None,
    lm: Any = None, lm_level: str = "word", lm_weight: float = 0.5, word_bonus: float = 1.5,
    hotwords: Iterable[str] | None = None, hotword_weight: float = 10.0, lexicon: Iterable[str] | None = None,
    nbest: int = 1, processes: int = 1, trailing_space_unk: bool = False,
) -> list[list[Hypothesis]]:
    """Prefix beam search: up to ``nbest`` hypotheses per utterance, best first.

    ``tokens`` (V,) the string of each label (``" "`` separates words; the blank's entry is
    ignored). ``lm``: a fitted :class:`~seqlab.models.classical.ngram.NGramLM` (or an
    :class:`~seqlab.inference.ctc_lm.NGramScorer`), word or character level by ``lm_level``.
    ``hotwords`` get ``hotword_weight`` each; ``lexicon`` restricts the words. ``processes`` > 1
    decodes utterances in that many worker processes (spawned, so it is safe beside threads and
    in a user's own pool), with the same results. Where the lexicon refuses every label that
    survives a frame's pruning, that frame is redone with every label (blank keeps a hypothesis
    alive), so a lexicon never empties the beam mid-utterance; an utterance whose end leaves no
    lexicon word complete gets an empty list. ``trailing_space_unk``: pyctcdecode 0.5's
    end-of-utterance rule, for like-for-like comparisons: of the hypotheses that end in the same
    text, the last (worst) one's split into words is kept, and if it ended in a space an unknown
    word is scored after it (with its word bonus). Off by default: no phantom word.
    """
    x, n = as_batch(log_probs, lengths)
    if x.shape[-1] != len(tokens):
        raise DataError(None, None, f"{len(tokens)} labels (len(tokens))", f"log_probs with V={x.shape[-1]}")
    scorer = lm if lm is None or isinstance(lm, NGramScorer) else NGramScorer(lm, level=lm_level)
    opts = BeamOptions(
        tuple(tokens), blank, beam, prune, token_min_logp, top_k, blank_skip, scorer, lm_weight, word_bonus,
        None if hotwords is None else Hotwords(hotwords, hotword_weight),
        None if lexicon is None else Lexicon(lexicon), nbest, trailing_space_unk,
    )
    jobs = [(x[b, : n[b]], opts) for b in range(len(x))]
    if processes > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            return list(pool.map(_decode_job, jobs, chunksize=max(1, len(jobs) // (4 * processes))))
    return [_decode_job(j) for j in jobs]


def _decode_job(job: tuple[np.ndarray, BeamOptions]) -> list[Hypothesis]:
    return beam_search_one(*job)


def _candidates(lp: np.ndarray, o: BeamOptions) -> list[list[tuple[int, float]] | None]:
    """Per frame the labels that survive pruning, or None for a blank-only frame."""
    keep = lp >= o.token_min_logp  # (T, V)
    keep[np.arange(len(lp)), lp.argmax(-1)] = True
    if o.blank_skip is not None:
        skip = lp[:, o.blank] >= math.log(o.blank_skip)
        keep[skip] = False
        keep[skip, o.blank] = True
    out: list[list[tuple[int, float]] | None] = []
    for t in range(len(lp)):
        ids = np.flatnonzero(keep[t])
        if len(ids) == 1 and ids[0] == o.blank:
            out.append(None)
            continue
        if o.top_k is not None and len(ids) > o.top_k:
            ids = ids[np.argsort(-lp[t, ids], kind="stable")[: o.top_k]]
            ids.sort()
        out.append([(int(i), float(lp[t, i])) for i in ids])
    return out


# A beam: (text, previous text, partial word, last label, word frames, partial frames, acoustic,
# ids as a linked list (last id, rest) so that an extension costs O(1))
Beam = tuple[str, str, str, int, tuple[tuple[int, int], ...], tuple[int, int], float, Any]


def _ids(cons: Any) -> list[int]:
    out = []
    while cons:
        out.append(cons[0])
        cons = cons[1]
    return out[::-1]


def _lae(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    return a + math.log1p(math.exp(b - a)) if a >= b else b + math.log1p(math.exp(a - b))


def _extend(beams: list[Beam], cands: list[tuple[int, float]], t: int, o: BeamOptions) -> list[Beam]:
    """Every beam times every surviving label at frame t, merged by (text, partial, last).
    One loop per kind of label (blank, space, letter), the merge test inlined: this is the hot loop."""
    merged: dict[tuple[str, str, int], Beam] = {}
    get = merged.get
    space, lex, blank = o.space, o.lexicon, o.blank
    end = t + 1
    for c, p in cands:
        if c == blank:
            for text, _, part, _, tf, pf, sc, ids in beams:
                key = (text, part, -1)
                old = get(key)
                if old is None:
                    merged[key] = (text, text, part, -1, tf, pf, sc + p, ids)
                else:
                    merged[key] = (*old[:6], _lae(old[6], sc + p), old[7])
            continue
        ch = o.tokens[c]
        for text, _, part, last, tf, pf, sc, ids in beams:
            if c == last:  # a repeat: the same label, not a new one
                nb: Beam = (text, text, part, c, tf, (pf[0], end), sc + p, ids)
                key = (text, part, c)
            elif c == space:
                if part and lex is not None and part not in lex.words:
                    continue
                new = part if not text else (text + " " + part if part else text)
                nb = (new, text, "", c, (*tf, pf) if part else tf, (-1, -1), sc + p, (c, ids))
                key = (new, "", c)
            else:
                word = part + ch
                if lex is not None and word not in lex.prefixes:
                    continue
                nb = (text, text, word, c, tf, (t, end) if pf[0] < 0 else (pf[0], end), sc + p, (c, ids))
                key = (text, word, c)
            old = get(key)
            if old is None:
                merged[key] = nb
            else:
                merged[key] = (*old[:6], _lae(old[6], nb[6]), old[7])
    return list(merged.values())


class _Scores:
    """The LM and hotword part of each hypothesis' score, cached by text for one utterance."""

    def __init__(self, o: BeamOptions) -> None:
        self.o = o
        self.words: dict[tuple[str, bool], tuple[float, float, Any]] = {}
        self.parts: dict[str, float] = {}
        self.chars: dict[str, tuple[float, Any]] = {}
        self.totals: dict[str, float] = {}  # text -> words[(text, False)][0], for the hot path
        if o.lm is not None:
            self.words[("", False)] = (0.0, 0.0, o.lm.start())
            self.totals[""] = 0.0
            self.chars[""] = (0.0, o.lm.start())

    def __call__(self, text: str, prev: str, part: str, eos: bool = False) -> float:
        o, hw = self.o, self.o.hotwords
        if o.lm is None:
            return 0.0 if hw is None else hw.text(text.split()) + hw.partial(part)
        if o.lm.level == "char":
            s = text + " " + part if text and (part or not eos) else text or part
            lm = self._char(s)
            if eos:
                lm += o.lm_weight * o.lm.end(self.chars[s][1])
            lm += o.word_bonus * len(text.split())
            return lm + (0.0 if hw is None else hw.text(text.split()) + hw.partial(part))
        key = (text, eos)
        if key not in self.words:
            _, raw, state = self.words[(prev, False)]
            word = text[len(prev) + 1 if prev else 0:]
            if word or (eos and o.trailing_space_unk):
                lp, state = o.lm.score(state, word)
                raw += o.lm_weight * lp + o.word_bonus
            if eos:
                raw += o.lm_weight * o.lm.end(state)
            self.words[key] = (raw + (0.0 if hw is None else hw.text(text.split())), raw, state)
            if not eos:
                self.totals[text] = self.words[key][0]
        total = self.words[key][0]
        if part:
            if part not in self.parts:
                self.parts[part] = hw.partial(part) if hw is not None and part in hw else o.lm.partial(part)
            total += self.parts[part]
        return total

    def word_scores(self, beams: list[Beam]) -> list[float]:
        """Total scores of ``beams`` under a word LM without hotwords: :meth:`__call__` inlined
        for the hot path (cache hits need no call)."""
        totals, parts, out = self.totals, self.parts, []
        for b in beams:
            hit = totals.get(b[0])
            total = b[6] + (hit if hit is not None else self(b[0], b[1], ""))
            part = b[2]
            if part:
                ps = parts.get(part)
                if ps is None:
                    ps = self.parts[part] = self.o.lm.partial(part)  # type: ignore[union-attr]
                total += ps
            out.append(total)
        return out

    def _char(self, s: str) -> float:
        """lm_weight * ln p(characters of s), extended from the longest cached prefix."""
        i = len(s)
        while s[:i] not in self.chars:
            i -= 1
        score, state = self.chars[s[:i]]
        lm = self.o.lm
        assert lm is not None
        for k in range(i, len(s)):
            lp, state = lm.score(state, lm_space(s[k]))
            score += self.o.lm_weight * lp
            self.chars[s[: k + 1]] = (score, state)
        return score


def lm_space(ch: str) -> str:
    """A character LM's token for a character: the space is ``|`` (ARPA tokens hold no spaces)."""
    return "|" if ch == " " else ch


def _prune(scores: list[float], o: BeamOptions, width: int) -> list[int]:
    """Indices of the ``width`` best scores within ``-prune`` of the best, best first (ties in
    index order, as ``heapq.nlargest``)."""
    floor = max(scores) + o.prune
    idx = [i for i, s in enumerate(scores) if s >= floor]
    if len(idx) > width:
        return heapq.nlargest(width, idx, key=scores.__getitem__)
    idx.sort(key=scores.__getitem__, reverse=True)
    return idx


def beam_search_one(lp: np.ndarray, o: BeamOptions) -> list[Hypothesis]:
    """The beam search over one utterance's (T, V) log posteriors."""
    cands = _candidates(lp, o)
    score = _Scores(o)
    beams: list[Beam] = [("", "", "", _START, (), (-1, -1), 0.0, None)]
    carry = 0.0  # blank log-probability of a run of blank-only frames, not yet added
    for t, cs in enumerate(cands):
        if cs is None and t > 0 and cands[t - 1] is None:
            carry += float(lp[t, o.blank])
            continue
        if carry:
            beams = [(*b[:6], b[6] + carry, b[7]) for b in beams]
            carry = 0.0
        new = _extend(beams, cs or [(o.blank, float(lp[t, o.blank]))], t, o)
        if not new:  # the lexicon refused every surviving label: redo the frame with all of them
            new = _extend(beams, [(c, float(lp[t, c])) for c in range(lp.shape[1])], t, o)
        if o.lm is None and o.hotwords is None:
            scores = [b[6] for b in new]
        elif o.lm is not None and o.lm.level == "word" and o.hotwords is None:
            scores = score.word_scores(new)
        else:
            scores = [b[6] + score(b[0], b[1], b[2]) for b in new]
        beams = [new[i] for i in _prune(scores, o, o.beam)]
    beams = [(*b[:6], b[6] + carry, b[7]) for b in beams]
    final: dict[str, Beam] = {}
    for text, _, part, _, tf, pf, sc, ids in beams:
        if part and o.lexicon is not None and part not in o.lexicon.words:
            continue
        new_text = part if not text else (text + " " + part if part else text)
        nb: Beam = (new_text, text, "", _START, (*tf, pf) if part else tf, (-1, -1), sc, ids)
        old = final.get(new_text)
        if old is None:
            final[new_text] = nb
        elif o.trailing_space_unk:  # pyctcdecode keeps the last (worst) merged hypothesis' fields
            final[new_text] = (*nb[:6], _lae(old[6], sc), nb[7])
        else:
            final[new_text] = (*old[:6], _lae(old[6], sc), old[7])
    if not final:
        return []
    ends = list(final.values())
    totals = [b[6] + score(b[0], b[1], "", eos=True) for b in ends]
    ranked = [(totals[i], ends[i]) for i in _prune(totals, o, min(o.beam, o.nbest))]
    return [
        Hypothesis(_ids(b[7]), b[0], s, b[6], [WordSpan(w, f[0], f[1]) for w, f in zip(b[0].split(), b[4])])
        for s, b in ranked
    ]
