"""Synthetic tasks: exact layouts against the reference generators, and chance baselines."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from seqlab.data.synthetic import (
    ADDING_CHANCE_MSE,
    Resampled,
    adding,
    copying,
    copying_chance_loss,
    epoch_seed,
    induction_heads,
    listops,
    listops_ref,
    parity,
    selective_copying,
)
from seqlab.errors import ConfigError, DataError


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
        lambda: selective_copying(2, L=8, n_copy=9),
        lambda: selective_copying(2, vocab=2),
        lambda: selective_copying(2, n_copy=0),
        lambda: induction_heads(2, L=2),
        lambda: induction_heads(2, vocab=2),
        lambda: induction_heads(2.0),  # type: ignore[arg-type]
        lambda: listops(2, max_args=1),
        lambda: listops(2, max_depth=0),
        lambda: listops(2, min_length=10, max_length=11),  # no integer strictly between
        lambda: listops(11, max_depth=1, min_length=0, max_length=5),  # only 10 distinct one-digit trees
        lambda: listops(1, max_depth=1, min_length=1, max_length=5),  # a digit is never longer than 1
    ],
)
def test_bad_arguments_raise_config_error(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        call()


# --- selective copying ------------------------------------------------------------------------


def _scan_selective(tokens: list[int], L: int, marker: int) -> list[int]:
    """Brute force: the non-blank, non-marker tokens of the first L positions, in order."""
    return [t for t in tokens[:L] if t not in (0, marker)]


@pytest.mark.parametrize(("L", "n_copy", "vocab"), [(16, 16, 16), (40, 4, 6), (256, 16, 16), (4096, 16, 16)])
def test_selective_copying_answer_is_the_scattered_data_in_order(L: int, n_copy: int, vocab: int) -> None:
    data = selective_copying(20, L=L, n_copy=n_copy, vocab=vocab, seed=4)
    marker = vocab - 1
    for ex in data:
        x = [int(t) for t in ex["tokens"]]
        y = [int(t) for t in ex["tags"]]
        assert len(x) == len(y) == L + n_copy
        assert x[L:] == [marker] * n_copy and marker not in x[:L]
        found = _scan_selective(x, L, marker)
        assert len(found) == n_copy and all(1 <= t <= vocab - 2 for t in found)
        assert y[L:] == found and y[:L] == [0] * L


def test_selective_copying_positions_and_symbols_are_uniform() -> None:
    L, n_copy, vocab, n = 32, 4, 6, 8000
    x = np.array([[int(t) for t in ex["tokens"]] for ex in selective_copying(n, L, n_copy, vocab, seed=0)])
    occupied = (x[:, :L] != 0).mean(0)  # (L,): P(position holds data) = n_copy / L everywhere
    assert np.allclose(occupied, n_copy / L, atol=0.025)
    counts = np.bincount(x[:, :L][x[:, :L] != 0], minlength=vocab)
    assert counts[0] == counts[vocab - 1] == 0
    freq = counts[1 : vocab - 1] / counts.sum()
    assert np.allclose(freq, 1 / (vocab - 2), atol=0.01)
    # the spacing varies: the first data position is not fixed (this is what defeats an LTI model)
    assert len({int(np.argmax(row[:L] != 0)) for row in x[:200]}) > 5


def test_selective_copying_seeded() -> None:
    assert selective_copying(4, L=20, seed=3) == selective_copying(4, L=20, seed=3)
    assert selective_copying(4, L=20, seed=3) != selective_copying(4, L=20, seed=4)
    assert selective_copying(0, L=20) == []


# --- induction heads --------------------------------------------------------------------------


def _scan_induction(tokens: list[int], trigger: int) -> int:
    """Brute force: the token right after the first occurrence of the trigger."""
    first = tokens.index(trigger)
    return tokens[first + 1]


@pytest.mark.parametrize(("L", "vocab"), [(3, 3), (10, 5), (256, 16), (4096, 16)])
def test_induction_heads_label_follows_the_first_trigger(L: int, vocab: int) -> None:
    trigger = vocab - 1
    for ex in induction_heads(30, L=L, vocab=vocab, seed=1):
        x = [int(t) for t in ex["tokens"]]
        assert len(x) == L and all(0 <= t < vocab for t in x)
        where = [i for i, t in enumerate(x) if t == trigger]
        assert len(where) == 2 and where[1] == L - 1 and where[0] <= L - 3
        assert int(ex["label"]) == _scan_induction(x, trigger) != trigger
        assert isinstance(ex["label"], str)


def test_induction_heads_first_trigger_and_answers_are_uniform() -> None:
    L, vocab, n = 12, 5, 9000
    data = induction_heads(n, L=L, vocab=vocab, seed=2)
    firsts = Counter([int(t) for t in ex["tokens"]].index(vocab - 1) for ex in data)
    assert sorted(firsts) == list(range(L - 2))  # every position 0..L-3 is used
    assert max(firsts.values()) / min(firsts.values()) < 1.25  # 900 draws each
    labels = Counter(ex["label"] for ex in data)
    assert sorted(labels) == [str(i) for i in range(vocab - 1)]
    assert max(labels.values()) / n == pytest.approx(1 / (vocab - 1), abs=0.02)


def test_induction_heads_seeded() -> None:
    assert induction_heads(5, L=30, seed=9) == induction_heads(5, L=30, seed=9)
    assert induction_heads(5, L=30, seed=9) != induction_heads(5, L=30, seed=10)


# --- ListOps ----------------------------------------------------------------------------------

_OPS = {"[MIN": min, "[MAX": max, "[MED": lambda a: int(np.median(a)), "[SM": lambda a: sum(a) % 10}


def _parse(tokens: list[str], i: int = 0, depth: int = 1) -> tuple[int, int, int, int]:
    """Recursive descent over prefix ListOps: (value, next index, depth, widest operator)."""
    tok = tokens[i]
    if tok.isdigit():
        return int(tok), i + 1, depth, 0
    args: list[int] = []
    deepest, widest = depth, 0
    i += 1
    while tokens[i] != "]":
        v, i, d, w = _parse(tokens, i, depth + 1)
        args.append(v)
        deepest, widest = max(deepest, d), max(widest, w)
    return _OPS[tok](args), i + 1, deepest, max(widest, len(args))


def test_listops_default_lra_setting_labels_lengths_depth_and_width() -> None:
    data = listops(25, seed=0)  # LRA: depth 10, 10 arguments, 500 < length < 2000
    assert len({tuple(ex["tokens"]) for ex in data}) == 25
    for ex in data:
        toks = ex["tokens"]
        assert 500 < len(toks) < 2000
        value, end, depth, width = _parse(toks)
        assert end == len(toks)
        assert int(ex["label"]) == value == listops_ref(toks)
        assert depth <= 10 and 2 <= width <= 10
        assert set(toks) <= set(_OPS) | {"]"} | {str(d) for d in range(10)}


@pytest.mark.parametrize(("max_depth", "max_args", "lo", "hi"), [(3, 3, 0, 30), (5, 4, 20, 60), (2, 10, 5, 12)])
def test_listops_small_settings_respect_bounds(max_depth: int, max_args: int, lo: int, hi: int) -> None:
    data = listops(40, max_depth=max_depth, max_args=max_args, min_length=lo, max_length=hi, seed=7)
    assert len(data) == 40
    for ex in data:
        value, end, depth, width = _parse(ex["tokens"])
        assert lo < len(ex["tokens"]) < hi and end == len(ex["tokens"])
        assert depth <= max_depth and width <= max_args
        assert int(ex["label"]) == value == listops_ref(ex["tokens"])


def test_listops_uses_every_operator_and_labels_vary() -> None:
    data = listops(200, max_depth=4, max_args=5, min_length=10, max_length=80, seed=1)
    ops = Counter(t for ex in data for t in ex["tokens"] if t.startswith("["))
    assert sorted(ops) == sorted(_OPS)
    assert max(ops.values()) / min(ops.values()) < 1.5
    assert len({ex["label"] for ex in data}) == 10


def test_listops_seeded() -> None:
    kw = {"max_depth": 4, "max_args": 4, "min_length": 5, "max_length": 50}
    assert listops(10, seed=3, **kw) == listops(10, seed=3, **kw)
    assert listops(10, seed=3, **kw) != listops(10, seed=4, **kw)


@pytest.mark.parametrize(
    ("tokens", "value"),
    [
        (["7"], 7),
        (["[MED", "1", "2", "]"], 1),  # numpy median 1.5, then int
        (["[MED", "3", "9", "4", "]"], 4),
        (["[SM", "9", "8", "7", "]"], 4),
        (["[MAX", "2", "9", "[MIN", "4", "7", "]", "0", "]"], 9),
        (["[MIN", "[SM", "5", "5", "]", "3", "]"], 0),
    ],
)
def test_listops_ref_textbook_values(tokens: list[str], value: int) -> None:
    assert listops_ref(tokens) == value == _parse(tokens)[0]


@pytest.mark.parametrize("tokens", [[], ["[MIN", "3"], ["]"], ["[MAX", "]"], ["3", "4"], ["[FIRST", "1", "]"], ["12"]])
def test_listops_ref_rejects_malformed(tokens: list[str]) -> None:
    with pytest.raises(DataError):
        listops_ref(tokens)


def test_generators_are_reachable_from_seqlab_datasets() -> None:
    import seqlab

    assert seqlab.datasets.synthetic.selective_copying(2, L=32, seed=5) == selective_copying(2, L=32, seed=5)


def test_resampled_draws_each_epoch_from_its_own_seed() -> None:
    data = Resampled.of(induction_heads, 8, seed=3, L=10, vocab=5)
    assert len(data) == 8
    assert data.epoch(1) == induction_heads(8, L=10, vocab=5, seed=epoch_seed(3, 1))
    assert data.epoch(0) != data.epoch(1)
    # as a sequence it is epoch 0's draw, whichever epoch was drawn last
    assert data[2] == induction_heads(8, L=10, vocab=5, seed=epoch_seed(3, 0))[2]
    assert list(data) == data.epoch(0)
    assert data.epoch(1) == Resampled.of(induction_heads, 8, seed=3, L=10, vocab=5).epoch(1)  # a pure function
    assert len({epoch_seed(0, e) for e in range(100)} | {epoch_seed(1, 0), epoch_seed(2, 0)}) == 102


def test_resampled_rejects_a_changing_size_and_an_empty_draw() -> None:
    data = Resampled(lambda epoch: [{"tokens": ["a"], "label": "x"}] * (epoch + 1))
    with pytest.raises(ConfigError, match="same number"):
        data.epoch(1)
    with pytest.raises(ConfigError, match="at least one"):
        Resampled(lambda epoch: [])
    with pytest.raises(ConfigError):
        data.epoch(-1)
