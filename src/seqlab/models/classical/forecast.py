"""The classical forecasting family: one local method fitted per series, in parallel.

``seqlab.build("theta", task="forecasting")`` gives a :class:`ForecastModel` whose method is
named by its registry entry (``defaults["method"] = "module:Class"``; ``options`` are the
method's own settings). ``fit`` estimates the method on every training series (joblib,
``n_jobs`` workers, ``backend`` "loky" (processes), "threading", or "dask" with a running
``distributed.Client``); the model keeps each series' history and estimates, so a saved model
forecasts bit-identically after ``load``. ``evaluate`` and ``predict`` reuse the stored fit
of a series whose history is the one fitted, and fit the method afresh to any other history
(a local model's forecast is a function of the history it is given).

Intervals (``intervals="auto"``): model-based where the method has them, else conformal from
rolling-origin residuals pooled over the training panel ("panel": each series' errors at
``conformal_windows`` origins scaled by its MASE scale, one quantile per step for all series;
:mod:`seqlab.forecast.conformal`); "model", "conformal" (per series, from its own origins only),
"panel" or "none" force a choice. Covariates: only known-future ones, and only for
a method that uses them (``uses_covariates``); any other is refused, naming the role.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import torch

from seqlab.errors import ConfigError, MissingDependencyError
from seqlab.forecast.conformal import Conformal, panel_intervals, scaled_scores
from seqlab.forecast.local import Forecast, LocalMethod
from seqlab.forecast.methods import load_method
from seqlab.models.classical.base import ClassicalModel
from seqlab.tasks.base import Example
from seqlab.tasks.forecasting import ForecastingTask, Series

__all__ = ["ForecastConfig", "ForecastModel", "fit_panel"]


@dataclass(frozen=True)
class ForecastConfig:
    """``method``: "module:Class" (set by the registry entry); ``options``: its settings."""

    method: str = "seqlab.forecast.simple:Naive"
    options: dict[str, Any] = field(default_factory=dict)
    n_jobs: int = 1
    backend: Literal["loky", "threading", "dask"] = "loky"
    intervals: Literal["auto", "model", "conformal", "panel", "none"] = "auto"
    conformal_windows: int = 5

    def __post_init__(self) -> None:
        if ":" not in self.method:
            raise ConfigError(f"method must be 'module:Class', found {self.method!r}")
        if self.n_jobs == 0:
            raise ConfigError("n_jobs must be a positive count or negative (joblib: -1 = all cores), not 0")
        if self.intervals not in ("auto", "model", "conformal", "panel", "none"):
            raise ConfigError(f"intervals must be auto, model, conformal, panel or none, found {self.intervals!r}")
        if self.conformal_windows < 1:
            raise ConfigError(f"conformal_windows must be >= 1, found {self.conformal_windows}")


def _fit_one(method: LocalMethod, y: np.ndarray, m: int, x: np.ndarray | None) -> dict[str, Any]:
    return method.fit(y, m, x).params()


def _parallel(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], n_jobs: int, backend: str) -> list[Any]:
    """``[fn(*args) for args in calls]``, by joblib's workers unless n_jobs = 1."""
    if n_jobs == 1 or len(calls) < 2:
        return [fn(*args) for args in calls]
    try:
        from joblib import Parallel, delayed, parallel_config
    except ImportError:
        raise MissingDependencyError("parallel fitting (n_jobs != 1) needs joblib: pip install joblib") from None
    with parallel_config(backend=backend, n_jobs=n_jobs):
        return list(Parallel()(delayed(fn)(*args) for args in calls))


def fit_panel(method: LocalMethod, series: Sequence[tuple[np.ndarray, int, np.ndarray | None]], n_jobs: int = 1,
              backend: str = "loky") -> list[dict[str, Any]]:
    """Each series' estimates, fitted in parallel by joblib (serially when n_jobs = 1)."""
    return _parallel(_fit_one, [(method, y, m, x) for y, m, x in series], n_jobs, backend)


class ForecastModel(ClassicalModel):
    serves = (ForecastingTask,)
    task: ForecastingTask
    config: ForecastConfig

    def __init__(self, family: str, task: Any, config: ForecastConfig) -> None:
        super().__init__(family, task, config)
        base = load_method(config.method, config.options)
        if config.intervals == "model" and not base.has_intervals:
            raise ConfigError(f"{family} has no model-based intervals; use intervals='conformal' or 'auto'")
        conformal = config.intervals == "conformal"
        self.panel = config.intervals == "panel" or (config.intervals == "auto" and not base.has_intervals)
        # Conformal has LocalMethod's members (its name is built from the wrapped method's, so an
        # instance property rather than the protocol's ClassVar): cast, not converted
        self.method: LocalMethod = cast(LocalMethod, Conformal(base, task.h, config.conformal_windows)) if conformal else base
        self.levels = () if config.intervals == "none" else tuple(task.config.levels)
        self.ids_: list[str] = []
        self.histories_: list[np.ndarray] = []
        self.ms_: list[int] = []
        self.params_: list[dict[str, Any]] = []
        self.panel_scores_ = np.zeros((0, task.h))  # (N, h) scaled rolling-origin errors ("panel")

    # --- covariates -------------------------------------------------------------------------
    def _x(self, s: Series, n: int, h: int = 0) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(x (n, k), x_future (h, k)) from the known-future covariates; other roles refused."""
        refused = [r for r in ("static", "past") if getattr(s, r)]
        if s.future and not self.method.uses_covariates:
            refused.append("future")
        if refused:
            raise ConfigError(f"series {s.id!r} has {'/'.join(refused)} covariates, which {self.family} cannot use; "
                              "remove them or choose a method that uses them (none is ever ignored)")
        if not s.future:
            return None, None
        x = np.stack([s.future[k] for k in sorted(s.future)], axis=1)
        return x[:n], (x[n:n + h] if h else None)

    # --- fitting ----------------------------------------------------------------------------
    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]] | None:
        series = [self.task.series(ex, i) for i, ex in enumerate(train)]
        inputs = [(s.y, s.m, self._x(s, len(s.y))[0]) for s in series]
        self.params_ = fit_panel(self.method, inputs, self.config.n_jobs, self.config.backend)
        self.ids_ = [s.id for s in series]
        self.histories_ = [s.y for s in series]
        self.ms_ = [s.m for s in series]
        if self.panel:
            per_series = _parallel(scaled_scores, [(self.method, s.y, s.m, self.task.h, self.config.conformal_windows)
                                                   for s in series], self.config.n_jobs, self.config.backend)
            self.panel_scores_ = np.concatenate([np.zeros((0, self.task.h)), *per_series])
        return None

    def _forecasts(self, series: Sequence[Series], levels: Sequence[float]) -> list[Forecast]:
        """Each series' forecast: the stored fit where the history is the fitted one, else a new fit."""
        known = {sid: i for i, sid in enumerate(self.ids_)}
        h = self.task.h
        todo = [i for i, s in enumerate(series) if not self._stored(known, s)]
        fresh = fit_panel(self.method, [(series[i].y, series[i].m, self._x(series[i], len(series[i].y))[0])
                                        for i in todo], self.config.n_jobs, self.config.backend)
        params = dict(zip(todo, fresh))
        out = []
        for i, s in enumerate(series):
            p = params[i] if i in params else self.params_[known[s.id]]
            x, x_future = self._x(s, len(s.y), h)
            fit = self.method.from_params(s.y, s.m, p, x)
            if self.panel:
                fc = fit.forecast(h, (), x_future)
                out.append(Forecast(fc.mean, panel_intervals(fc.mean, s.y, s.m, self.panel_scores_, levels)))
            else:
                out.append(fit.forecast(h, levels, x_future))
        return out

    def _stored(self, known: dict[str, int], s: Series) -> bool:
        j = known.get(s.id)
        return j is not None and self.ms_[j] == s.m and np.array_equal(self.histories_[j], s.y)

    def stored_params(self, s: Series) -> Any:
        """The run's own fitted parameters of ``s`` when its history is the one fitted, else None."""
        known = {sid: i for i, sid in enumerate(self.ids_)}
        return self.params_[known[s.id]] if self._stored(known, s) else None

    def forecast(self, inputs: Sequence[Any], levels: Sequence[float] | None = None) -> list[Forecast]:
        """Point forecasts and intervals (``levels``: the task's by default) for raw inputs."""
        self._check_fitted()
        series = [self.task.series(v, i, extra=self.task.h) for i, v in enumerate(inputs)]
        return self._forecasts(series, self.levels if levels is None else tuple(levels))

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        pairs = [self.task.split_series(ex, i) for i, ex in enumerate(examples)]
        fcs = self._forecasts([hist for hist, _ in pairs], self.levels)
        tallies = [{"mean": fc.mean.tolist(), "intervals": {lv: [lo.tolist(), hi.tolist()] for lv, (lo, hi) in fc.intervals.items()}}
                   for fc in fcs]
        sq = float(sum(np.sum((t - fc.mean) ** 2) for (_, t), fc in zip(pairs, fcs)))
        return tallies, [self.task.reference(hist, t) for hist, t in pairs], sq, sum(len(t) for _, t in pairs)

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        return [fc.mean.tolist() for fc in self.forecast(inputs, levels=())]

    # --- the shared API's remaining pieces -----------------------------------------------------
    def tokenize(self, value: Any) -> list[str]:
        return [repr(v) for v in self.task.series(value, 0).y]

    def output_labels(self) -> list[str]:
        return [f"t+{k}" for k in range(1, self.task.h + 1)]

    def distributions(self, inputs: Sequence[Any]) -> list[torch.Tensor]:
        raise ConfigError("a forecaster gives values and intervals, not probability distributions")

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        lengths = [len(y) for y in self.histories_]
        values = np.concatenate(self.histories_) if self.histories_ else np.zeros(0)
        tensors = {"history": torch.from_numpy(values.astype(np.float64)),  # all series end to end
                   "lengths": torch.tensor(lengths, dtype=torch.int64),
                   "panel_scores": torch.from_numpy(self.panel_scores_.astype(np.float64))}
        return tensors, {"ids": self.ids_, "m": self.ms_, "params": self.params_}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        values = tensors["history"].numpy().astype(np.float64)
        ends = np.cumsum(tensors["lengths"].numpy())
        self.histories_ = [values[e - n:e] for e, n in zip(ends, tensors["lengths"].numpy())]
        self.ids_ = [str(v) for v in extra["ids"]]
        self.ms_ = [int(v) for v in extra["m"]]
        self.params_ = list(extra["params"])
        if "panel_scores" in tensors:
            self.panel_scores_ = tensors["panel_scores"].numpy().astype(np.float64)
