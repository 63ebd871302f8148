"""N-gram backoff tables (the ARPA layout) and every lookup in them.

Every smoothing (:mod:`.ngram_estimate`) ends in the same tables: per order n, the sorted int64
keys of the n-grams, their log10 probability and their log10 backoff weight. An n-gram's key is
``index of its (n-1)-word prefix in order n-1`` * V + last word, so any order fits in an int64
and there is no compile-time cap. Querying (a dense array over small key spaces, else an
open-addressing hash table probed with whole-array operations; ``np.searchsorted`` in the
readable ``*_ref`` path) is vectorized over the whole token stream: there is no per-token
Python loop. This module also holds the special ids and the token stream every sentence is
read as (``<s> w1 .. wk </s>``), the context chains of a history, and the next-token
distributions (``next_log10_rows``) that prediction and decoding read.

Shapes: S stream length (all sentences with their ``<s>`` and ``</s>``), G_n n-grams of order n,
V vocabulary size (ids 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then words), B sentences or contexts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "UNK", "BOS", "EOS", "SPECIALS", "I64", "F64", "DENSE_LIMIT", "NGramTables", "HashIndex",
    "sentence_stream", "lookup_ref", "stream_indices", "score_stream_ref", "score_stream",
    "next_log10_rows", "next_log10", "argmax_stream",
]

UNK, BOS, EOS = 0, 1, 2
SPECIALS = ("<unk>", "<s>", "</s>")
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


@dataclass
class NGramTables:
    """The backoff model. ``keys[n-1]`` (G_n,) sorted int64, ``logp[n-1]`` / ``backoff[n-1]``
    (G_n,) float64 log10. Order 1 is the whole vocabulary: ``keys[0] == arange(V)``."""

    vocab_size: int
    keys: list[I64]
    logp: list[F64]
    backoff: list[F64]

    @property
    def order(self) -> int:
        return len(self.keys)

    def find(self, n: int, query: I64) -> NDArray[np.integer[Any]]:
        """Index of each query key among the order-n keys, -1 where absent (queries >= -V):
        through an index built on first use, a dense array when the key space is small (one
        read per query), a hash table otherwise (``searchsorted`` is the readable oracle)."""
        cache: dict[int, Any] = self.__dict__.setdefault("_index", {})
        if n not in cache:
            keys, V = self.keys[n - 1], self.vocab_size
            space = (len(self.keys[n - 2]) + 1) * V if n > 1 else 2 * V
            if space <= DENSE_LIMIT:
                dense = np.full(space, -1, dtype=np.int32)  # slot q + V: row 0 is "no context"
                dense[keys + V] = np.arange(len(keys), dtype=np.int32)
                cache[n] = dense
            else:
                cache[n] = HashIndex(keys)
        index = cache[n]
        return index[query + self.vocab_size] if isinstance(index, np.ndarray) else index.find(query)

    def find_pair(self, n: int, prev: NDArray[np.integer[Any]], word: I64) -> NDArray[np.integer[Any]]:
        """:meth:`find` for the keys ``prev * V + word`` (``prev`` -1: no context), in int32
        arithmetic when the dense index covers the key space."""
        self.find(n, np.zeros(0, dtype=np.int64))  # build the index
        index = self.__dict__["_index"][n]
        if isinstance(index, np.ndarray):
            slot = prev.astype(np.int32) + 1  # (Q,) row 0 of the dense array: no context
            slot *= self.vocab_size
            slot += word
            return index[slot]
        return index.find(np.multiply(prev, self.vocab_size, dtype=np.int64) + word)


DENSE_LIMIT = 1 << 23  # int32 slots (32 MB) per order at most for a dense index
_GOLDEN = np.int64(0x9E3779B97F4A7C15 - 2**64)  # Knuth's multiplicative constant, as int64
_SLOT = np.dtype([("key", "<i8"), ("at", "<i8")])


class HashIndex:
    """A read-only open-addressing (linear probing) hash table from int64 keys to their
    positions, built and probed with whole-array numpy operations. numpy has no hash table and
    ``np.searchsorted`` costs ~20 random reads per query on large tables; this costs ~1.3.
    Slots are (key, position) pairs side by side, so a probe is one cache line."""

    def __init__(self, keys: I64) -> None:
        self.bits = max(4, int(math.ceil(math.log2(max(len(keys), 1) * 4))))  # load <= 1/4
        self.mask = (1 << self.bits) - 1
        table = np.full((1 << self.bits, 2), -1, dtype=np.int64)  # (slots, [key, position])
        home = self._home(keys)
        pending = np.arange(len(keys))
        probe = 0
        while len(pending):
            pos = (home[pending] + probe) & self.mask
            free = table[pos, 0] < 0
            slot, first = np.unique(pos[free], return_index=True)  # one winner per free slot
            won = pending[free][first]
            table[slot, 0] = keys[won]
            table[slot, 1] = won
            placed = np.zeros(len(keys), dtype=bool)
            placed[won] = True
            pending = pending[~placed[pending]]
            probe += 1
        self.table = table
        self.max_probe = probe

    def _home(self, keys: I64) -> I64:
        with np.errstate(over="ignore"):  # multiplicative hashing wraps on purpose
            h = (keys * _GOLDEN).view(np.uint64) >> np.uint64(64 - self.bits)
        return h.view(np.int64)

    def find(self, query: I64) -> I64:
        slots = self.table.view(_SLOT).reshape(-1)  # (slots,) records
        pos = self._home(query)  # (Q,)
        slot = slots[pos]
        hit = slot["key"] == query  # an empty slot is (-1, -1): a query of -1 finds -1
        out = np.where(hit, slot["at"], -1)  # (Q,)
        more = np.flatnonzero(~hit & (slot["key"] >= 0))  # collided: probe further
        for probe in range(1, self.max_probe):
            if not len(more):
                break
            slot = slots[(pos[more] + probe) & self.mask]
            hit = slot["key"] == query[more]
            out[more[hit]] = slot["at"][hit]
            more = more[~hit & (slot["key"] >= 0)]
        return out


def sentence_stream(sentences: Sequence[Sequence[int]]) -> tuple[I64, I64]:
    """Ids of ``<s> w1 .. wk </s>`` for every sentence, flattened: tokens (S,) and each
    token's offset from its sentence's ``<s>`` (S,)."""
    lens = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    flat = np.fromiter(itertools.chain.from_iterable(sentences), dtype=np.int64, count=int(lens.sum()))
    return _wrap(flat, lens)


def _flatten(sentences: Sequence[Sequence[str]]) -> tuple[list[str], I64]:
    lens = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    return list(itertools.chain.from_iterable(sentences)), lens


def _wrap(flat: I64, lens: I64) -> tuple[I64, I64]:
    total = lens + 2  # (B,) every sentence with its <s> and </s>
    starts = np.cumsum(total) - total  # (B,)
    S = int(total.sum())
    tokens = np.full(S, EOS, dtype=np.int64)  # (S,)
    tokens[starts] = BOS
    is_word = np.ones(S, dtype=bool)
    is_word[starts] = False
    is_word[starts + total - 1] = False
    tokens[is_word] = flat
    jumps = np.zeros(S, dtype=np.int64)
    jumps[starts[1:]] = total[:-1]
    offset = np.arange(S) - np.cumsum(jumps)  # (S,) distance from the sentence's <s>
    return tokens, offset


def lookup_ref(keys: I64, query: I64) -> I64:
    """Index of each query key in the sorted ``keys``, -1 where absent (or query < 0)."""
    if len(keys) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    pos = np.searchsorted(keys, query)  # (Q,)
    pos = np.minimum(pos, len(keys) - 1)
    return np.where((keys[pos] == query) & (query >= 0), pos, -1).astype(np.int64)



def stream_indices(t: NGramTables, tokens: I64, offset: I64, ref: bool = False) -> list[I64]:
    """Per order n: (S,) index of the n-gram ending at each position, -1 where absent
    (``ref``: through ``searchsorted`` instead of the hash index)."""
    V = t.vocab_size
    idx = [tokens.copy()]
    for n in range(2, t.order + 1):
        prev = np.concatenate([[-1], idx[-1][:-1]])  # (S,) the (n-1)-gram ending one step back
        query = np.where((offset >= n - 1) & (prev >= 0), np.multiply(prev, V, dtype=np.int64) + tokens, -1)
        idx.append(lookup_ref(t.keys[n - 1], query) if ref else t.find(n, query).astype(np.int64))
    return idx


def score_stream_ref(t: NGramTables, tokens: I64, offset: I64) -> F64:
    """(S,) log10 p(token | history) by the backoff rule (0 at ``<s>`` positions), readably:
    the longest n-gram that matches, plus the backoffs of every longer context."""
    idx = stream_indices(t, tokens, offset, ref=True)
    lp = t.logp[0][tokens]  # (S,)
    longest = np.ones(len(tokens), dtype=np.int64)
    for n in range(2, t.order + 1):
        hit = idx[n - 1] >= 0
        lp = np.where(hit, np.append(t.logp[n - 1], 0.0)[idx[n - 1]], lp)
        longest = np.where(hit, n, longest)
    for c in range(1, t.order):  # back off through the contexts longer than the match
        ctx = np.concatenate([[-1], idx[c - 1][:-1]])  # (S,) context of length c
        use = (ctx >= 0) & (c >= longest) & (offset >= c)
        lp = lp + np.where(use, t.backoff[c - 1][np.maximum(ctx, 0)] if len(t.backoff[c - 1]) else 0.0, 0.0)
    return np.where(offset >= 1, lp, 0.0)


def score_stream(t: NGramTables, tokens: I64, offset: I64) -> F64:
    """:func:`score_stream_ref`, fast: the recursion p(w | h) = p(hw) if listed, else
    bo(h) p(w | h') one order at a time. At order n only positions n-1.. can hold an n-gram,
    so every array is a view that starts one position later than the last (no shifted copies),
    and no sentence checks are needed: an n-gram never holds ``<s>`` past its first word, so a
    window across a sentence boundary is never found."""
    out = t.logp[0][tokens]  # (S,) log10 p(w | context of length 0)
    idx: NDArray[np.integer[Any]] = tokens  # the (n-1)-gram ending at each position from n-2 on
    for n in range(2, t.order + 1):
        prev = idx[:-1]  # (S-n+1,) context of length n-1 ending one step back (-1: not held)
        found = t.find_pair(n, prev, tokens[n - 1 :])  # (S-n+1,) the n-gram ending at n-1..
        val = out[n - 1 :] + np.append(t.backoff[n - 2], 0.0)[prev]  # backed off: bo(h) p(w | h')
        np.copyto(val, np.append(t.logp[n - 1], 0.0)[found], where=found >= 0)
        out[n - 1 :] = val
        idx = found
    out[offset == 0] = 0.0
    return out


def _context_chain(t: NGramTables, history: Sequence[int]) -> I64:
    """(order-1,) index of the history's suffix of each length 1, 2, ... (-1 past the longest
    one the model holds); the history starts at ``<s>``."""
    V = t.vocab_size
    chain = np.full(max(t.order - 1, 0), -1, dtype=np.int64)
    hist = [BOS, *history][-(t.order - 1):] if t.order > 1 else []
    for c in range(1, len(hist) + 1):
        words = hist[-c:]
        j = words[0]
        for n in range(2, c + 1):
            j = int(t.find(n, np.array([j * V + words[n - 1]]))[0]) if j >= 0 else -1
        if j < 0:
            break
        chain[c - 1] = j
    return chain


def next_log10_rows(t: NGramTables, chains: I64) -> F64:
    """(B, V) log10 p(w | context) for contexts given as chains (B, order-1) of suffix indices
    (``-1`` past the longest held one); ``-inf`` for ``<s>``. The backoff rule, level by level:
    start from the unigrams, then per context length add its backoff and overwrite the words
    it lists (a ragged scatter done with ``np.repeat``)."""
    V = t.vocab_size
    out = np.repeat(t.logp[0][None, :], len(chains), axis=0)  # (B, V)
    for c in range(1, t.order):
        rows = np.flatnonzero(chains[:, c - 1] >= 0)
        if len(rows) == 0:
            break
        j = chains[rows, c - 1]  # (R,)
        out[rows] += t.backoff[c - 1][j][:, None]
        lo = np.searchsorted(t.keys[c], j * V)
        hi = np.searchsorted(t.keys[c], (j + 1) * V)
        n = hi - lo  # (R,) explicit continuations per context
        pos = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        out[np.repeat(rows, n), t.keys[c][pos] % V] = t.logp[c][pos]
    out[:, BOS] = -np.inf
    return out


def next_log10(t: NGramTables, history: Sequence[int]) -> F64:
    """(V,) log10 p(w | history) for every w; the history starts at ``<s>``."""
    return next_log10_rows(t, _context_chain(t, history)[None, :])[0]


def argmax_stream(t: NGramTables, tokens: I64, offset: I64, max_cells: int = 1 << 22) -> I64:
    """(S,) the most likely next token before each position (its prediction), exact: one
    distribution per distinct context state (the longest context the model holds), computed
    in chunks of at most ``max_cells`` (rows x V) numbers."""
    idx = stream_indices(t, tokens, offset)
    S = len(tokens)
    chains = np.full((S, max(t.order - 1, 0)), -1, dtype=np.int64)  # (S, order-1)
    for c in range(1, t.order):
        ctx = np.concatenate([[-1], idx[c - 1][:-1]])
        chains[:, c - 1] = np.where(offset >= c, ctx, -1)
    if t.order == 1:
        return np.full(S, int(np.argmax(np.where(np.arange(t.vocab_size) == BOS, -np.inf, t.logp[0]))), dtype=np.int64)
    depth = (chains >= 0).sum(1)  # (S,)
    state = np.where(depth > 0, chains[np.arange(S), np.maximum(depth - 1, 0)], 0) * t.order + depth
    uniq, first, inverse = np.unique(state, return_index=True, return_inverse=True)
    top = np.empty(len(uniq), dtype=np.int64)
    step = max(1, max_cells // t.vocab_size)
    for a in range(0, len(uniq), step):
        top[a : a + step] = next_log10_rows(t, chains[first[a : a + step]]).argmax(1)
    return top[inverse.reshape(-1)]
