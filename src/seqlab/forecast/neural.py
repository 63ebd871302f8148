"""The pieces of a global neural forecaster: windows, scaling, losses, and the networks.

Shape legend: N series, B windows, L lookback, H horizon, Q forecast rows (1 for a point
forecast, else one per quantile), D encoder width.

**Windows.** A panel is stored as one zero-padded array ``values`` (N, T) with ``lengths`` (N,).
A window cut at origin ``t`` of series ``i`` holds the lookback ``y[t-L:t]`` (steps before the
series' start are padding: zero, and ``observed`` False) and the target ``y[t:t+H]`` (steps past
its end are not scored: ``known`` False). Training draws a series uniformly, then an origin
uniformly among the last ``history`` x H steps of its history (N-BEATS's L_H), at least one
observed value back: :func:`sample_windows`, a pure function of its numpy generator.

**Scaling.** Each window is divided by its scale: the mean absolute value of the observed
lookback ("mean_abs"), its last value ("last"), or 1 ("none"); a zero scale becomes 1. The
network sees scaled values and forecasts scaled values; forecasts are multiplied back.

**Losses** (per scored value, in scaled units, summed; :func:`forecast_loss`): ``mse``, ``mae``,
``smape`` (2|f-y| / (|f|+|y|), 0 where both are 0), ``mase`` (|f-y| over the series'
in-sample seasonal-naive MAE, also scaled) and ``pinball`` (quantile loss, one row per quantile).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from seqlab.config import from_dict
from seqlab.errors import ConfigError

__all__ = ["Panel", "sample_windows", "windows_at", "forecast_loss", "pinball", "EncoderForecaster",
           "LOSSES", "SCALES", "ENCODERS"]

LOSSES = ("mse", "mae", "smape", "mase", "pinball")
SCALES = ("mean_abs", "last", "none")
ENCODERS = ("nbeats", "lstm", "gru", "elman", "transformer", "mamba", "hybrid")

Scale = Literal["mean_abs", "last", "none"]


@dataclasses.dataclass
class Panel:
    """Series side by side: ``values`` (N, T) float64 zero-padded on the right, ``lengths`` (N,),
    ``m`` (N,) season lengths, ``mase_scale`` (N,) in-sample seasonal-naive MAE (1 lag when the
    series is shorter than m + 1; 1.0 where it is 0)."""

    values: np.ndarray
    lengths: np.ndarray
    m: np.ndarray
    mase_scale: np.ndarray

    @classmethod
    def of(cls, series: Sequence[np.ndarray], m: Sequence[int]) -> Panel:
        n = len(series)
        width = max((len(y) for y in series), default=1)
        values = np.zeros((n, width))
        scale = np.ones(n)
        for i, (y, mi) in enumerate(zip(series, m)):
            values[i, :len(y)] = y
            lag = mi if len(y) > mi else 1
            if len(y) > lag:
                d = float(np.mean(np.abs(y[lag:] - y[:-lag])))
                scale[i] = d if d > 0 else 1.0
        return cls(values, np.array([len(y) for y in series], dtype=np.int64), np.asarray(m, dtype=np.int64), scale)


def _gather(panel: Panel, rows: np.ndarray, origins: np.ndarray, lookback: int, horizon: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x (B, L), observed (B, L), y (B, H), known (B, H)) for windows cut at ``origins``."""
    pos = origins[:, None] + np.arange(-lookback, horizon)[None, :]  # (B, L+H)
    inside = (pos >= 0) & (pos < panel.lengths[rows][:, None])
    vals = np.where(inside, panel.values[rows[:, None], np.clip(pos, 0, panel.values.shape[1] - 1)], 0.0)
    return vals[:, :lookback], inside[:, :lookback], vals[:, lookback:], inside[:, lookback:]


def window_scale(x: np.ndarray, observed: np.ndarray, how: str) -> np.ndarray:
    """(B,) the scale of each window's lookback (see the module doc)."""
    if how == "none":
        return np.ones(len(x))
    if how == "last":
        s = np.abs(x[:, -1])
    else:
        s = np.abs(x * observed).sum(1) / np.maximum(observed.sum(1), 1)
    return np.where(s > 0, s, 1.0)


def _batch(panel: Panel, rows: np.ndarray, origins: np.ndarray, lookback: int, horizon: int, scale: str
           ) -> dict[str, Tensor]:
    x, obs, y, known = _gather(panel, rows, origins, lookback, horizon)
    s = window_scale(x, obs, scale)
    return {
        "x": torch.from_numpy((x / s[:, None]).astype(np.float32)),  # (B, L)
        "observed": torch.from_numpy(obs),  # (B, L) bool
        "y": torch.from_numpy((y / s[:, None]).astype(np.float32)),  # (B, H)
        "known": torch.from_numpy(known),  # (B, H) bool
        "mase": torch.from_numpy((panel.mase_scale[rows] / s).astype(np.float32)),  # (B,)
        "scale": torch.from_numpy(s),  # (B,) float64
    }


def sample_windows(panel: Panel, rng: np.random.Generator, batch: int, lookback: int, horizon: int,
                   history: float | None, scale: str) -> dict[str, Tensor]:
    """``batch`` training windows: series uniform, origin uniform over the last ``history`` x H
    steps (all of them when None), at least one observed value before it."""
    rows = rng.integers(0, len(panel.lengths), size=batch)
    n = panel.lengths[rows]
    low = np.ones(batch, dtype=np.int64)
    if history is not None:
        low = np.maximum(low, n - int(round(history * horizon)))
    low = np.minimum(low, n - 1)
    origins = low + np.floor(rng.random(batch) * (n - low)).astype(np.int64)  # in [low, n - 1]
    return _batch(panel, rows, np.maximum(origins, 1), lookback, horizon, scale)


def windows_at(panel: Panel, rows: np.ndarray, origins: np.ndarray, lookback: int, horizon: int, scale: str
               ) -> dict[str, Tensor]:
    """The windows of series ``rows`` (B,) cut at ``origins`` (B,): lookback before, horizon after."""
    return _batch(panel, np.asarray(rows, dtype=np.int64), np.asarray(origins, dtype=np.int64), lookback, horizon, scale)


def pinball(forecast: Tensor, y: Tensor, quantiles: Tensor) -> Tensor:
    """Quantile (pinball) loss per value: forecast (B, Q, H), y (B, H), quantiles (Q,) -> (B, Q, H);
    ``max(q (y - f), (q - 1)(y - f))``."""
    diff = y[:, None, :] - forecast  # (B, Q, H)
    q = quantiles.view(1, -1, 1)
    return torch.maximum(q * diff, (q - 1) * diff)


def forecast_loss(kind: str, forecast: Tensor, batch: dict[str, Tensor], quantiles: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """(summed loss, number of scored values) of ``forecast`` (B, Q, H) against ``batch``'s targets."""
    y, known = batch["y"], batch["known"]  # (B, H), (B, H)
    w = known.to(forecast.dtype)
    if kind == "pinball":
        if quantiles is None:
            raise ConfigError("the pinball loss needs quantiles")
        per = pinball(forecast, y, quantiles).sum(1)  # (B, H): summed over quantiles
        return (per * w).sum(), known.sum() * 1.0
    f = forecast[:, 0]  # (B, H)
    err = f - y
    if kind == "mse":
        per = err ** 2
    elif kind == "mae":
        per = err.abs()
    elif kind == "smape":
        den = f.abs() + y.abs()
        per = torch.where(den > 0, 2 * err.abs() / den.clamp(min=1e-12), torch.zeros_like(den))
    elif kind == "mase":
        per = err.abs() / batch["mase"][:, None]
    else:
        raise ConfigError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}")
    return (per * w).sum(), known.sum() * 1.0


class EncoderForecaster(nn.Module):
    """A seqlab sequence encoder as a global forecaster: each step's (scaled value, observed flag),
    grouped in patches of ``patch`` steps (PatchTST, Nie et al. 2023, when > 1), is projected to
    ``d_model``; the encoder reads the window causally; its state at the last position maps
    linearly to Q x H values (a direct multi-horizon head). ``family`` is a registry name
    (lstm, gru, elman, transformer, mamba, hybrid), ``options`` its encoder settings; ``d_model``
    the encoder width (an RNN's hidden size too) unless ``options`` sets them."""

    def __init__(self, family: str, options: dict[str, Any], lookback: int, horizon: int, rows: int, patch: int = 1,
                 d_model: int = 64) -> None:
        super().__init__()
        from seqlab.models.registry import get_family

        fam = get_family(family)
        if fam.kind != "neural" or not fam.encoder:
            raise ConfigError(f"encoder {family!r} is not a sequence encoder; valid: {', '.join(ENCODERS)}")
        cls = fam.config_class()
        own = {f.name for f in dataclasses.fields(cls)}
        width = {"d_model": d_model, **({"hidden_size": d_model} if "hidden_size" in own else {})}
        settings = {**fam.defaults, **width, **options}
        if "causal" in own and settings.get("causal") is None:
            settings["causal"] = True
        if "bidirectional" in own:
            settings.setdefault("bidirectional", False)
        settings.pop("pooling", None)  # a preset of the network's ends, not the encoder's
        cfg: Any = from_dict(cls, settings, where=f"encoder {family}")
        self.patch, self.rows, self.horizon = patch, rows, horizon
        self.steps = -(-lookback // patch)  # patches per window
        self.pad = self.steps * patch - lookback
        d = int(cfg.d_model)
        self.inp = nn.Linear(2 * patch, d)
        self.encoder = fam.encoder_factory()(cfg, d)
        self.out = nn.Linear(int(self.encoder.output_dim), rows * horizon)

    def forward(self, x: Tensor, observed: Tensor) -> Tensor:
        b = x.shape[0]
        feats = torch.stack([x * observed, observed.to(x.dtype)], dim=-1)  # (B, L, 2)
        if self.pad:
            feats = torch.nn.functional.pad(feats, (0, 0, self.pad, 0))
        feats = feats.reshape(b, self.steps, 2 * self.patch)  # (B, P, 2 * patch)
        mask = torch.ones(b, self.steps, dtype=torch.bool, device=x.device)  # padding is a feature, not masked
        h = self.encoder(self.inp(feats), mask)  # (B, P, D)
        return self.out(h[:, -1]).view(b, self.rows, self.horizon)  # (B, Q, H)
