"""What a run directory was started with, so a run never silently mixes with another's.

A run directory records its identity in ``identity.json``: a fingerprint of the training data and
the settings the run was started with (task, model, network ends, training), flattened to dotted
keys. Resuming compares them with the present call's:

- different data, or any different setting, is an error that lists each difference and says how
  to start fresh (``resume=False`` / ``--fresh``, or another run directory);
- a larger budget (``continuable`` keys: epochs, max_steps, max_time, ...) is a deliberate
  continuation: allowed, and named on stderr;
- a run directory with a checkpoint but no record (written before records existed) resumes with
  a warning.

The trainer knows nothing of models; the model's lifecycle builds the settings and the data
fingerprint and calls :func:`check_identity` before training.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import seqlab.train.distributed as distributed
from seqlab.errors import SeqlabError
from seqlab.io import read_json, write_json
from seqlab.train.checkpoint import pid_alive

__all__ = ["IDENTITY_FILE", "LOCK_FILE", "CONTINUABLE", "fingerprint", "flatten", "check_identity", "run_lock"]

IDENTITY_FILE = "identity.json"
LOCK_FILE = "lock"
#: training settings a resumed run may change: they extend or bound the budget, or only report
CONTINUABLE = ("train.epochs", "train.max_steps", "train.max_time", "train.progress", "train.checkpoint_every",
               "train.patience")


def _leaf(value: Any) -> Any:
    """A non-JSON leaf for :func:`fingerprint`: an array (numpy or torch) by its dtype, shape and
    the sha256 of its bytes (``str`` abbreviates large arrays with "...", so two waveforms that
    differ in the middle printed alike, and it is slow); anything else by ``str``."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"ndarray": str(a.dtype), "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def fingerprint(value: Any) -> str:
    """A sha256 of ``value``'s canonical JSON (sorted keys; arrays by a hash of their bytes, other
    non-JSON leaves by ``str``). JSON-native values hash as they always did."""
    text = json.dumps(value, sort_keys=True, default=_leaf, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}`` (lists and tuples compared as lists)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k, '(unset)')!r} in the run, {new.get(k, '(unset)')!r} now"
            for k in sorted(set(old) | set(new)) if old.get(k, "(unset)") != new.get(k, "(unset)")]


def check_identity(run_dir: Path, settings: Mapping[str, Any], data: str, *, resume: bool, has_checkpoint: bool) -> None:
    """Refuse to resume ``run_dir`` with other data or settings; record them when the run starts.

    ``settings``: nested settings of the present call; ``data``: its training data fingerprint.
    ``has_checkpoint``: whether ``run_dir`` holds a checkpoint the trainer would resume.
    """
    now = flatten(settings)
    path = Path(run_dir) / IDENTITY_FILE
    if resume and has_checkpoint:
        if not path.exists():
            print(f"[seqlab] {run_dir} has a checkpoint but no record of its data and settings (an older run); "
                  "resuming it unchecked", file=sys.stderr)
            return
        record = read_json(path)
        if not isinstance(record, dict) or not {"data", "settings"} <= set(record):
            raise SeqlabError(f"{path}: expected a run record with 'data' and 'settings'")
        fresh = "start fresh with resume=False (seqlab train --fresh) or give another run directory (--out)"
        if record["data"] != data:
            raise SeqlabError(f"{run_dir} was started on other training data than this call's; "
                              f"resuming would mix two runs: {fresh}")
        diffs = _differences(record["settings"], now)
        fixed = [d for d in diffs if d.split(":")[0] not in CONTINUABLE]
        if fixed:
            raise SeqlabError(f"{run_dir} was started with other settings; resuming would mix them:\n  "
                              + "\n  ".join(fixed) + f"\n{fresh}")
        if diffs:
            print("[seqlab] continuing the run with a new budget: " + "; ".join(diffs), file=sys.stderr)
        if diffs and distributed.current().is_main:
            write_json(path, {"data": data, "settings": now})
        return
    if distributed.current().is_main:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_json(path, {"data": data, "settings": now})


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process while it trains: a second process started into the same
    directory is refused (it would interleave the metrics log and checkpoints). A lock left by a
    process that no longer runs (a kill) is taken over. Only the main rank of a distributed run
    locks. The lock names the holder's pid on this machine."""
    if not distributed.current().is_main:
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        holder = int(text) if text.isdigit() else -1
        if holder > 0 and holder != os.getpid() and pid_alive(holder):
            raise SeqlabError(f"{run_dir} is in use by another run (process {holder}); wait for it, or give this "
                              "run another directory (--out)") from None
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # a stale lock (its process is gone): take it over
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
