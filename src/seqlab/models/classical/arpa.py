"""ARPA back-off language model files: write and read :class:`NGramTables`.

The format (Stolcke's SRILM, read by KenLM): a ``\\data\\`` header with ``ngram n=count``
lines, then per order a ``\\n-grams:`` section of ``log10prob<TAB>w1 .. wn[<TAB>log10backoff]``
lines (no backoff on the highest order), then ``\\end\\``. Probabilities are written with nine
significant digits, so a float32 reader (KenLM) sees the exact float32 value. A zero
probability or backoff (maximum likelihood) is written ``-99``, the SRILM convention, because
KenLM rejects ``-inf`` backoffs; such a file reads back as 1e-99, not 0.

Shapes: G_n n-grams of order n, V vocabulary size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqlab.errors import ConfigError, DataError
from seqlab.io import atomic_write_text
from seqlab.models.classical.ngram_tables import BOS, SPECIALS, NGramTables

__all__ = ["write_arpa", "read_arpa"]


def _num(x: float) -> str:
    return "-99" if x == -np.inf else f"{x:.9g}"


def _lines(vocab: list[str], t: NGramTables) -> Iterator[str]:
    V = t.vocab_size
    yield "\\data\\"
    for n, keys in enumerate(t.keys, start=1):
        yield f"ngram {n}={len(keys)}"
    words = list(vocab)  # the words of each n-gram of the current order
    for n in range(1, t.order + 1):
        keys = t.keys[n - 1]
        if n > 1:
            prefix, last = (keys // V).tolist(), (keys % V).tolist()
            words = [f"{words[p]} {vocab[w]}" for p, w in zip(prefix, last)]
        yield ""
        yield f"\\{n}-grams:"
        probs = [_num(x) for x in t.logp[n - 1].tolist()]
        if n < t.order:
            bos = [_num(x) for x in t.backoff[n - 1].tolist()]
            yield from (f"{p}\t{w}\t{b}" for p, w, b in zip(probs, words, bos))
        else:
            yield from (f"{p}\t{w}" for p, w in zip(probs, words))
    yield ""
    yield "\\end\\"
    yield ""


def write_arpa(path: str | Path, vocab: list[str], tables: NGramTables) -> None:
    """Write ``tables`` (over ``vocab``, ids 0-2 = ``<unk> <s> </s>``) as an ARPA file, atomically.
    ARPA separates words by whitespace, so a word holding whitespace (the char tokenizer's space)
    cannot be written."""
    bad = [w for w in vocab if not w or any(c.isspace() for c in w)]
    if bad:
        raise ConfigError(f"ARPA words cannot be empty or hold whitespace; this vocabulary has {bad[0]!r} "
                          f"(for characters, map the space to a visible symbol before fitting)")
    atomic_write_text(path, "\n".join(_lines(vocab, tables)))


class _Reader:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                self.rows = f.read().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(path, None, "a readable UTF-8 ARPA file", str(e)) from None
        self.i = 0

    def fail(self, expected: str, found: str | None = None) -> DataError:
        line = min(self.i, len(self.rows) - 1)
        return DataError(self.path, line + 1, expected, repr(self.rows[line]) if found is None else found)

    def next_nonblank(self, expected: str) -> str:
        while self.i < len(self.rows) and not self.rows[self.i].strip():
            self.i += 1
        if self.i >= len(self.rows):
            raise DataError(self.path, len(self.rows), expected, "end of file")
        return self.rows[self.i].strip()

    def number(self, s: str, what: str) -> float:
        try:
            return float(s)
        except ValueError:
            raise self.fail(what) from None


def _header(r: _Reader) -> list[int]:
    if r.next_nonblank("the '\\data\\' header") != "\\data\\":
        raise r.fail("the '\\data\\' header")
    r.i += 1
    counts: list[int] = []
    while r.i < len(r.rows) and r.rows[r.i].strip().startswith("ngram "):
        head, _, value = r.rows[r.i].strip()[6:].partition("=")
        if not head.strip().isdigit() or not value.strip().isdigit() or int(head) != len(counts) + 1:
            raise r.fail(f"'ngram {len(counts) + 1}=<count>'")
        counts.append(int(value))
        r.i += 1
    if not counts:
        raise r.fail("at least one 'ngram n=<count>' line")
    return counts


def _section(r: _Reader, n: int, count: int, top: bool) -> tuple[list[list[str]], list[float], list[float], list[int]]:
    title = f"\\{n}-grams:"
    if r.next_nonblank(f"the '{title}' section") != title:
        raise r.fail(f"the '{title}' section")
    r.i += 1
    grams: list[list[str]] = []
    probs: list[float] = []
    backs: list[float] = []
    lines: list[int] = []
    for _ in range(count):
        if r.i >= len(r.rows) or not r.rows[r.i].strip():
            raise r.fail(f"{count} {n}-gram lines (the header says so)", f"only {len(grams)}")
        parts = r.rows[r.i].split()
        if len(parts) not in (n + 1, n + 2) or (top and len(parts) != n + 1):
            want = f"'log10prob {'w ' * n}{'' if top else '[backoff]'}'".replace(" '", "'")
            raise r.fail(f"a {n}-gram line {want}")
        probs.append(r.number(parts[0], "a log10 probability"))
        backs.append(r.number(parts[n + 1], "a log10 backoff") if len(parts) == n + 2 else 0.0)
        grams.append(parts[1 : n + 1])
        lines.append(r.i + 1)
        r.i += 1
    return grams, probs, backs, lines


def read_arpa(path: str | Path) -> tuple[list[str], NGramTables]:
    """Read an ARPA file into (vocab, tables). The vocabulary is ``<unk> <s> </s>`` then the other
    unigrams in file order; a file without ``<unk>`` gets one with log10 p = -100 (as KenLM does).
    Every n-gram's (n-1)-word prefix must be listed (lmplz and SRILM files satisfy this)."""
    r = _Reader(path)
    counts = _header(r)
    sections = [_section(r, n, c, n == len(counts)) for n, c in enumerate(counts, start=1)]
    if r.next_nonblank("'\\end\\'") != "\\end\\":
        raise r.fail("'\\end\\'")
    uni, uni_p, uni_b, _ = sections[0]
    vocab = list(SPECIALS)
    index = {w: i for i, w in enumerate(vocab)}
    for (w,) in uni:
        if w not in index:
            index[w] = len(vocab)
            vocab.append(w)
    for special in ("<s>", "</s>"):
        if [special] not in uni:
            raise DataError(path, None, f"a unigram line for {special}", "none")
    V = len(vocab)
    logp = [np.full(V, -100.0)]
    logp[0][BOS] = 0.0
    backoff = [np.zeros(V)]
    ids = np.array([index[w] for (w,) in uni], dtype=np.int64)
    logp[0][ids] = uni_p
    backoff[0][ids] = uni_b
    keys = [np.arange(V, dtype=np.int64)]
    for n in range(2, len(counts) + 1):
        grams, probs, backs, lines = sections[n - 1]
        words = np.array([[index.get(w, -1) for w in g] for g in grams], dtype=np.int64).reshape(len(grams), n)
        if (words < 0).any():
            row = int(np.flatnonzero((words < 0).any(1))[0])
            raise DataError(path, lines[row], f"{n}-grams over the unigram vocabulary", f"{' '.join(grams[row])!r} has a word that is not a unigram")
        prefix = words[:, 0]
        for m in range(2, n):
            prefix = np.where(prefix >= 0, prefix * V + words[:, m - 1], -1)
            pos = np.minimum(np.searchsorted(keys[m - 1], prefix), len(keys[m - 1]) - 1)
            prefix = np.where(keys[m - 1][pos] == prefix, pos, -1)
        if (prefix < 0).any():
            row = int(np.flatnonzero(prefix < 0)[0])
            raise DataError(path, lines[row], f"every {n}-gram's prefix listed among the {n - 1}-grams", f"{' '.join(grams[row])!r} without its prefix")
        key = prefix * V + words[:, -1]
        order = np.argsort(key, kind="stable")
        key = key[order]
        if (np.diff(key) == 0).any():
            row = int(order[int(np.flatnonzero(np.diff(key) == 0)[0]) + 1])
            raise DataError(path, lines[row], f"each {n}-gram listed once", f"{' '.join(grams[row])!r} twice")
        keys.append(key)
        logp.append(np.asarray(probs, dtype=np.float64)[order])
        backoff.append(np.asarray(backs, dtype=np.float64)[order])
    return vocab, NGramTables(V, keys, logp, backoff)
