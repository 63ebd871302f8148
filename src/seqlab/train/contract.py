"""What the trainer and its loop share: the batch, loss-function and batch-source contract,
:class:`TrainConfig` and :class:`TrainResult`.

A leaf of :mod:`seqlab.train`: :mod:`seqlab.train.trainer` (the public
:class:`~seqlab.train.trainer.Trainer`) and :mod:`seqlab.train.loop` (the machinery behind
``Trainer.fit``) both import it and it imports neither, so the two never import each other's
module. The contract itself (exact loss normalisation, exact resumption) is described in
:mod:`seqlab.train.trainer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.train.schedules import SCHEDULES, ScheduleKind

__all__ = [
    "Batch",
    "LossFn",
    "BatchSourceLike",
    "TrainConfig",
    "TrainResult",
]

Batch = dict[str, Tensor]
"""A collated batch: named tensors, e.g. ``{"x": (B, T) int64, "mask": (B, T) bool}``."""

LossFn = Callable[[nn.Module, Batch], tuple[Tensor, Tensor]]
"""``loss_fn(module, batch) -> (loss_sum, n_units)``: the 0-d SUM of per-unit losses over the batch
and the number of units it holds. Under DDP the module is the DDP wrapper: call it (its
``forward``) rather than reaching into submodules, so gradients are synchronised."""


class BatchSourceLike(Protocol):
    """What the trainer needs from a data source (e.g. ``seqlab.data.batching.BatchSource``)."""

    def batches(self, epoch: int) -> list[list[int]]:
        """Global batches of item indices for ``epoch``, deterministic in (seed, epoch)."""
        ...

    def collate(self, indices: Sequence[int], epoch: int, step: int) -> Batch:
        """Tensors for the items ``indices``; ``step`` is the global batch's index in the epoch."""
        ...


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :class:`~seqlab.train.trainer.Trainer` (validated on construction;
    ConfigError if invalid).

    ``max_steps`` counts optimizer steps; ``max_time`` is the wall-clock budget of one ``fit``
    call in seconds. ``patience`` epochs without improvement of the main metric stop training.
    ``checkpoint_every`` adds a checkpoint every N optimizer steps to the one at each epoch end.
    ``batch_size`` is not used by the trainer; callers build their sampler from it.
    """

    epochs: int = 10
    max_steps: int | None = None
    max_time: float | None = None
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: ScheduleKind = "cosine"
    min_lr_ratio: float = 0.1
    clip_norm: float | None = 1.0
    grad_accum: int = 1
    patience: int | None = 3
    seed: int = 0
    checkpoint_every: int | None = None
    progress: bool = True
    bucket: bool = True  # length-bucketed training batches (read by the batch source's builder)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        betas_ok = len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas)
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("max_steps", _none_or(self.max_steps, 1), "None or >= 1"),
            ("max_time", _none_or(self.max_time, 0, strict=True), "None or > 0"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0 and math.isfinite(self.lr), "a finite number > 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("betas", betas_ok, "two numbers in [0, 1)"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("schedule", self.schedule in SCHEDULES, f"one of {list(SCHEDULES)}"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in [0, 1]"),
            ("clip_norm", _none_or(self.clip_norm, 0, strict=True), "None or > 0"),
            ("grad_accum", self.grad_accum >= 1, ">= 1"),
            ("patience", _none_or(self.patience, 1), "None or >= 1"),
            ("checkpoint_every", _none_or(self.checkpoint_every, 1), "None or >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"TrainConfig.{name}: expected {expected}, found {value!r}")


def _none_or(value: float | None, low: float, strict: bool = False) -> bool:
    """True when ``value`` is None or at least ``low`` (above ``low`` when ``strict``)."""
    return value is None or (value > low if strict else value >= low)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit <seqlab.train.trainer.Trainer.fit>` returns.

    ``history`` has one record per evaluation (epoch end, or the partial epoch where a step or
    time budget stopped training): ``epoch``, ``step``, ``train_loss``, the evaluated metrics,
    ``partial`` and ``best``. Per-step records are in ``run_dir/metrics.jsonl``.
    ``train_time`` and ``units_per_second`` add up all sessions of a resumed run.
    """

    history: list[dict[str, Any]]
    best_metric: float | None
    best_epoch: int | None
    steps: int
    epochs_run: int
    train_time: float
    stopped_early: bool
    units_per_second: float
    #: why training ended: "epochs", "max_steps", "max_time" (a wall-clock budget: the run is
    #: machine-dependent) or "early_stopping"
    stopped_by: str = "epochs"
