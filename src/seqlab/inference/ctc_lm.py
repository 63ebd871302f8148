"""What a CTC beam search adds to the acoustic score: an n-gram LM (word or character level),
hotwords and a lexicon.

The n-gram scorer reads seqlab's own backoff tables (:class:`~seqlab.models.classical.ngram.NGramLM`,
fitted or read from ARPA), so any model seqlab estimates, or any ARPA file, fuses. All scores are
natural logs; the LM's log10 probabilities are converted. Everything here is plain data (numpy
arrays, dicts, frozensets), so a decoder holding it pickles into worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["NGramScorer", "Hotwords", "Lexicon", "word_log10"]

LN10 = math.log(10.0)


def word_log10(tables: Any, history: Sequence[int], word: int) -> float:
    """log10 p(word | history) by the backoff rule, one lookup per context length (``history``
    model ids, the sentence start implied). Pinned to :func:`~seqlab.models.classical.ngram.next_log10`."""
    from seqlab.models.classical.ngram_tables import _context_chain

    chain = _context_chain(tables, history)  # (order-1,) suffix indices, -1 past the longest held
    V = tables.vocab_size
    backoff = 0.0
    for c in range(tables.order - 1, 0, -1):
        j = int(chain[c - 1])
        if j < 0:
            continue
        idx = int(tables.find(c + 1, np.array([j * V + word], dtype=np.int64))[0])
        if idx >= 0:
            return backoff + float(tables.logp[c][idx])
        backoff += float(tables.backoff[c - 1][j])
    return backoff + float(tables.logp[0][word])


class NGramScorer:
    """A fitted seqlab n-gram LM as the decoder's scorer.

    ``level="word"``: LM tokens are words (the text split at the space label), scored when a word
    is complete. ``level="char"``: LM tokens are the single characters of the text, the space
    included as ``" "``, scored as each is emitted. ``unk_offset`` (log10) is added for a word
    the LM does not know; ``partial_oov`` (natural log, per 6 characters beyond the sixth) for a
    partial word that starts no LM word. Both defaults are pyctcdecode's, so the two decoders rank
    hypotheses alike.
    """

    def __init__(self, lm: Any, level: str = "word", unk_offset: float = -10.0, partial_oov: float = -10.0) -> None:
        if level not in ("word", "char"):
            raise ConfigError(f"level must be 'word' or 'char', found {level!r}")
        if not hasattr(lm, "tables_"):
            raise ConfigError("the n-gram LM is not fitted: call fit_counts() or NGramLM.from_arpa() first")
        self.tables = lm.tables_
        self.index: dict[str, int] = dict(lm.index_)
        self.level = level
        self.unk_offset = unk_offset
        self.partial_oov = partial_oov
        self.width = max(self.tables.order - 1, 0)
        self._prefixes: frozenset[str] | None = None
        self._memo: dict[tuple[tuple[int, ...], str], tuple[float, tuple[int, ...]]] = {}

    def start(self) -> tuple[int, ...]:
        """The state at the start of a sentence (an empty history)."""
        return ()

    def score(self, state: tuple[int, ...], token: str) -> tuple[float, tuple[int, ...]]:
        """(ln p(token | state) plus the unknown-word offset, the next state); memoised."""
        hit = self._memo.get((state, token))
        if hit is not None:
            return hit
        w = self.index.get(token, 0)
        lp = word_log10(self.tables, state, w) + (self.unk_offset if w == 0 else 0.0)
        nxt = (*state, w)[-self.width:] if self.width else ()
        if len(self._memo) > 1_000_000:
            self._memo.clear()
        self._memo[(state, token)] = out = (lp * LN10, nxt)
        return out

    def end(self, state: tuple[int, ...]) -> float:
        """ln p(</s> | state)."""
        return word_log10(self.tables, state, 2) * LN10

    def partial(self, part: str) -> float:
        """The penalty of a partial word that starts no word the LM knows (0 if one starts so)."""
        if self._prefixes is None:
            self._prefixes = frozenset(w[:i] for w in self.index for i in range(1, len(w) + 1))
        if part in self._prefixes:
            return 0.0
        return self.partial_oov * (len(part) / 6 if len(part) > 6 else 1.0)


class Hotwords:
    """Words to favour: ``weight`` (natural log) per hotword in the text, and for a partial word
    that starts one, ``weight * len(part) / len(shortest hotword it starts)``. Multi-word
    hotwords count word by word."""

    def __init__(self, words: Iterable[str], weight: float) -> None:
        self.words = frozenset(u for w in words for u in w.split())
        self.weight = weight
        shortest: dict[str, int] = {}
        for w in self.words:
            for i in range(1, len(w) + 1):
                shortest[w[:i]] = min(shortest.get(w[:i], len(w)), len(w))
        self.shortest = shortest

    def text(self, words: Sequence[str]) -> float:
        return self.weight * sum(w in self.words for w in words)

    def partial(self, part: str) -> float:
        n = self.shortest.get(part)
        return 0.0 if n is None else self.weight * len(part) / n

    def __contains__(self, part: object) -> bool:
        return part in self.shortest


class Lexicon:
    """The words a transcript may contain: a hypothesis whose partial word starts none of them,
    or that completes a word outside them, is dropped."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        if not self.words:
            raise ConfigError("the lexicon is empty")
        self.prefixes = frozenset(w[:i] for w in self.words for i in range(1, len(w) + 1))
