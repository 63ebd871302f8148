"""Atomic file writes and pickle-free tensor files (safetensors + JSON).

A write goes to a temporary file in the target's directory, is flushed and fsynced, then
renamed over the target with ``os.replace``, so a crash leaves either the old file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save
from torch import Tensor

from seqlab.errors import DataError

__all__ = ["atomic_write_bytes", "atomic_write_text", "write_json", "read_json", "write_tensors", "read_tensors"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(p, None, "a JSON file", "no such file") from None
    except json.JSONDecodeError as e:
        raise DataError(p, e.lineno, "valid JSON", e.msg) from None
    except UnicodeDecodeError as e:
        raise DataError(p, None, "UTF-8 text", f"undecodable byte at offset {e.start}") from None


def write_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically. Shared storage (tied weights) is saved once
    per name, as contiguous copies."""
    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, save(flat, metadata=metadata))


def read_tensors(path: str | Path) -> dict[str, Tensor]:
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "a safetensors file", "no such file")
    try:
        return load_file(str(p))
    except Exception as e:  # safetensors raises its own error types
        raise DataError(p, None, "a valid safetensors file", str(e)) from None
