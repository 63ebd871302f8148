"""Span-level F1 for labeling, through seqeval (the reference implementation), plus token accuracy.

``scheme="IOB2"`` uses seqeval's strict mode with the IOB2 scheme; ``"IOBES"`` likewise with
IOBES. Strict mode counts a span only when its type and both boundaries match and its tags
follow the scheme, which is what CoNLL-style evaluation reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from seqlab.errors import ConfigError, SeqlabError

__all__ = ["span_scores", "token_accuracy", "Scheme"]

Scheme = Literal["IOB2", "IOBES"]


def token_accuracy(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose tag is right, over all tokens of all sentences."""
    if len(pred) != len(gold):
        raise SeqlabError(f"{len(pred)} predicted sentences for {len(gold)} references")
    right = total = 0
    for i, (p, g) in enumerate(zip(pred, gold)):
        if len(p) != len(g):
            raise SeqlabError(f"sentence {i}: {len(p)} predicted tags for {len(g)} tokens")
        right += sum(a == b for a, b in zip(p, g))
        total += len(g)
    return right / total if total else 0.0


def span_scores(
    pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], scheme: Scheme = "IOB2"
) -> dict[str, float]:
    """Micro precision, recall and F1 over entity spans (seqeval, strict mode)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2, IOBES

    schemes = {"IOB2": IOB2, "IOBES": IOBES}
    if scheme not in schemes:
        raise ConfigError(f"unknown tagging scheme {scheme!r}; valid: IOB2, IOBES")
    token_accuracy(pred, gold)  # validates lengths
    y_true = [list(s) for s in gold]
    y_pred = [list(s) for s in pred]
    kw = {"mode": "strict", "scheme": schemes[scheme], "zero_division": 0}
    return {
        "precision": float(precision_score(y_true, y_pred, **kw)),
        "recall": float(recall_score(y_true, y_pred, **kw)),
        "f1": float(f1_score(y_true, y_pred, **kw)),
    }
