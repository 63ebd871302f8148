"""The contract between a local forecasting method and the rest of seqlab.

A method is configured once (its options are a frozen dataclass or plain keyword arguments) and
fitted per series:

    fit = method.fit(y, m)                 # y: 1-D float64, finite; m: season length (1 = none)
    fc = fit.forecast(h, levels=(80, 95))  # Forecast(mean (h,), intervals {80.0: (lo, hi), ...})
    state = fit.params()                   # JSON-able: what was estimated (for save/load)
    again = method.from_params(y, m, state)  # the same fit without re-estimating

``from_params`` must reproduce ``forecast`` bit for bit: a saved model stores the history and the
parameters, never pickled objects. Methods that take covariates accept ``x`` (n, k) in ``fit`` and
``x_future`` (h, k) in ``forecast``; a method that cannot use covariates says so by
``uses_covariates = False`` and the task refuses them for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from seqlab.errors import DataError

__all__ = ["Forecast", "LocalFit", "LocalMethod", "check_series"]


@dataclass
class Forecast:
    """``mean``: (h,) point forecast; ``intervals``: level in percent -> (lower, upper), each (h,)."""

    mean: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@runtime_checkable
class LocalFit(Protocol):
    """One method fitted to one series."""

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        ...

    def params(self) -> dict[str, Any]:
        ...


@runtime_checkable
class LocalMethod(Protocol):
    """A forecasting method: its name, whether it has model-based intervals and can use covariates."""

    name: ClassVar[str]
    has_intervals: ClassVar[bool]
    uses_covariates: ClassVar[bool]

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> LocalFit:
        ...

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> LocalFit:
        ...


def check_series(y: Any, *, where: str = "series") -> np.ndarray:
    """``y`` as a 1-D float64 array of finite values, or a :class:`DataError` naming ``where``."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(None, None, f"{where}: a 1-D series of numbers", f"shape {arr.shape}")
    if arr.size == 0:
        raise DataError(None, None, f"{where}: a non-empty series", "no values")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            None, None,
            f"{where}: finite values (choose a missing= policy, e.g. missing='interpolate', to forecast a series with gaps)",
            f"{int(bad.sum())} missing or non-finite value(s), the first at position {first}",
        )
    return arr
