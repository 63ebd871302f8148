"""Through the model API: an interrupted fit resumes to exactly the uninterrupted numbers.

The run uses everything that draws randomness (bucketed shuffling, dropout, word dropout) so
a resume that lost any of it would drift.
"""

import json
from pathlib import Path

import pytest
import torch

import seqlab
from tests_support import ner_data, reversal_pairs

TRAIN = {"epochs": 3, "batch_size": 4, "lr": 5e-3, "patience": None, "progress": False, "warmup_steps": 3}
MODEL = {"d_model": 8, "hidden_size": 8, "dropout": 0.2, "word_dropout": 0.2, "bidirectional": True}


def _steps(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if r["type"] == "step"]


def _interrupt(model, data: list, run_dir: Path, at_call: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fit ``model`` until its task's loss is called for the ``at_call``-th time, then Ctrl-C."""
    task_loss = model.task.loss
    calls = {"n": 0}

    def flaky(output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return task_loss(output, batch)

    monkeypatch.setattr(model.task, "loss", flaky)
    with pytest.raises(KeyboardInterrupt):
        model.fit(data, run_dir=run_dir)
    monkeypatch.setattr(model.task, "loss", task_loss)


def test_interrupted_fit_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = ner_data(24)
    full = seqlab.build("lstm", task="labeling", train=TRAIN, **MODEL).fit(data, run_dir=tmp_path / "a")

    model = seqlab.build("lstm", task="labeling", train=TRAIN, **MODEL)
    _interrupt(model, data, tmp_path / "b", 9, monkeypatch)  # mid-epoch 2 (6 batches per epoch)
    resumed = seqlab.build("lstm", task="labeling", train=TRAIN, **MODEL)
    counted = {"n": 0}
    resumed_loss = resumed.task.loss

    def counting(output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        counted["n"] += 1
        return resumed_loss(output, batch)

    monkeypatch.setattr(resumed.task, "loss", counting)
    resumed.fit(data, run_dir=tmp_path / "b")  # a fresh process would do exactly this
    # it really resumed: 3 epochs x 6 batches, of which 8 were done before the interrupt
    assert counted["n"] == 3 * 6 - 8
    assert _steps(tmp_path / "b") == _steps(tmp_path / "a")
    for (k, a), b in zip(full.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k


def test_scheduled_sampling_run_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seq2seq run that feeds its own predictions (teacher forcing < 1, on a schedule) draws
    those coins from the checkpointed RNG: an interrupted fit resumes to the same numbers."""

    pairs = reversal_pairs(24, 0, "abcd", 2, 4)
    model_cfg = {"d_model": 8, "hidden_size": 8, "dropout": 0.1, "attention": "bahdanau",
                 "teacher_forcing": 0.6, "scheduled_sampling": "linear", "schedule_k": 1.0, "schedule_c": 0.02,
                 "own_prediction": "sample"}
    full = seqlab.build("seq2seq", task="generation", train=TRAIN, **model_cfg).fit(pairs, run_dir=tmp_path / "a")
    _interrupt(seqlab.build("seq2seq", task="generation", train=TRAIN, **model_cfg), pairs, tmp_path / "b", 9, monkeypatch)
    resumed = seqlab.build("seq2seq", task="generation", train=TRAIN, **model_cfg)
    resumed_loss, counted = resumed.task.loss, {"n": 0}

    def counting(output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        counted["n"] += 1
        return resumed_loss(output, batch)

    monkeypatch.setattr(resumed.task, "loss", counting)
    resumed.fit(pairs, run_dir=tmp_path / "b")
    assert counted["n"] == 3 * 6 - 8  # it really resumed after the 8 finished batches
    assert _steps(tmp_path / "b") == _steps(tmp_path / "a")
    for (k, a), b in zip(full.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k


def _induction(seed: int) -> list:
    from seqlab.data.synthetic import induction_heads

    return induction_heads(24, L=12, vocab=6, seed=seed)


def test_a_resampled_fit_trains_each_epoch_on_its_draw_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seqlab.data.synthetic import Resampled

    cfg = dict(d_model=8, hidden_size=8, pooling="last", bidirectional=False)
    # the same data every epoch: exactly the fit on the plain list
    seqlab.build("lstm", task="classification", train=TRAIN, **cfg).fit(_induction(0), run_dir=tmp_path / "f")
    same = seqlab.build("lstm", task="classification", train=TRAIN, **cfg)
    same.fit(Resampled(lambda epoch: _induction(0)), run_dir=tmp_path / "s")
    assert _steps(tmp_path / "s") == _steps(tmp_path / "f")

    # fresh data: epoch e trains on draw e (its labels are what the loss sees)
    seen: list[list[int]] = []
    model = seqlab.build("lstm", task="classification", train=TRAIN, **cfg)
    task_loss = model.task.loss

    def recording(output: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(batch["labels"].tolist())
        return task_loss(output, batch)

    monkeypatch.setattr(model.task, "loss", recording)
    model.fit(Resampled(_induction), run_dir=tmp_path / "a")
    monkeypatch.setattr(model.task, "loss", task_loss)
    per_epoch = len(seen) // 3
    for epoch in range(3):
        labels = sorted(v for b in seen[epoch * per_epoch : (epoch + 1) * per_epoch] for v in b)
        assert labels == sorted(it["label"] for it in model.task.encode(_induction(epoch)).items)
    assert _steps(tmp_path / "a") != _steps(tmp_path / "f")

    interrupted = seqlab.build("lstm", task="classification", train=TRAIN, **cfg)
    _interrupt(interrupted, Resampled(_induction), tmp_path / "b", 9, monkeypatch)  # mid-epoch 2
    seqlab.build("lstm", task="classification", train=TRAIN, **cfg).fit(Resampled(_induction), run_dir=tmp_path / "b")
    assert _steps(tmp_path / "b") == _steps(tmp_path / "a")
