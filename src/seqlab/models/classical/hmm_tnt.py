"""Supervised HMM tagging by counting, with TnT's suffix model for unknown words.

Counting (words -> tags, Brants 2000 "TnT - a statistical part-of-speech tagger", first order):
    start  p(t_1 = i)          = (c(start, i) + k) / (n_sentences + k N)
    trans  p(t' = j | t = i)   = (c(i, j) + k) / (c(i) + k (N + 1))
    end    p(end | t = i)      = (c(i, end) + k) / (c(i) + k (N + 1))
    emit   p(w | t)            = p(t | w) p(w) / p(t), with p(t | w) = (c(w, t) + k p_suf(t | w)) / (c(w) + k)
With ``k = smoothing = 0`` these are the maximum-likelihood counts (p(w | t) = c(w, t) / c(t), as
TnT's lexicon); ``k > 0`` shrinks a known word's tags towards what its suffix predicts, so an
ambiguous word never gets probability 0 for a tag it was not seen with.

Unknown words (Brants 2000, section 2.3): tag distributions of *rare* training words (frequency
<= ``rare_threshold``) are stored by suffix, up to ``max_suffix`` characters, in two tries, one for
capitalised and one for other words. For a word with suffixes s_1 (last letter) ... s_m (the
longest one seen in the trie), successive abstraction gives
    P(t | s_i) = (P^(t | s_i) + theta P(t | s_{i-1})) / (1 + theta),  P(t | s_0) = P^(t | rare words)
where P^ are relative frequencies and theta is the standard deviation of the unconditioned tag
probabilities P^(t) (sample std over the N tags; Brants prints the variance formula and calls it
the standard deviation: we follow the words). The emission of an unknown word w is then
p(w | t) = P(t | suffixes of w) p_unk / P^(t), where the constant p_unk = 1 / n_tokens cancels in
Viterbi and in p(tags | words).

Shapes: N tags, W known words, S suffixes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError, DataError
from seqlab.inference import forward_backward, log_partition, score, viterbi

__all__ = ["HMMTagger", "SuffixTrie", "TnTCounts", "count_tagged"]


def _cap(word: str) -> bool:
    return word[:1].isupper()


@dataclass
class SuffixTrie:
    """Tag counts of rare words by suffix (the empty suffix holds all of them): (S, N)."""

    suffixes: list[str]
    counts: Tensor  # (S, N) float64
    index: dict[str, int]

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, int]], n_tags: int, max_suffix: int) -> SuffixTrie:
        table: dict[str, Counter[int]] = {"": Counter()}
        for word, tag in pairs:
            for i in range(min(max_suffix, len(word)) + 1):
                table.setdefault(word[len(word) - i :], Counter())[tag] += 1
        suffixes = sorted(table, key=lambda s: (len(s), s))
        counts = torch.zeros(len(suffixes), n_tags, dtype=torch.float64)
        for r, s in enumerate(suffixes):
            for t, c in table[s].items():
                counts[r, t] = c
        return cls(suffixes, counts, {s: r for r, s in enumerate(suffixes)})

    @property
    def empty(self) -> bool:
        return float(self.counts[0].sum()) == 0.0

    def abstraction(self, word: str, theta: float, max_suffix: int) -> Tensor:
        """(N,) P(t | the longest known suffix of ``word``), by successive abstraction."""
        p = self.counts[0] / self.counts[0].sum().clamp(min=1e-300)  # (N,)
        for i in range(1, min(max_suffix, len(word)) + 1):
            r = self.index.get(word[len(word) - i :])
            if r is None:
                break
            row = self.counts[r]
            p = (row / row.sum() + theta * p) / (1.0 + theta)
        return p


@dataclass
class TnTCounts:
    """Everything counted from a tagged corpus: chain, lexicon and the two suffix tries."""

    n_tags: int
    smoothing: float
    max_suffix: int
    words: list[str]  # the lexicon (W,)
    word_tag: Tensor  # (W, N) c(w, t)
    start: Tensor  # (N,) c(start, t)
    trans: Tensor  # (N, N) c(t, t')
    end: Tensor  # (N,) c(t, end)
    tries: dict[bool, SuffixTrie]  # capitalised?, trie

    def __post_init__(self) -> None:
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.tag_freq = self.word_tag.sum(0)  # (N,) c(t)
        self.n_tokens = float(self.tag_freq.sum())
        p_tag = self.tag_freq / max(self.n_tokens, 1.0)  # (N,)
        self.log_p_tag = p_tag.clamp(min=1e-300).log()
        self.theta = float(p_tag.std()) if self.n_tags > 1 else 0.0
        self._cache: dict[str, Tensor] = {}

    def suffix_dist(self, word: str) -> Tensor:
        """(N,) P(t | suffix of ``word``) from the trie of its capitalisation class."""
        trie = self.tries[_cap(word)]
        if trie.empty:
            trie = self.tries[not _cap(word)]
        return trie.abstraction(word, self.theta, self.max_suffix)

    def chain_probs(self) -> tuple[Tensor, Tensor, Tensor]:
        """start (N,), transitions (N, N), end (N,) probabilities (each row with end sums to 1)."""
        k, n = self.smoothing, self.n_tags
        start = (self.start + k) / (self.start.sum() + k * n)
        out_total = self.trans.sum(-1) + self.end + k * (n + 1)  # (N,)
        safe = out_total.clamp(min=1e-300)[:, None]
        trans = torch.where(out_total[:, None] > 0, (self.trans + k) / safe, torch.full_like(self.trans, 1.0 / (n + 1)))
        end = torch.where(out_total > 0, (self.end + k) / safe[:, 0], torch.full_like(self.end, 1.0 / (n + 1)))
        return start, trans, end

    def known_log_emissions(self) -> Tensor:
        """(N, W) log p(w | t) of the lexicon's words (exactly c(w, t) / c(t) when smoothing = 0)."""
        k = self.smoothing
        c_w = self.word_tag.sum(-1, keepdim=True)  # (W, 1)
        if k > 0:
            prior = torch.stack([self.suffix_dist(w) for w in self.words]) if self.words else self.word_tag  # (W, N)
            p_t_w = (self.word_tag + k * prior) / (c_w + k)  # (W, N)
        else:
            p_t_w = self.word_tag / c_w.clamp(min=1e-300)  # (W, N)
        log_p_w = (c_w / max(self.n_tokens, 1.0)).log()  # (W, 1)
        return (p_t_w.log() + log_p_w - self.log_p_tag).T  # (N, W)

    def unknown_log_emission(self, word: str) -> Tensor:
        """(N,) log p(w | t) of a word outside the lexicon, up to a constant shared by all tags."""
        if word not in self._cache:
            dist = self.suffix_dist(word)
            self._cache[word] = dist.clamp(min=1e-300).log() - self.log_p_tag - math.log(max(self.n_tokens, 1.0))
        return self._cache[word]

    # --- persistence: tensors + JSON ---------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        out = {"word_tag": self.word_tag, "start": self.start, "trans": self.trans, "end": self.end}
        for cap, trie in self.tries.items():
            out[f"suffix_counts_{int(cap)}"] = trie.counts
        return out

    def extra(self) -> dict[str, Any]:
        return {
            "n_tags": self.n_tags, "smoothing": self.smoothing, "max_suffix": self.max_suffix, "words": self.words,
            "suffixes": {str(int(cap)): trie.suffixes for cap, trie in self.tries.items()},
        }

    @classmethod
    def from_state(cls, tensors: dict[str, Tensor], extra: dict[str, Any]) -> TnTCounts:
        tries = {}
        for cap in (False, True):
            sufs = list(extra["suffixes"][str(int(cap))])
            tries[cap] = SuffixTrie(sufs, tensors[f"suffix_counts_{int(cap)}"].double(), {s: r for r, s in enumerate(sufs)})
        return cls(
            int(extra["n_tags"]), float(extra["smoothing"]), int(extra["max_suffix"]), list(extra["words"]),
            tensors["word_tag"].double(), tensors["start"].double(), tensors["trans"].double(), tensors["end"].double(), tries,
        )


def count_tagged(
    sentences: Sequence[tuple[list[str], list[int]]], n_tags: int, *, smoothing: float, max_suffix: int, rare_threshold: int,
) -> TnTCounts:
    """Count a tagged corpus (words, tag ids) into :class:`TnTCounts`."""
    freq: Counter[str] = Counter(w for words, _ in sentences for w in words)
    words = sorted(freq)
    index = {w: i for i, w in enumerate(words)}
    word_tag = torch.zeros(len(words), n_tags, dtype=torch.float64)
    start = torch.zeros(n_tags, dtype=torch.float64)
    trans = torch.zeros(n_tags, n_tags, dtype=torch.float64)
    end = torch.zeros(n_tags, dtype=torch.float64)
    rare: dict[bool, list[tuple[str, int]]] = {False: [], True: []}
    for i, (ws, ts) in enumerate(sentences):
        if len(ws) != len(ts):
            raise DataError(None, None, f"sentence {i}: as many tags as words ({len(ws)})", f"{len(ts)} tags")
        if not ws:
            continue
        start[ts[0]] += 1
        end[ts[-1]] += 1
        for a, b in zip(ts, ts[1:]):
            trans[a, b] += 1
        for w, t in zip(ws, ts):
            word_tag[index[w], t] += 1
            if freq[w] <= rare_threshold:
                rare[_cap(w)].append((w, t))
    tries = {cap: SuffixTrie.build(pairs, n_tags, max_suffix) for cap, pairs in rare.items()}
    return TnTCounts(n_tags, smoothing, max_suffix, words, word_tag, start, trans, end, tries)


class HMMTagger:
    """A supervised first-order HMM tagger: counting plus the TnT unknown-word model.

    ``fit(sentences, tags)`` counts; ``predict`` gives Viterbi tag lists; ``log_prob_tags`` gives
    log p(tags | words) (the joint score minus the forward log-likelihood, so per-position
    constants of the unknown-word model cancel); ``predict_proba`` gives posterior marginals.
    """

    def __init__(self, smoothing: float = 0.1, max_suffix: int = 10, rare_threshold: int = 10, batch_size: int = 512) -> None:
        if smoothing < 0 or max_suffix < 0 or rare_threshold < 0 or batch_size < 1:
            raise ConfigError(f"need smoothing, max_suffix, rare_threshold >= 0 and batch_size >= 1; found {smoothing}, {max_suffix}, {rare_threshold}, {batch_size}")
        self.smoothing, self.max_suffix, self.rare_threshold, self.batch_size = smoothing, max_suffix, rare_threshold, batch_size
        self.tags_: list[str] = []
        self.counts_: TnTCounts | None = None

    def fit(self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], tagset: Sequence[str] | None = None) -> HMMTagger:
        """Count words -> tags; ``tagset`` fixes the tag order (default: sorted tags seen)."""
        self.tags_ = list(tagset) if tagset is not None else sorted({t for ts in tags for t in ts})
        stoi = {t: i for i, t in enumerate(self.tags_)}
        pairs = []
        for i, (ws, ts) in enumerate(zip(sentences, tags)):
            unknown = [t for t in ts if t not in stoi]
            if unknown:
                raise DataError(None, None, f"sentence {i}: tags from the tag set", f"{unknown[0]!r}")
            pairs.append((list(ws), [stoi[t] for t in ts]))
        self.counts_ = count_tagged(pairs, len(self.tags_), smoothing=self.smoothing, max_suffix=self.max_suffix, rare_threshold=self.rare_threshold)
        self._set_tables()
        return self

    def _set_tables(self) -> None:
        c = self._counts()
        start, trans, end = c.chain_probs()
        self.log_start_, self.log_trans_, self.log_end_ = start.log(), trans.log(), end.log()
        self.log_known_ = c.known_log_emissions()  # (N, W)

    def _counts(self) -> TnTCounts:
        if self.counts_ is None:
            raise ConfigError("the tagger is not fitted: call fit() first")
        return self.counts_

    def potentials(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """(B, T, N) log p(w_t | tag) (0 on padding) and the (B, T) mask."""
        c = self._counts()
        n, t_max = c.n_tags, max((len(s) for s in sentences), default=0)
        em = torch.zeros(len(sentences), t_max, n, dtype=torch.float64)  # (B, T, N)
        mask = torch.zeros(len(sentences), t_max, dtype=torch.bool)  # (B, T)
        for b, ws in enumerate(sentences):
            mask[b, : len(ws)] = True
            ids = [c.word_index.get(w, -1) for w in ws]
            known = [t for t, i in enumerate(ids) if i >= 0]
            if known:
                em[b, known] = self.log_known_[:, [ids[t] for t in known]].T
            for t, i in enumerate(ids):
                if i < 0:
                    em[b, t] = c.unknown_log_emission(ws[t])
        return em, mask

    def _chunks(self, n: int) -> list[range]:
        return [range(a, min(a + self.batch_size, n)) for a in range(0, n, self.batch_size)]

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """The Viterbi tag sequence of each sentence."""
        out: list[list[str]] = []
        for r in self._chunks(len(sentences)):
            rows = [sentences[i] for i in r]
            em, mask = self.potentials(rows)
            paths, _ = viterbi(em, self.log_trans_, self.log_start_, self.log_end_, mask)
            out.extend([self.tags_[j] for j in p[: len(s)]] for p, s in zip(paths.tolist(), rows))
        return out

    def predict_proba(self, sentences: Sequence[Sequence[str]]) -> list[Tensor]:
        """Posterior tag marginals of each sentence, (T_i, N)."""
        out: list[Tensor] = []
        for r in self._chunks(len(sentences)):
            rows = [sentences[i] for i in r]
            em, mask = self.potentials(rows)
            node = forward_backward(em, self.log_trans_, self.log_start_, self.log_end_, mask).node  # (B, T, N)
            out.extend(node[b, : len(s)].clone() for b, s in enumerate(rows))
        return out

    def log_prob_tags(self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> Tensor:
        """(B,) log p(tags | words); -inf where a tag is outside the tag set or has probability 0."""
        stoi = {t: i for i, t in enumerate(self.tags_)}
        out = torch.zeros(len(sentences), dtype=torch.float64)
        for r in self._chunks(len(sentences)):
            rows = [sentences[i] for i in r]
            em, mask = self.potentials(rows)
            ids = torch.zeros(mask.shape, dtype=torch.long)  # (B, T)
            bad = torch.zeros(len(rows), dtype=torch.bool)  # (B,)
            for b, i in enumerate(r):
                row = [stoi.get(t, -1) for t in tags[i]]
                bad[b] = any(j < 0 for j in row)
                ids[b, : len(row)] = torch.tensor([max(j, 0) for j in row], dtype=torch.long)
            joint = score(em, self.log_trans_, self.log_start_, self.log_end_, ids, mask)  # (B,)
            z = log_partition(em, self.log_trans_, self.log_start_, self.log_end_, mask)  # (B,)
            impossible = bad | ~torch.isfinite(z)  # a tag outside the set, or no tag path at all (smoothing = 0)
            out[list(r)] = torch.where(impossible, torch.full_like(z, float("-inf")), joint - z)
        return out

    def tensors(self) -> dict[str, Tensor]:
        return self._counts().tensors()

    def extra(self) -> dict[str, Any]:
        return {**self._counts().extra(), "tags": self.tags_, "rare_threshold": self.rare_threshold}

    def set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.counts_ = TnTCounts.from_state(tensors, extra)
        self.tags_ = list(extra["tags"])
        self.smoothing, self.max_suffix = self.counts_.smoothing, self.counts_.max_suffix
        self.rare_threshold = int(extra["rare_threshold"])
        self._set_tables()
