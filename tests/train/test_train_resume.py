"""Resumed training equals uninterrupted training, bit for bit (CPU, one process)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from train_toys import ToySource, make_net, read_log, step_losses, toy_loss

from seqlab.train import TrainConfig, Trainer
from seqlab.train.checkpoint import load_checkpoint

# 22 items in 6 batches, 2 micro-batches per step: 3 steps (6 loss calls) per epoch.
CFG = TrainConfig(epochs=3, lr=0.02, warmup_steps=2, grad_accum=2, patience=None, progress=False)
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def _failing_at(call: int, error: type[BaseException]) -> LossFn:
    """toy_loss that raises ``error`` on its ``call``-th call (1-based)."""
    count = {"n": 0}

    def loss(
        model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        count["n"] += 1
        if count["n"] == call:
            raise error("interrupted by the test")
        return toy_loss(model, batch)

    return loss


def _reference(run_dir: Path, cfg: TrainConfig = CFG) -> torch.nn.Module:
    net = make_net(0, dropout=0.3)
    Trainer(net, toy_loss, cfg, run_dir=run_dir).fit(ToySource())
    return net


def _resume(run_dir: Path, cfg: TrainConfig = CFG) -> torch.nn.Module:
    """A fresh process's view: other initial weights, other RNG state, then resume."""
    net = make_net(99, dropout=0.3)
    torch.manual_seed(12345)
    Trainer(net, toy_loss, cfg, run_dir=run_dir).fit(ToySource())
    return net


def _assert_same_run(a: Path, net_a: torch.nn.Module, b: Path, net_b: torch.nn.Module) -> None:
    assert step_losses(a) == step_losses(b)  # exact float equality
    assert len(step_losses(a)) == 9
    drop_time = [{k: v for k, v in r.items() if k not in ("units_per_s", "tokens_per_s")} for r in read_log(a)]
    assert drop_time == [{k: v for k, v in r.items() if k not in ("units_per_s", "tokens_per_s")} for r in read_log(b)]
    assert read_log(a, "eval") == read_log(b, "eval")
    for (k, x), y in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(x, y), k


# call 1: before any step; 4: second micro-batch of step 2 (half-accumulated gradients);
# 7: first call of epoch 1 (right after the epoch-end checkpoint); 12: last micro-batch of epoch 1.
@pytest.mark.parametrize("call", [1, 4, 7, 12])
def test_keyboard_interrupt_then_resume_is_bitwise(tmp_path: Path, call: int) -> None:
    ref = _reference(tmp_path / "ref")
    net = make_net(0, dropout=0.3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(net, _failing_at(call, KeyboardInterrupt), CFG, run_dir=tmp_path / "run").fit(
            ToySource()
        )
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert ckpt is not None and ckpt.state.global_step == (call - 1) // 2
    _assert_same_run(tmp_path / "ref", ref, tmp_path / "run", _resume(tmp_path / "run"))


def test_crash_resumes_from_the_last_checkpoint_and_rewinds_the_log(tmp_path: Path) -> None:
    """A crash (no handler runs) at call 10 loses step 5; the log is cut back to step 3."""
    ref = _reference(tmp_path / "ref")
    with pytest.raises(RuntimeError):
        Trainer(
            make_net(0, dropout=0.3), _failing_at(10, RuntimeError), CFG, run_dir=tmp_path / "run"
        ).fit(ToySource())
    assert len(step_losses(tmp_path / "run")) == 4  # step 4 was logged after the checkpoint
    _assert_same_run(tmp_path / "ref", ref, tmp_path / "run", _resume(tmp_path / "run"))


def test_periodic_checkpoints_resume_mid_epoch(tmp_path: Path) -> None:
    cfg = TrainConfig(**{**CFG.__dict__, "checkpoint_every": 2})
    ref = _reference(tmp_path / "ref", cfg)
    with pytest.raises(RuntimeError):
        Trainer(
            make_net(0, dropout=0.3), _failing_at(11, RuntimeError), cfg, run_dir=tmp_path / "run"
        ).fit(ToySource())
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert ckpt is not None and (ckpt.state.epoch, ckpt.state.batch_in_epoch) == (1, 2)
    _assert_same_run(tmp_path / "ref", ref, tmp_path / "run", _resume(tmp_path / "run", cfg))
