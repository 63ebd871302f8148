"""What several benchmark scripts share: timing, and the HMM benchmark's problem (sizes + data)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process (all threads), result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def add_hmm_args(ap: argparse.ArgumentParser) -> None:
    """The issue's HMM benchmark size: 10,000 sequences x 100 steps, 50 states, 100 symbols."""
    ap.add_argument("--n-seq", type=int, default=10000)
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--states", type=int, default=50)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def random_hmm(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start (n,), transition (n, n) and emission (n, m) probabilities (Dirichlet draws)."""
    pi = rng.dirichlet(np.ones(n))
    A = rng.dirichlet(np.ones(n) * 0.5, size=n)
    B = rng.dirichlet(np.ones(m) * 0.5, size=n)
    return pi, A, B
