"""Distributed helpers in a world of one, and DDP under torchrun against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_toys import (
    DDP_BATCHES,
    DDP_EVAL,
    FixedSource,
    ddp_config,
    make_net,
    step_losses,
    toy_loss,
)

from seqlab.errors import ConfigError
from seqlab.train import Trainer
from seqlab.train import distributed as D

HERE = Path(__file__).resolve().parent


def test_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = D.init_from_env()
    assert info == D.DistInfo(0, 1, 0) and info.is_main and D.current() == info
    net = torch.nn.Linear(2, 2)
    assert D.wrap(net) is net and D.unwrap(net) is net
    t = torch.tensor([1.0, 2.0])
    assert D.all_reduce_sum(t) is t and t.tolist() == [1.0, 2.0]
    assert D.broadcast_object({"a": [1, 2]}) == {"a": [1, 2]}
    D.barrier()
    D.cleanup()


@pytest.mark.parametrize(
    ("env", "match"),
    [({"WORLD_SIZE": "2", "RANK": "5"}, "RANK=5"), ({"WORLD_SIZE": "two"}, "WORLD_SIZE")],
)
def test_bad_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], match: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=match):
        D.init_from_env()


def test_shard() -> None:
    assert D.shard([10, 11, 12, 13, 14], D.DistInfo(1, 2)) == ([11, 13], 1.0)
    assert D.shard([10, 11, 12, 13, 14], D.DistInfo(0, 2)) == ([10, 12, 14], 1.0)
    assert D.shard([10], D.DistInfo(2, 3)) == ([10], 0.0)  # nothing left: weight 0
    with pytest.raises(ConfigError, match="batch 3 is empty"):
        D.shard([], D.DistInfo(0, 2), where="batch 3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(HERE / "ddp_worker.py"),
        str(out),
        str(run_dir),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [load_file(out / f"rank{r}.safetensors") for r in range(2)]
    summaries = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    assert summaries[0]["all_reduce"] == summaries[1]["all_reduce"] == 3.0
    # Both ranks followed rank 0's evaluation: best epoch 2 of 3, no early stop.
    for s in summaries:
        assert (s["best_epoch"], s["stopped_early"], s["steps"]) == (2, False, 6)

    single = make_net(seed=100)  # rank 0's initial weights
    scores = iter(DDP_EVAL[0])
    Trainer(
        single,
        toy_loss,
        ddp_config(),
        run_dir=tmp_path / "single",
        evaluate=lambda: {"loss": next(scores)},
    ).fit(FixedSource(DDP_BATCHES, n=11))
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0][k], v, rtol=0, atol=1e-5)
    assert step_losses(run_dir) == pytest.approx(step_losses(tmp_path / "single"), abs=1e-5)
