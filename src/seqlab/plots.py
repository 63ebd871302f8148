"""Figures: an alignment heatmap of attention weights (Bahdanau et al. 2015, Fig. 3).

Shapes: T target tokens (rows), S source tokens (columns).
Needs matplotlib (the ``plots`` extra); it draws with the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, MissingDependencyError

__all__ = ["save_attention_heatmap"]


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
