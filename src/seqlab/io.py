"""Atomic file writes and pickle-free tensor files (safetensors + JSON).

A write goes to a temporary file in the target's directory, is flushed and fsynced, then
renamed over the target with ``os.replace``, so a crash leaves either the old file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save
from torch import Tensor

from seqlab.errors import DataError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "write_tensors",
    "read_tensors",
    "tensors_for_saving",
]


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
    """Write ``obj`` as indented UTF-8 JSON, atomically (floats round-trip exactly)."""
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=True) + "\n")


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


def tensors_for_saving(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU tensors; a tensor sharing storage with an earlier one is copied.

    safetensors refuses aliased tensors (tied weights appear twice in a state_dict).
    """
    seen: set[int] = set()
    out: dict[str, Tensor] = {}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen:
            t = t.clone()
        elif ptr != -1:
            seen.add(ptr)
        out[name] = t
    return out


def write_tensors(path: str | Path, tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save tensors as one safetensors file, atomically (tied weights are stored per name)."""
    atomic_write_bytes(path, save(tensors_for_saving(tensors), metadata=metadata))


def read_tensors(path: str | Path) -> dict[str, Tensor]:
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "a safetensors file", "no such file")
    try:
        return load_file(str(p))
    except Exception as e:  # safetensors raises its own error types
        raise DataError(p, None, "a valid safetensors file", str(e)) from None
