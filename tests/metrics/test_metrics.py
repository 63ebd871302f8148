import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.metrics import (
    accuracy,
    bits_per_unit,
    macro_f1,
    perplexity,
    span_scores,
    token_accuracy,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")

labels = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=40))
def test_accuracy_and_macro_f1_match_sklearn(pairs: list[tuple[str, str]]) -> None:
    pred = [p for p, _ in pairs]
    gold = [g for _, g in pairs]
    assert accuracy(pred, gold) == pytest.approx(sklearn_metrics.accuracy_score(gold, pred))
    ref = sklearn_metrics.f1_score(gold, pred, average="macro", labels=sorted(set(pred) | set(gold)), zero_division=0)
    assert macro_f1(pred, gold) == pytest.approx(ref)


def test_span_scores_textbook_example() -> None:
    # gold: PER(0-1), LOC(3); pred: PER(0-1) right, LOC(3) typed as ORG, extra MISC(5)
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O", "B-MISC"]]
    s = span_scores(pred, gold)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_accuracy(pred, gold) == pytest.approx(4 / 6)


def test_span_scores_strict_iob2_rejects_dangling_i() -> None:
    # strict IOB2: a span must start with B-; "I-PER" alone is not a valid span
    gold = [["B-PER", "O"]]
    pred = [["I-PER", "O"]]
    assert span_scores(pred, gold)["f1"] == 0.0


def test_span_scores_iobes() -> None:
    gold = [["S-PER", "O", "B-LOC", "E-LOC"]]
    pred = [["S-PER", "O", "B-LOC", "E-LOC"]]
    assert span_scores(pred, gold, scheme="IOBES")["f1"] == 1.0


def test_lm_metrics_known_values() -> None:
    assert perplexity(4 * math.log(8), 4) == pytest.approx(8.0)
    assert bits_per_unit(10 * math.log(2), 5) == pytest.approx(2.0)
