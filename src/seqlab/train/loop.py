"""The training loop behind :meth:`seqlab.train.trainer.Trainer.fit` (private machinery).

One :class:`Run` holds the state of one ``fit`` call: the wrapped model, optimizer, scheduler,
loop state, metrics log and progress bar. It gets what it needs from the trainer explicitly, as
a :class:`RunSpec`; the types both share live in :mod:`seqlab.train.contract`, so this module
never imports :mod:`seqlab.train.trainer`. The contract it implements (exact loss normalisation
over micro-batches and ranks, exact resumption from step-boundary checkpoints) is described in
:mod:`seqlab.train.trainer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import seqlab.train.distributed as distributed
from seqlab.config import to_dict
from seqlab.errors import TrainingError
from seqlab.train.checkpoint import (
    MetricsLog,
    TrainState,
    defer_sigint,
    load_checkpoint,
    load_weights,
    restore_training_state,
    rng_state,
    save_checkpoint,
    save_weights,
)
from seqlab.train.contract import Batch, BatchSourceLike, LossFn, TrainConfig
from seqlab.train.schedules import (
    build_optimizer,
    clip_gradients,
    make_scheduler,
    scale_gradients,
    total_steps,
)

__all__ = ["Run", "RunSpec"]


@dataclass(frozen=True)
class RunSpec:
    """What one ``fit`` call takes from its trainer (see :class:`seqlab.train.trainer.Trainer`).

    ``module`` is the model as given (possibly a DDP wrapper); ``wrapped()`` returns the module
    that training calls (the DDP wrapper under torchrun), and :class:`Run` calls it once, after
    seeding and moving the module to ``device``.
    """

    module: nn.Module
    wrapped: Callable[[], nn.Module]
    loss_fn: LossFn
    config: TrainConfig
    run_dir: Path | None
    evaluate: Callable[[], dict[str, float]] | None
    main_metric: str
    greater_is_better: bool
    device: torch.device


def _check_outputs(loss_sum: Tensor, units: Tensor | float) -> Tensor:
    """Check ``loss_fn``'s outputs; return ``[loss_sum, units]`` detached, as float64 (2,)."""
    if not isinstance(loss_sum, Tensor) or loss_sum.numel() != 1 or not loss_sum.requires_grad:
        found = tuple(loss_sum.shape) if isinstance(loss_sum, Tensor) else type(loss_sum).__name__
        raise TrainingError(
            "loss_fn must return (loss_sum, n_units) with loss_sum a scalar tensor that "
            f"requires grad (the SUM of per-unit losses); found {found}"
        )
    n = torch.as_tensor(units)
    if n.numel() != 1:
        raise TrainingError(f"loss_fn's n_units must be a scalar; found shape {tuple(n.shape)}")
    return torch.stack(
        [loss_sum.detach().reshape(()).double(), n.reshape(()).double().to(loss_sum.device)]
    )


class Run:
    """The state of one ``fit`` call: wrapped model, optimizer, scheduler, loop state and logs."""

    def __init__(self, spec: RunSpec, source: BatchSourceLike, resume: bool) -> None:
        cfg = spec.config
        self.spec, self.cfg, self.source = spec, cfg, source
        self.info = distributed.current()
        torch.manual_seed(cfg.seed)
        self.plain = distributed.unwrap(spec.module).to(spec.device)
        self.model = spec.wrapped()
        self.optimizer = build_optimizer(self.plain, cfg.lr, cfg.weight_decay, cfg.betas)
        n_batches = len(source.batches(0))
        self.total = total_steps(cfg.epochs, n_batches, cfg.grad_accum, cfg.max_steps)
        self.scheduler = make_scheduler(
            self.optimizer, self.total, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio
        )
        self.loop = TrainState()
        self.best_state: dict[str, Tensor] | None = None
        self.time_up = False
        if resume and spec.run_dir is not None:
            self._restore(spec.run_dir)
        distributed.barrier()  # every rank has read the checkpoint before rank 0 may replace it
        self.boundary_rng = rng_state()
        self.start = time.perf_counter()
        self.prior_time = self.loop.train_time
        writes = self._writes()
        self.log = MetricsLog(writes / "metrics.jsonl" if writes else None, self.loop.log_offset)
        self.bar = tqdm(
            total=self.total,
            initial=self.loop.global_step,
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5,
            disable=not (cfg.progress and self.info.is_main),
        )

    def _restore(self, run_dir: Path) -> None:
        """Load ``run_dir/checkpoint`` (when there is one) into the model, optimizer and loop."""
        ckpt = load_checkpoint(run_dir / "checkpoint")
        if ckpt is None:
            return
        restore_training_state(ckpt, self.plain, self.optimizer, self.scheduler)
        self.loop = ckpt.state
        if self.loop.best_epoch is not None:  # best/ is used only if it is the one recorded
            expect = {"epoch": self.loop.best_epoch, "step": self.loop.best_step}
            found = load_weights(run_dir / "best", expect=expect)
            self.best_state = None if found is None else found[0]

    # ----------------------------------------------------------------------------- the loop

    def _finished(self) -> bool:
        """True once early stopping, the epoch count, max_steps or max_time ends training."""
        cfg, loop = self.cfg, self.loop
        return (
            loop.stopped_early
            or loop.epoch >= cfg.epochs
            or (cfg.max_steps is not None and loop.global_step >= cfg.max_steps)
            or self.time_up
        )

    def train(self) -> None:
        """Run epochs until :meth:`_finished`; a budget that cut the run short is said on the
        progress bar's line and logged as a ``{"type": "stop"}`` record."""
        while not self._finished():
            self._train_epoch()
        reason = self.stop_reason()
        if reason == "max_time" and self.loop.global_step < self.total:
            note = f"stopped by max_time ({self.cfg.max_time:g} s) at step {self.loop.global_step} of {self.total}"
            self.bar.set_description(note)
            if self.info.is_main and self.cfg.progress:
                self.bar.write(f"[seqlab] {note}: the run is shorter than its epochs, and machine-dependent")
        self.log.write({"type": "stop", "reason": reason, "epoch": self.loop.epoch, "step": self.loop.global_step})

    def stop_reason(self) -> str:
        """Why training ended: ``early_stopping``, ``max_time`` (the wall-clock budget),
        ``max_steps`` or ``epochs``."""
        cfg, loop = self.cfg, self.loop
        if loop.stopped_early:
            return "early_stopping"
        if self.time_up:
            return "max_time"
        if cfg.max_steps is not None and loop.global_step >= cfg.max_steps:
            return "max_steps"
        return "epochs"

    def _train_epoch(self) -> None:
        """Finish the current epoch from its saved position, then evaluate it.

        A budget stop in mid-epoch evaluates the partial epoch (if it trained any step).
        """
        loop, epoch = self.loop, self.loop.epoch
        batches = self.source.batches(epoch)
        self.bar.set_description(f"epoch {epoch}")
        while loop.batch_in_epoch < len(batches) and not self._finished():
            end = min(loop.batch_in_epoch + self.cfg.grad_accum, len(batches))
            self._train_step(batches, range(loop.batch_in_epoch, end), epoch)
        complete = loop.batch_in_epoch >= len(batches)
        if complete or loop.steps_since_eval > 0:
            self._end_epoch(complete)

    def _train_step(self, batches: list[list[int]], group: range, epoch: int) -> None:
        """One optimizer step over the micro-batches ``group`` of ``batches``."""
        t0 = time.perf_counter()
        loss_sum, units, tokens, time_flag = self._accumulate(batches, group, epoch)
        loss = loss_sum / units
        where = f"at step {self.loop.global_step + 1} (epoch {epoch})"
        if not math.isfinite(loss):
            self._fail(f"non-finite loss {loss} {where}")
        grad_norm = clip_gradients(self.plain.parameters(), self.cfg.clip_norm)
        if not math.isfinite(grad_norm):
            self._fail(f"non-finite gradient norm {grad_norm} {where}")
        with defer_sigint():
            lr = float(self.optimizer.param_groups[0]["lr"])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self._advance(len(group), loss_sum, units, time_flag)
            seconds = max(time.perf_counter() - t0, 1e-9)
            ups, tps = units / seconds, tokens / seconds
            record = {
                "type": "step",
                "epoch": epoch,
                "step": self.loop.global_step,
                "loss": loss,
                "lr": lr,
                "grad_norm": grad_norm,
                "units": units,
                "units_per_s": ups,
                "tokens": tokens,
                "tokens_per_s": tps,
            }
            self.log.write(record)
            self.bar.set_postfix(
                loss=f"{loss:.4g}", lr=f"{lr:.2e}", tok_s=f"{tps:.0f}", refresh=False
            )
            self.bar.update(1)
            self.boundary_rng = rng_state()
            every = self.cfg.checkpoint_every
            if every is not None and self.loop.global_step % every == 0:
                self.save_checkpoint()

    def _advance(self, n_batches: int, loss_sum: float, units: float, time_flag: bool) -> None:
        """Move the loop state past one committed optimizer step."""
        loop = self.loop
        loop.batch_in_epoch += n_batches
        loop.step_in_epoch += 1
        loop.global_step += 1
        loop.steps_since_eval += 1
        loop.epoch_loss_sum += loss_sum
        loop.epoch_units += units
        loop.total_units += units
        self.time_up = self.time_up or time_flag

    def _accumulate(
        self, batches: list[list[int]], group: range, epoch: int
    ) -> tuple[float, float, float, bool]:
        """Forward and backward every micro-batch of ``group``; return the global loss sum, units,
        tokens (real positions of ``batch["mask"]``, else units) and whether any rank has spent
        ``max_time``. Gradients end scaled to the global mean."""
        self.model.train()
        step_hook = getattr(self.plain, "set_step", None)
        if callable(step_hook):  # models whose training depends on progress (scheduled sampling)
            step_hook(self.loop.global_step)
        acc = torch.zeros(4, dtype=torch.float64, device=self.spec.device)
        for j, b in enumerate(group):
            shard, weight = distributed.shard(
                batches[b], self.info, where=f"batch {b} of epoch {epoch}"
            )
            batch = self._to_device(self.source.collate(shard, epoch, b))
            with distributed.sync_gradients(self.model, j == len(group) - 1):
                loss_sum, units = self.spec.loss_fn(self.model, batch)
                sums = _check_outputs(loss_sum, units).to(acc.device)
                (loss_sum if weight else loss_sum * 0.0).backward()
            acc[:2] += sums * weight
            mask = batch.get("mask")
            acc[3] += (mask.sum() if isinstance(mask, Tensor) else sums[1]) * weight  # no host sync
        elapsed = time.perf_counter() - self.start
        acc[2] = float(self.cfg.max_time is not None and elapsed >= self.cfg.max_time)
        loss_sum_g, units_g, flag, tokens_g = distributed.all_reduce_sum(acc).tolist()
        if not units_g > 0:
            raise TrainingError(f"step {self.loop.global_step + 1} (epoch {epoch}) has no units")
        scale_gradients(self.plain.parameters(), self.info.world_size / units_g)
        return loss_sum_g, units_g, tokens_g, flag > 0

    def _to_device(self, batch: Batch) -> Batch:
        """Move every tensor of ``batch`` to the trainer's device."""
        return {k: v.to(self.spec.device) if isinstance(v, Tensor) else v for k, v in batch.items()}

    def _fail(self, message: str) -> None:
        """Drop the bad gradients and raise TrainingError; the last checkpoint stays as it is."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.spec.run_dir is not None:
            message += f"; the last good checkpoint is kept in {self.spec.run_dir / 'checkpoint'}"
        raise TrainingError(message)

    # ----------------------------------------------------------------------------- epoch ends

    def _evaluate(self) -> tuple[dict[str, float], float]:
        """Rank 0's evaluation metrics (all ranks evaluate) and the value of the main metric."""
        loop = self.loop
        train_loss = loop.epoch_loss_sum / loop.epoch_units if loop.epoch_units else math.nan
        if self.spec.evaluate is None:
            return {}, train_loss
        metrics = {k: float(v) for k, v in self.spec.evaluate().items()}
        metrics = distributed.broadcast_object(metrics)
        if self.spec.main_metric not in metrics:
            raise TrainingError(
                f"evaluate() returned {sorted(metrics)}, without the main metric {self.spec.main_metric!r}"
            )
        return metrics, metrics[self.spec.main_metric]

    def _end_epoch(self, complete: bool) -> None:
        """Evaluate, track the best weights and patience, log, and checkpoint."""
        metrics, value = self._evaluate()
        loop = self.loop
        with defer_sigint():
            improved = self._update_best(value, metrics.get("loss"))
            train_loss = loop.epoch_loss_sum / loop.epoch_units if loop.epoch_units else math.nan
            record = {
                **metrics,  # the trainer's own keys below win over same-named metrics
                "type": "eval",
                "epoch": loop.epoch,
                "step": loop.global_step,
                "train_loss": train_loss,
                "partial": not complete,
                "best": improved,
            }
            loop.history.append(record)
            self.log.write(record)
            loop.steps_since_eval = 0
            if complete:
                loop.epoch += 1
                loop.batch_in_epoch = loop.step_in_epoch = 0
                loop.epoch_loss_sum = loop.epoch_units = 0.0
            self.boundary_rng = rng_state()
            self.save_checkpoint()

    def _best_loss(self) -> float | None:
        """The evaluation loss of the best record so far (None if it had none)."""
        for record in reversed(self.loop.history):
            if record.get("best"):
                loss = record.get("loss")
                return float(loss) if isinstance(loss, int | float) else None
        return None

    def _update_best(self, value: float, loss: float | None = None) -> bool:
        """Keep the weights if ``value`` beats the best so far; count patience otherwise.

        A tie on a main metric other than the loss (a saturated accuracy or F1, typically 1.0)
        goes to the lower evaluation loss: training that keeps widening the margins keeps
        improving the kept weights instead of stopping at the first epoch that reached the tie.
        """
        loop, best = self.loop, self.loop.best_metric
        if not math.isfinite(value):
            improved = False
        elif best is None:
            improved = True
        elif value != best:
            improved = value > best if self.spec.greater_is_better else value < best
        else:  # a tie (on the loss itself it never breaks: the two losses are equal)
            best_loss = self._best_loss()
            improved = loss is not None and best_loss is not None and math.isfinite(loss) and loss < best_loss
        if improved:
            loop.best_metric, loop.best_epoch, loop.best_step = value, loop.epoch, loop.global_step
            loop.bad_epochs = 0
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.plain.state_dict().items()
            }
            run_dir = self._writes()
            if run_dir is not None:
                meta = {
                    "epoch": loop.best_epoch,
                    "step": loop.best_step,
                    "metric": value,
                    "main_metric": self.spec.main_metric,
                }
                save_weights(run_dir / "best", self.best_state, meta)
        else:
            loop.bad_epochs += 1
            patience = self.cfg.patience
            loop.stopped_early = patience is not None and loop.bad_epochs >= patience
        return improved

    # ----------------------------------------------------------------------------- persistence

    def _writes(self) -> Path | None:
        """``run_dir`` when this rank writes files, else None."""
        return self.spec.run_dir if self.info.is_main else None

    def save_checkpoint(self) -> None:
        """Write ``run_dir/checkpoint/`` for the last step boundary (rank 0; never a bad state)."""
        run_dir = self._writes()
        if run_dir is None:
            return
        for name, p in self.plain.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise TrainingError(f"parameter {name} is not finite; checkpoint not written")
        self.loop.train_time = self.train_time()
        self.loop.log_offset = self.log.offset
        path = run_dir / "checkpoint"
        save_checkpoint(
            path,
            self.plain,
            self.optimizer,
            self.scheduler,
            self.loop,
            rng=self.boundary_rng,
            config=to_dict(self.cfg),
        )

    def train_time(self) -> float:
        """Seconds of training over all sessions of this run."""
        return self.prior_time + time.perf_counter() - self.start

    def restore_best(self) -> None:
        """Load the best weights seen into the module (when there are any)."""
        if self.best_state is not None:
            self.plain.load_state_dict(self.best_state)

    def close(self) -> None:
        """Close the progress bar and the metrics log."""
        self.bar.close()
        self.log.close()
