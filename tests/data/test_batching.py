"""Batching: padding and masks, truncation policies and reports, bucketing, batch sources."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import Tensor

from seqlab.data.batching import (
    BatchSource,
    BucketBatchSampler,
    EpochBatchSource,
    TruncationReport,
    batch_generator,
    move_to,
    pad_floats,
    pad_sequences,
    padding_fraction,
    truncate,
    truncate_all,
)
from seqlab.errors import ConfigError, DataError

T, F = True, False

# ------------------------------------------------------------------------------- padding


def test_pad_right_exact() -> None:
    values, mask = pad_sequences([[1, 2, 3], [4], []])
    assert values.dtype == torch.long and mask.dtype == torch.bool
    assert values.tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]]
    assert mask.tolist() == [[T, T, T], [T, F, F], [F, F, F]]


def test_pad_left_exact_with_pad_value() -> None:
    values, mask = pad_sequences([[1, 2, 3], [4], [5, 6]], pad_value=-100, side="left")
    assert values.tolist() == [[1, 2, 3], [-100, -100, 4], [-100, 5, 6]]
    assert mask.tolist() == [[T, T, T], [F, F, T], [F, T, T]]


def test_pad_accepts_tensors_and_does_not_mutate() -> None:
    a = torch.tensor([7, 8], dtype=torch.int32)
    values, mask = pad_sequences([a, [9]], dtype=torch.int32)
    assert values.dtype == torch.int32 and values.tolist() == [[7, 8], [9, 0]]
    values[0, 0] = 0
    assert a.tolist() == [7, 8]
    assert mask.sum().item() == 3


def test_pad_empty_batch() -> None:
    values, mask = pad_sequences([])
    assert values.shape == (0, 0) and mask.shape == (0, 0)


def test_pad_bad_side() -> None:
    with pytest.raises(ConfigError, match="side must be 'right' or 'left'"):
        pad_sequences([[1]], side="center")  # type: ignore[arg-type]


def test_pad_floats_exact() -> None:
    values, mask = pad_floats([[0.5, 1.5], np.array([2.0])], side="left", pad_value=-1.0)
    assert values.dtype == torch.float32
    assert values.tolist() == [[0.5, 1.5], [-1.0, 2.0]]
    assert mask.tolist() == [[T, T], [F, T]]


def test_pad_floats_multivariate() -> None:
    values, mask = pad_floats([np.ones((3, 2)), np.zeros((1, 2))])
    assert values.shape == (2, 3, 2)
    assert values[1].tolist() == [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert mask.tolist() == [[T, T, T], [T, F, F]]
    with pytest.raises(DataError, match=r"\(3,\) in sequence 1"):
        pad_floats([np.ones((2, 2)), np.ones((2, 3))])


# ---------------------------------------------------------------------------- truncation

IDS = list(range(10))


@pytest.mark.parametrize(
    ("max_len", "policy", "kept", "cut"),
    [
        (4, "head", [0, 1, 2, 3], True),
        (4, "tail", [6, 7, 8, 9], True),
        (4, "middle", [0, 1, 8, 9], True),
        (5, "middle", [0, 1, 2, 8, 9], True),
        (1, "middle", [0], True),
        (1, "tail", [9], True),
        (4, "none", IDS, False),
        (None, "head", IDS, False),
        (10, "error", IDS, False),
        (12, "head", IDS, False),
    ],
)
def test_truncate_policies_exact(
    max_len: int | None, policy: str, kept: list[int], cut: bool
) -> None:
    out, was_cut = truncate(IDS, max_len, policy)  # type: ignore[arg-type]
    assert out == kept and was_cut is cut
    assert out is not IDS and IDS == list(range(10))


def test_truncate_generic_items() -> None:
    assert truncate(["a", "b", "c"], 2, "tail") == (["b", "c"], True)


def test_truncate_error_names_index_and_length() -> None:
    with pytest.raises(DataError, match="example 7 with 10 tokens") as info:
        truncate(IDS, 8, "error", index=7)
    assert "at most 8 tokens" in str(info.value)


@pytest.mark.parametrize(("max_len", "policy"), [(0, "head"), (3, "cut"), (2.5, "head")])
def test_truncate_bad_config(max_len: object, policy: str) -> None:
    with pytest.raises(ConfigError):
        truncate(IDS, max_len, policy)  # type: ignore[arg-type]


def test_truncate_all_and_report() -> None:
    seqs = [[1] * 3, [2] * 10, [3] * 5, [4] * 12]
    kept, report = truncate_all(seqs, 5, "head")
    assert [len(s) for s in kept] == [3, 5, 5, 5]
    assert report == TruncationReport(
        n_examples=4, n_truncated=2, max_len=5, policy="head", longest=12
    )
    assert str(report) == "truncated 2 of 4 examples (50.0%) to 5 tokens, policy head; longest 12"
    assert seqs[1] == [2] * 10  # inputs untouched


def test_truncation_report_text() -> None:
    report = TruncationReport(2394, 12, 128, "head", 201)
    assert (
        str(report)
        == "truncated 12 of 2,394 examples (0.5%) to 128 tokens, policy head; longest 201"
    )
    assert report.fraction == pytest.approx(12 / 2394)
    assert (
        str(TruncationReport(3, 0, None, "none", 9))
        == "no truncation of 3 examples (policy none); longest 9"
    )
    assert TruncationReport(0, 0, 4, "tail", 0).fraction == 0.0


def test_truncate_all_error_names_first_bad_index() -> None:
    with pytest.raises(DataError, match="example 2 with 6 tokens"):
        truncate_all([[1], [1, 2], [1] * 6, [1] * 9], 4, "error")


# ------------------------------------------------------------------------------ sampling


def _random_lengths(n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(1, 201, size=n).tolist()


def _flat(batches: Sequence[Sequence[int]]) -> list[int]:
    return [i for b in batches for i in b]


@pytest.mark.parametrize("bucket", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_exactly_once(bucket: bool, shuffle: bool) -> None:
    sampler = BucketBatchSampler(
        _random_lengths(1003), 16, bucket=bucket, shuffle=shuffle, pool_factor=5
    )
    batches = sampler.batches(3)
    assert sorted(_flat(batches)) == list(range(1003))
    assert len(batches) == len(sampler) == 63
    assert sorted(len(b) for b in batches) == [11] + [16] * 62


def test_drop_last() -> None:
    sampler = BucketBatchSampler(_random_lengths(1003), 16, drop_last=True)
    batches = sampler.batches(0)
    assert len(batches) == len(sampler) == 62 and all(len(b) == 16 for b in batches)
    assert len(set(_flat(batches))) == 992


def test_unshuffled_batches_exact() -> None:
    lengths = [5, 1, 4, 2, 3, 6]
    plain = BucketBatchSampler(lengths, 2, shuffle=False, bucket=False)
    assert plain.batches(0) == [[0, 1], [2, 3], [4, 5]]
    small_pools = BucketBatchSampler(lengths, 2, shuffle=False, pool_factor=1)
    assert small_pools.batches(0) == [[1, 0], [3, 2], [4, 5]]
    one_pool = BucketBatchSampler(lengths, 2, shuffle=False, pool_factor=3)
    assert one_pool.batches(0) == [[1, 3], [4, 2], [0, 5]]


def test_bucketing_cuts_padding() -> None:
    lengths = _random_lengths(2000, seed=1)
    bucketed = BucketBatchSampler(lengths, 32, seed=5).batches(0)
    plain = BucketBatchSampler(lengths, 32, seed=5, bucket=False).batches(0)
    assert padding_fraction(lengths, bucketed) < 0.05
    assert padding_fraction(lengths, plain) > 0.4
    # shuffled batch order: not sorted short-to-long across the epoch
    maxima = [max(lengths[i] for i in b) for b in bucketed]
    assert maxima != sorted(maxima)


def test_padding_fraction_exact() -> None:
    assert padding_fraction([1, 3, 2, 2], [[0, 1], [2, 3]]) == pytest.approx(1 - 8 / 10)
    assert padding_fraction([], []) == 0.0


def _global_numpy_key() -> np.ndarray:
    state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global stream is under test)
    return np.append(state["state"]["key"], state["state"]["pos"])


def test_deterministic_per_seed_and_epoch_without_global_rng() -> None:
    lengths = _random_lengths(500)
    a = BucketBatchSampler(lengths, 8, seed=3)
    before = _global_numpy_key()
    torch.manual_seed(0)
    first = a.batches(2)
    torch.manual_seed(99)
    assert BucketBatchSampler(lengths, 8, seed=3).batches(2) == first == a.batches(2)
    assert a.batches(3) != first
    assert BucketBatchSampler(lengths, 8, seed=4).batches(2) != first
    assert np.array_equal(_global_numpy_key(), before)  # the global stream was not consumed


def test_max_tokens_exact() -> None:
    sampler = BucketBatchSampler(list(range(1, 9)), 10, shuffle=False, bucket=False, max_tokens=10)
    assert sampler.batches(0) == [[0, 1, 2], [3, 4], [5], [6], [7]]
    assert len(sampler) == 5


def test_max_tokens_respected_and_long_examples_alone() -> None:
    lengths = _random_lengths(800) + [300]
    sampler = BucketBatchSampler(lengths, 64, max_tokens=256)
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert sorted(_flat(batches)) == list(range(801))
        for b in batches:
            assert len(b) <= 64
            assert len(b) * max(lengths[i] for i in b) <= 256 or len(b) == 1
        assert [800] in batches


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"batch_size": 2, "max_tokens": 0}, "max_tokens must be an int >= 1"),
        ({"batch_size": 2, "max_tokens": 9, "drop_last": True}, "cannot be combined"),
        ({"batch_size": 2, "seed": -1}, "seed must be an int >= 0"),
        ({"batch_size": 2, "pool_factor": 0}, "pool_factor must be"),
    ],
)
def test_sampler_bad_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BucketBatchSampler([1, 2, 3], **kwargs)  # type: ignore[arg-type]


def test_sampler_bad_lengths_and_empty() -> None:
    with pytest.raises(ConfigError, match="lengths must be >= 0"):
        BucketBatchSampler([1, -2], 2)
    empty = BucketBatchSampler([], 4)
    assert empty.batches(0) == [] and len(empty) == 0


# -------------------------------------------------------------------------- batch source


def _noisy_collate(items: Sequence[list[int]], gen: torch.Generator) -> dict[str, Tensor]:
    ids, mask = pad_sequences(items)
    holes = torch.bernoulli(torch.full(ids.shape, 0.5), generator=gen).bool() & mask
    return {
        "ids": ids,
        "mask": mask,
        "holes": holes,
        "noise": torch.rand(len(items), generator=gen),
    }


def _source(seed: int = 0) -> BatchSource:
    items = [[i + 1] * (1 + i % 7) for i in range(40)]
    sampler = BucketBatchSampler([len(x) for x in items], 4, seed=1, pool_factor=2)
    return BatchSource(items, _noisy_collate, sampler, seed=seed)


def _same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batch_source_same_position_same_batch() -> None:
    src = _source()
    assert len(src) == 10
    idx = src.batches(1)[3]
    torch.manual_seed(0)
    a = src.collate(idx, epoch=1, step=3)
    torch.manual_seed(123)
    b = _source().collate(idx, epoch=1, step=3)
    assert _same(a, b)
    assert not torch.equal(a["noise"], src.collate(idx, epoch=1, step=4)["noise"])
    assert not torch.equal(a["noise"], src.collate(idx, epoch=2, step=3)["noise"])
    assert not torch.equal(a["noise"], _source(seed=1).collate(idx, epoch=1, step=3)["noise"])
    assert a["ids"].tolist() == pad_sequences([src.items[i] for i in idx])[0].tolist()


def test_batch_source_resume_matches_uninterrupted_run() -> None:
    full = list(_source().iter_epoch(2))
    resumed = list(_source().iter_epoch(2, start_step=6))
    assert [s for s, _ in full] == list(range(10)) and [s for s, _ in resumed] == [6, 7, 8, 9]
    assert all(_same(a, b) for (_, a), (_, b) in zip(full[6:], resumed))


def test_epoch_batch_source_is_each_epochs_own_source_built_once() -> None:
    built: list[int] = []

    def make(epoch: int) -> BatchSource:
        built.append(epoch)
        items = [[epoch * 100 + i + 1] * (1 + i % 7) for i in range(40)]  # a different draw per epoch
        return BatchSource(items, _noisy_collate, BucketBatchSampler([len(x) for x in items], 4, seed=1, pool_factor=2))

    src = EpochBatchSource(make)
    for epoch in (0, 1):
        want = make(epoch)  # the oracle: that epoch's plain source
        assert src.batches(epoch) == want.batches(epoch)
        for step, idx in enumerate(src.batches(epoch)):
            assert _same(src.collate(idx, epoch, step), want.collate(idx, epoch, step))
    assert built == [0, 0, 1, 1]  # each epoch built once by the source (and once by the oracle)
    src.collate(src.batches(0)[0], 0, 0)
    assert built[-1] == 0  # going back to an epoch rebuilds it


def test_batch_source_checks_sizes() -> None:
    with pytest.raises(ConfigError, match="lengths for 3 items but there are 2"):
        BatchSource([[1], [2]], _noisy_collate, BucketBatchSampler([1, 1, 1], 2))


def test_batch_generator_is_a_function_of_position() -> None:
    def draw(*key: int) -> float:
        return float(torch.rand(1, generator=batch_generator(*key)).item())

    assert draw(0, 0, 0) == draw(0, 0, 0)
    assert len({draw(0, 0, 0), draw(0, 0, 1), draw(0, 1, 0), draw(1, 0, 0)}) == 4
    with pytest.raises(ConfigError, match="step must be"):
        batch_generator(0, 0, -1)


def test_move_to_returns_new_dict() -> None:
    batch = {"ids": torch.tensor([[1, 2]]), "mask": torch.tensor([[True, False]])}
    moved = move_to(batch, "meta")
    assert moved is not batch and set(moved) == {"ids", "mask"}
    assert all(v.device.type == "meta" for v in moved.values())
    assert moved["mask"].dtype == torch.bool and batch["ids"].device.type == "cpu"
    assert torch.equal(move_to(batch, torch.device("cpu"))["ids"], batch["ids"])


def test_pad_chars_exact() -> None:
    from seqlab.data.batching import pad_chars

    got = pad_chars([[[5, 6], [7]], [[8, 9, 10]]])
    assert got.tolist() == [[[5, 6, 0], [7, 0, 0]], [[8, 9, 10], [0, 0, 0]]]
    assert pad_chars([[[1]]], width=3).shape == (1, 3, 1)
