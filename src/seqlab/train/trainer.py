"""A model-agnostic training loop: AdamW, warmup schedules, exact loss normalisation, resumable.

The trainer knows nothing about models or tasks. It needs a module, a loss function
``loss_fn(module, batch) -> (loss_sum, n_units)`` that returns the SUM of per-unit losses
(tokens, examples, frames...) and how many units the batch holds, and a batch source that
yields global batches of item indices and collates them.

Exact normalisation: for one optimizer step made of ``grad_accum`` micro-batches, on every
rank, the gradient is that of ``sum(loss_sum) / sum(n_units)`` over all micro-batches and ranks.
Each micro-batch is back-propagated as a sum; once the step's units are summed over ranks
(one ``all_reduce``), gradients are scaled by ``world_size / global_units`` (DDP has already
averaged them over ranks). So gradient accumulation equals one large batch, and DDP over N
ranks equals one process with the same global batch, up to float rounding.

Resumption is exact: a checkpoint taken at an optimizer-step boundary (every epoch end, every
``checkpoint_every`` steps, on Ctrl-C) holds the model, optimizer, scheduler, RNG state, the
position inside the epoch and the metrics-log offset, so a resumed run reproduces the losses
of an uninterrupted one bit for bit (CPU, one process).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.train import distributed
from seqlab.train.loop import _Run
from seqlab.train.schedules import SCHEDULES, ScheduleKind

__all__ = [
    "Batch",
    "LossFn",
    "BatchSourceLike",
    "TrainConfig",
    "TrainResult",
    "Trainer",
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
    """Hyperparameters of :class:`Trainer` (validated on construction; ConfigError if invalid).

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
    """What :meth:`Trainer.fit` returns.

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


class Trainer:
    """Train any ``nn.Module`` with a ``(loss_sum, n_units)`` loss function; see the module doc.

    Args:
        module: the model; moved to ``device``. Under torchrun it is wrapped in DDP by ``fit``
            (pass a DDP module yourself to choose DDP's options).
        loss_fn: ``loss_fn(module, batch) -> (loss_sum, n_units)``.
        config: the :class:`TrainConfig`.
        run_dir: where ``metrics.jsonl``, ``checkpoint/`` and ``best/`` go (rank 0 only);
            None keeps everything in memory.
        evaluate: called with no arguments at every epoch end on every rank (rank 0's answer
            counts); returns metrics such as ``{"loss": 1.2, "accuracy": 0.8}``. Without it,
            the epoch's mean training loss is the metric.
        main_metric / greater_is_better: the metric for early stopping and best weights.
        device: where the module and batches live.
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        *,
        run_dir: str | Path | None = None,
        evaluate: Callable[[], dict[str, float]] | None = None,
        main_metric: str = "loss",
        greater_is_better: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise ConfigError(f"config must be a TrainConfig, found {type(config).__name__}")
        if evaluate is None and (main_metric != "loss" or greater_is_better):
            raise ConfigError(
                "without an evaluate function the main metric is the training loss "
                f"(lower is better); found main_metric={main_metric!r}, "
                f"greater_is_better={greater_is_better}"
            )
        self.module = module
        self.loss_fn = loss_fn
        self.config = config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.evaluate = evaluate
        self.main_metric = main_metric
        self.greater_is_better = greater_is_better
        self.device = torch.device(device)
        self._ddp: nn.Module | None = None

    def _wrapped(self) -> nn.Module:
        """The module in DDP under torchrun; wrapped once, however often ``fit`` is called."""
        if self._ddp is None or distributed.unwrap(self._ddp) is not self.module:
            self._ddp = distributed.wrap(self.module)
        return self._ddp

    def fit(self, source: BatchSourceLike, *, resume: bool = True) -> TrainResult:
        """Train on ``source``; resume from ``run_dir/checkpoint`` when ``resume`` and it exists.

        Returns a :class:`TrainResult`; the module ends holding the best weights seen.
        Raises TrainingError on a non-finite loss or gradient norm (the last good checkpoint
        stays on disk). On KeyboardInterrupt a checkpoint of the last step boundary is written
        before the interrupt propagates. ``resume=False`` starts ``run_dir`` over: its metrics
        log is emptied and its checkpoint replaced at the next save. A run that already ended
        (epochs done, max_steps reached or stopped early) returns at once when resumed.
        """
        run = _Run(self, source, resume)
        try:
            run.train()
        except KeyboardInterrupt:
            run.save_checkpoint()
            raise
        finally:
            run.close()
        run.restore_best()
        return _result(run)


def _result(run: _Run) -> TrainResult:
    """The :class:`TrainResult` of ``run`` so far."""
    loop = run.loop
    seconds = run.train_time()
    return TrainResult(
        history=list(loop.history),
        best_metric=loop.best_metric,
        best_epoch=loop.best_epoch,
        steps=loop.global_step,
        epochs_run=loop.epoch + (1 if loop.batch_in_epoch > 0 else 0),
        train_time=seconds,
        stopped_early=loop.stopped_early,
        units_per_second=loop.total_units / seconds if seconds > 0 else 0.0,
    )
