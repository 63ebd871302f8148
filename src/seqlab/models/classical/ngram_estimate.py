"""N-gram estimation: counting the n-grams of a token stream and smoothing the counts into
:class:`~seqlab.models.classical.ngram_tables.NGramTables` (maximum likelihood, add-k,
interpolated modified Kneser-Ney, and Katz back-off with Good-Turing discounts).

The estimator follows KenLM's ``lmplz`` to the letter, so the two give the same probabilities
on the same corpus (``bench/ngram_kenlm_parity.py``): every sentence is ``<s> w1 .. wk </s>``;
an n-gram may start with ``<s>`` but never holds it elsewhere; lower orders use adjusted
(continuation) counts except n-grams that start with ``<s>``; three discounts per order come from
counts of counts (Chen & Goodman 1998, eq. 26); unigrams are interpolated with the uniform
distribution over the vocabulary (``<unk>`` and ``</s>`` included, ``<s>`` excluded), which is
also all the mass ``<unk>`` gets. Heafield et al. 2013, "Scalable modified Kneser-Ney language
model estimation".

Good-Turing and Katz (Katz 1987, "Estimation of probabilities from sparse data for the language
model component of a speech recognizer") back off over raw counts at every order; their
discount coefficients come per order from the counts of counts: simple Good-Turing (Gale &
Sampson 1995) for every count (``good_turing``), or Katz's renormalised Turing estimates for
counts up to a cutoff k, counts above it kept (``katz``, SRILM's default ``-gt`` discounting).

Counting (a bincount over small key spaces, else a sort) is vectorized over the whole token
stream: there is no per-token Python loop.

Shapes: S stream length, G_n n-grams of order n, V vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from seqlab.errors import DataError, SeqlabError
from seqlab.models.classical.ngram_tables import BOS, DENSE_LIMIT, EOS, F64, I64, NGramTables

__all__ = [
    "Smoothing", "count_ngrams", "counts_of_counts", "kn_discounts", "kneser_ney_tables", "additive_tables",
    "simple_good_turing", "good_turing_discounts", "katz_discounts", "katz_tables", "estimate",
]

Smoothing = Literal["kneser_ney", "add_k", "ml", "good_turing", "katz"]


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


# --- Good-Turing and Katz back-off --------------------------------------------------------------
def simple_good_turing(r: I64, n_r: I64) -> tuple[F64, float]:
    """Simple Good-Turing (Gale & Sampson 1995, "Good-Turing frequency estimation without tears").

    ``r`` (R,) the distinct counts in ascending order, ``n_r`` (R,) how many items have each.
    Returns ``(p, p0)``: (R,) the probability of one item seen r times and the total probability
    of all unseen items, ``N_1 / N``. The steps: average each n_r over the gap to its neighbours,
    ``Z_r = 2 n_r / (t - q)`` (q the previous count, 0 first; t the next, ``2r - q`` last); fit
    ``log Z_r = a + b log r`` by least squares (S(r) = exp(a + b log r)); use the Turing estimate
    ``r* = (r+1) n_{r+1} / n_r`` while it differs from the smoothed ``(r+1) S(r+1) / S(r)`` by
    more than 1.96 standard deviations (and r+1 is observed), the smoothed one from there on;
    renormalise so the seen items share ``1 - p0``.
    """
    r = np.asarray(r, dtype=np.float64)
    n = np.asarray(n_r, dtype=np.float64)
    if len(r) == 0:
        return np.zeros(0), 1.0
    total = float((r * n).sum())
    p0 = float(n[0]) / total if r[0] == 1 else 0.0
    prev = np.concatenate([[0.0], r[:-1]])
    nxt = np.concatenate([r[1:], [2 * r[-1] - prev[-1]]])
    z = 2.0 * n / (nxt - prev)
    x, y = np.log(r), np.log(z)
    var = float(((x - x.mean()) ** 2).sum())
    slope = float(((x - x.mean()) * (y - y.mean())).sum()) / var if var != 0 else 0.0
    intercept = float(y.mean()) - slope * float(x.mean())

    def smoothed(v: np.ndarray) -> F64:
        return np.exp(intercept + slope * np.log(v))

    switch_at = r[-1]
    for i in range(len(r)):  # the first count at which the smoothed estimate takes over
        if i + 1 == len(r) or r[i + 1] != r[i] + 1:
            switch_at = r[i]
            break
        turing = (r[i] + 1) * n[i + 1] / n[i]
        lgt = (r[i] + 1) * smoothed(r[i : i + 1] + 1)[0] / smoothed(r[i : i + 1])[0]
        sd = math.sqrt((r[i] + 1) ** 2 * (n[i + 1] / n[i] ** 2) * (1 + n[i + 1] / n[i]))
        if abs(turing - lgt) <= 1.96 * sd:
            switch_at = r[i]
            break
    n_next = np.append(n[1:], 0.0) * (np.append(r[1:], -1.0) == r + 1)  # n_{r+1}, 0 if unobserved
    with np.errstate(divide="ignore", invalid="ignore"):
        r_star = np.where(r < switch_at, (r + 1) * n_next / n, (r + 1) * smoothed(r + 1) / smoothed(r))
    raw_p = r_star / total
    covered = float((n * raw_p).sum())
    p = raw_p * (1.0 - p0) / covered if covered > 0 else raw_p
    return p, p0


def _check_discounts(d: F64, order: int, what: str, fallback: tuple[float, float, float] | None, cap: bool = True) -> F64:
    """``d`` (R_max + 1,) discount coefficients by count, capped at 1 when ``cap`` (within a
    context a count is never raised, or the context's seen words could take more than all the
    mass; noisy counts of counts can put an estimate above r); absolute discounts from
    ``fallback`` when some coefficient is not positive (tiny or artificial data), else an error."""
    bad = np.flatnonzero(~(d[1:] > 0)) + 1
    if len(bad) == 0:
        return np.minimum(d, 1.0) if cap else d
    if fallback is None:
        raise DataError(None, None, f"counts of counts that give positive {what} discounts at every order "
                        "(or set discount_fallback)", f"order {order}: the discount for count {int(bad[0])} is "
                        f"{d[bad[0]]:.4g}")
    r = np.arange(len(d), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(r > 0, (r - np.array([0.0, *fallback])[np.minimum(r, 3).astype(np.int64)]) / r, 1.0)
    return out


def good_turing_discounts(raw: I64, order: int, fallback: tuple[float, float, float] | None) -> F64:
    """(R_max + 1,) d_r = r~ / r, r~ the simple Good-Turing count (:func:`simple_good_turing`,
    renormalised: ``r~ = N p_r``) of an n-gram seen r times, over one order's raw counts. At
    order 1 they are used as they are, so the unigrams are exactly the simple Good-Turing
    distribution (the seen words share ``1 - N_1/N``); at higher orders, where they apply per
    context, they are capped at 1."""
    counts = raw[raw > 0]
    r, n_r = np.unique(counts, return_counts=True)
    p, _ = simple_good_turing(r, n_r)
    d = np.ones(int(counts.max()) + 1 if len(counts) else 1)
    d[r] = p * float(counts.sum()) / r
    return _check_discounts(d, order, "Good-Turing", fallback, cap=order > 1)


def katz_discounts(raw: I64, order: int, cutoff: int, fallback: tuple[float, float, float] | None) -> F64:
    """(R_max + 1,) Katz's (1987) discount coefficients over one order's raw counts: for r <= k
    (``cutoff``) ``d_r = (r*/r - mu) / (1 - mu)`` with the Turing estimate ``r* = (r+1) n_{r+1} / n_r``
    and ``mu = (k+1) n_{k+1} / n_1``, so the discounted mass is ``n_1 / N`` as in Good-Turing;
    counts above k are kept (d = 1)."""
    counts = raw[raw > 0]
    top = int(counts.max()) if len(counts) else 0
    n = np.bincount(counts, minlength=max(top, cutoff + 1) + 2).astype(np.float64)
    d = np.ones(top + 1)
    if cutoff > 0 and n[1] > 0:
        mu = (cutoff + 1) * n[cutoff + 1] / n[1]
        rr = np.arange(1, min(cutoff, top) + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            d[rr] = ((rr + 1) * n[rr + 1] / (n[rr] * rr) - mu) / (1 - mu)
        d[rr] = np.where(n[rr] > 0, d[rr], 0.5)  # a count nobody has: any value (never used)
    return _check_discounts(d, order, "Katz", fallback)


def katz_tables(c: _Counts, discounts: list[F64]) -> NGramTables:
    """Katz back-off (Katz 1987) over raw counts with per-order discount coefficients ``d_r``:
    ``p(w | h) = d_c c(hw) / c(h)`` for a seen n-gram, else ``alpha(h) p(w | h')`` with
    ``alpha(h) = (1 - sum_seen p(w | h)) / (1 - sum_seen p(w | h'))``, so every context sums to 1.
    Unigrams: ``d_r r / N``; the freed mass is shared evenly by the words never seen (``<unk>``
    among them), or given back to the seen words when there are none. A context whose seen words
    take all the lower-order mass renormalises its seen words and backs off with weight 0."""
    V = len(c.keys[0])
    order = len(c.keys)
    raw1 = c.raw[0].astype(np.float64)
    p1 = discounts[0][c.raw[0]] * raw1 / max(raw1.sum(), 1.0)
    unseen = (c.raw[0] == 0) & (np.arange(V) != BOS)
    left = max(0.0, 1.0 - float(p1.sum()))
    if unseen.any():
        p1[unseen] = left / int(unseen.sum())
    elif p1.sum() > 0:
        p1 /= p1.sum()
    p1[BOS] = 1.0
    logp: list[F64] = [_log10(p1)]
    backoff: list[F64] = [np.zeros(len(k)) for k in c.keys]
    for n in range(2, order + 1):
        cnt = c.raw[n - 1].astype(np.float64)
        ctx = c.keys[n - 1] // V
        n_ctx = len(c.keys[n - 2])
        hist = _per_context(cnt, ctx, n_ctx)  # (G_{n-1},) c(h)
        p = discounts[n - 1][c.raw[n - 1]] * cnt / hist[ctx]  # (G_n,)
        lower = np.power(10.0, logp[n - 2][c.suffix[n - 1]])  # (G_n,) p(w | h')
        seen = _per_context(p, ctx, n_ctx)
        seen_lower = _per_context(lower, ctx, n_ctx)
        free, room = 1.0 - seen, 1.0 - seen_lower
        full = (room <= 1e-12) & (hist > 0)  # no lower-order mass left for unseen words
        p = np.where(full[ctx], p / np.where(seen > 0, seen, 1.0)[ctx], p)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(hist > 0, np.where(full, 0.0, np.maximum(free, 0.0) / np.where(full, 1.0, room)), 1.0)
        logp.append(_log10(p))
        backoff[n - 2] = _log10(alpha)
    return NGramTables(V, list(c.keys), logp, backoff)


def estimate(
    tokens: I64, offset: I64, vocab_size: int, order: int, smoothing: Smoothing, k: float = 1.0,
    fallback: tuple[float, float, float] | None = None, katz_cutoff: int = 5,
) -> tuple[NGramTables, list[F64]]:
    """Count the stream (tokens (S,), offsets (S,)) and smooth: the tables and each order's
    discounts (KN: D0..D3+; Good-Turing / Katz: d_r by count; none for add-k and ML)."""
    counts = count_ngrams(tokens, offset, order, vocab_size)
    if smoothing == "kneser_ney":
        discounts = [kn_discounts(s, n + 1, fallback) for n, s in enumerate(counts_of_counts(counts))]
        return kneser_ney_tables(counts, discounts), discounts
    if smoothing in ("good_turing", "katz"):
        discounts = [good_turing_discounts(raw, n, fallback) if smoothing == "good_turing"
                     else katz_discounts(raw, n, katz_cutoff, fallback) for n, raw in enumerate(counts.raw, 1)]
        return katz_tables(counts, discounts), discounts
    return additive_tables(counts, 0.0 if smoothing == "ml" else k), []
