"""The training loop: exact normalisation, determinism, early stopping, budgets and failures."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from train_toys import FixedSource, ToySource, make_net, read_log, step_losses, toy_loss

from seqlab.config import from_dict
from seqlab.errors import ConfigError, TrainingError
from seqlab.train import TrainConfig, Trainer, lr_factor
from seqlab.train.checkpoint import load_checkpoint, load_weights

QUIET = TrainConfig(epochs=2, patience=None, progress=False)


def _equal_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"max_steps": 0},
        {"max_time": 0.0},
        {"lr": -1.0},
        {"lr": float("nan")},
        {"weight_decay": -0.1},
        {"betas": (0.9, 1.0)},
        {"warmup_steps": -1},
        {"schedule": "step"},
        {"min_lr_ratio": 1.5},
        {"clip_norm": 0.0},
        {"grad_accum": 0},
        {"patience": 0},
        {"checkpoint_every": 0},
        {"batch_size": 0},
    ],
)
def test_config_rejects_out_of_range_values(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        TrainConfig(**bad)  # type: ignore[arg-type]


def test_config_from_dict() -> None:
    cfg = from_dict(TrainConfig, {"betas": [0.8, 0.9], "schedule": "linear", "max_steps": "7"})
    assert cfg.betas == (0.8, 0.9) and cfg.schedule == "linear" and cfg.max_steps == 7
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TrainConfig, {"learning_rate": 0.1})


def test_main_metric_needs_evaluate() -> None:
    with pytest.raises(ConfigError, match="evaluate"):
        Trainer(make_net(), toy_loss, QUIET, main_metric="accuracy")


# ----------------------------------------------------------------------------- exactness


def test_one_step_equals_hand_written_adam_on_the_unit_mean() -> None:
    """Three unequal micro-batches: the step must follow the gradient of sum(loss) / sum(units)."""
    cfg = TrainConfig(
        epochs=1,
        lr=0.01,
        schedule="constant",
        clip_norm=None,
        weight_decay=0.0,
        grad_accum=3,
        patience=None,
        progress=False,
    )
    source = FixedSource([[0, 1], [2, 3, 4], [5]])
    net = make_net(0)
    oracle = copy.deepcopy(net)
    result = Trainer(net, toy_loss, cfg).fit(source)

    loss_sum, units = toy_loss(oracle, source.collate(list(range(6)), 0, 0))
    (loss_sum / units).backward()
    torch.optim.Adam(oracle.parameters(), lr=0.01).step()
    for a, b in zip(net.parameters(), oracle.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert result.history[0]["train_loss"] == pytest.approx((loss_sum / units).item(), rel=1e-6)


def test_gradient_accumulation_equals_one_big_batch(tmp_path: Path) -> None:
    items = list(range(16))
    big = FixedSource([items[:8], items[8:]], n=16)
    small = FixedSource([items[:3], items[3:8], items[8:13], items[13:]], n=16)  # unequal halves
    cfg = TrainConfig(epochs=3, lr=0.02, warmup_steps=2, patience=None, progress=False)
    net_big, net_small = make_net(0), make_net(0)
    Trainer(net_big, toy_loss, cfg, run_dir=tmp_path / "big").fit(big)
    accum = dataclasses.replace(cfg, grad_accum=2)
    Trainer(net_small, toy_loss, accum, run_dir=tmp_path / "small").fit(small)
    for a, b in zip(net_big.parameters(), net_small.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    losses_big, losses_small = step_losses(tmp_path / "big"), step_losses(tmp_path / "small")
    assert len(losses_big) == len(losses_small) == 6
    assert losses_small == pytest.approx(losses_big, abs=1e-6)


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=2, grad_accum=2, seed=7, patience=None, progress=False)
    nets = [make_net(0, dropout=0.3) for _ in range(3)]
    for i, net in enumerate(nets[:2]):
        Trainer(net, toy_loss, cfg, run_dir=tmp_path / str(i)).fit(ToySource())
    other = dataclasses.replace(cfg, seed=8)
    Trainer(nets[2], toy_loss, other, run_dir=tmp_path / "2").fit(ToySource())
    assert step_losses(tmp_path / "0") == step_losses(tmp_path / "1")
    assert _equal_weights(nets[0], nets[1])
    assert step_losses(tmp_path / "0") != step_losses(tmp_path / "2")  # dropout follows the seed


def test_log_records_schedule_and_collate_positions(tmp_path: Path) -> None:
    cfg = TrainConfig(
        epochs=2,
        grad_accum=2,
        warmup_steps=2,
        lr=0.1,
        min_lr_ratio=0.2,
        patience=None,
        progress=False,
    )
    source = ToySource()  # 22 items in 6 batches -> 3 steps per epoch
    Trainer(make_net(), toy_loss, cfg, run_dir=tmp_path).fit(source)
    steps = read_log(tmp_path)
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in steps] == [0, 0, 0, 1, 1, 1]
    assert [r["lr"] for r in steps] == pytest.approx(
        [0.1 * lr_factor(s, 6, 2, "cosine", 0.2) for s in range(6)], rel=1e-12
    )
    assert all(r["grad_norm"] > 0 and r["units"] > 0 and r["units_per_s"] > 0 and r["tokens_per_s"] > 0 for r in steps)
    assert [(e, s) for _, e, s in source.collated] == [(e, s) for e in (0, 1) for s in range(6)]
    assert [ix for ix, _, _ in source.collated[:6]] == source.batches(0)


# ----------------------------------------------------------------------------- epochs and budgets


def test_early_stopping_restores_the_best_weights(tmp_path: Path) -> None:
    net = make_net()
    scores = iter([3.0, 1.0, 2.0, 2.5, 0.5])
    snapshots: list[dict[str, torch.Tensor]] = []

    def evaluate() -> dict[str, float]:
        snapshots.append(copy.deepcopy(net.state_dict()))
        return {"loss": next(scores), "other": 1.0}

    cfg = TrainConfig(epochs=10, patience=2, progress=False)
    result = Trainer(net, toy_loss, cfg, run_dir=tmp_path, evaluate=evaluate).fit(ToySource())
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 1
    assert result.best_metric == 1.0 and [h["best"] for h in result.history] == [1, 1, 0, 0]
    assert result.steps == 4 * 6 and result.units_per_second > 0 and result.train_time > 0
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[1][k])
    on_disk = load_weights(tmp_path / "best")
    assert on_disk is not None and on_disk[1]["epoch"] == 1
    assert all(torch.equal(on_disk[0][k], v) for k, v in snapshots[1].items())
    # A finished run resumed with the same config trains no further.
    again = Trainer(make_net(5), toy_loss, cfg, run_dir=tmp_path, evaluate=evaluate).fit(
        ToySource()
    )
    assert again.steps == result.steps and again.history == result.history
    assert len(read_log(tmp_path)) == 24


def _fit_on_accuracy(evals: list[Any], snapshots: list[dict[str, torch.Tensor]]) -> Any:
    """Train a toy net whose evaluations return ``evals`` in turn (an accuracy, or an
    (accuracy, loss) pair), with accuracy as the main metric and patience 2."""
    net, it = make_net(), iter(evals)

    def evaluate() -> dict[str, float]:
        snapshots.append(copy.deepcopy(net.state_dict()))
        v = next(it)
        return dict(zip(("acc", "loss"), v)) if isinstance(v, tuple) else {"acc": v}

    cfg = TrainConfig(epochs=len(evals), patience=2, progress=False)
    result = Trainer(net, toy_loss, cfg, evaluate=evaluate, main_metric="acc", greater_is_better=True).fit(
        ToySource()
    )
    assert all(torch.equal(v, snapshots[result.best_epoch][k]) for k, v in net.state_dict().items())
    return result


def test_a_tie_on_the_main_metric_goes_to_the_lower_loss() -> None:
    # accuracy saturates at 1.0 from the second evaluation; the loss keeps falling, then rises
    snaps: list[dict[str, torch.Tensor]] = []
    result = _fit_on_accuracy([(0.5, 2.0), (1.0, 0.5), (1.0, 0.3), (1.0, 0.4), (1.0, 0.35), (0.9, 0.1)], snaps)
    assert [h["best"] for h in result.history] == [1, 1, 1, 0, 0]
    assert (result.best_epoch, result.best_metric, result.stopped_early) == (2, 1.0, True)
    assert not all(torch.equal(v, snaps[1][k]) for k, v in snaps[2].items())  # epoch 2's weights, not 1's
    # without a loss in the evaluation a tie is not an improvement
    result = _fit_on_accuracy([0.5, 1.0, 1.0, 1.0], [])
    assert [h["best"] for h in result.history] == [1, 1, 0, 0] and result.best_epoch == 1


def test_greater_is_better() -> None:
    scores = iter([0.1, 0.5, 0.4])
    cfg = TrainConfig(epochs=5, patience=1, progress=False)
    result = Trainer(
        make_net(),
        toy_loss,
        cfg,
        evaluate=lambda: {"acc": next(scores)},
        main_metric="acc",
        greater_is_better=True,
    ).fit(ToySource())
    assert (result.best_epoch, result.best_metric, result.epochs_run) == (1, 0.5, 3)


def test_missing_main_metric() -> None:
    trainer = Trainer(make_net(), toy_loss, QUIET, evaluate=lambda: {"acc": 1.0})
    with pytest.raises(TrainingError, match="main metric 'loss'"):
        trainer.fit(ToySource())


def test_max_steps_evaluates_the_partial_epoch(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=5, max_steps=4, grad_accum=2, patience=None, progress=False)
    result = Trainer(make_net(), toy_loss, cfg, run_dir=tmp_path).fit(ToySource())
    assert result.steps == 4 and result.epochs_run == 2
    assert [(h["epoch"], h["step"], h["partial"]) for h in result.history] == [
        (0, 3, False),
        (1, 4, True),
    ]
    lrs = [r["lr"] for r in read_log(tmp_path)]
    assert lrs == pytest.approx([1e-3 * lr_factor(s, 4, 0, "cosine", 0.1) for s in range(4)])


def test_max_time_stops_after_the_current_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = TrainConfig(epochs=5, max_time=1e-9, patience=None, progress=True)
    result = Trainer(make_net(), toy_loss, cfg, run_dir=tmp_path).fit(ToySource())
    assert result.steps == 1 and len(result.history) == 1 and result.history[0]["partial"]
    # a run cut short by the wall clock says so: on the progress bar, in the result, in the log
    assert result.stopped_by == "max_time"
    assert "stopped by max_time (1e-09 s) at step 1 of 30" in capsys.readouterr().err
    assert read_log(tmp_path, "stop") == [{"type": "stop", "reason": "max_time", "epoch": 0, "step": 1}]


@pytest.mark.parametrize(("cfg", "reason"), [
    (TrainConfig(epochs=2, patience=None, progress=False), "epochs"),
    (TrainConfig(epochs=2, max_steps=3, patience=None, progress=False), "max_steps"),
])
def test_the_result_says_what_ended_training(tmp_path: Path, cfg: TrainConfig, reason: str) -> None:
    assert Trainer(make_net(), toy_loss, cfg, run_dir=tmp_path).fit(ToySource()).stopped_by == reason


def test_resume_false_starts_over(tmp_path: Path) -> None:
    Trainer(make_net(), toy_loss, QUIET, run_dir=tmp_path).fit(ToySource())
    first = step_losses(tmp_path)
    Trainer(make_net(), toy_loss, QUIET, run_dir=tmp_path).fit(ToySource(), resume=False)
    assert step_losses(tmp_path) == first


def test_progress_bar_runs() -> None:
    cfg = dataclasses.replace(QUIET, progress=True, epochs=1)
    assert Trainer(make_net(), toy_loss, cfg).fit(ToySource()).steps == 6


# ----------------------------------------------------------------------------- failures


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    calls = {"n": 0}

    def poisoned(
        model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        calls["n"] += 1
        loss, units = toy_loss(model, batch)
        return (loss * float("nan") if calls["n"] == 8 else loss), units

    cfg = TrainConfig(epochs=3, checkpoint_every=1, patience=None, progress=False)
    with pytest.raises(TrainingError, match=r"non-finite loss nan at step 8 \(epoch 1\)") as err:
        Trainer(make_net(), poisoned, cfg, run_dir=tmp_path).fit(ToySource())
    assert "checkpoint" in str(err.value)
    ckpt = load_checkpoint(tmp_path / "checkpoint")
    assert ckpt is not None and ckpt.state.global_step == 7
    assert all(torch.isfinite(t).all() for t in ckpt.model.values())


def test_infinite_gradient_raises(tmp_path: Path) -> None:
    net = make_net()
    net.out.bias.register_hook(lambda g: g * float("inf"))
    with pytest.raises(TrainingError, match=r"non-finite gradient norm inf at step 1 \(epoch 0\)"):
        Trainer(net, toy_loss, QUIET, run_dir=tmp_path).fit(ToySource())
    assert load_checkpoint(tmp_path / "checkpoint") is None


def test_loss_fn_contract_is_checked() -> None:
    def not_a_sum(
        model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        err = (model(batch["x"]) - batch["y"]) ** 2
        return err, batch["mask"].sum()  # per-position losses instead of their sum

    with pytest.raises(TrainingError, match="scalar tensor"):
        Trainer(make_net(), not_a_sum, QUIET).fit(ToySource())
