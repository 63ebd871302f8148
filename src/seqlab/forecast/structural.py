"""A basic structural time-series model: level, trend and season, fitted through the Kalman filter.

Harvey (1989), *Forecasting, Structural Time Series Models and the Kalman Filter*:

    y_t       = mu_t + gamma_t + eps_t                     eps   ~ N(0, s2_irregular)
    mu_{t+1}  = mu_t + nu_t + xi_t                         xi    ~ N(0, s2_level)
    nu_{t+1}  = nu_t + zeta_t                              zeta  ~ N(0, s2_trend)
    gamma_{t+1} = -(gamma_t + ... + gamma_{t-m+2}) + w_t   w     ~ N(0, s2_seasonal)

(the local linear trend with a dummy-variable season). Without a trend it is the local level
model; without a season (or when ``m == 1``) the last line goes. All initial states are diffuse,
handled exactly by :func:`seqlab.inference.kalman.kalman_filter`; the variances are estimated by
maximum likelihood (L-BFGS on their logarithms). ``components()`` returns the smoothed level,
trend and season for a components plot (:func:`save_components_plot`; ``seqlab probe components
RUN``): the role Prophet plays, on a state-space footing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize

from seqlab.errors import ConfigError, DataError
from seqlab.forecast.local import Forecast, check_series
from seqlab.inference.kalman import StateSpace, forecast, kalman_filter, kalman_loglik, rts_smoother

__all__ = ["Structural", "StructuralFit", "save_components_plot", "structural_state_space"]


def structural_state_space(variances: Sequence[float] | np.ndarray, m: int, trend: bool, season: bool) -> StateSpace:
    """The model above as a :class:`StateSpace`; ``variances`` = (irregular, level[, trend][, seasonal])."""
    v = list(variances)
    k_tr = 2 if trend else 1
    k_se = m - 1 if season else 0
    k = k_tr + k_se
    T = np.zeros((k, k))
    Z = np.zeros(k)
    Z[0] = 1.0
    T[0, 0] = 1.0
    q = [v[1]]
    if trend:
        T[0, 1] = T[1, 1] = 1.0
        q.append(v[2])
    if season:
        s = k_tr
        T[s, s:] = -1.0
        T[s + 1:, s:k - 1] += np.eye(k_se - 1)
        Z[s] = 1.0
        q += [v[-1]] + [0.0] * (k_se - 1)
    return StateSpace(Z=Z, T=T, RQR=np.diag(q), H=float(v[0]), Pinf=np.eye(k))


class StructuralFit:
    """A fitted structural model: variances, filter output, forecasts, smoothed components."""

    def __init__(self, y: np.ndarray, m: int, trend: bool, season: bool, variances: Sequence[float]) -> None:
        self.y, self.m, self.trend, self.season = y, m, trend, season
        self.variances = np.asarray(variances, dtype=np.float64)
        self.ss = structural_state_space(self.variances, m, trend, season)
        self.filtered = kalman_filter(y, self.ss)
        self.loglik = self.filtered.loglik

    def forecast(self, h: int, levels: Sequence[float] = (), x_future: np.ndarray | None = None) -> Forecast:
        if x_future is not None:
            raise ConfigError("the structural model uses no covariates; x_future must be None")
        mean, var = forecast(self.ss, self.filtered.a_pred[-1], self.filtered.P_pred[-1], h)
        sd = np.sqrt(np.maximum(var, 0.0))
        intervals = {}
        for lv in levels:
            z = NormalDist().inv_cdf(0.5 + float(lv) / 200.0)
            intervals[float(lv)] = (mean - z * sd, mean + z * sd)
        return Forecast(mean, intervals)

    def components(self) -> dict[str, np.ndarray]:
        """Smoothed ``level`` (n,), ``trend`` (n,) and ``season`` (n,) where the model has them,
        and the ``irregular`` remainder. The smoothed signal E[y_t | y] is ``level + season``
        (the trend is the level's slope: it enters y through the level), so level + season +
        irregular = y."""
        a, _ = rts_smoother(self.y, self.ss)
        out = {"level": a[:, 0]}
        if self.trend:
            out["trend"] = a[:, 1]
        if self.season:
            out["season"] = a[:, 2 if self.trend else 1]
        out["irregular"] = self.y - out["level"] - out.get("season", 0.0)
        return out

    def params(self) -> dict[str, Any]:
        names = ["irregular", "level"] + (["trend"] if self.trend else []) + (["seasonal"] if self.season else [])
        return {"trend": self.trend, "season": self.season, "variances": self.variances.tolist(),
                "names": names, "loglik": self.loglik}


@dataclass(frozen=True)
class Structural:
    """Local level / local linear trend / seasonal structural model by ML.

    ``trend``: include the slope; ``seasonal``: include the season when ``m > 1``."""

    name: ClassVar[str] = "structural"
    has_intervals: ClassVar[bool] = True
    uses_covariates: ClassVar[bool] = False
    trend: bool = True
    seasonal: bool = True
    max_iter: int = 200

    def __post_init__(self) -> None:
        if self.max_iter < 1:
            raise ConfigError(f"structural max_iter must be >= 1; found {self.max_iter}")

    def fit(self, y: np.ndarray, m: int, x: np.ndarray | None = None) -> StructuralFit:
        if x is not None:
            raise ConfigError("the structural model uses no covariates; x must be None")
        y = check_series(y)
        season = self.seasonal and m > 1
        n_states = (2 if self.trend else 1) + (m - 1 if season else 0)
        if len(y) <= n_states + 2:
            raise DataError(None, None, f"more than {n_states + 2} values for this structural model",
                            f"{len(y)} values")
        scale = float(np.var(np.diff(y))) or 1.0
        k = 2 + int(self.trend) + int(season)
        x0 = np.log(np.full(k, 0.1 * scale))

        def negll(u: np.ndarray) -> float:
            ss = structural_state_space(np.exp(u), m, self.trend, season)
            ll = kalman_loglik(y, ss)
            return -ll / len(y) if np.isfinite(ll) else 1e10

        res = minimize(negll, x0, method="L-BFGS-B", bounds=[(np.log(scale) - 30, np.log(scale) + 10)] * k,
                       options={"maxiter": self.max_iter})
        return StructuralFit(y, m, self.trend, season, np.exp(res.x))

    def from_params(self, y: np.ndarray, m: int, params: Mapping[str, Any], x: np.ndarray | None = None) -> StructuralFit:
        y = check_series(y)
        return StructuralFit(y, m, bool(params["trend"]), bool(params["season"]), params["variances"])


def save_components_plot(y: Sequence[float] | np.ndarray, components: Mapping[str, np.ndarray], path: str | Path, *,
                         title: str | None = None) -> Path:
    """Stacked panels sharing the time axis: the observed series with the smoothed signal
    (level + season), then each of :meth:`StructuralFit.components`' level, trend (the slope),
    season and irregular that is present."""
    from seqlab.plots import _pyplot

    y = np.asarray(y, dtype=np.float64)
    names = [k for k in ("level", "trend", "season", "irregular") if k in components]
    bad = [k for k in names if np.shape(components[k]) != y.shape]
    if "level" not in components or bad:
        raise ConfigError(f"components must hold 'level' and arrays of the series' length {len(y)}; "
                          f"found {', '.join(f'{k} {np.shape(v)}' for k, v in components.items())}")
    labels = {"level": "level", "trend": "trend (slope)", "season": "season", "irregular": "irregular"}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, axes = plt.subplots(len(names) + 1, 1, sharex=True, figsize=(7.0, 1.6 * (len(names) + 1) + 0.4))
    try:
        t = np.arange(len(y))
        signal = components["level"] + components.get("season", 0.0)
        axes[0].plot(t, y, color="black", lw=1, label="observed")
        axes[0].plot(t, signal, color="tab:blue", lw=1.2, label="smoothed (level + season)")
        axes[0].legend(fontsize=7, loc="best")
        axes[0].set_ylabel("observed", fontsize=8)
        for ax, name in zip(axes[1:], names):
            values = np.asarray(components[name])
            if name == "irregular":
                ax.vlines(t, 0.0, values, color="tab:gray", lw=1)
            else:
                ax.plot(t, values, color="tab:blue", lw=1.2)
            if name in ("trend", "season", "irregular"):
                ax.axhline(0.0, color="black", lw=0.5, alpha=0.5)
            ax.set_ylabel(labels[name], fontsize=8)
        for ax in axes:
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
        axes[-1].set_xlabel("time step")
        if title:
            axes[0].set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
