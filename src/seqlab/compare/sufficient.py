"""Sufficient statistics: a fast path for bootstrapping the common metrics.

Recomputing a metric with the task's own code on each of 1,000 resamples is exact but can be slow
(seqeval's strict span F1 takes tens of milliseconds per call). Most metrics are functions of sums
of per-example counts: span F1 of (true positive, predicted, gold) entity counts, accuracy of
(right, total), perplexity of (NLL, units), macro-F1 of per-class counts. Such counts form an (N, K)
matrix S; a resample drawing example i c_i times sums to ``c @ S``, so all B resamples cost one
matrix product. The counts are built from the records' predictions and references by the metric's
definition (entities by seqeval's own strict-mode ``Entities``); :func:`sufficient_stats` returns
them only when they reproduce the task's own metrics on the whole split and on a few resamples, so a
metric it does not know (or a task whose metric means something else under the same name) falls back
to the task's code.

Shapes: N examples, K statistics, B resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqlab.compare.records import Records

__all__ = ["Sufficient", "sufficient_stats"]

Finish = Callable[[np.ndarray], dict[str, np.ndarray]]  # (B, K) sums -> {metric: (B,)}


@dataclass(frozen=True)
class Sufficient:
    """Per-example statistics ``stats`` (N, K) and ``finish``, which turns summed rows into metrics."""

    stats: np.ndarray
    finish: Finish
    names: tuple[str, ...]

    def values(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """``{metric: (B,) values}`` for the resamples ``indices`` (B, N)."""
        n = self.stats.shape[0]
        counts = np.stack([np.bincount(row, minlength=n) for row in indices]).astype(np.float64)  # (B, N)
        finite = np.isfinite(self.stats)
        sums = counts @ np.where(finite, self.stats, 0.0)  # (B, K)
        if not finite.all():  # an infinite NLL (a label the model gives probability 0) stays infinite when drawn
            drawn = (counts @ (~finite).astype(np.float64)) > 0  # (B, K)
            bad = np.where(finite, 0.0, self.stats).sum(0)  # +inf, -inf or nan per column
            sums = np.where(drawn, np.broadcast_to(bad, sums.shape), sums)
        return self.finish(sums)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _loss_block(records: Records) -> tuple[np.ndarray, Finish]:
    s = np.array([[r.nll_sum, r.n_units] for r in records.rows], dtype=np.float64)

    def finish(t: np.ndarray) -> dict[str, np.ndarray]:
        loss = t[:, 0] / np.maximum(t[:, 1], 1.0)
        return {"loss": loss, "perplexity": np.exp(loss), "bits_per_token": loss / math.log(2)}

    return s, finish


def _label_block(records: Records) -> tuple[np.ndarray, Finish] | None:
    """One label per example: accuracy and macro-F1 (over the labels present in the resample)."""
    pairs = [(p, g) for r in records.rows for p, g in zip(r.tallies, r.references)]
    if not pairs or not all(isinstance(p, str) and isinstance(g, str) for p, g in pairs):
        return None
    if any(len(r.tallies) != len(r.references) for r in records.rows):
        return None
    labels = sorted({x for pg in pairs for x in pg})
    col = {c: i for i, c in enumerate(labels)}
    C = len(labels)
    s = np.zeros((len(records.rows), 2 + 3 * C))  # right, total, then per class tp, n_pred, n_gold
    for i, r in enumerate(records.rows):
        for p, g in zip(r.tallies, r.references):
            s[i, 0] += p == g
            s[i, 1] += 1
            s[i, 2 + 3 * col[p] + 1] += 1
            s[i, 2 + 3 * col[g] + 2] += 1
            if p == g:
                s[i, 2 + 3 * col[p]] += 1

    def finish(t: np.ndarray) -> dict[str, np.ndarray]:
        per = t[:, 2:].reshape(len(t), C, 3)
        denom = per[:, :, 1] + per[:, :, 2]
        present = denom > 0
        f1 = _ratio(2 * per[:, :, 0], denom)
        macro = _ratio((f1 * present).sum(1), present.sum(1).astype(np.float64))
        return {"accuracy": _ratio(t[:, 0], t[:, 1]), "macro_f1": macro}

    return s, finish


def _tag_block(records: Records) -> tuple[np.ndarray, Finish] | None:
    """One tag per token: token accuracy, and strict span precision / recall / F1 under the task's scheme."""
    rows = records.rows
    if not rows or not all(_tags(x) for r in rows for x in (*r.tallies, *r.references)):
        return None
    scheme = getattr(records.task, "scheme", "none")
    s = np.zeros((len(rows), 5))  # right tokens, tokens, true-positive spans, predicted spans, gold spans
    for i, r in enumerate(rows):
        for p, g in zip(r.tallies, r.references):
            s[i, 0] += sum(a == b for a, b in zip(p, g))
            s[i, 1] += len(g)
            if scheme in ("IOB2", "IOBES"):
                ps, gs = _entities(p, scheme), _entities(g, scheme)
                s[i, 2:] += (len(ps & gs), len(ps), len(gs))

    def finish(t: np.ndarray) -> dict[str, np.ndarray]:
        out = {"token_accuracy": _ratio(t[:, 0], t[:, 1])}
        if scheme in ("IOB2", "IOBES"):
            out["precision"] = _ratio(t[:, 2], t[:, 3])
            out["recall"] = _ratio(t[:, 2], t[:, 4])
            out["f1"] = _ratio(2 * t[:, 2], t[:, 3] + t[:, 4])
        return out

    return s, finish


def _tags(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x)


def _entities(tags: Sequence[str], scheme: str) -> set[tuple[int, int, str]]:
    """The strict-mode entity spans of one sentence, by seqeval's own ``Entities``."""
    from seqeval.scheme import IOB2, IOBES, Entities

    ents = Entities([list(tags)], IOB2 if scheme == "IOB2" else IOBES, suffix=False).entities[0]
    return {(e.start, e.end, e.tag) for e in ents}


def sufficient_stats(records: Records, names: Sequence[str], seed: int = 0, checks: int = 3) -> Sufficient | None:
    """The fast path for ``names``, or None when its blocks do not cover every name or do not
    reproduce the task's own metrics (whole split and ``checks`` seeded resamples, to 1e-9)."""
    blocks = [b for b in (_loss_block(records), _label_block(records), _tag_block(records)) if b is not None]
    widths = [b[0].shape[1] for b in blocks]
    stats = np.concatenate([b[0] for b in blocks], axis=1)

    def finish(t: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        start = 0
        for (_, fin), w in zip(blocks, widths):
            out.update(fin(t[:, start:start + w]))
            start += w
        return {k: v for k, v in out.items() if k in names}

    fast = Sufficient(stats, finish, tuple(names))
    n = len(records.rows)
    rng = np.random.default_rng(seed)
    trial = np.concatenate([np.arange(n)[None, :], rng.integers(0, n, size=(checks, n))])
    got = fast.values(trial)
    if set(got) != set(names):
        return None
    for b, row in enumerate(trial):
        want = records.metrics(row.tolist())
        for k in names:
            w, g = float(want[k]), float(got[k][b])
            if not (math.isclose(w, g, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(w) and math.isnan(g))):
                return None
    return fast
