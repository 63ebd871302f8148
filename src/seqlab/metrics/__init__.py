"""Metrics: exact wrappers over seqeval, plus classification and LM metrics."""

from seqlab.metrics.classification import accuracy, macro_f1, per_class_f1
from seqlab.metrics.lm import bits_per_unit, perplexity
from seqlab.metrics.spans import span_scores, token_accuracy

__all__ = [
    "accuracy",
    "macro_f1",
    "per_class_f1",
    "bits_per_unit",
    "perplexity",
    "span_scores",
    "token_accuracy",
]
