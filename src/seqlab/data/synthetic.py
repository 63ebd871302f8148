"""Seeded generators for synthetic sequence tasks with known answers.

Each generator takes ``n`` (how many examples) and ``seed``, draws from its own
``numpy.random.default_rng(seed)`` (never global state), and returns a list of plain
example dicts shaped like the readers' output, so the same task code serves them:

* :func:`copying` - the copying-memory problem (Hochreiter & Schmidhuber 1997), laid out as
  in the TCN repository (Bai, Kolter & Koltun 2018, ``copy_memory/utils.py``); labeling-shaped.
* :func:`adding` - the adding problem (Hochreiter & Schmidhuber 1997): two channels, one
  float target.
* :func:`parity` - the parity of a bit string; classification-shaped.

The chance-level numbers a model must beat are :func:`copying_chance_loss` and
:data:`ADDING_CHANCE_MSE`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["copying", "adding", "parity", "copying_chance_loss", "ADDING_CHANCE_MSE"]

#: MSE of always predicting 1 on the adding problem: Var(U1 + U2) = 2/12.
ADDING_CHANCE_MSE = 1.0 / 6.0


def _check(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}")


def copying_chance_loss(T: int = 100, n_symbols: int = 8, copy_len: int = 10) -> float:
    """Mean per-position cross-entropy (nats) of a model that has learned nothing to recall.

    It predicts blank with certainty except on the last ``copy_len`` positions, where it
    spreads over the ``n_symbols`` symbols: ``copy_len * ln(n_symbols) / (T + 2 * copy_len)``,
    i.e. ``10 ln 8 / (T + 20)`` = 0.1733 at T = 100. Below it, the model has learned.
    """
    return copy_len * math.log(n_symbols) / (T + 2 * copy_len)


def copying(
    n: int,
    T: int = 100,
    n_symbols: int = 8,
    copy_len: int = 10,
    seed: int = 0,
    recall_fill: Literal["marker", "blank"] = "marker",
) -> list[dict[str, Any]]:
    """The copying-memory problem, as aligned token/tag sequences of length ``T + 2*copy_len``.

    Input: ``copy_len`` symbols drawn uniformly from ``1..n_symbols``, then ``T - 1`` blanks
    (``0``), then the marker ``n_symbols + 1`` (``9``) that says "recall now", then
    ``copy_len`` more positions. As in the TCN repository those hold the marker again
    (``recall_fill="marker"``: the last ``copy_len + 1`` inputs are all ``9``); with
    ``recall_fill="blank"`` they are blanks (the Arjovsky et al. 2016 layout).
    Target: blanks everywhere except the last ``copy_len`` positions, which repeat the
    symbols. A model that has failed sits at :func:`copying_chance_loss`.

    Returns:
        ``[{"tokens": [str ids], "tags": [str ids]}, ...]``, ids written as decimal strings.
    """
    _check("n", n, 0)
    _check("T", T, 1)
    _check("n_symbols", n_symbols, 1)
    _check("copy_len", copy_len, 1)
    if recall_fill not in ("marker", "blank"):
        raise ConfigError(f"recall_fill must be 'marker' or 'blank'; got {recall_fill!r}")
    rng = np.random.default_rng(seed)
    marker = n_symbols + 1
    symbols = rng.integers(1, n_symbols + 1, size=(n, copy_len))  # (N, L)
    length = T + 2 * copy_len
    x = np.zeros((n, length), dtype=np.int64)  # (N, T + 2L)
    x[:, :copy_len] = symbols
    x[:, T + copy_len - 1] = marker
    if recall_fill == "marker":
        x[:, T + copy_len :] = marker
    y = np.zeros((n, length), dtype=np.int64)  # (N, T + 2L)
    y[:, -copy_len:] = symbols
    return [
        {"tokens": [str(v) for v in xi], "tags": [str(v) for v in yi]}
        for xi, yi in zip(x.tolist(), y.tolist())
    ]


def adding(n: int, T: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """The adding problem: add the two values whose marker is 1.

    ``values`` are ``T`` draws from U(0, 1); ``markers`` are 0 except exactly two 1s, one
    drawn uniformly in the first half (``[0, T//2)``) and one in the second
    (``[T//2, T)``); ``target`` is the sum of the two marked values. Always predicting 1
    gives MSE :data:`ADDING_CHANCE_MSE` = 1/6.

    Returns:
        ``[{"values": list[float], "markers": list[int], "target": float}, ...]``.
    """
    _check("n", n, 0)
    _check("T", T, 2)
    rng = np.random.default_rng(seed)
    values = rng.random((n, T))  # (N, T) float64
    half = T // 2
    first = rng.integers(0, half, size=n)  # (N,)
    second = rng.integers(half, T, size=n)  # (N,)
    rows = np.arange(n)
    markers = np.zeros((n, T), dtype=np.int64)  # (N, T)
    markers[rows, first] = 1
    markers[rows, second] = 1
    targets = values[rows, first] + values[rows, second]  # (N,)
    return [
        {"values": v, "markers": m, "target": float(t)}
        for v, m, t in zip(values.tolist(), markers.tolist(), targets.tolist())
    ]


def parity(n: int, min_len: int = 1, max_len: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """Bit strings labelled by the parity of their number of ones.

    Lengths are uniform on ``[min_len, max_len]``, bits are fair coin flips.

    Returns:
        ``[{"tokens": ["0", "1", ...], "label": "even" | "odd"}, ...]``.
    """
    _check("n", n, 0)
    _check("min_len", min_len, 1)
    _check("max_len", max_len, min_len)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)  # (N,)
    out: list[dict[str, Any]] = []
    for length in lengths.tolist():
        bits = rng.integers(0, 2, size=length).tolist()
        out.append({"tokens": [str(b) for b in bits], "label": "odd" if sum(bits) % 2 else "even"})
    return out
