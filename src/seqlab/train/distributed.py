"""Data parallelism with ``torchrun`` and DistributedDataParallel (gloo on CPU, nccl on CUDA).

Launch a script under ``python -m torch.distributed.run --nproc_per_node N script.py``; the
script calls :func:`init_from_env` once, hands its module to :class:`~seqlab.train.Trainer` (which
wraps it with :func:`wrap` and shards every global batch by rank) and calls :func:`cleanup` at the
end. Without the torchrun variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) everything here is
a no-op for a world of one process, so the same script runs unchanged on a laptop.

Objects are exchanged as JSON (:func:`broadcast_object`), never pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seqlab.errors import ConfigError

__all__ = [
    "DistInfo",
    "init_from_env",
    "current",
    "is_distributed",
    "wrap",
    "unwrap",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup",
    "shard",
    "sync_gradients",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job: ``rank`` of ``world_size``; ``is_main`` is rank 0."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes checkpoints, logs and progress bars."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    """Read an integer environment variable, naming it when it is not an integer."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name} must be an integer, found {raw!r}"
        ) from None


def init_from_env(backend: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and, through torch, ``MASTER_ADDR`` and
    ``MASTER_PORT``). With ``WORLD_SIZE`` unset or 1 no process group is created. ``backend``
    defaults to ``nccl`` when CUDA is available and ``gloo`` otherwise. Calling it again once the
    group exists returns the current :class:`DistInfo`.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    if world == 1:
        return DistInfo(0, 1, local)
    if dist.is_initialized():
        return current()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def is_distributed() -> bool:
    """True when a process group with more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current() -> DistInfo:
    """The :class:`DistInfo` of the active process group (world of one when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))


def wrap(module: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
    """Wrap ``module`` in DistributedDataParallel when the world has more than one rank.

    DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts equal,
    and averages gradients over ranks in ``backward``. A module already wrapped, or a world of
    one, is returned unchanged.
    """
    if not is_distributed() or isinstance(module, DistributedDataParallel):
        return module
    first = next(module.parameters(), None)
    on_cuda = first is not None and first.device.type == "cuda"
    device_ids = [first.device.index] if on_cuda and first is not None else None
    return DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper (or ``module`` itself)."""
    if isinstance(module, DistributedDataParallel):
        inner = module.module
        assert isinstance(inner, nn.Module)
        return inner
    return module


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks, in place, and return it (identity in a world of one)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait until every rank gets here (no-op in a world of one)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send the JSON-serialisable ``obj`` from rank ``src`` to all ranks; return it on every rank.

    Encoded as UTF-8 JSON in a uint8 tensor (never pickled); tuples come back as lists.
    """
    if not is_distributed():
        return obj
    device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    )
    device = device or torch.device("cpu")
    payload = json.dumps(obj).encode("utf-8") if dist.get_rank() == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=src)
    data = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if dist.get_rank() == src:
        data.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(data, src=src)
    return json.loads(data.cpu().numpy().tobytes().decode("utf-8"))


def cleanup() -> None:
    """Leave the process group, if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: Sequence[int], info: DistInfo, where: str = "batch") -> tuple[list[int], float]:
    """This rank's items ``indices[rank::world_size]`` of a global batch, and their weight.

    A rank left without items (a global batch smaller than the world) gets the batch's first
    item with weight 0.0: it still runs forward and backward, so DDP's all-reduce is joined by
    every rank, but contributes nothing. Raises ConfigError for an empty global batch.
    """
    if len(indices) == 0:
        raise ConfigError(f"{where} is empty; a global batch needs at least one item")
    mine = list(indices[info.rank :: info.world_size])
    return (mine, 1.0) if mine else ([indices[0]], 0.0)


def sync_gradients(module: nn.Module, sync: bool) -> AbstractContextManager[Any]:
    """DDP's ``no_sync()`` when ``sync`` is False (gradient accumulation), else a null context."""
    if isinstance(module, DistributedDataParallel) and not sync:
        return module.no_sync()
    return nullcontext()
