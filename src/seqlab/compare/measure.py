"""Costs of a run: wall time, peak resident memory growth, prediction throughput.

Memory is the growth of the process's resident set size (RSS, from ``/proc/self/statm``) over its
value when the measured block starts, sampled every 10 ms by a background thread: it sees every
allocation (numpy, torch, Python) but is approximate (a peak shorter than 10 ms can be missed, and
memory the allocator keeps from an earlier block is not counted again). ``tracemalloc`` would see
Python's allocations only, not torch's. Where ``/proc`` is missing the value is None.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Cost", "measured", "rss_bytes", "raw_inputs", "throughput"]

MEMORY_NOTE = "peak RSS growth while fitting, sampled every 10 ms from /proc/self/statm"


def rss_bytes() -> int | None:
    """The process's resident set size in bytes, or None where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Cost:
    """What :func:`measured` fills in: wall seconds, CPU seconds of the process (all its threads;
    less sensitive than wall time to other programs sharing the machine) and peak RSS growth
    (bytes, None if unknown)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_bytes: int | None = None


@contextlib.contextmanager
def measured(interval: float = 0.01) -> Iterator[Cost]:
    """Time the block and sample its RSS growth (see the module doc)."""
    cost = Cost()
    start_rss = rss_bytes()
    peak = [start_rss or 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            now = rss_bytes()
            if now is not None and now > peak[0]:
                peak[0] = now

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - t0
        cost.cpu_seconds = time.process_time() - c0
        stop.set()
        thread.join()
        end = rss_bytes()
        if start_rss is not None and end is not None:
            cost.peak_bytes = max(peak[0], end) - start_rss


def raw_inputs(task: Any, examples: Sequence[dict[str, Any]]) -> list[Any] | None:
    """Each example's raw input (the first of the task's ``input_keys`` it has), as ``predict``
    takes it; None when an example has none of them."""
    out = []
    for ex in examples:
        key = next((k for k in task.input_keys if k in ex), None)
        if key is None:
            return None
        out.append(ex[key])
    return out


def throughput(model: Any, examples: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    """Examples per second of ``model.predict`` over the examples' raw inputs (one call, all of
    them), and a note: empty, or why it could not be measured."""
    inputs = raw_inputs(model.task, examples)
    if not inputs:
        return None, f"the examples hold none of the input fields {model.task.input_keys}"
    try:
        t0 = time.perf_counter()
        model.predict(inputs)
        seconds = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 (a family that cannot predict these inputs is reported, not fatal)
        return None, f"predict failed: {type(e).__name__}: {e}"
    return len(inputs) / max(seconds, 1e-9), ""
