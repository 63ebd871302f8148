"""The report's figures, drawn like :mod:`seqlab.plots` (Agg backend, one PNG each): the main
metric with its 95% interval per family, and grouped bars (one group per category, one bar per
family)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from seqlab.plots import _pyplot

__all__ = ["save_interval_plot", "save_grouped_bars"]


def save_interval_plot(values: Mapping[str, tuple[float, float, float]], path: Path, *, ylabel: str,
                       title: str) -> Path:
    """One point per family (name -> (value, low, high)) with its interval as an error bar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 * len(names) + 2.0), 3.6))
    try:
        v = np.array([values[n][0] for n in names], dtype=np.float64)
        lo = np.array([values[n][1] for n in names], dtype=np.float64)
        hi = np.array([values[n][2] for n in names], dtype=np.float64)
        err = np.nan_to_num(np.stack([v - lo, hi - v]).clip(min=0))
        ax.errorbar(range(len(names)), v, yerr=err, fmt="o", capsize=5, color="tab:blue")
        for i, x in enumerate(v):
            ax.annotate(f"{x:.3g}", (i, x), textcoords="offset points", xytext=(8, 0), fontsize=8, va="center")
        ax.set_xticks(range(len(names)), labels=names, rotation=20)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=80)
    finally:
        plt.close(fig)
    return path


def save_grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | None]], path: Path, *,
                      xlabel: str, ylabel: str, title: str) -> Path:
    """Bars of ``series`` (family -> one value per group; None drawn as 0) grouped by ``groups``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    names = list(series)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(min(14.0, max(5.0, 0.35 * len(groups) * len(names) + 2.0)), 3.8))
    try:
        x = np.arange(len(groups))
        for k, name in enumerate(names):
            ys = [0.0 if y is None or not np.isfinite(y) else float(y) for y in series[name]]
            ax.bar(x + (k - (len(names) - 1) / 2) * width, ys, width, label=name)
        ax.set_xticks(x, labels=list(groups), rotation=30 if len(groups) > 5 else 0, ha="right" if len(groups) > 5 else "center")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=80)
    finally:
        plt.close(fig)
    return path
