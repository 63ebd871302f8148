"""Bootstrap intervals and the paired test against brute force and known answers."""

from __future__ import annotations

import numpy as np
import pytest

import seqlab
from seqlab.compare.core import bootstrap_all, length_buckets
from seqlab.compare.records import Record, Records, record_examples
from seqlab.compare.stats import paired_p_value, percentile_interval, resample_indices
from seqlab.compare.sufficient import sufficient_stats
from seqlab.tasks import make_task


@pytest.fixture(scope="module")
def hmm_records(tiny_labeling):  # type: ignore[no-untyped-def]
    model = seqlab.build("hmm", task=tiny_labeling).fit(tiny_labeling.train)
    return model, record_examples(model, tiny_labeling.test)


def test_records_sum_to_the_whole_split(hmm_records, tiny_labeling) -> None:  # type: ignore[no-untyped-def]
    model, rec = hmm_records
    want = model.evaluate(tiny_labeling.test)
    got = rec.metrics()
    assert got.keys() == want.keys()
    assert got == pytest.approx(want, rel=1e-9)


def test_interval_equals_brute_force_recomputation(hmm_records, tiny_labeling) -> None:  # type: ignore[no-untyped-def]
    """Each resample scored by the model's own evaluate on the resampled example list; the interval
    is the 2.5% / 97.5% quantile of those values, by both the fast path and the task's code."""
    model, rec = hmm_records
    idx = resample_indices(len(tiny_labeling.test), 25, seed=3)
    brute = {k: np.array([model.evaluate([tiny_labeling.test[i] for i in row])[k] for row in idx])
             for k in ("f1", "token_accuracy", "loss")}
    fast, method = bootstrap_all(rec, list(brute), idx)
    assert method.startswith("sufficient")
    from seqlab.compare.stats import bootstrap_values

    slow = bootstrap_values(rec.metrics, idx)
    for k, values in brute.items():
        np.testing.assert_allclose(fast[k], values, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(slow[k], values, rtol=1e-9, atol=1e-12)
        lo, hi = percentile_interval(fast[k])
        assert (lo, hi) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])), rel=1e-9)


def _records(correct: list[bool]) -> Records:
    """Classification records where example i is right iff ``correct[i]`` (gold 'a')."""
    task = make_task("classification")
    rows = [Record(("a" if c else "b",), ("a",), 0.0, 1, 1) for c in correct]
    return Records(task, rows)


def test_paired_test_known_answer() -> None:
    """A is right on all n examples, B on all but one: B ties A exactly on the resamples that miss
    that example, so p = P(not drawn in n draws) = (1 - 1/n)^n."""
    n, draws = 10, 20000
    a, b = _records([True] * n), _records([True] * (n - 1) + [False])
    idx = resample_indices(n, draws, seed=0)
    va, _ = bootstrap_all(a, ["accuracy"], idx)
    vb, _ = bootstrap_all(b, ["accuracy"], idx)
    p = paired_p_value(va["accuracy"], vb["accuracy"], greater_is_better=True)
    expected = (1 - 1 / n) ** n
    assert abs(p - expected) < 4 * np.sqrt(expected * (1 - expected) / draws)
    assert paired_p_value(va["accuracy"], va["accuracy"], True) == 1.0  # a system is never better than itself
    assert paired_p_value(-va["accuracy"], -vb["accuracy"], greater_is_better=False) == p  # lower is better, mirrored


def test_interval_of_a_constant_and_of_known_draws() -> None:
    assert percentile_interval(np.full(50, 0.7)) == pytest.approx((0.7, 0.7))
    lo, hi = percentile_interval(np.arange(101, dtype=float))
    assert (lo, hi) == pytest.approx((2.5, 97.5), abs=1e-12)
    assert np.isnan(percentile_interval(np.array([np.nan]))[0])


def test_fast_path_refuses_a_metric_it_does_not_reproduce() -> None:
    """A task whose 'accuracy' means something else falls back to the task's own code."""
    rec = _records([True, False, True, True])
    assert sufficient_stats(rec, ["accuracy", "macro_f1", "loss"]) is not None

    class Odd:
        def metrics(self, tallies, refs, nll, n):  # type: ignore[no-untyped-def]
            return {"accuracy": 0.5, "loss": nll / max(n, 1)}

    odd = Records(Odd(), rec.rows)  # type: ignore[arg-type]
    assert sufficient_stats(odd, ["accuracy"]) is None
    values, method = bootstrap_all(odd, ["accuracy"], resample_indices(4, 5, 0))
    assert method == "the task's metric code" and (values["accuracy"] == 0.5).all()


def test_length_buckets_partition_the_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=97).tolist()
    buckets = length_buckets(lengths)
    assert buckets[0][0] == min(lengths) and buckets[-1][1] == max(lengths)
    assert all(b[0] == a[1] + 1 for a, b in zip(buckets, buckets[1:]))
    assert sum(sum(lo <= x <= hi for x in lengths) for lo, hi in buckets) == len(lengths)
    assert length_buckets([5, 5, 5]) == [(5, 5)]
