"""Per-example records: what each test example adds to the task's metrics.

A task computes its metrics from sums over examples (``Task.metrics(tallies, references,
nll_sum, n_units)``: token/entity tags for span F1, labels for accuracy, NLL and units for
perplexity, hypotheses for WER...). Evaluating a model on one example at a time through its public
``evaluate`` and keeping what it hands the task's ``metrics`` gives each example's share of those
sums, for any task, classical or neural, without knowing which task it is. Any resample of the
test set is then scored by the task's own metric code on the concatenated shares
(:meth:`Records.metrics`), so bootstrap intervals, length buckets and per-label scores are all the
task's own numbers. On the whole test set they equal ``model.evaluate(test)`` (a language model
scores each document on its own here, so its loss may differ slightly from one scored as a stream).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from seqlab.errors import SeqlabError
from seqlab.tasks import Example, Task

__all__ = ["Record", "Records", "record_examples", "recording", "per_label_scores"]


@dataclass(frozen=True)
class Record:
    """One example's share of the metric sums, and its input length (encoded units)."""

    tallies: tuple[Any, ...]
    references: tuple[Any, ...]
    nll_sum: float
    n_units: int
    length: int


@contextlib.contextmanager
def recording(task: Task) -> Iterator[list[tuple[list[Any], list[Any], float, int]]]:
    """While open, every call of ``task.metrics`` is also appended (its arguments) to the list
    yielded; the task's answer is unchanged."""
    calls: list[tuple[list[Any], list[Any], float, int]] = []
    original = task.metrics

    def metrics(tallies: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        calls.append((list(tallies), list(references), float(nll_sum), int(n_units)))
        return original(tallies, references, nll_sum, n_units)

    setattr(task, "metrics", metrics)  # noqa: B010 (an instance attribute shadows the method)
    try:
        yield calls
    finally:
        delattr(task, "metrics")


@dataclass
class Records:
    """Per-example records of one model on one test split; :meth:`metrics` scores any subset or
    resample (a list of row numbers, repeats allowed) with the task's own metric code."""

    task: Task
    rows: list[Record]

    def metrics(self, rows: Sequence[int] | None = None) -> dict[str, float]:
        picked = self.rows if rows is None else [self.rows[i] for i in rows]
        tallies = [t for r in picked for t in r.tallies]
        refs = [x for r in picked for x in r.references]
        return self.task.metrics(tallies, refs, sum(r.nll_sum for r in picked), sum(r.n_units for r in picked))

    @property
    def lengths(self) -> list[int]:
        return [r.length for r in self.rows]


def record_examples(model: Any, examples: Sequence[Example]) -> Records:
    """Evaluate ``model`` on each example alone and keep each one's share of the metric sums.
    Warnings the model prints per example (labels never seen in training) are swallowed here; the
    whole-split ``evaluate`` prints them once."""
    task: Task = model.task
    rows: list[Record] = []
    with recording(task) as calls, contextlib.redirect_stderr(io.StringIO()):
        for i, ex in enumerate(examples):
            calls.clear()
            model.evaluate([ex])
            if len(calls) != 1:
                raise SeqlabError(f"test example {i}: evaluate() called the task's metrics {len(calls)} times, expected once")
            tallies, refs, nll, units = calls[0]
            length = sum(task.lengths(task.encode([ex]).items))
            rows.append(Record(tuple(tallies), tuple(refs), nll, units, length))
    return Records(task, rows)


def per_label_scores(records: Records) -> dict[str, dict[str, float]]:
    """F1, precision, recall and support per label, from the records' predictions and references:
    one label per example (classes), or one tag per token: per entity type under the task's
    tagging scheme (seqeval, strict), per tag without one. ``{}`` when the outputs are not labels."""
    preds = [t for r in records.rows for t in r.tallies]
    refs = [x for r in records.rows for x in r.references]
    if not refs or len(preds) != len(refs):
        return {}
    if all(isinstance(x, str) for x in refs) and all(isinstance(x, str) for x in preds):
        return _per_class(preds, refs)
    if all(_is_tags(x) for x in refs) and all(_is_tags(x) for x in preds):
        scheme = getattr(records.task, "scheme", "none")
        if scheme in ("IOB2", "IOBES"):
            return _per_entity(preds, refs, scheme)
        return _per_class([t for p in preds for t in p], [t for g in refs for t in g])
    return {}


def _is_tags(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x)


def _per_class(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> dict[str, dict[str, float]]:
    """Per-class precision, recall, F1 and support from counts (support = gold count)."""
    labels = sorted({str(x) for x in (*pred, *gold)})
    out: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = sum(1 for p, g in zip(pred, gold) if p == g == c)
        n_pred = sum(1 for p in pred if p == c)
        n_gold = sum(1 for g in gold if g == c)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        out[c] = {"f1": f1, "precision": prec, "recall": rec, "support": float(n_gold)}
    return out


def _per_entity(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], scheme: str) -> dict[str, dict[str, float]]:
    """Per-entity-type scores from seqeval's strict-mode report."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2, IOBES

    report = classification_report([list(g) for g in gold], [list(p) for p in pred], mode="strict",
                                   scheme=IOB2 if scheme == "IOB2" else IOBES, output_dict=True, zero_division=0)
    return {k: {"f1": float(v["f1-score"]), "precision": float(v["precision"]), "recall": float(v["recall"]),
                "support": float(v["support"])}
            for k, v in sorted(report.items()) if "avg" not in k}
