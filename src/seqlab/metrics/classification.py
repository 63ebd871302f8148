"""Classification metrics: accuracy and macro-F1, computed exactly from a confusion count.

Written by hand (a dozen lines) rather than pulling scikit-learn into the core install; the
tests pin both to scikit-learn's ``accuracy_score`` and ``f1_score(average="macro")``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from seqlab.errors import SeqlabError

__all__ = ["accuracy", "macro_f1", "per_class_f1"]


def _check(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> None:
    if len(pred) != len(gold):
        raise SeqlabError(f"{len(pred)} predictions for {len(gold)} references")


def accuracy(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Fraction of exact matches; 0.0 for empty input."""
    _check(pred, gold)
    if not gold:
        return 0.0
    return sum(p == g for p, g in zip(pred, gold)) / len(gold)


def per_class_f1(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> dict[Hashable, float]:
    """F1 of each label that occurs in either predictions or references (0 where undefined)."""
    _check(pred, gold)
    labels = set(pred) | set(gold)
    tp = dict.fromkeys(labels, 0)
    n_pred = dict.fromkeys(labels, 0)
    n_gold = dict.fromkeys(labels, 0)
    for p, g in zip(pred, gold):
        n_pred[p] += 1
        n_gold[g] += 1
        if p == g:
            tp[p] += 1
    out: dict[Hashable, float] = {}
    for c in labels:
        denom = n_pred[c] + n_gold[c]
        out[c] = 2.0 * tp[c] / denom if denom else 0.0
    return out


def macro_f1(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Unweighted mean of per-class F1 over the union of predicted and true labels."""
    scores = per_class_f1(pred, gold)
    return sum(scores.values()) / len(scores) if scores else 0.0
