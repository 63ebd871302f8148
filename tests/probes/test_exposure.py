"""Exposure bias: hand-counted rates on a constructed model; independent recounts on trained ones."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import seqlab
from seqlab.errors import ConfigError
from seqlab.probes.exposure import exposure_bias, scheduled_sampling_gap
from seqlab.tasks import make_task
from tests_support import reversal_pairs

PAIRS = [{"source": list("ab"), "target": list("ab")}, {"source": list("ac"), "target": list("ac")},
         {"source": list("cab"), "target": list("cab")}]


class Successor(nn.Module):
    """Predicts a fixed successor of the previous token: <bos> -> a, a -> b, b -> <eos>, c -> a."""

    def __init__(self, task) -> None:
        super().__init__()
        stoi, V = task.target_codec.fitted_vocab.stoi, task.output_size
        succ = torch.full((V,), task.eos_id, dtype=torch.long)
        succ[task.bos_id], succ[stoi["a"]], succ[stoi["b"]], succ[stoi["c"]] = stoi["a"], stoi["b"], task.eos_id, stoi["a"]
        self.succ, self.V = succ, V

    def _logits(self, prev: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(self.succ[prev], self.V).float()

    def forward(self, batch):  # (B, T) gold-prefix inputs -> (B, T, V)
        return self._logits(batch["input_ids"])

    def start(self, batch):
        return {}

    def step(self, tokens, state):
        return self._logits(tokens), state

    def reorder(self, state, index):
        return state


def _constructed():
    task = make_task("generation").fit(PAIRS)
    return SimpleNamespace(family="successor", task=task, module=Successor(task))


def test_rates_equal_the_hand_count(tmp_path) -> None:
    # gold (+ <eos>):  a b $    | a c $       | c a b $
    # teacher-forced:  a b $    | a b* a*     | a* a b $      (succ of the gold previous token)
    # free-running:    a b $    | a b* $      | a* b* $* (end)*
    r = exposure_bias(_constructed(), PAIRS)
    assert r.positions == [0, 1, 2, 3] and r.counts == [3, 3, 3, 1]
    assert r.teacher_forced == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    assert r.free_running == pytest.approx([1 / 3, 2 / 3, 1 / 3, 1.0])
    assert r.tf_error == pytest.approx(3 / 10) and r.fr_error == pytest.approx(5 / 10)
    assert r.gap == pytest.approx(0.2)
    capped = exposure_bias(_constructed(), PAIRS, max_positions=2)
    assert capped.positions == [0, 1] and capped.free_running == pytest.approx([1 / 3, 2 / 3])
    d = r.to_dict()
    assert d["gap"] == pytest.approx(0.2) and d["counts"] == [3, 3, 3, 1]
    assert "free-running" in str(r) and r.save_plot(tmp_path / "x.png").stat().st_size > 0


def _recount(model, pairs):
    """Teacher-forced and free-running errors by stepping the decoder by hand, one example at a time."""
    task, module = model.task, model.module
    module.eval()
    tf, fr = {}, {}
    with torch.no_grad():
        for item in task.encode(pairs).items:
            batch = task.collate([item])
            gold = [*item["tgt"], task.eos_id]
            state, prev = module.start(batch), torch.tensor([task.bos_id])
            for j, g in enumerate(gold):  # gold prefix
                logits, state = module.step(prev, state)
                tf.setdefault(j, []).append(int(logits.argmax(-1)) != g)
                prev = torch.tensor([g])
            state, prev, out = module.start(batch), torch.tensor([task.bos_id]), []
            while len(out) < len(gold) and (not out or out[-1] != task.eos_id):  # own prefix
                logits, state = module.step(prev, state)
                out.append(int(logits.argmax(-1)))
                prev = torch.tensor([out[-1]])
            for j, g in enumerate(gold):
                fr.setdefault(j, []).append(j >= len(out) or out[j] != g)
    keys = sorted(tf)
    return [sum(tf[j]) / len(tf[j]) for j in keys], [sum(fr[j]) / len(fr[j]) for j in keys], [len(tf[j]) for j in keys]


@pytest.mark.parametrize("family", ["seq2seq", "transformer"])
def test_trained_encoder_decoders_match_a_step_by_step_recount(family) -> None:
    opts = {"hidden_size": 16, "d_model": 16} if family == "seq2seq" else {
        "d_model": 16, "n_heads": 2, "num_layers": 1, "d_ff": 32}
    pairs = reversal_pairs(30, seed=1)
    model = seqlab.build(family, "generation", train={"epochs": 2, "progress": False, "lr": 1e-2}, **opts).fit(pairs)
    r = exposure_bias(model, pairs[:12])
    tf, fr, counts = _recount(model, pairs[:12])
    assert r.counts == counts
    assert r.teacher_forced == pytest.approx(tf) and r.free_running == pytest.approx(fr)


def test_scheduled_sampling_gap_trains_two_seeded_models() -> None:
    train, test = reversal_pairs(20, seed=2), reversal_pairs(6, seed=3)
    opts = {"hidden_size": 8, "d_model": 8, "attention": "luong_dot", "schedule_k": 5.0}
    out = scheduled_sampling_gap(train, test, "inverse_sigmoid", train={"epochs": 1}, **opts)
    assert out["narrowed"] == pytest.approx(out["teacher_forced"].gap - out["scheduled_sampling"].gap)
    # the teacher-forced arm is exactly a plain seq2seq trained with the same seed and settings
    plain = seqlab.build("seq2seq", "generation", train={"epochs": 1, "progress": False, "patience": None},
                         **opts).fit(train)
    assert exposure_bias(plain, test) == out["teacher_forced"]
    with pytest.raises(ConfigError):
        scheduled_sampling_gap(train, test, "sometimes")


def test_exposure_bias_rejects_other_tasks() -> None:
    model = seqlab.build("gru", "classification", hidden_size=4, d_model=4)
    with pytest.raises(ConfigError):
        exposure_bias(model, PAIRS)
