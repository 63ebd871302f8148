"""Long-range recall and length generalization: exact n-gram oracles, recounts for neural runs."""

from collections import Counter

import pytest

from seqlab.data.synthetic import CUE_QUERY, cue_recall
from seqlab.errors import ConfigError
from seqlab.probes.length import length_generalization
from seqlab.probes.longrange import long_range_dependency

TINY_TRAIN = {"epochs": 1, "batch_size": 16}


def test_cue_recall_layout_and_balance() -> None:
    for ex in cue_recall(50, (0, 3, 5), n_cues=3, n_distractors=4, seed=1):
        d, toks = ex["distance"], ex["tokens"]
        assert d in (0, 3, 5) and len(toks) == d + 3
        assert toks[0] == toks[-1] == ex["cue"] and toks[-2] == CUE_QUERY
        assert all(t in {"d0", "d1", "d2", "d3"} for t in toks[1:-2])
    bal = cue_recall(24, (1, 2), n_cues=3, n_distractors=4, seed=0, balanced=True)
    assert Counter((ex["distance"], ex["cue"]) for ex in bal) == {(d, f"C{c}"): 4 for d in (1, 2) for c in range(3)}
    for g in range(0, 24, 3):  # each group of n_cues shares its distractors
        assert len({tuple(ex["tokens"][1:-2]) for ex in bal[g : g + 3]}) == 1
    assert cue_recall(10, seed=4) == cue_recall(10, seed=4)
    with pytest.raises(ConfigError):
        cue_recall(10, (1, 2), n_cues=3, balanced=True)  # not a multiple of 6
    with pytest.raises(ConfigError):
        cue_recall(4, (-1,))


@pytest.mark.parametrize(("order", "window"), [(3, 0), (4, 1), (5, 2)])
def test_an_ngram_is_perfect_within_its_window_and_at_chance_beyond(order: int, window: int) -> None:
    # the cue is d + 2 tokens back from the next token; an order-n model sees n - 1 tokens
    r = long_range_dependency("ngram", distances=(0, 1, 2, 4), n_train=2000, n_eval=40, n_cues=4,
                              n_distractors=3, order=order)
    assert r.chance == 0.25 and r.counts == (40, 40, 40, 40)
    assert r.accuracy == tuple(1.0 if d <= window else 0.25 for d in r.distances)


def test_ngram_length_generalization_oracle(tmp_path) -> None:
    # trained on lengths 3..5 (d <= 2); order 5 sees the cue up to d = 2, i.e. length 5
    r = length_generalization("ngram", train_length=5, factors=(1, 2, 4), n_train=1500, n_eval=20,
                              n_distractors=3, order=5)
    assert r.lengths == (5, 10, 20) and r.counts == (20, 20, 20)
    assert r.accuracy == (1.0, 0.25, 0.25)
    assert "length" in str(r) and r.to_dict()["lengths"] == [5, 10, 20]
    assert r.save_plot(tmp_path / "len.png").stat().st_size > 0


def _recount(r) -> tuple[float, ...]:
    return tuple(sum(p == t for p, t in zip(ps, ts)) / len(ts) for ps, ts in zip(r.predictions, r.targets))


def test_tiny_neural_runs_report_their_own_predictions(tmp_path) -> None:
    r = long_range_dependency("gru", distances=(0, 3), n_train=120, n_eval=8, hidden_size=8, d_model=8,
                              bidirectional=False, train=TINY_TRAIN)
    assert r.accuracy == _recount(r) and r.counts == (8, 8)
    assert all(Counter(ts) == {f"C{c}": 2 for c in range(4)} for ts in r.targets)  # balanced held-out cues
    assert r.save_plot(tmp_path / "lr.png").stat().st_size > 0


def test_tiny_transformer_length_run_reports_its_own_predictions() -> None:
    t = length_generalization("transformer", train_length=4, factors=(1, 3), n_train=120, n_eval=4,
                              d_model=8, n_heads=2, num_layers=1, d_ff=16, train=TINY_TRAIN)
    assert t.lengths == (4, 12) and t.accuracy == _recount(t)
    assert all(len(p) == 4 for p in t.predictions)


def test_probe_arguments_are_checked() -> None:
    with pytest.raises(ConfigError):
        long_range_dependency("crf")  # does not serve lm
    with pytest.raises(ConfigError):
        long_range_dependency("ngram", train={"epochs": 1})  # classical: no train settings
    with pytest.raises(ConfigError):
        length_generalization("ngram", train_length=2)
