"""Rolling-origin backtesting and the forecasting plots.

:func:`backtest` scores a model at ``windows`` forecast origins ``step`` apart, the last one
leaving the final h values of every series to score: window k (k = windows-1 .. 0) cuts each
series at ``n - k * step`` and evaluates its last h values from the history before them
(``model.evaluate``, so a local model is refitted at each origin and a model's own intervals
are scored too). A trained global model (one with ``evaluate_windows``) is not refitted: all
its windows go through one batched forward pass. It returns each window's metrics and their
mean over windows.

:func:`save_fan_chart` draws a series' history, forecast and intervals; :func:`save_error_by_horizon`
a metric per forecast step (from :func:`seqlab.metrics.forecasting.per_horizon`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, DataError

__all__ = ["backtest", "save_fan_chart", "save_error_by_horizon"]


def backtest(model: Any, examples: Sequence[Mapping[str, Any]], windows: int = 3, step: int | None = None) -> dict[str, Any]:
    """``{"windows": [{"origin_back": k*step, metric: value, ...}, ...], "mean": {metric: mean}}``."""
    h = model.task.h
    step = h if step is None else step
    if windows < 1 or step < 1:
        raise ConfigError(f"windows and step must be >= 1, found windows={windows}, step={step}")
    cuts = [k * step for k in range(windows - 1, -1, -1)]
    for cut in cuts:
        for i, ex in enumerate(examples):
            if len(ex["y"]) - cut <= h + 2:
                raise DataError(None, None, f"series {ex.get('id', i)!r}: more than h + 2 + {cut} values for "
                                f"{windows} windows {step} apart", f"{len(ex['y'])}")
    if hasattr(model, "evaluate_windows"):  # a trained global model: every window in one batched pass
        rows = [{"origin_back": cut + h, **m} for cut, m in zip(cuts, model.evaluate_windows(examples, cuts))]
    else:
        rows = [{"origin_back": cut + h, **model.evaluate([_cut(ex, len(ex["y"]) - cut) for ex in examples])}
                for cut in cuts]
    keys = [key for key in rows[0] if key != "origin_back"]
    return {"windows": rows, "mean": {key: float(np.mean([r[key] for r in rows])) for key in keys}}


def _cut(ex: Mapping[str, Any], end: int) -> dict[str, Any]:
    """``ex`` with its values (and past / future covariates) cut at ``end``."""
    out = dict(ex)
    out["y"] = list(ex["y"][:end])
    for role in ("past", "future"):
        if role in ex:
            out[role] = {c: list(v[:end]) for c, v in ex[role].items()}
    return out


def save_fan_chart(history: Sequence[float], forecast: Any, path: str | Path, *, actual: Sequence[float] | None = None,
                   title: str | None = None) -> Path:
    """History, the point forecast and its intervals (wider ones lighter), and what happened."""
    from seqlab.plots import _pyplot

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    try:
        n, h = len(history), len(forecast.mean)
        future = np.arange(n, n + h)
        ax.plot(np.arange(n), history, color="black", lw=1, label="history")
        for level in sorted(forecast.intervals, reverse=True):
            lo, hi = forecast.intervals[level]
            ax.fill_between(future, lo, hi, color="tab:blue", alpha=0.15 + 0.25 * (1 - level / 100), lw=0,
                            label=f"{level:g}% interval")
        ax.plot(future, forecast.mean, color="tab:blue", lw=1.5, label="forecast")
        if actual is not None:
            ax.plot(future[:len(actual)], actual, color="tab:red", lw=1, ls="--", label="actual")
        ax.set_xlabel("time step")
        ax.set_ylabel("value")
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def save_error_by_horizon(steps: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path, *, metric: str = "smape",
                          title: str | None = None) -> Path:
    """One line per model (name -> :func:`per_horizon`'s rows): ``metric`` at each step."""
    from seqlab.plots import save_line_plot

    series = {}
    for name, rows in steps.items():
        if rows and metric not in rows[0]:
            raise ConfigError(f"no {metric!r} in the per-horizon rows; they hold {', '.join(rows[0])}")
        series[name] = (list(range(1, len(rows) + 1)), [r[metric] for r in rows])
    return save_line_plot(series, path, xlabel="forecast step", ylabel=metric, title=title)
