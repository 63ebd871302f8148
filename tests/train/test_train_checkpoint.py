"""Checkpoints: exact round trips, atomic replacement, and nothing but safetensors + JSON."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from seqlab.errors import TrainingError
from seqlab.train import checkpoint as ck
from seqlab.train.checkpoint import (
    MetricsLog,
    TrainState,
    atomic_directory,
    defer_sigint,
    load_checkpoint,
    load_weights,
    restore_training_state,
    save_checkpoint,
    save_weights,
)
from seqlab.train.schedules import build_optimizer, make_scheduler


class Tied(nn.Module):
    """An embedding whose weight is shared with the output layer, plus dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(7, 4)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4, 7)
        self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.emb(x)))


def _setup(seed: int) -> tuple[Tied, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    torch.manual_seed(seed)
    net = Tied()
    opt = build_optimizer(net, lr=0.05, weight_decay=0.1, betas=(0.8, 0.95))
    return net, opt, make_scheduler(opt, 10, 2, "cosine", 0.1)


def _step(net: Tied, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR) -> float:
    x = torch.arange(7)
    loss = nn.functional.cross_entropy(net(x), x)
    loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()
    return loss.item()


def test_round_trip_continues_bitwise(tmp_path: Path) -> None:
    net, opt, sched = _setup(0)
    for _ in range(3):
        _step(net, opt, sched)
    state = TrainState(epoch=1, global_step=3, best_metric=0.5, history=[{"epoch": 0}])
    save_checkpoint(tmp_path / "ck", net, opt, sched, state, config={"lr": 0.05})
    expected = [_step(net, opt, sched) for _ in range(3)]

    other, opt2, sched2 = _setup(1)  # different weights and RNG state before loading
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None and loaded.state == state and loaded.config == {"lr": 0.05}
    restore_training_state(loaded, other, opt2, sched2)
    assert other.head.weight is other.emb.weight  # tying survives loading
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95)  # tuple again after JSON
    assert [_step(other, opt2, sched2) for _ in range(3)] == expected
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_only_safetensors_and_json_on_disk(tmp_path: Path) -> None:
    net, opt, sched = _setup(0)
    _step(net, opt, sched)
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState())
    files = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert files == ["model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]
    json.loads((tmp_path / "ck" / "state.json").read_text())
    rng = load_file(tmp_path / "ck" / "rng.safetensors")["torch"]
    assert rng.dtype == torch.uint8
    assert set(load_file(tmp_path / "ck" / "optimizer.safetensors")) >= {"0.exp_avg", "0.step"}


def test_failure_inside_the_block_keeps_the_old_directory(tmp_path: Path) -> None:
    net, opt, sched = _setup(0)
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState(global_step=1))
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "ck") as tmp:
        (tmp / "model.safetensors").write_bytes(b"half a file")
        raise RuntimeError("crash while writing")
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None and loaded.state.global_step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary left behind


def test_crash_between_the_renames_falls_back_to_the_old_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, opt, sched = _setup(0)
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState(global_step=1))
    real_replace = os.replace
    calls: list[str] = []

    def flaky_replace(src: str | Path, dst: str | Path) -> None:
        if Path(src).is_dir():  # count the directory swaps, not the per-file writes inside
            calls.append(str(dst))
        if len(calls) == 2 and Path(src).is_dir():  # old -> .old done; tmp -> final "crashes"
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="power cut"):
        save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState(global_step=2))
    monkeypatch.setattr(ck.os, "replace", real_replace)
    assert not (tmp_path / "ck").exists()
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None and loaded.state.global_step == 1
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState(global_step=3))
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None and loaded.state.global_step == 3
    assert not (tmp_path / ".ck.old").exists()


def test_missing_and_corrupt_checkpoints(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "none") is None
    assert load_weights(tmp_path / "none") is None
    net, opt, sched = _setup(0)
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState())
    (tmp_path / "ck" / "state.json").write_text("{not json")
    with pytest.raises(TrainingError, match="state.json"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "state.json").write_text(json.dumps({"format": 1, "state": {"epoch": 0}}))
    with pytest.raises(TrainingError):
        load_checkpoint(tmp_path / "ck")


def test_mismatched_module_is_a_training_error(tmp_path: Path) -> None:
    net, opt, sched = _setup(0)
    save_checkpoint(tmp_path / "ck", net, opt, sched, TrainState())
    other = nn.Linear(2, 2)
    opt2 = build_optimizer(other, lr=0.1, weight_decay=0.0)
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded is not None
    with pytest.raises(TrainingError, match="does not match"):
        restore_training_state(loaded, other, opt2, make_scheduler(opt2, 5, 0, "constant", 1.0))


def test_weights_round_trip(tmp_path: Path) -> None:
    net = Tied()
    save_weights(tmp_path / "best", net.state_dict(), {"epoch": 3})
    found = load_weights(tmp_path / "best")
    assert found is not None and found[1] == {"epoch": 3}
    for k, v in net.state_dict().items():
        assert torch.equal(found[0][k], v)


def test_metrics_log_truncates_to_offset(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write({"step": 1})
    keep = log.offset
    log.write({"step": 2})
    log.close()
    resumed = MetricsLog(tmp_path / "m.jsonl", keep_bytes=keep)
    resumed.write({"step": 2, "again": True})
    resumed.close()
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert lines == [{"step": 1}, {"step": 2, "again": True}]


def test_defer_sigint_holds_ctrl_c_until_the_block_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    finished = []
    with pytest.raises(KeyboardInterrupt), defer_sigint():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, inside the block, and only records it
        finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is before
    with defer_sigint():  # no signal: nothing raised
        pass


def test_temporary_directories_of_killed_saves_are_cleaned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A save killed midway leaves .NAME.tmp-PID behind; the next save removes it when PID is gone
    and leaves a live process's alone."""
    import os
    import subprocess

    from seqlab.train.checkpoint import atomic_directory

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".ckpt.tmp-{dead.pid}"
    live = tmp_path / f".ckpt.tmp-{os.getppid()}"
    stale.mkdir()
    live.mkdir()
    with atomic_directory(tmp_path / "ckpt") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "ckpt" / "x").read_text() == "1"
    assert not stale.exists() and live.exists()
