"""A tiny regression task for the trainer tests (and the torchrun worker).

Item ``i`` is a sequence of ``lengths[i]`` real positions (1..max_len) of ``dim`` features with
one real target each; a unit is one real position, so items carry unequal numbers of units.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqlab.train import TrainConfig

Batch = dict[str, Tensor]


class ToySource:
    """``batches(epoch)`` shuffles ``n`` items by (seed, epoch) into batches of ``batch_size``
    (the last one smaller); ``collate`` pads to ``max_len`` with a boolean mask (True = real)."""

    def __init__(
        self, n: int = 22, batch_size: int = 4, seed: int = 0, dim: int = 3, max_len: int = 5
    ) -> None:
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, max_len, dim, generator=g)
        self.y = torch.randn(n, max_len, generator=g)
        self.lengths = torch.randint(1, max_len + 1, (n,), generator=g)
        self.n, self.batch_size, self.seed, self.max_len = n, batch_size, seed, max_len
        self.collated: list[tuple[list[int], int, int]] = []

    def batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        return [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]

    def collate(self, indices: Sequence[int], epoch: int, step: int) -> Batch:
        self.collated.append((list(indices), epoch, step))
        idx = torch.tensor(list(indices), dtype=torch.long)
        mask = torch.arange(self.max_len)[None, :] < self.lengths[idx][:, None]  # (B, T)
        return {"x": self.x[idx], "y": self.y[idx], "mask": mask}


class FixedSource(ToySource):
    """A source whose global batches are given explicitly (the same every epoch)."""

    def __init__(self, batches: list[list[int]], **kw: int) -> None:
        super().__init__(**kw)
        self.fixed = batches

    def batches(self, epoch: int) -> list[list[int]]:
        return [list(b) for b in self.fixed]


class ToyNet(nn.Module):
    """(B, T, D) -> (B, T): Linear, tanh, dropout, Linear."""

    def __init__(self, dim: int = 3, hidden: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.drop(torch.tanh(self.inp(x)))).squeeze(-1)


def toy_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
    """Sum of squared errors over real positions, and the number of real positions."""
    err = (model(batch["x"]) - batch["y"]) ** 2 * batch["mask"]  # (B, T)
    return err.sum(), batch["mask"].sum()


def make_net(seed: int = 0, dropout: float = 0.0) -> ToyNet:
    """A ToyNet initialised from ``seed``."""
    torch.manual_seed(seed)
    return ToyNet(dropout=dropout)


def read_log(run_dir: str | Path, kind: str = "step") -> list[dict[str, Any]]:
    """The records of type ``kind`` in ``run_dir/metrics.jsonl``."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def step_losses(run_dir: str | Path) -> list[float]:
    """The per-step training losses logged in ``run_dir/metrics.jsonl``."""
    return [r["loss"] for r in read_log(run_dir)]


# The torchrun test: 11 items in global batches of 5, 1 and 5, two micro-batches per step, so
# rank 1 of 2 gets nothing from the second batch and 2 of 5 items (and unequal units) from the
# others; evaluate() answers differ by rank on purpose (rank 0's must rule).
DDP_BATCHES = [[0, 1, 2, 3, 4], [5], [6, 7, 8, 9, 10]]
DDP_EVAL = {0: [3.0, 2.0, 1.0], 1: [1.0, 2.0, 3.0]}


def ddp_config() -> TrainConfig:
    """The training configuration shared by the torchrun worker and its single-process twin."""
    return TrainConfig(epochs=3, lr=0.05, grad_accum=2, warmup_steps=1, patience=1, progress=False)
