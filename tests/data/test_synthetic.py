"""Synthetic tasks: exact layouts against the reference generators, and chance baselines."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from seqlab.data.synthetic import ADDING_CHANCE_MSE, adding, copying, copying_chance_loss, parity
from seqlab.errors import ConfigError


def _tcn_layout(seq: list[int], T: int, marker: int) -> tuple[list[int], list[int]]:
    """The TCN repository's copy_memory/utils.py data_generator, for one given row."""
    L = len(seq)
    x = np.concatenate([seq, np.zeros(T)[:-1], marker * np.ones(L + 1)])
    y = np.concatenate([np.zeros(L), np.zeros(T), seq])
    return x.astype(int).tolist(), y.astype(int).tolist()


def test_copying_matches_tcn_layout_exactly() -> None:
    data = copying(50, T=30, seed=3)
    for ex in data:
        x = [int(t) for t in ex["tokens"]]
        y = [int(t) for t in ex["tags"]]
        assert len(x) == len(y) == 30 + 20
        seq = x[:10]
        assert all(1 <= s <= 8 for s in seq)
        assert (x, y) == _tcn_layout(seq, 30, 9)


def test_copying_blank_recall_and_other_sizes() -> None:
    (ex,) = copying(1, T=5, n_symbols=4, copy_len=3, seed=1, recall_fill="blank")
    x = [int(t) for t in ex["tokens"]]
    y = [int(t) for t in ex["tags"]]
    assert x[3:] == [0, 0, 0, 0, 5, 0, 0, 0]  # T-1 blanks, marker n_symbols+1, copy_len blanks
    assert y == [0] * 8 + x[:3]
    assert all(isinstance(t, str) for t in ex["tokens"] + ex["tags"])


def test_copying_chance_loss_is_the_entropy_of_the_best_memoryless_guess() -> None:
    assert copying_chance_loss(100) == pytest.approx(10 * math.log(8) / 120)
    assert copying_chance_loss(100) == pytest.approx(0.1733, abs=1e-4)
    T, n = 20, 4000
    y = np.array([[int(t) for t in ex["tags"]] for ex in copying(n, T=T, seed=0)])  # (N, T+20)
    entropy = 0.0
    for col in y.T:  # per-position empirical entropy = CE of the best position-only predictor
        p = np.bincount(col, minlength=9) / n
        entropy -= float(np.sum(p[p > 0] * np.log(p[p > 0])))
    assert entropy / (T + 20) == pytest.approx(copying_chance_loss(T), abs=0.003)


def test_copying_symbols_are_uniform_and_seeded() -> None:
    counts = Counter(t for ex in copying(2000, T=10, seed=5) for t in ex["tokens"][:10])
    assert sorted(counts) == [str(i) for i in range(1, 9)]
    assert max(counts.values()) / min(counts.values()) < 1.1  # 2,500 draws each
    assert copying(3, seed=7) == copying(3, seed=7)
    assert copying(3, seed=7) != copying(3, seed=8)


def test_adding_structure() -> None:
    for ex in adding(200, T=100, seed=2):
        values, markers = ex["values"], ex["markers"]
        assert len(values) == len(markers) == 100
        assert all(0.0 <= v < 1.0 for v in values)
        ones = [i for i, m in enumerate(markers) if m == 1]
        assert sum(markers) == 2 and ones[0] < 50 <= ones[1]
        assert ex["target"] == values[ones[0]] + values[ones[1]]


def test_adding_predicting_one_gives_mse_one_sixth() -> None:
    targets = np.array([ex["target"] for ex in adding(20_000, T=10, seed=0)])
    assert ADDING_CHANCE_MSE == pytest.approx(1 / 6)
    assert float(np.mean((targets - 1.0) ** 2)) == pytest.approx(1 / 6, abs=0.01)
    assert float(np.mean(targets)) == pytest.approx(1.0, abs=0.01)


def test_adding_deterministic() -> None:
    assert adding(5, T=8, seed=1) == adding(5, T=8, seed=1)
    assert adding(5, T=8, seed=1) != adding(5, T=8, seed=2)


def test_parity_labels_lengths_and_balance() -> None:
    data = parity(4000, min_len=2, max_len=6, seed=0)
    lengths = Counter(len(ex["tokens"]) for ex in data)
    assert sorted(lengths) == [2, 3, 4, 5, 6]
    for ex in data:
        assert set(ex["tokens"]) <= {"0", "1"}
        assert ex["label"] == ("odd" if ex["tokens"].count("1") % 2 else "even")
    odd = sum(ex["label"] == "odd" for ex in data) / len(data)
    assert odd == pytest.approx(0.5, abs=0.03)
    assert parity(10, 1, 5, seed=3) == parity(10, 1, 5, seed=3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: copying(-1),
        lambda: copying(2, T=0),
        lambda: copying(2, recall_fill="zeros"),  # type: ignore[arg-type]
        lambda: adding(2, T=1),
        lambda: parity(2, min_len=5, max_len=3),
        lambda: parity(2, min_len=0),
    ],
)
def test_bad_arguments_raise_config_error(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        call()
