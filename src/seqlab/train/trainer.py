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

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import seqlab.train.distributed as distributed
from seqlab.errors import ConfigError
from seqlab.train.contract import Batch, BatchSourceLike, LossFn, TrainConfig, TrainResult
from seqlab.train.loop import Run, RunSpec

__all__ = [
    "Batch",
    "LossFn",
    "BatchSourceLike",
    "TrainConfig",
    "TrainResult",
    "Trainer",
]


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
        spec = RunSpec(
            module=self.module,
            wrapped=self._wrapped,
            loss_fn=self.loss_fn,
            config=self.config,
            run_dir=self.run_dir,
            evaluate=self.evaluate,
            main_metric=self.main_metric,
            greater_is_better=self.greater_is_better,
            device=self.device,
        )
        run = Run(spec, source, resume)
        try:
            run.train()
        except KeyboardInterrupt:
            run.save_checkpoint()
            raise
        finally:
            run.close()
        run.restore_best()
        return _result(run)


def _result(run: Run) -> TrainResult:
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
        stopped_by=run.stop_reason(),
    )
