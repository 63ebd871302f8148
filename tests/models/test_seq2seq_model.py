"""The seq2seq family through the model API: build, fit, evaluate with free-running decoding,
predict greedy / beam / n-best, save and load."""

from pathlib import Path

import pytest
import torch

import seqlab
from seqlab.errors import ConfigError
from seqlab.inference import decoding
from tests_support import reversal_pairs


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    # Luong attention without input feeding trains through the one-pass decoder (fast)
    m = seqlab.build("seq2seq", task="generation", attention="luong_general", input_feeding=False, d_model=24,
                     hidden_size=48, dropout=0.0,
                     train={"epochs": 25, "batch_size": 16, "lr": 1e-2, "progress": False, "patience": None})
    return m.fit(reversal_pairs(200, 0))


def test_learns_to_reverse_and_reports_generation_metrics(model) -> None:
    metrics = model.evaluate(reversal_pairs(40, 1))
    assert {"wer", "per", "exact_match", "bleu", "chrf", "perplexity"} <= set(metrics)
    assert metrics["exact_match"] >= 0.7, metrics
    assert metrics["wer"] == pytest.approx(1 - metrics["exact_match"])  # token-list targets: G2P's WER
    assert model.task.main_metric == "wer" and not model.task.greater_is_better


def test_predict_decodes_free_running_with_greedy_and_beam(model) -> None:
    inputs = [list("abc"), list("fed"), list("aabb")]
    greedy = model.predict(inputs, decoding={"method": "greedy"})
    assert greedy[0] == list("cba") and greedy[1] == list("def")
    # the model's greedy output is the decoding module's greedy over the module itself
    batch = model.task.collate(model.task.encode_inputs(inputs[:1]))
    module = model.module.eval()
    hyp = decoding.greedy(module, torch.full((1,), model.task.bos_id), module.start(batch), 20, model.task.eos_id)[0]
    assert model.task.decode_ids([hyp.tokens])[0] == greedy[0]
    beam = model.predict(inputs, decoding={"method": "beam", "beam": 4})
    assert beam[:2] == greedy[:2]
    nbest = model.predict(inputs, decoding={"method": "beam", "beam": 4, "n_best": 3})
    assert all(len(row) == 3 and row[0] == b for row, b in zip(nbest, beam))
    assert len({tuple(x) for x in nbest[0]}) == 3  # three different hypotheses
    with pytest.raises(ConfigError, match="n_best"):
        model.predict(inputs, decoding={"method": "greedy", "n_best": 2})
    # a call's decoding is that call's alone: no hidden mode carries over to the next call
    assert model.predict(inputs) == greedy and model.decoding.method == "greedy"


def test_save_load_same_outputs(model, tmp_path: Path) -> None:
    inputs = [list("abc"), list("dcba")]
    before = model.predict(inputs)
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert again.predict(inputs) == before
    assert again.evaluate(reversal_pairs(20, 2)) == pytest.approx(model.evaluate(reversal_pairs(20, 2)))


def test_the_trainer_moves_scheduled_sampling_along() -> None:
    """The trainer calls ``set_step`` before every optimizer step: the teacher-forcing ratio
    follows the linear schedule (k - c * step, floored at epsilon)."""
    m = seqlab.build("seq2seq", task="generation", attention="none", d_model=8, hidden_size=8, dropout=0.0,
                     scheduled_sampling="linear", schedule_k=1.0, schedule_c=0.05, schedule_epsilon=0.2,
                     train={"max_steps": 12, "batch_size": 8, "progress": False, "patience": None})
    m.fit(reversal_pairs(96, 3))
    assert m.result_.steps == 12
    assert m.module.teacher_forcing_ratio == pytest.approx(1.0 - 0.05 * 11)  # set before the 12th step
    assert m.config.ratio_at(100) == pytest.approx(0.2)
