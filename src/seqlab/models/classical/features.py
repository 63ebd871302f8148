"""Sparse token features for feature-based CRFs: templates, an index (or hashing), CSR matrices.

Each token of a sentence gets a set of named features ("attributes" in CRFsuite's words), each
with a value (1.0 unless a user function says otherwise):

* ``bias``; ``w=`` the word; ``lw=`` the lower-cased word;
* ``p{k}=`` / ``s{k}=`` prefixes and suffixes of length k (only when the word is that long);
* ``sh=`` the word shape (upper -> X, lower -> x, digit -> d, runs cut at 4: "Xxxxx", "dd");
  ``ss=`` the short shape (runs cut at 1: "Xx", "d");
* ``w[-2]=`` .. ``w[+2]=`` the lower-cased neighbours and ``ss[-1]=`` .. their short shapes
  (``<s>`` / ``</s>`` beyond the sentence edges);
* ``u{i}:...`` whatever user function i returns for (tokens, position): names, or (name, value).

A split of S sentences with N_tok tokens in all becomes one CSR matrix (N_tok, F) (rows in
sentence order) plus sentence offsets (S + 1,). Features are indexed by default (an unseen
feature is dropped at prediction time; ``min_freq`` drops rare ones at fit time) or hashed
into ``n_buckets`` columns (crc32, stable across runs). Extraction is vectorised over word
types: a word's own features are built once per distinct word in the split and gathered to its
tokens with numpy; only user functions run once per token. :func:`token_features_ref` is the
readable one-token-at-a-time version, kept beside the fast path (and used to feed peers).

Shapes: S sentences, N_tok tokens in a split, F features.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqlab.errors import ConfigError, DataError, SeqlabError

__all__ = [
    "FeatureConfig",
    "FeatureFn",
    "FeatureExtractor",
    "SparseFeatures",
    "word_shape",
    "token_features_ref",
]

FeatureFn = Callable[[Sequence[str], int], Iterable[str | tuple[str, float]]]
BOS, EOS = "<s>", "</s>"


@dataclass(frozen=True)
class FeatureConfig:
    """Which templates fire, how features are stored (index or hashing), and pruning."""

    bias: bool = True
    word: bool = True
    lower: bool = True
    prefixes: tuple[int, ...] = (1, 2, 3)
    suffixes: tuple[int, ...] = (1, 2, 3)
    shape: bool = True
    short_shape: bool = True
    window: int = 2  # neighbours -window..+window
    window_shape: bool = True  # neighbours' short shapes too
    min_freq: int = 1  # a feature seen fewer times in training is dropped (index only)
    n_buckets: int = 0  # > 0: hash features into this many columns instead of indexing them

    def __post_init__(self) -> None:
        if any(k < 1 for k in (*self.prefixes, *self.suffixes)):
            raise ConfigError(f"prefix/suffix lengths must be >= 1, found {self.prefixes} / {self.suffixes}")
        if self.window < 0:
            raise ConfigError(f"window must be >= 0, found {self.window}")
        if self.min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, found {self.min_freq}")
        if self.n_buckets < 0:
            raise ConfigError(f"n_buckets must be >= 0 (0 = index features), found {self.n_buckets}")
        if self.n_buckets and self.min_freq > 1:
            raise ConfigError("min_freq needs an index of features; it cannot be used with n_buckets > 0")


@dataclass
class SparseFeatures:
    """A split's features: ``matrix`` (N_tok, F) CSR float64, ``offsets`` (S + 1,) int64."""

    matrix: sp.csr_matrix
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)  # (S,)


def word_shape(word: str, max_run: int = 4) -> str:
    """Upper -> X, lower -> x, digit -> d, anything else kept; runs longer than ``max_run``
    are cut ("Washington" -> "Xxxxx" with max_run 4, "Xx" with max_run 1)."""
    out: list[str] = []
    run = 0
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        run = run + 1 if out and out[-1] == c else 1
        if run <= max_run:
            out.append(c)
    return "".join(out)


def _local(word: str, c: FeatureConfig) -> list[str]:
    """The features a word fires on its own (independent of its neighbours)."""
    f = ["bias"] if c.bias else []
    if c.word:
        f.append("w=" + word)
    if c.lower:
        f.append("lw=" + word.lower())
    f += [f"p{k}={word[:k]}" for k in c.prefixes if len(word) >= k]
    f += [f"s{k}={word[-k:]}" for k in c.suffixes if len(word) >= k]
    if c.shape:
        f.append("sh=" + word_shape(word))
    if c.short_shape:
        f.append("ss=" + word_shape(word, 1))
    return f


def _offsets(c: FeatureConfig) -> list[int]:
    return [d for d in range(-c.window, c.window + 1) if d != 0]


def _neighbour(word: str | None, d: int, c: FeatureConfig) -> list[str]:
    """Features fired at a position whose neighbour at offset d is ``word`` (None: past the edge)."""
    if word is None:
        return [f"w[{d:+d}]={BOS if d < 0 else EOS}"]
    f = [f"w[{d:+d}]={word.lower()}"]
    if c.window_shape:
        f.append(f"ss[{d:+d}]={word_shape(word, 1)}")
    return f


def _user(fns: Sequence[FeatureFn], tokens: Sequence[str], i: int) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for k, fn in enumerate(fns):
        for item in fn(tokens, i):
            if isinstance(item, str):
                out.append((f"u{k}:{item}", 1.0))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                out.append((f"u{k}:{item[0]}", float(item[1])))
            else:
                raise DataError(None, None, f"user feature function {k} to yield str or (str, float)", repr(item))
    return out


def token_features_ref(
    tokens: Sequence[str], config: FeatureConfig, functions: Sequence[FeatureFn] = ()
) -> list[list[tuple[str, float]]]:
    """Reference: each token's (feature name, value) pairs, one token at a time."""
    out = []
    for i, word in enumerate(tokens):
        feats = [(name, 1.0) for name in _local(word, config)]
        for d in _offsets(config):
            j = i + d
            nb = tokens[j] if 0 <= j < len(tokens) else None
            feats += [(name, 1.0) for name in _neighbour(nb, d, config)]
        out.append(feats + _user(functions, tokens, i))
    return out


class FeatureExtractor:
    """Fit a feature index on training sentences, then turn any split into :class:`SparseFeatures`.

    ``functions`` are user feature functions ``(tokens, i) -> iterable of str or (str, float)``;
    they are code, so they are not saved with a model and must be passed again after loading.
    """

    def __init__(self, config: FeatureConfig | None = None, functions: Sequence[FeatureFn] = ()) -> None:
        self.config = config or FeatureConfig()
        self.functions = tuple(functions)
        self.index_: dict[str, int] | None = None

    @property
    def n_features(self) -> int:
        if self.config.n_buckets:
            return self.config.n_buckets
        if self.index_ is None:
            raise SeqlabError("the feature extractor is not fitted: call fit() first")
        return len(self.index_)

    # --- the vectorised path -------------------------------------------------------------------
    def _columns(self, names: Sequence[str], grow: dict[str, int] | None) -> np.ndarray:
        """Column of each name (-1: unknown); with ``grow`` (fitting), every name joins it."""
        if self.config.n_buckets:
            nb = self.config.n_buckets
            return np.array([zlib.crc32(s.encode("utf-8")) % nb for s in names], dtype=np.int64)
        if grow is not None:
            return np.array([grow.setdefault(s, len(grow)) for s in names], dtype=np.int64)
        assert self.index_ is not None
        return np.array([self.index_.get(s, -1) for s in names], dtype=np.int64)

    def _coo(self, sentences: Sequence[Sequence[str]], grow: dict[str, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, values) of every feature occurrence, and sentence offsets (S + 1,)."""
        types: dict[str, int] = {}
        tok_type = np.fromiter((types.setdefault(w, len(types)) for s in sentences for w in s), dtype=np.int64)
        n_tok = len(tok_type)  # tok_type: (N_tok,) word-type id of each token
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in sentences], out=offsets[1:])
        # a word's own features: built once per type, gathered to its tokens
        c = self.config
        local = [_local(w, c) for w in types]
        lows = [w.lower() for w in types] if c.window else []
        shorts = [word_shape(w, 1) for w in types] if c.window and c.window_shape else []
        t_len = np.array([len(f) for f in local], dtype=np.int64)  # (n_types,)
        t_cols = self._columns([name for f in local for name in f], grow)
        lens = t_len[tok_type]  # (N_tok,)
        first = (np.cumsum(t_len) - t_len)[tok_type]  # (N_tok,) where each token's names start
        within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        rows = [np.repeat(np.arange(n_tok), lens)]
        cols = [t_cols[np.repeat(first, lens) + within]]
        # neighbour features: a table per offset and slot, indexed by neighbour type + 1 (0 = edge)
        sent = np.repeat(np.arange(len(sentences)), np.diff(offsets))  # (N_tok,)
        for d in _offsets(self.config):
            pos = np.arange(n_tok) + d
            inside = (pos >= 0) & (pos < n_tok)
            inside[inside] &= sent[pos[inside]] == sent[inside]
            nb = np.where(inside, tok_type[np.clip(pos, 0, max(n_tok - 1, 0))] + 1, 0)  # (N_tok,)
            edge = BOS if d < 0 else EOS
            used = np.unique(nb)
            # slot 0: the neighbour's lower-cased word (or the edge mark); slot 1: its short shape
            slots: list[tuple[str, list[str], str]] = [(f"w[{d:+d}]=", lows, edge)]
            if c.window_shape:
                slots.append((f"ss[{d:+d}]=", shorts, ""))
            for prefix, values, at_edge in slots:
                names = {int(u): prefix + (values[u - 1] if u else at_edge) for u in used if u or at_edge}
                col = np.full(len(types) + 1, -1, dtype=np.int64)
                keys = np.fromiter(names, dtype=np.int64, count=len(names))
                col[keys] = self._columns(list(names.values()), grow)
                has = col[nb] >= 0
                rows.append(np.arange(n_tok)[has])
                cols.append(col[nb[has]])
        vals = [np.ones(len(r)) for r in rows]
        if self.functions:  # user code: once per token
            extras = [_user(self.functions, s, i) for s in sentences for i in range(len(s))]
            rows.append(np.repeat(np.arange(n_tok), [len(e) for e in extras]))
            cols.append(self._columns([n for e in extras for n, _ in e], grow))
            vals.append(np.array([v for e in extras for _, v in e], dtype=np.float64))
        r, col_all, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        keep = col_all >= 0
        return r[keep], col_all[keep], v[keep], offsets

    def fit(self, sentences: Sequence[Sequence[str]]) -> FeatureExtractor:
        """Build the feature index from training sentences (count >= ``min_freq``)."""
        if self.config.n_buckets:
            self.index_ = {}
            return self
        grow: dict[str, int] = {}
        _, cols, _, _ = self._coo(sentences, grow)
        counts = np.bincount(cols, minlength=len(grow))
        names = list(grow)
        self.index_ = {}
        for j, name in enumerate(names):
            if counts[j] >= self.config.min_freq:
                self.index_[name] = len(self.index_)
        return self

    def transform(self, sentences: Sequence[Sequence[str]]) -> SparseFeatures:
        """Sentences -> CSR (N_tok, F) features and offsets (S + 1,)."""
        rows, cols, vals, offsets = self._coo(sentences, None)
        n_tok = int(offsets[-1])
        mat = sp.csr_matrix((vals, (rows, cols)), shape=(n_tok, self.n_features), dtype=np.float64)
        mat.sum_duplicates()
        return SparseFeatures(mat, offsets)

    def names(self) -> list[str]:
        """Feature names in column order (indexed features only)."""
        if self.index_ is None or self.config.n_buckets:
            raise SeqlabError("feature names exist only for a fitted, indexed (not hashed) extractor")
        return list(self.index_)

    def state(self) -> dict[str, Any]:
        return {"names": None if self.config.n_buckets else self.names(), "n_functions": len(self.functions)}

    def load_state(self, state: dict[str, Any]) -> None:
        names = state.get("names")
        self.index_ = {} if names is None else {n: i for i, n in enumerate(names)}
