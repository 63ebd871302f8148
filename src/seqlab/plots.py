"""Figures: an alignment heatmap of attention weights (Bahdanau et al. 2015, Fig. 3), and the
context-sensitivity probe's influence heatmap and per-position bar chart (:mod:`seqlab.probes`).

Shapes: T target tokens (rows), S source tokens (columns).
Needs matplotlib (the ``plots`` extra); it draws with the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, MissingDependencyError

__all__ = ["save_attention_heatmap", "save_line_plot", "save_bar_plot"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise MissingDependencyError(
            "plots need matplotlib: pip install 'seqlab[plots]' (or pip install matplotlib)"
        ) from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_attention_heatmap(
    weights: Any, source_tokens: Sequence[str], target_tokens: Sequence[str], path: str | Path,
    *, title: str | None = None,
) -> Path:
    """Save ``weights`` (T, S) (a tensor or array; row t = attention of target token t over the
    source) as a PNG heatmap with source tokens on the x axis and target tokens on the y axis.
    Returns the path written. Raises :class:`ConfigError` when the shape does not match the
    token lists or a weight is not finite."""
    w = _as_array(weights)
    if w.ndim != 2:
        raise ConfigError(f"attention weights must be 2-D (T, S), found shape {tuple(w.shape)}")
    t, s = w.shape
    if (t, s) != (len(target_tokens), len(source_tokens)):
        raise ConfigError(
            f"attention weights of shape (T, S) = {(t, s)} need {t} target and {s} source tokens; "
            f"found {len(target_tokens)} target and {len(source_tokens)} source tokens"
        )
    if t == 0 or s == 0:
        raise ConfigError(f"attention weights must not be empty, found shape {(t, s)}")
    if not np.isfinite(w).all():
        raise ConfigError("attention weights must be finite")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * s + 1.5), max(2.5, 0.4 * t + 1.2)))
    try:
        image = ax.imshow(w, cmap="viridis", aspect="auto", vmin=0.0, vmax=max(1e-12, float(w.max())))
        ax.set_xticks(range(s), labels=list(source_tokens), rotation=90)
        ax.set_yticks(range(t), labels=list(target_tokens))
        ax.set_xlabel("source")
        ax.set_ylabel("target")
        if title:
            ax.set_title(title)
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def _as_array(weights: Any) -> np.ndarray:
    detach = getattr(weights, "detach", None)
    if detach is not None:  # a torch tensor
        weights = detach().float().cpu().numpy()
    try:
        return np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"attention weights must be numeric, found {type(weights).__name__}") from e


def save_line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, *,
    xlabel: str, ylabel: str, title: str | None = None, logx: bool = False, logy: bool = False,
    hline: tuple[float, str] | None = None,
) -> Path:
    """Save one line per ``series`` entry (name -> (xs, ys)) as a PNG; ``hline`` = (y, label)
    draws a dashed reference line (e.g. chance). Non-finite points are dropped. Returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    try:
        for name, (xs, ys) in series.items():
            pts = [(float(x), float(y)) for x, y in zip(xs, ys) if np.isfinite(x) and np.isfinite(y)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name, ms=3)
        if hline is not None:
            ax.axhline(hline[0], color="grey", ls="--", lw=1, label=hline[1])
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def save_bar_plot(
    values: Mapping[str, float], path: str | Path, *, ylabel: str, title: str | None = None,
    hline: tuple[float, str] | None = None,
) -> Path:
    """Save one bar per ``values`` entry (name -> value) as a PNG; non-finite values show as 0
    with the value written as text above. Returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(values) + 2.0), 4.0))
    try:
        names = list(values)
        heights = [float(values[n]) if np.isfinite(values[n]) else 0.0 for n in names]
        bars = ax.bar(range(len(names)), heights, color="tab:blue")
        ax.set_xticks(range(len(names)), labels=names, rotation=20)
        for bar, n in zip(bars, names):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{values[n]:.3g}", ha="center",
                    va="bottom", fontsize=8)
        if hline is not None:
            ax.axhline(hline[0], color="grey", ls="--", lw=1, label=hline[1])
            ax.legend(fontsize=8)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def _finite(values: Any, what: str) -> np.ndarray:
    """As an array with +inf (a KL where the edited model gives 0 to a possible label) drawn
    at the largest finite value; NaN is an error."""
    a = _as_array(values)
    if np.isnan(a).any():
        raise ConfigError(f"{what} must not be NaN")
    finite = a[np.isfinite(a)]
    top = float(finite.max()) if finite.size else 1.0
    return np.where(np.isposinf(a), top, a)


def save_influence_heatmap(result: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Save an :class:`~seqlab.probes.sensitivity.InfluenceResult` as a PNG heatmap: rows =
    the changed input position i (``result.tokens``), columns = output row j
    (``result.outputs``), colour = mean KL (nats). Returns the path written."""
    w = _finite(result.kl, "influence values")
    rows, cols = list(result.tokens), list(result.outputs)
    if w.shape != (len(rows), len(cols)) or w.size == 0:
        raise ConfigError(f"influence matrix of shape {tuple(w.shape)} needs {len(rows)} rows and {len(cols)} columns")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    t, s = w.shape
    fig, ax = plt.subplots(figsize=(max(3.5, 0.45 * s + 2.0), max(2.5, 0.4 * t + 1.4)))
    try:
        image = ax.imshow(w, cmap="magma", aspect="auto", vmin=0.0, vmax=max(1e-12, float(w.max())))
        ax.set_xticks(range(s), labels=[f"{j}:{c}" for j, c in enumerate(cols)], rotation=90)
        ax.set_yticks(range(t), labels=[f"{i}:{r}" for i, r in enumerate(rows)])
        ax.set_xlabel("output position j")
        ax.set_ylabel("changed position i")
        ax.set_title(title or f"{result.family} ({result.task}): KL(p_j || q_j) after editing token i")
        fig.colorbar(image, ax=ax, label="mean KL (nats)")
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def save_sensitivity_plot(result: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Save a :class:`~seqlab.probes.sensitivity.SensitivityResult` (one edit) as a PNG bar
    chart of KL (nats) per output row, the edited position marked and flipped top-1
    predictions hatched. Returns the path written."""
    kl = _finite(result.kl, "KL values")
    labels = [f"{j}:{o}" for j, o in enumerate(result.outputs)]
    if kl.ndim != 1 or len(kl) != len(labels) or not len(labels):
        raise ConfigError(f"{len(kl)} KL values for {len(labels)} outputs")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(3.5, 0.45 * len(labels) + 2.0), 3.2))
    try:
        bars = ax.bar(range(len(labels)), kl, color="tab:blue")
        for bar, flipped in zip(bars, result.flipped):
            if flipped:
                bar.set_hatch("//")
                bar.set_color("tab:red")
        if len(labels) == len(result.tokens):
            ax.axvline(result.position, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(labels)), labels=labels, rotation=90)
        ax.set_ylabel("KL (nats)")
        ax.set_xlabel("output position j (red: top-1 flipped)")
        ax.set_title(title or f"{result.family}: token {result.position} -> {result.replacement!r}")
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
