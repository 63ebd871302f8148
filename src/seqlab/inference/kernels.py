"""Compiled CPU kernels for the chain DPs that BLAS cannot express.

Max-plus (Viterbi) has no matrix-product form, so in torch every step writes a (B, N, N)
temporary and reduces it: memory-bound, and no faster than hmmlearn's C++ loop. Compiled
with numba, the recursion runs per sequence in cache, the inner loop over destination tags
is an elementwise max that vectorises, and sequences run in parallel. numba is chosen over a
C extension because it needs no build step and no compiler at install time; over
``torch.compile`` because it needs no compiler at run time.

Shapes: B batch, T time, N states. The results equal :func:`seqlab.inference.chain.viterbi_ref`
bit for bit: sums in float64 and ties broken towards the lowest index, as ``argmax`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np

__all__ = ["viterbi_kernel", "torch_threads"]


@contextmanager
def torch_threads() -> Iterator[None]:
    """Run numba's parallel kernels on as many threads as torch uses, and leave torch's count as
    it was. numba and torch share the OpenMP runtime; a parallel kernel launched with numba's
    default count (every core) set torch's count to it too, so after one Viterbi or selective
    scan a user's ``torch.set_num_threads(1)`` (or ``OMP_NUM_THREADS=1``) no longer held: torch
    ran up to 100x slower beside other jobs, and results computed on the "one thread" path
    came from two."""
    import torch

    before = torch.get_num_threads()
    numba.set_num_threads(max(1, min(before, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@numba.njit(parallel=True, cache=True, boundscheck=False, nogil=True)
def viterbi_kernel(
    e: Any, trans: Any, start: Any, end: Any, lengths: Any, path: Any, score: Any,
) -> None:  # pragma: no cover - compiled
    """Fill ``path`` (B, T) int64 and ``score`` (B,) float64 in place.

    ``e`` (B, T, N) float64 emissions, ``trans`` (N, N) float64 from i to j, ``start``/``end``
    (N,), ``lengths`` (B,) int64. Positions past a row's length are left untouched.
    """
    B, T, N = e.shape
    for b in numba.prange(B):
        L = lengths[b]
        if L == 0:
            score[b] = 0.0
            continue
        alpha = np.empty((L, N))  # (L, N) best score of a path ending in each state
        best = np.empty(N)
        for j in range(N):
            alpha[0, j] = start[j] + e[b, 0, j]
        for t in range(1, L):
            for j in range(N):
                best[j] = alpha[t - 1, 0] + trans[0, j]
            for i in range(1, N):  # destination-major inner loop: an elementwise max (SIMD)
                a = alpha[t - 1, i]
                for j in range(N):
                    c = a + trans[i, j]
                    if c > best[j]:
                        best[j] = c
            for j in range(N):
                alpha[t, j] = best[j] + e[b, t, j]
        tag = 0
        s = alpha[L - 1, 0] + end[0]
        for j in range(1, N):
            c = alpha[L - 1, j] + end[j]
            if c > s:
                s = c
                tag = j
        score[b] = s
        path[b, L - 1] = tag
        for t in range(L - 1, 0, -1):  # backtrack: recompute the one argmax needed per step
            k = 0
            m = alpha[t - 1, 0] + trans[0, tag]
            for i in range(1, N):
                c = alpha[t - 1, i] + trans[i, tag]
                if c > m:
                    m = c
                    k = i
            tag = k
            path[b, t - 1] = tag
