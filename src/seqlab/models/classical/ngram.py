"""N-gram language models: maximum likelihood, add-k and interpolated modified Kneser-Ney.

The estimator follows KenLM's ``lmplz`` to the letter, so the two give the same probabilities
on the same corpus (``bench/ngram_kenlm_parity.py``): every sentence is ``<s> w1 .. wk </s>``;
an n-gram may start with ``<s>`` but never holds it elsewhere; lower orders use adjusted
(continuation) counts except n-grams that start with ``<s>``; three discounts per order come from
counts of counts (Chen & Goodman 1998, eq. 26); unigrams are interpolated with the uniform
distribution over the vocabulary (``<unk>`` and ``</s>`` included, ``<s>`` excluded), which is
also all the mass ``<unk>`` gets. Heafield et al. 2013, "Scalable modified Kneser-Ney language
model estimation".

Every smoothing ends in the same backoff tables (the ARPA layout): per order n, the sorted int64
keys of the n-grams, their log10 probability and their log10 backoff weight. An n-gram's key is
``index of its (n-1)-word prefix in order n-1`` * V + last word, so any order fits in an int64
and there is no compile-time cap. Counting (a bincount over small key spaces, else a sort) and
querying (a dense array over small key spaces, else an open-addressing hash table probed with
whole-array operations; ``np.searchsorted`` in the readable ``*_ref`` path) are vectorized over
the whole token stream: there is no per-token Python loop.

Shapes: S stream length (all sentences with their ``<s>`` and ``</s>``), G_n n-grams of order n,
V vocabulary size (ids 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then words), B sentences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.models.classical.base import ClassicalModel
from seqlab.tasks import Example, Task
from seqlab.tasks.text import as_tokens

__all__ = [
    "NGramConfig", "NGramModel", "NGramLM", "NGramTables", "UNK", "BOS", "EOS", "SPECIALS",
    "kn_discounts", "sentence_stream",
]

UNK, BOS, EOS = 0, 1, 2
SPECIALS = ("<unk>", "<s>", "</s>")
Smoothing = Literal["kneser_ney", "add_k", "ml"]
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


def _check_key_range(n_prefix: int, vocab_size: int, order: int) -> None:
    if n_prefix * vocab_size >= 2**62:
        raise SeqlabError(f"order {order}: {n_prefix} contexts x {vocab_size} words overflows the int64 n-gram keys")


@dataclass
class _Counts:
    """Per order n: keys (G_n,), raw counts, adjusted counts, prefix / suffix index into order
    n-1 and first word (G_n,)."""

    keys: list[I64]
    raw: list[I64]
    adjusted: list[I64]
    suffix: list[I64]
    first: list[I64]


def _unique(x: I64, space: int) -> tuple[I64, I64, I64]:
    """``np.unique(x, return_inverse=True, return_counts=True)`` for 0 <= x < space, faster:
    a bincount over the key space when it is small (no sort at all), else one unstable torch
    sort (numpy's unique argsorts stably), on int32 when the keys fit, and a scatter of the
    group ids."""
    if space <= DENSE_LIMIT:
        counts = np.bincount(x, minlength=space)  # (space,)
        present = np.flatnonzero(counts)
        rank = np.cumsum(counts > 0) - 1  # (space,) group id of each present key
        return present.astype(np.int64), rank[x].astype(np.int64), counts[present].astype(np.int64)
    tx = torch.from_numpy(x)
    values, perm = torch.sort(tx.int() if space < 2**31 else tx)
    v, p = values.numpy().astype(np.int64), perm.numpy()
    starts = np.ones(len(v), dtype=bool)
    starts[1:] = v[1:] != v[:-1]
    group = np.cumsum(starts) - 1  # (S,) in sorted order
    inverse = np.empty(len(v), dtype=np.int64)
    inverse[p] = group
    bounds = np.flatnonzero(np.append(starts, True))
    return v[starts], inverse, np.diff(bounds).astype(np.int64)


def count_ngrams(tokens: I64, offset: I64, order: int, vocab_size: int) -> _Counts:
    """Count every n-gram (n <= order) of the stream, lmplz's way (see the module docstring)."""
    V = vocab_size
    real = offset >= 1  # (S,) positions that are predicted (not <s>)
    keys = [np.arange(V, dtype=np.int64)]
    raw = [np.bincount(tokens[real], minlength=V).astype(np.int64)]
    suffix = [np.zeros(V, dtype=np.int64)]
    first = [np.arange(V, dtype=np.int64)]
    idx = tokens.copy()  # (S,) index of the n-gram ending at each position
    for n in range(2, order + 1):
        _check_key_range(len(keys[-1]), V, n)
        valid = offset >= n - 1  # (S,)
        pos = np.flatnonzero(valid)
        key = idx[pos - 1] * V + tokens[pos]
        uniq, inverse, cnt = _unique(key, len(keys[-1]) * V)
        new_idx = np.full(len(tokens), -1, dtype=np.int64)
        new_idx[pos] = inverse
        suf = np.zeros(len(uniq), dtype=np.int64)
        suf[inverse] = idx[pos]  # the (n-1)-gram ending at the same place
        keys.append(uniq)
        raw.append(cnt.astype(np.int64))
        suffix.append(suf)
        first.append(first[-1][uniq // V])
        idx = new_idx
    adjusted = [r.copy() for r in raw]
    for n in range(1, order):  # continuation counts, except n-grams starting with <s>
        cont = np.bincount(suffix[n], minlength=len(keys[n - 1]))
        adjusted[n - 1] = np.where(first[n - 1] == BOS, raw[n - 1], cont)
        if n == 1:
            adjusted[0][BOS] = 0
    return _Counts(keys, raw, adjusted, suffix, first)


def counts_of_counts(c: _Counts) -> list[I64]:
    """(order, 5) n_j: how many n-grams have adjusted count j (j < 5), as lmplz tallies them.

    lmplz (adjust_counts.cc) tallies the last n-gram of each lower order in suffix order (the
    suffixes of the greatest highest-order n-gram) with its raw count instead of its adjusted
    count; we reproduce that so the discounts, hence the probabilities, match exactly.
    """
    order = len(c.keys)
    stats = [np.bincount(np.minimum(a, 5), minlength=6)[:5].astype(np.int64) for a in c.adjusted]
    if order == 1:
        return stats
    present = np.flatnonzero(c.raw[0] > 0)
    g = int(present.max()) if len(present) else EOS  # unigram: greatest id that is predicted
    for n in range(1, order):
        if c.first[n - 1][g] == BOS:
            break  # an n-gram starting with <s> has raw == adjusted; the chain stops here
        a, r = int(c.adjusted[n - 1][g]), int(c.raw[n - 1][g])
        if a < 5:
            stats[n - 1][a] -= 1
        if r < 5:
            stats[n - 1][r] += 1
        if n + 1 >= order:
            break
        ext = np.flatnonzero(c.suffix[n] == g)  # (n+1)-grams whose suffix is g: pick the greatest
        g = int(ext[np.argmax(c.first[n][ext])])
    for s in stats:
        s[0] = 0
    return stats


def kn_discounts(stats: I64, order: int, fallback: tuple[float, float, float] | None) -> F64:
    """(4,) discounts D0..D3+ of one order from its counts of counts n1..n4 (Chen & Goodman eq. 26)."""
    n = stats.astype(np.float64)
    problem = ""
    if (n[1:4] == 0).any():
        problem = f"no {order}-grams with adjusted count {int(np.flatnonzero(n[1:4] == 0)[0]) + 1}"
    else:
        y = n[1] / (n[1] + 2 * n[2])
        d = np.array([0.0] + [j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)])
        bad = [j for j in (1, 2, 3) if not 0 <= d[j] <= j]
        if not bad:
            return d
        problem = f"the {order}-gram discount for count {bad[0]} is {d[bad[0]]:.4g}, outside [0, {bad[0]}]"
    if fallback is None:
        raise DataError(None, None, "counts of counts that give Kneser-Ney discounts (a corpus with singletons "
                        "and doubletons at every order; or set discount_fallback)", problem)
    return np.array([0.0, *fallback])


def _log10(x: F64) -> F64:
    with np.errstate(divide="ignore"):
        return np.log10(x)


def _per_context(values: F64, ctx: I64, n_ctx: int) -> F64:
    return np.bincount(ctx, weights=values, minlength=n_ctx).astype(np.float64)


def kneser_ney_tables(c: _Counts, discounts: list[F64]) -> NGramTables:
    """Interpolated modified Kneser-Ney as lmplz writes it (initial_probabilities.cc, interpolate.cc)."""
    V = len(c.keys[0])
    order = len(c.keys)
    complete = np.full(1, 1.0 / (V - 1))  # the uniform distribution over V without <s>
    logp: list[F64] = []
    backoff: list[F64] = [np.zeros(len(k)) for k in c.keys]
    for n in range(1, order + 1):
        a = c.adjusted[n - 1].astype(np.float64)
        d = discounts[n - 1]
        ctx = c.keys[n - 1] // V if n > 1 else np.zeros(V, dtype=np.int64)
        n_ctx = len(c.keys[n - 2]) if n > 1 else 1
        denom = _per_context(a, ctx, n_ctx)  # (G_{n-1},)
        a_int = c.adjusted[n - 1]
        mass = sum(d[j] * _per_context((np.minimum(a_int, 3) == j).astype(np.float64), ctx, n_ctx) for j in (1, 2, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(denom > 0, mass / denom, 1.0)
            uninterp = np.where(a > 0, (a - d[np.minimum(a_int, 3)]) / denom[ctx], 0.0)
        lower = complete[c.suffix[n - 1]] if n > 1 else complete  # (G_n,) or (1,)
        complete = uninterp + gamma[ctx] * lower  # (G_n,)
        if n == 1:
            complete[BOS] = 1.0
        logp.append(np.minimum(0.0, _log10(complete)))
        if n > 1:
            backoff[n - 2] = np.where(denom > 0, _log10(gamma), 0.0)
    return NGramTables(V, list(c.keys), logp, backoff)


def additive_tables(c: _Counts, k: float) -> NGramTables:
    """Add-k (k = 0: maximum likelihood, the order-n Markov chain) in backoff form.

    ``p(w | h) = (c(hw) + k) / (c(h) + k |V|)`` where the history h is the last order-1 words,
    or reaches back to ``<s>``; |V| excludes ``<s>``. A history never seen gives 0/0, taken as
    the uniform limit 1/|V|. In backoff form: the n-grams with such a full history hold that
    probability and every other n-gram 1/|V|, and a full history backs off with weight
    ``k |V| / (c(h) + k |V|)`` (0 for k = 0: unseen words after a seen history have probability 0).
    """
    V = len(c.keys[0])
    order = len(c.keys)
    nv = V - 1
    logp: list[F64] = []
    backoff: list[F64] = [np.zeros(len(kk)) for kk in c.keys]
    for n in range(1, order + 1):
        cnt = c.raw[n - 1].astype(np.float64)
        full = np.ones(len(cnt), dtype=bool) if n == order else c.first[n - 1] == BOS
        if n == 1 and order > 1:
            full[:] = False
        ctx = c.keys[n - 1] // V if n > 1 else np.zeros(V, dtype=np.int64)
        n_ctx = len(c.keys[n - 2]) if n > 1 else 1
        hist = _per_context(np.where(full, cnt, 0.0), ctx, n_ctx)  # (G_{n-1},) c(h)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(full, (cnt + k) / (hist[ctx] + k * nv), 1.0 / nv)
        p = np.where(full & (hist[ctx] == 0), 1.0 / nv, p)  # only for order 1 with an empty corpus
        if n == 1:
            p[BOS] = 1.0
        logp.append(_log10(p))
        if n > 1:
            is_full_ctx = _per_context(full.astype(np.float64), ctx, n_ctx) > 0
            with np.errstate(divide="ignore"):
                bo = np.log10(k * nv) - np.log10(hist + k * nv) if k > 0 else np.full(n_ctx, -np.inf)
            backoff[n - 2] = np.where(is_full_ctx & (hist > 0), bo, 0.0)
    return NGramTables(V, list(c.keys), logp, backoff)


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


class _UnkIndex(dict[str, int]):
    """Word -> id with unknown words -> ``<unk>`` (``__missing__``: the fast ``__getitem__``)."""

    def __missing__(self, key: str) -> int:
        return UNK


class NGramLM:
    """An n-gram LM over string tokens, for users with their own token lists (and the KenLM
    parity work). ``fit_counts`` numbers words by first appearance as lmplz does."""

    def __init__(
        self, order: int = 3, smoothing: Smoothing = "kneser_ney", k: float = 1.0,
        discount_fallback: tuple[float, float, float] | None = None,
    ) -> None:
        if order < 1:
            raise ConfigError(f"order must be >= 1, found {order}")
        if smoothing not in ("kneser_ney", "add_k", "ml"):
            raise ConfigError(f"smoothing must be one of kneser_ney, add_k, ml; found {smoothing!r}")
        if k < 0:
            raise ConfigError(f"k must be >= 0, found {k}")
        self.order = order
        self.smoothing = smoothing
        self.k = k
        self.discount_fallback = discount_fallback

    # --- estimation -----------------------------------------------------------------------
    def fit_counts(self, sentences: Sequence[Sequence[str]]) -> NGramLM:
        """Fit on tokenized sentences. ``<s>``, ``</s>`` and ``<unk>`` in the text are skipped
        (lmplz reads them as whitespace)."""
        flat, lens = _flatten(sentences)
        words = [w for w in dict.fromkeys(flat) if w not in SPECIALS]  # by first appearance
        index = dict.fromkeys(SPECIALS, -1) | {w: i for i, w in enumerate(words, start=3)}
        ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
        if (ids < 0).any():  # drop the specials, shortening their sentences
            sent = np.repeat(np.arange(len(lens)), lens)
            lens = lens - np.bincount(sent[ids < 0], minlength=len(lens))
            ids = ids[ids >= 0]
        return self._fit_stream(*_wrap(ids, lens), [*SPECIALS, *words])

    def fit_ids(self, sentences: Sequence[Sequence[int]], vocab: list[str]) -> NGramLM:
        """Fit on id sentences over ``vocab`` (``vocab[:3]`` must be ``<unk> <s> </s>``)."""
        return self._fit_stream(*sentence_stream(sentences), vocab)

    def _fit_stream(self, tokens: I64, offset: I64, vocab: list[str]) -> NGramLM:
        if tuple(vocab[:3]) != SPECIALS:
            raise ConfigError(f"vocab must start with {SPECIALS}, found {tuple(vocab[:3])}")
        counts = count_ngrams(tokens, offset, self.order, len(vocab))
        if self.smoothing == "kneser_ney":
            stats = counts_of_counts(counts)
            self.discounts_ = [kn_discounts(s, n + 1, self.discount_fallback) for n, s in enumerate(stats)]
            self.tables_ = kneser_ney_tables(counts, self.discounts_)
        else:
            self.discounts_ = []
            self.tables_ = additive_tables(counts, 0.0 if self.smoothing == "ml" else self.k)
        self.vocab_ = list(vocab)
        self.index_ = {w: i for i, w in enumerate(vocab)}
        return self

    # --- querying ---------------------------------------------------------------------------
    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[I64, I64]:
        """The id stream of ``sentences`` (unknown words -> ``<unk>``): tokens (S,), offsets (S,)."""
        index = _UnkIndex(self._fitted_index())
        lens = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        flat = itertools.chain.from_iterable(sentences)
        ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=int(lens.sum()))
        return _wrap(ids, lens)

    def token_log10(self, sentences: Sequence[Sequence[str]]) -> list[F64]:
        """Per sentence: log10 p of each word and of ``</s>`` (like kenlm's ``full_scores``)."""
        tokens, offset = self.encode(sentences)
        lp = score_stream(self.tables_, tokens, offset)
        starts = np.flatnonzero(offset == 0)
        return [lp[a + 1 : b] for a, b in zip(starts, [*starts[1:], len(lp)])]

    def score_sentences(self, sentences: Sequence[Sequence[str]]) -> F64:
        """(B,) log10 p(sentence) with ``<s>``/``</s>``, as ``kenlm.Model.score(s, bos=True, eos=True)``."""
        tokens, offset = self.encode(sentences)
        lp = score_stream(self.tables_, tokens, offset)
        starts = np.flatnonzero(offset == 0)
        return np.add.reduceat(lp, starts) if len(starts) else np.zeros(0)

    def next_log10(self, history: Sequence[str]) -> F64:
        """(V,) log10 p(w | history) over ``vocab_`` (``-inf`` for ``<s>``)."""
        tokens, _ = self.encode([history])
        return next_log10(self.tables_, tokens[1:-1].tolist())

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        total = float(self.score_sentences(sentences).sum())
        n = sum(len(s) + 1 for s in sentences)
        return math.pow(10.0, -total / max(n, 1))

    # --- ARPA -------------------------------------------------------------------------------
    def to_arpa(self, path: str) -> None:
        from seqlab.models.classical.arpa import write_arpa

        write_arpa(path, self._fitted_vocab(), self.tables_)

    @classmethod
    def from_arpa(cls, path: str) -> NGramLM:
        from seqlab.models.classical.arpa import read_arpa

        vocab, tables = read_arpa(path)
        lm = cls(order=tables.order)
        lm.tables_, lm.vocab_, lm.discounts_ = tables, vocab, []
        lm.index_ = {w: i for i, w in enumerate(vocab)}
        return lm

    def _fitted_vocab(self) -> list[str]:
        if not hasattr(self, "vocab_"):
            raise SeqlabError("the n-gram model is not fitted: call fit_counts() or from_arpa() first")
        return self.vocab_

    def _fitted_index(self) -> dict[str, int]:
        self._fitted_vocab()
        return self.index_


@dataclass(frozen=True)
class NGramConfig:
    """Settings of the n-gram family.

    ``order``: n (any n >= 1). ``smoothing``: ``kneser_ney`` (interpolated modified KN, as
    lmplz), ``add_k`` (add ``k``) or ``ml`` (maximum likelihood: the order-1 Markov chain).
    ``discount_fallback``: KN discounts (D1, D2, D3+) for an order whose counts of counts give
    none (tiny or artificial data), as lmplz's ``--discount_fallback``; ``None`` raises instead.
    """

    order: int = 3
    smoothing: Smoothing = "kneser_ney"
    k: float = 1.0
    discount_fallback: tuple[float, ...] | None = (0.5, 1.0, 1.5)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ConfigError(f"order must be >= 1, found {self.order}")
        if self.k < 0:
            raise ConfigError(f"k must be >= 0, found {self.k}")
        fb = self.discount_fallback
        if fb is not None and (len(fb) != 3 or not all(0 <= d <= j for j, d in enumerate(fb, start=1))):
            raise ConfigError(f"discount_fallback must be three discounts D1 <= 1, D2 <= 2, D3+ <= 3; found {fb}")


class NGramModel(ClassicalModel):
    """An n-gram language model serving the ``lm`` task: every example is one sentence
    (``<s>`` + its tokens + the task's ``<eos>`` as ``</s>``), over the task's vocabulary."""

    config: NGramConfig

    def __init__(self, family: str, task: Task, config: NGramConfig) -> None:
        if task.name != "lm":
            raise ConfigError(f"the n-gram family serves the lm task, not {task.name!r}")
        super().__init__(family, task, config)

    # --- vocabulary: task ids (pad unk bos eos mask words...) <-> model ids (unk <s> </s> words...)
    def _vocab(self) -> list[str]:
        itos = self.task.codec.fitted_vocab.itos  # type: ignore[attr-defined]
        if tuple(itos[:5]) != ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>"):
            raise ConfigError("the n-gram family needs a task vocabulary with the reserved specials")
        return [*SPECIALS, *itos[5:]]

    def _to_model(self, ids: I64) -> I64:
        return np.where(ids >= 5, ids - 2, np.where(ids == 2, BOS, np.where(ids == 3, EOS, UNK)))

    def _to_task(self, ids: I64) -> I64:
        return np.where(ids >= 3, ids + 2, ids + 1)

    def _stream(self, examples: Sequence[Example]) -> tuple[I64, I64, I64]:
        """Model tokens (S,), offsets (S,) and each example's end in the stream (B,)."""
        task: Any = self.task
        ids = np.asarray(task.stream(examples), dtype=np.int64)  # each example + <eos>
        ends = np.flatnonzero(ids == task.codec.fitted_vocab.eos_id)
        lens = np.diff(np.concatenate([[-1], ends])) - 1  # (B,)
        tokens, offset = _wrap(self._to_model(ids[ids != task.codec.fitted_vocab.eos_id]), lens)
        return tokens, offset, np.cumsum(lens + 2)

    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> None:
        c = self.config
        fb = None if c.discount_fallback is None else (c.discount_fallback[0], c.discount_fallback[1], c.discount_fallback[2])
        lm = NGramLM(c.order, c.smoothing, c.k, fb)
        tokens, offset, _ = self._stream(train)
        lm._fit_stream(tokens, offset, self._vocab())
        self.tables_ = lm.tables_
        self.discounts_ = lm.discounts_

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        self._check_fitted()
        tokens, offset, ends = self._stream(examples)
        lp = score_stream(self.tables_, tokens, offset)  # (S,) log10
        hits = (argmax_stream(self.tables_, tokens, offset) == tokens) & (offset >= 1)
        chars = self.task.char_lengths.numpy()[self._to_task(tokens)] * (offset >= 1)  # type: ignore[attr-defined]
        starts = np.concatenate([[0], ends[:-1]])
        preds = [{"chars": int(c), "hits": int(h)} for c, h in zip(np.add.reduceat(chars, starts), np.add.reduceat(hits, starts))] if len(starts) else []
        nll = -float(lp.sum()) * math.log(10)
        return preds, [None] * len(preds), nll, int((offset >= 1).sum())

    def _history(self, prompt: Any, i: int) -> list[int]:
        ids = np.asarray(self.task.codec.encode(as_tokens(prompt, "prompt", i)), dtype=np.int64)  # type: ignore[attr-defined]
        return self._to_model(ids).tolist()

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """The most likely next token after each prompt (a prompt starts a sentence)."""
        self._check_fitted()
        chains = np.stack([_context_chain(self.tables_, self._history(v, i)) for i, v in enumerate(inputs)]) if inputs else np.zeros((0, self.config.order - 1), dtype=np.int64)
        best = self._to_task(next_log10_rows(self.tables_, chains).argmax(1))
        return list(self.task.codec.fitted_vocab.decode(best.tolist()))  # type: ignore[attr-defined]

    # --- probing: per-position next-token distributions (seqlab.probes) -------------------------
    def tokenize(self, value: Any) -> list[str]:
        """The tokens of a prompt as the model sees them (the task's tokenizer; no truncation:
        a prompt starts a sentence, as in :meth:`predict`)."""
        return list(self.task.codec.tokens(as_tokens(value, "prompt", 0)))  # type: ignore[attr-defined]

    def output_labels(self) -> list[str]:
        """The task's vocabulary: the K columns of :meth:`distributions`."""
        return list(self.task.codec.fitted_vocab.itos)  # type: ignore[attr-defined]

    def distributions(self, inputs: Sequence[Any]) -> list[torch.Tensor]:
        """Per prompt a (J, K) float64 tensor: row j = p(next token | <s> tokens[: j + 1]) over
        the task's vocabulary (``next_log10`` of every prefix; ``<pad>``, ``<bos>`` and
        ``<mask>`` get 0, ``</s>`` is ``<eos>``)."""
        self._check_fitted()
        K = len(self.output_labels())
        out = []
        for i, v in enumerate(inputs):
            hist = self._history(v, i)
            chains = np.stack([_context_chain(self.tables_, hist[: j + 1]) for j in range(len(hist))]) if hist \
                else np.zeros((0, max(self.config.order - 1, 0)), dtype=np.int64)
            p = np.power(10.0, next_log10_rows(self.tables_, chains))  # (J, V_model): unk <s> </s> words...
            rows = np.zeros((len(hist), K))  # (J, K) task ids: pad unk bos eos mask words...
            rows[:, 1:4] = p[:, [UNK, BOS, EOS]]
            rows[:, 5:] = p[:, 3:]
            out.append(torch.from_numpy(rows))
        return out

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 200, temperature: float = 1.0,
        top_k: int | None = None, seed: int = 0, *, top_p: float | None = None,
        method: str = "sample", beam: int = 4, stop_at_eos: bool = False,
    ) -> list[str]:
        """Continuations through :mod:`seqlab.inference.decoding`: ``method`` "sample"
        (temperature, top-k, top-p; ``temperature == 0`` is greedy), "greedy" or "beam". After
        ``</s>`` a new sentence starts, as in the training stream, unless ``stop_at_eos``."""
        from seqlab.models.sampling import NGramStepper, decode_continuation

        self._check_fitted()
        gen = torch.Generator().manual_seed(seed)
        codec: Any = getattr(self.task, "codec")  # noqa: B009 (the lm task's)
        stepper = NGramStepper(self.tables_)
        outs = []
        for i, prompt in enumerate(prompts):
            new = decode_continuation(
                stepper, self._history(prompt, i), max_new_tokens, EOS if stop_at_eos else None,
                method, temperature, top_k, top_p, beam, gen,  # type: ignore[arg-type]
            )
            outs.append(codec.detokenize(codec.decode(self._to_task(np.asarray(new, dtype=np.int64)).tolist())))
        return outs

    def sample_ids(
        self, history: list[int], n: int, temperature: float, top_k: int | None, generator: torch.Generator,
        top_p: float | None = None,
    ) -> list[int]:
        """``n`` model ids sampled one by one after ``history`` (model ids, from ``<s>``)."""
        from seqlab.models.sampling import NGramStepper, decode_continuation

        return decode_continuation(NGramStepper(self.tables_), history, n, None, "sample", temperature, top_k, top_p, 1, generator)

    def to_arpa(self, path: str) -> None:
        """Export as an ARPA file (readable by KenLM and SRILM)."""
        from seqlab.models.classical.arpa import write_arpa

        self._check_fitted()
        write_arpa(path, self._vocab(), self.tables_)

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        t = self.tables_
        tensors: dict[str, torch.Tensor] = {}
        for n in range(1, t.order + 1):
            tensors[f"keys_{n}"] = torch.from_numpy(t.keys[n - 1])
            tensors[f"logp_{n}"] = torch.from_numpy(t.logp[n - 1])
            tensors[f"backoff_{n}"] = torch.from_numpy(t.backoff[n - 1])
        return tensors, {"vocab_size": t.vocab_size, "discounts": [d.tolist() for d in self.discounts_]}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        n = self.config.order
        try:
            cols = [[tensors[f"{name}_{i}"].numpy() for i in range(1, n + 1)] for name in ("keys", "logp", "backoff")]
        except KeyError as e:
            raise SeqlabError(f"the saved n-gram tables lack {e}; they do not fit order {n}") from None
        self.tables_ = NGramTables(int(extra["vocab_size"]), *cols)
        self.discounts_ = [np.asarray(d) for d in extra.get("discounts", [])]

