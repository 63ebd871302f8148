"""Optimization setup: AdamW parameter groups and learning-rate schedules (warmup, then decay).

The schedule is one pure function, :func:`lr_factor`, of the optimizer step; :func:`make_scheduler`
plugs it into :class:`torch.optim.lr_scheduler.LambdaLR`, whose state (a step counter and the last
rates) is plain JSON, so checkpoints never pickle a closure.

With ``W`` warmup steps and ``T`` total steps, step ``s`` (0-based: the rate used by the
``s+1``-th optimizer update) gets::

    s < W:   (s + 1) / W                                          # reaches 1 at step W - 1
    else:    p = min(1, (s - W) / max(1, T - W))
             constant: 1
             linear:   m + (1 - m) * (1 - p)
             cosine:   m + (1 - m) * (1 + cos(pi * p)) / 2         # Loshchilov & Hutter, SGDR, 2017

where ``m = min_ratio``; the rate falls to ``m`` times the base rate at ``s = T`` and stays there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Literal, get_args

import torch
from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from seqlab.errors import ConfigError

__all__ = [
    "ScheduleKind",
    "SCHEDULES",
    "lr_factor",
    "make_scheduler",
    "build_optimizer",
    "total_steps",
    "scale_gradients",
    "clip_gradients",
]

ScheduleKind = Literal["cosine", "linear", "constant"]
SCHEDULES: tuple[str, ...] = get_args(ScheduleKind)


def _check(total_steps: int, warmup: int, kind: str, min_ratio: float) -> None:
    """Raise :class:`ConfigError` for a schedule that cannot be computed."""
    if kind not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, found {kind!r}")
    if total_steps < 1:
        raise ConfigError(f"total_steps must be >= 1, found {total_steps}")
    if warmup < 0:
        raise ConfigError(f"warmup must be >= 0, found {warmup}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ConfigError(f"min_ratio must lie in [0, 1], found {min_ratio}")


def lr_factor(step: int, total_steps: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Args:
        step: optimizer updates already taken (LambdaLR's ``last_epoch``), >= 0.
        total_steps: updates in the whole run; decay ends there.
        warmup: linear-warmup updates; the factor climbs ``1/W, 2/W, ..., 1``.
        kind: ``"cosine"``, ``"linear"`` or ``"constant"`` after warmup.
        min_ratio: the factor at (and after) ``total_steps``; unused by ``"constant"``.
    """
    _check(total_steps, warmup, kind, min_ratio)
    if step < 0:
        raise ConfigError(f"step must be >= 0, found {step}")
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    shape = 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * shape


def make_scheduler(
    optimizer: Optimizer, total_steps: int, warmup: int, kind: str, min_ratio: float
) -> LambdaLR:
    """A LambdaLR applying :func:`lr_factor` to every parameter group of ``optimizer``.

    Call ``scheduler.step()`` once after each ``optimizer.step()``.
    """
    _check(total_steps, warmup, kind, min_ratio)
    fn = functools.partial(
        lr_factor, total_steps=total_steps, warmup=warmup, kind=kind, min_ratio=min_ratio
    )
    return LambdaLR(optimizer, lr_lambda=fn)


def build_optimizer(
    module: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999)
) -> AdamW:
    """AdamW over the trainable parameters: tensors of 2+ dims decay, 1-D ones (biases, norm
    weights) do not. Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError("the module has no trainable parameters")
    return AdamW(groups, lr=lr, betas=betas)


def total_steps(epochs: int, n_batches: int, grad_accum: int, max_steps: int | None = None) -> int:
    """Optimizer steps of a run: ``epochs * ceil(n_batches / grad_accum)``, capped by ``max_steps``."""
    steps = epochs * math.ceil(n_batches / grad_accum)
    if max_steps is not None:
        steps = min(steps, max_steps)
    return max(1, steps)


def scale_gradients(params: Iterable[torch.Tensor], factor: float) -> None:
    """Multiply every existing ``.grad`` of ``params`` by ``factor``, in place."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        torch._foreach_mul_(grads, factor)  # one fused call instead of one per tensor


def clip_gradients(params: Iterable[torch.Tensor], max_norm: float | None) -> float:
    """The total L2 norm of the gradients before clipping; rescale them to ``max_norm`` if set.

    Parameters without a gradient are skipped; the norm of no gradients is 0.
    """
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    if max_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(with_grad, max_norm))
    norms = [torch.linalg.vector_norm(p.grad) for p in with_grad if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms)))
