"""Forecasting: a panel of numeric series -> the next h values of each.

An example is one series: ``{"id": "s1", "y": [...], "m": 12, "static": {...}, "past": {...},
"future": {...}}``; only ``y`` is required (``id`` defaults to the position, ``m`` to the task's
``season_length``). Covariates come in three explicit roles: ``static`` (name -> one number),
``past`` (name -> one value per step of ``y``: known only up to the forecast origin) and
``future`` (name -> values known ahead: as many as ``y`` in a split, ``len(y) + h`` for an
input to forecast); ``start`` (the integer time index of the first value) is kept for reference. A model that cannot use a role refuses it; none is ever ignored.

In a split, an example's last ``h`` values are what is scored and the values before them the
history it is forecast from (as GluonTS does); an input to ``predict`` is all history. The
competition split (:func:`competition_split`) cuts each series so that test scores its last h
values, valid the h before, and train holds what precedes both.

NaN in ``y`` is an error unless ``missing="interpolate"`` (interior gaps linearly, leading ones
dropped, trailing ones carried forward from the last value).

Metrics (:mod:`seqlab.metrics.forecasting`), point-weighted over all series and horizons:
MAE, RMSE, MAPE, sMAPE, MASE, RMSSE, OWA against Naive2 (computed here from the history), and
with intervals MSIS, coverage, pinball per quantile and CRPS. ``loss`` is the mean squared error.

Neural ends (any encoder family): the last ``lookback`` values of the history (default 3h)
scaled by their window's mean absolute value, one step per position, and a direct
multi-horizon head (the last state -> h values), so errors do not accumulate. Batch:
``values`` (B, L, 1), ``mask`` (B, L), ``targets`` (B, h) (NaN for inputs), ``scale`` (B,),
``index`` (B,).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import TruncationReport, pad_floats
from seqlab.errors import ConfigError, DataError
from seqlab.metrics import forecasting as fm
from seqlab.tasks.base import Batch, Encoded, Example, Item, ProbeRows, Task
from seqlab.tasks.regression import parse_numbers

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["ForecastingConfig", "ForecastingTask", "Series", "competition_split", "interpolate"]

ROLES = ("static", "past", "future")


@dataclass(frozen=True)
class ForecastingConfig:
    """``horizon``: h; ``season_length``: m when an example does not give its own; ``missing``:
    the NaN policy; ``levels``: the interval levels (percent) that evaluate reports; ``lookback``:
    the neural window (None: 3h)."""

    horizon: int = 6
    season_length: int = 1
    missing: Literal["error", "interpolate"] = "error"
    levels: tuple[float, ...] = (80.0, 95.0)
    lookback: int | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"horizon must be >= 1, found {self.horizon}")
        if self.season_length < 1:
            raise ConfigError(f"season_length must be >= 1, found {self.season_length}")
        if self.missing not in ("error", "interpolate"):
            raise ConfigError(f"missing must be 'error' or 'interpolate', found {self.missing!r}")
        if any(not 0 < lv < 100 for lv in self.levels):
            raise ConfigError(f"levels are percentages in (0, 100), found {self.levels}")
        if self.lookback is not None and self.lookback < 1:
            raise ConfigError(f"lookback must be >= 1 or None, found {self.lookback}")


@dataclass
class Series:
    """One series as the models see it: ``y`` (n,) float64 finite, ``m``, covariates by role."""

    id: str
    y: np.ndarray
    m: int
    static: dict[str, float]
    past: dict[str, np.ndarray]
    future: dict[str, np.ndarray]

    @property
    def has_covariates(self) -> bool:
        return bool(self.static or self.past or self.future)

    def roles(self) -> list[str]:
        return [r for r in ROLES if getattr(self, r)]


def interpolate(y: np.ndarray) -> np.ndarray:
    """Interior NaNs filled linearly, leading ones dropped, trailing ones carried forward."""
    ok = np.isfinite(y)
    if not ok.any():
        raise DataError(None, None, "a series with at least one value", "only missing values")
    y = y[int(np.argmax(ok)):]
    ok = np.isfinite(y)
    t = np.arange(len(y))
    return np.interp(t, t[ok], y[ok])


def competition_split(examples: Sequence[Example], h: int) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, valid, test): each series whole in test, without its last h values in valid,
    without its last 2h in train; a series too short for that (under 2h + 2 values) is refused."""
    train: list[Example] = []
    valid: list[Example] = []
    test: list[Example] = []
    for i, ex in enumerate(examples):
        n = len(ex["y"])
        if n < 2 * h + 2:
            raise DataError(None, None, f"series {ex.get('id', i)!r}: at least 2h + 2 = {2 * h + 2} values "
                            "for the competition split", f"{n}")
        for out, cut in ((train, 2 * h), (valid, h), (test, 0)):
            out.append(_cut(ex, n - cut))
    return train, valid, test


def _cut(ex: Example, end: int) -> Example:
    out = dict(ex)
    out["y"] = list(ex["y"][:end])
    for role in ("past", "future"):
        if role in ex:
            out[role] = {k: list(v[:end]) for k, v in ex[role].items()}
    return out


class ForecastingTask(Task):
    name = "forecasting"
    output = "values"
    causal = True
    main_metric = "mase"
    greater_is_better = False
    alignment = "panel of series (+ covariates) -> next h values"
    loss_name = "MSE (scaled per window)"
    decoding = "direct multi-horizon"
    metric_names = ("mae", "rmse", "mape", "smape", "smape_abs", "mase", "rmsse", "owa")
    input_keys = ("y",)
    prediction_kind = "sequence"
    prediction_words = "the forecast"
    ends_used = ("frontend_dim", "pooling", "patch")
    file_shapes = (("y",),)
    probe_rows: ProbeRows = ""
    @staticmethod
    def read_file(path: Path, options: Mapping[str, Any] | None) -> list[Example] | None:
        """A ``.csv`` is the long format (:func:`seqlab.data.forecasting.read_long_csv`: one row
        per series and step, reader options ``id_col``, ``static``, ``future``, ...), not one
        example per row; other files are read as usual (None). ``options`` None only asks."""
        if path.suffix.lower() != ".csv":
            return None
        if options is None:
            return []
        from seqlab.data.forecasting import read_long_csv

        return read_long_csv(path, **options)

    @staticmethod
    def carve(examples: Sequence[Example], options: Mapping[str, Any]) -> tuple[list[Example], list[Example], list[Example]]:
        """The splits of a user's series: the competition split at the task's horizon."""
        return competition_split(examples, int(options.get("horizon", ForecastingConfig.horizon)))

    def __init__(self, config: ForecastingConfig | None = None) -> None:
        self.config = config or ForecastingConfig()
        self.keys = ("y",)  # type: ignore[misc]

    @property
    def h(self) -> int:
        return self.config.horizon

    @property
    def lookback(self) -> int:
        return self.config.lookback or 3 * self.h

    # --- reading examples -------------------------------------------------------------------
    def series(self, ex: Any, index: int, *, extra: int = 0) -> Series:
        """One example checked: values finite (or repaired by the missing policy), covariates
        of the right lengths (``future`` reaches ``extra`` steps past ``y``)."""
        if isinstance(ex, (list, tuple, np.ndarray)):
            ex = {"y": ex}
        if not isinstance(ex, dict) or "y" not in ex:
            raise DataError(None, None, f"series {index}: a record with a 'y' list of numbers (or a list of numbers)",
                            repr(ex)[:80])
        sid = str(ex.get("id", index))
        try:
            y = np.asarray(ex["y"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(None, None, f"series {sid!r}: 'y' as a list of numbers", repr(ex["y"])[:80]) from None
        if y.ndim != 1 or not len(y):
            raise DataError(None, None, f"series {sid!r}: 'y' as a non-empty list of numbers", f"shape {y.shape}")
        dropped = 0
        if self.config.missing == "interpolate" and not np.isfinite(y).all():
            fixed = interpolate(y)
            dropped, y = len(y) - len(fixed), fixed  # leading gaps dropped: so are their covariate steps
        elif not np.isfinite(y).all():
            bad = np.flatnonzero(~np.isfinite(y))
            raise DataError(None, None, f"series {sid!r}: finite values (or task option missing='interpolate')",
                            f"{len(bad)} missing value(s), the first at position {int(bad[0])}")
        m = int(ex.get("m", self.config.season_length))
        if m < 1:
            raise DataError(None, None, f"series {sid!r}: a season length m >= 1", str(ex.get("m")))
        static = {str(k): float(v) for k, v in (ex.get("static") or {}).items()}
        past: dict[str, np.ndarray] = {}
        future: dict[str, np.ndarray] = {}
        for role, out, want in (("past", past, len(y)), ("future", future, len(y) + extra)):
            for k, v in (ex.get(role) or {}).items():
                arr = np.asarray(v, dtype=np.float64)[dropped:]
                if arr.shape != (want,):
                    raise DataError(None, None, f"series {sid!r}: {role} covariate {k!r} with {want} values", f"{arr.shape}")
                out[str(k)] = arr
        unknown = set(ex) - {"id", "y", "m", "start", *ROLES}
        if unknown:
            raise DataError(None, None, f"series {sid!r}: keys id, y, m, start, static, past, future", f"also {sorted(unknown)}")
        return Series(sid, y, m, static, past, future)

    def split_series(self, ex: Any, index: int) -> tuple[Series, np.ndarray]:
        """(the history as a Series, the last h values to score)."""
        s = self.series(ex, index)
        if len(s.y) <= self.h:
            raise DataError(None, None, f"series {s.id!r}: more than h = {self.h} values to score its last h", f"{len(s.y)}")
        n = len(s.y) - self.h
        hist = Series(s.id, s.y[:n], s.m, s.static, {k: v[:n] for k, v in s.past.items()}, s.future)
        return hist, s.y[n:]

    def parse_input(self, text: str) -> Any:
        """A JSON record (``{"y": [...], ...}``) or numbers separated by spaces or commas."""
        return parse_numbers(text)

    def check_input(self, value: Any, index: int) -> None:
        self.series(value, index, extra=self.h)

    # --- fitting and encoding (neural ends) ----------------------------------------------------
    def fit(self, examples: Sequence[Example]) -> ForecastingTask:
        if not examples:
            raise DataError(None, None, "at least one training series", "none")
        for i, ex in enumerate(examples):
            self.series(ex, i)
        return self

    @property
    def output_size(self) -> int:
        return self.h

    def _window(self, hist: np.ndarray, target: np.ndarray | None, index: int) -> Item:
        window = hist[-self.lookback:]
        scale = float(np.mean(np.abs(window))) or 1.0
        tgt = [math.nan] * self.h if target is None else (target / scale).tolist()
        return {"values": (window / scale).astype(np.float32)[:, None], "target": tgt, "scale": scale, "index": index}

    def _no_covariates(self, s: Series) -> None:
        if s.has_covariates:
            raise ConfigError(f"series {s.id!r} has {'/'.join(s.roles())} covariates; the neural forecasting ends "
                              "do not read covariates yet (a classical method that uses them, or drop them)")

    def reference(self, hist: Series, target: np.ndarray) -> dict[str, Any]:
        return {"y": target.tolist(), "insample": hist.y.tolist(), "m": hist.m}

    def encode(self, examples: Sequence[Example]) -> Encoded:
        """One window per series (its last h values the target); a series of h values or fewer
        has no window and is left out, with one warning naming how many (in a competition split
        only training series can be that short)."""
        items: list[Item] = []
        refs: list[dict[str, Any]] = []
        short = [i for i, ex in enumerate(examples) if isinstance(ex, dict) and "y" in ex and len(ex["y"]) <= self.h]
        if short:
            print(f"[seqlab] {len(short)} series of at most h = {self.h} values have no window: left out",
                  file=sys.stderr)
        skip = set(short)
        for i, ex in enumerate(examples):
            if i in skip:
                continue
            hist, target = self.split_series(ex, i)
            self._no_covariates(hist)
            items.append(self._window(hist.y, target, len(items)))  # index: the row among the items
            refs.append(self.reference(hist, target))
        longest = max((len(it["values"]) for it in items), default=0)
        return Encoded(items=items, references=refs, report=TruncationReport(len(items), 0, self.lookback, "head", longest))

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        out = []
        for i, v in enumerate(inputs):
            s = self.series(v, i, extra=self.h)
            self._no_covariates(s)
            out.append(self._window(s.y, None, i))
        return out

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["values"]) for it in items]

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        values, mask = pad_floats([it["values"] for it in items])
        return {
            "values": values,  # (B, L, 1)
            "mask": mask,  # (B, L) bool
            "targets": torch.tensor([it["target"] for it in items], dtype=torch.float32).view(len(items), -1),  # (B, h)
            "scale": torch.tensor([it["scale"] for it in items], dtype=torch.float64),  # (B,)
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
        }

    def build_frontend(self, spec: EndsSpec) -> nn.Module:
        from seqlab.models.frontends import ValueFrontend

        return ValueFrontend(1, spec.embedding_dim, spec.dropout, spec.ends.patch)

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        from seqlab.models.heads import RegressionHead

        return RegressionHead(dim, self.h, spec.ends.pooling, spec.dropout, getattr(encoder, "last", None))

    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output`` (B, h) scaled values -> (summed squared error, known targets)."""
        targets = batch["targets"]
        known = ~torch.isnan(targets)
        return F.mse_loss(output.float()[known], targets[known], reduction="sum"), known.sum()

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """(B, h) -> each row's forecast in the original units."""
        values = output.detach().double().cpu().numpy() * batch["scale"].cpu().numpy()[:, None]  # (B, h)
        return [v.tolist() for v in values]

    # --- metrics --------------------------------------------------------------------------------
    def metrics(self, tallies: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        """``tallies``: per series a forecast (h floats) or ``{"mean": [...], "intervals": {level:
        [lower, upper]}}``; ``references``: :meth:`reference`'s records."""
        out = self.base_metrics(nll_sum, n_units)
        if tallies:
            out.update(fm.panel_metrics(self.scored(tallies, references)))
        return out

    def scored(self, tallies: Sequence[Any], references: Sequence[Any]) -> list[fm.SeriesForecast]:
        """The series as the metrics take them, with Naive2's forecast for OWA."""
        from seqlab.forecast.seasonal import deseasonalise

        out = []
        for t, r in zip(tallies, references):
            mean = t["mean"] if isinstance(t, dict) else t
            iv = {float(k): (np.asarray(v[0]), np.asarray(v[1])) for k, v in (t.get("intervals") or {}).items()} \
                if isinstance(t, dict) else {}
            insample = np.asarray(r["insample"], dtype=np.float64)
            season = deseasonalise(insample, r["m"])  # Naive2: naive on the adjusted series, reseasonalised
            n2 = season.restore(np.full(len(r["y"]), season.adjust(insample)[-1]), len(insample))
            out.append(fm.SeriesForecast(np.asarray(r["y"]), np.asarray(mean, dtype=np.float64), insample, r["m"], iv, n2))
        return out

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Noisy seasonal series of period 4 around different levels: the next 4 values repeat
        the last season (seasonal naive is nearly right; so can a network learn to be)."""
        rng = np.random.default_rng(seed)
        pattern = np.array([1.0, 1.4, 0.8, 0.6])
        data: list[Example] = []
        for i in range(24):
            level = 5.0 + 10.0 * rng.random()
            y = level * np.tile(pattern, 5) + rng.normal(0, 0.05, 20)
            data.append({"id": f"s{i}", "y": [round(float(v), 4) for v in y], "m": 4})
        inputs: list[Any] = [data[0]["y"][:12], {"y": data[1]["y"][:16], "m": 4}]
        return data, inputs, {"horizon": 4, "season_length": 4}

    def state(self) -> dict[str, Any]:
        return {"config": to_dict(self.config)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ForecastingTask:
        return cls(from_dict(ForecastingConfig, state["config"]))
