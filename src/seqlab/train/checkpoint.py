"""Atomic, pickle-free checkpoints: tensors in safetensors files, everything else in JSON.

A checkpoint is a directory::

    checkpoint/
      model.safetensors        the module's state_dict
      optimizer.safetensors    every tensor of the optimizer state, keyed "<param index>.<name>"
      rng.safetensors          torch's RNG state as uint8 tensors ("torch", "cuda.<i>")
      state.json               optimizer scalars and param_groups, scheduler state, loop state

It is written by :func:`atomic_directory`: files go into a temporary sibling directory, which then
replaces the old one with ``os.replace``. A crash at any moment leaves either the old or the new
checkpoint complete, never a mixture (between the two renames the old copy sits in a ``.old``
sibling, which :func:`find_directory` falls back to). ``state.json`` is written last and marks a
complete checkpoint. Nothing is ever pickled; loading never executes code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from seqlab.errors import DataError, TrainingError
from seqlab.io import read_json as io_read_json
from seqlab.io import read_tensors, write_json, write_tensors

__all__ = [
    "FORMAT_VERSION",
    "TrainState",
    "Checkpoint",
    "atomic_directory",
    "find_directory",
    "save_tensors",
    "load_tensors",
    "read_json",
    "flatten_optimizer_state",
    "unflatten_optimizer_state",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "restore_training_state",
    "save_weights",
    "load_weights",
    "MetricsLog",
    "defer_sigint",
]

FORMAT_VERSION = 1
_STATE_FILE = "state.json"


def _fsync_path(path: Path) -> None:
    """Flush a file, or a directory entry on POSIX, to disk (best effort for directories)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a permission error means it does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` when the block exits cleanly.

    On an exception inside the block the temporary directory is removed and ``path`` is left
    untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f".{final.name}.old")
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a process that was killed mid-save
        pid = stale.name.rsplit("-", 1)[-1]
        if stale != tmp and (not pid.isdigit() or not pid_alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync_path(f)
        _fsync_path(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def find_directory(path: str | Path, marker: str = _STATE_FILE) -> Path | None:
    """The complete directory at ``path`` (holding ``marker``), or its ``.old`` copy, or None."""
    final = Path(path)
    for candidate in (final, final.with_name(f".{final.name}.old")):
        if (candidate / marker).is_file():
            return candidate
    return None


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write ``tensors`` to a safetensors file."""
    write_tensors(path, tensors)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU; a missing or corrupt file raises TrainingError."""
    try:
        return read_tensors(path)
    except DataError as e:
        raise TrainingError(f"cannot read tensors: {e}") from e


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file raises TrainingError naming it."""
    try:
        return io_read_json(path)
    except DataError as e:
        raise TrainingError(f"cannot read {e}") from e


def flatten_optimizer_state(
    sd: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors ``{"<idx>.<name>": t}`` and a JSON part."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in sd["param_groups"]
    ]
    return tensors, {"scalars": scalars, "param_groups": groups}


def unflatten_optimizer_state(
    tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], like: Optimizer
) -> dict[str, Any]:
    """Rebuild the ``state_dict`` that :func:`flatten_optimizer_state` split.

    ``like`` (the optimizer about to load it) supplies the Python types JSON loses: a list
    is turned back into a tuple wherever ``like``'s param group holds a tuple (``betas``).
    """
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = t
    for idx, entry in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    groups = []
    for saved, current in zip(meta["param_groups"], like.param_groups):
        g = dict(saved)
        for k, v in g.items():
            if isinstance(current.get(k), tuple) and isinstance(v, list):
                g[k] = tuple(v)
        groups.append(g)
    return {"state": state, "param_groups": groups}


def rng_state() -> dict[str, torch.Tensor]:
    """torch's CPU RNG state (and each CUDA device's, when CUDA is initialised) as uint8 tensors."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda.{i}"] = s
    return out


def set_rng_state(states: Mapping[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(states["torch"].to(torch.uint8))
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda])


@dataclass
class TrainState:
    """The training loop's position and bookkeeping, stored as JSON in every checkpoint.

    ``batch_in_epoch`` global batches (``step_in_epoch`` optimizer steps) of epoch ``epoch``
    are done; ``epoch_loss_sum / epoch_units`` is the epoch's mean training loss so far;
    ``bad_epochs`` counts evaluations since the best one (patience); ``log_offset`` is the size
    of ``metrics.jsonl`` when the checkpoint was taken; ``history`` holds the evaluation records.
    """

    epoch: int = 0
    batch_in_epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    steps_since_eval: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    bad_epochs: int = 0
    epoch_loss_sum: float = 0.0
    epoch_units: float = 0.0
    total_units: float = 0.0
    train_time: float = 0.0
    stopped_early: bool = False
    log_offset: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any, where: str) -> TrainState:
        """Rebuild from :func:`dataclasses.asdict` output; a mismatch raises TrainingError."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise TrainingError(
                f"{where}: expected training state keys {sorted(names)}, found {found}"
            )
        return cls(**data)


@dataclass
class Checkpoint:
    """Everything needed to resume: model, optimizer, scheduler, RNG and loop state.

    ``optimizer`` holds ``{"tensors": ..., "meta": ...}`` as split by
    :func:`flatten_optimizer_state`; ``config`` is the training configuration it was saved with.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, torch.Tensor]
    state: TrainState
    config: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    module: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    state: TrainState,
    rng: Mapping[str, torch.Tensor] | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Atomically write a checkpoint directory at ``path`` (see the module docstring).

    ``rng`` defaults to the current RNG state; pass the state captured at a step boundary
    when saving after an interruption in the middle of a step. ``config`` (JSON-ready) is
    stored for reference.
    """
    opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    meta = {
        "format": FORMAT_VERSION,
        "optimizer": opt_meta,
        "scheduler": sched,
        "state": dataclasses.asdict(state),
        "config": dict(config or {}),
    }
    with atomic_directory(path) as tmp:
        save_tensors(tmp / "model.safetensors", module.state_dict())
        save_tensors(tmp / "optimizer.safetensors", opt_tensors)
        save_tensors(tmp / "rng.safetensors", rng if rng is not None else rng_state())
        write_json(tmp / _STATE_FILE, meta)


def load_checkpoint(path: str | Path) -> Checkpoint | None:
    """Read the checkpoint at ``path`` (or its intact ``.old`` copy); None when there is none."""
    found = find_directory(path)
    if found is None:
        return None
    meta = read_json(found / _STATE_FILE)
    keys = {"format", "optimizer", "scheduler", "state"}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or keys - set(meta):
        raise TrainingError(
            f"{found / _STATE_FILE}: expected a format-{FORMAT_VERSION} checkpoint with keys "
            f"{sorted(keys)}, found {sorted(meta) if isinstance(meta, dict) else type(meta).__name__}"
        )
    opt = {"tensors": load_tensors(found / "optimizer.safetensors"), "meta": meta["optimizer"]}
    return Checkpoint(
        model=load_tensors(found / "model.safetensors"),
        optimizer=opt,
        scheduler=meta["scheduler"],
        rng=load_tensors(found / "rng.safetensors"),
        state=TrainState.from_json(meta.get("state"), str(found / _STATE_FILE)),
        config=meta.get("config", {}),
    )


def restore_training_state(
    ckpt: Checkpoint, module: nn.Module, optimizer: Optimizer, scheduler: LRScheduler
) -> None:
    """Load ``ckpt`` into the module, optimizer and scheduler, and restore the RNG state."""
    try:
        module.load_state_dict(ckpt.model)
    except RuntimeError as e:
        raise TrainingError(f"checkpoint does not match the module: {e}") from e
    opt_sd = unflatten_optimizer_state(ckpt.optimizer["tensors"], ckpt.optimizer["meta"], optimizer)
    optimizer.load_state_dict(opt_sd)
    sched = dict(ckpt.scheduler)
    sched["lr_lambdas"] = [None] * len(optimizer.param_groups)
    scheduler.load_state_dict(sched)
    set_rng_state(ckpt.rng)


def save_weights(
    path: str | Path, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Atomically write a weights directory: ``model.safetensors`` plus ``meta.json``."""
    with atomic_directory(path) as tmp:
        save_tensors(tmp / "model.safetensors", state)
        write_json(tmp / "meta.json", dict(meta))


def load_weights(
    path: str | Path, expect: Mapping[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Read what :func:`save_weights` wrote (or its intact ``.old`` copy) as (tensors, meta).

    None when there is none, or when ``meta`` disagrees with any item of ``expect``.
    """
    found = find_directory(path, marker="meta.json")
    if found is None:
        return None
    meta = read_json(found / "meta.json")
    if expect is not None and any(meta.get(k) != v for k, v in expect.items()):
        return None
    return load_tensors(found / "model.safetensors"), dict(meta)


class MetricsLog:
    """An append-only JSONL file, one flushed line per record, cut back to ``keep_bytes`` on open.

    A checkpoint stores :attr:`offset`; resuming truncates the log there, so records of steps
    that were lost with an interruption do not appear twice. ``path=None`` writes nothing.
    """

    def __init__(self, path: str | Path | None, keep_bytes: int = 0) -> None:
        self.offset = 0
        self._file: BinaryIO | None = None
        if path is None:
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a+b")  # closed by close()
        self._file.truncate(min(keep_bytes, self._file.seek(0, os.SEEK_END)))
        self.offset = self._file.seek(0, os.SEEK_END)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one JSON line and flush it."""
        if self._file is not None:
            self._file.write((json.dumps(record) + "\n").encode("utf-8"))
            self._file.flush()
            self.offset = self._file.tell()

    def close(self) -> None:
        """Close the file (further writes are dropped)."""
        if self._file is not None:
            self._file.close()
            self._file = None


@contextlib.contextmanager
def defer_sigint() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt.

    The trainer updates its model, optimizer and loop state inside this block, so the
    checkpoint written on an interrupt never sees a half-finished update. Outside the main
    thread (where signal handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
