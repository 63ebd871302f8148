"""Training: a model-agnostic trainer, LR schedules, atomic checkpoints and DDP helpers.

>>> from seqlab.train import Trainer, TrainConfig
>>> trainer = Trainer(module, loss_fn, TrainConfig(epochs=3), run_dir="runs/x")  # doctest: +SKIP
>>> result = trainer.fit(source)  # doctest: +SKIP
"""

from __future__ import annotations

from seqlab.train.checkpoint import Checkpoint, TrainState, load_checkpoint, save_checkpoint
from seqlab.train.contract import Batch, BatchSourceLike, LossFn, TrainConfig, TrainResult
from seqlab.train.distributed import DistInfo, init_from_env
from seqlab.train.schedules import build_optimizer, lr_factor, make_scheduler, total_steps
from seqlab.train.trainer import Trainer

__all__ = [
    "Batch",
    "BatchSourceLike",
    "Checkpoint",
    "DistInfo",
    "LossFn",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "Trainer",
    "build_optimizer",
    "init_from_env",
    "load_checkpoint",
    "lr_factor",
    "make_scheduler",
    "save_checkpoint",
    "total_steps",
]
