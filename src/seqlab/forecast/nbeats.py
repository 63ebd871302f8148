"""N-BEATS: stacks of fully connected blocks with backcast and forecast (Oreshkin et al. 2020).

Shape legend: B batch, L lookback (input window), H horizon, Q forecast rows (1, or one per
quantile), W hidden width, K basis size.

A block reads the part of the window that earlier blocks left unexplained, ``r`` (B, L), through
four fully connected ReLU layers and two linear projections to expansion coefficients: ``theta_b``
for the backcast (what the block explains of its input) and ``theta_f`` for its forecast. A basis
turns coefficients into values. Blocks are chained by *double residual stacking*: block l+1 reads
``r_{l+1} = r_l - backcast_l`` and the model's forecast is the sum of every block's forecast.

Bases (paper section 3.3):

- generic: a learned linear map (the coefficients are the values themselves, one per step);
- trend: a polynomial of small degree p, ``sum_i theta_i t^i`` on ``t = [0, 1, ..., H-1] / H``;
- seasonality: a Fourier series, ``theta_0 + sum_i theta_i cos(2 pi i t) + theta'_i sin(2 pi i t)``
  for i = 1 .. floor(H/2) - 1 on the same ``t``. Its periods are H / i steps, so a season that
  does not divide H (12 months in M3's H = 18) has no exact term; ``period=m`` measures ``t`` in
  seasons instead (``t = step / m``, i = 1 .. floor(m/2)): the harmonics of period m (our
  option, not the paper's).

The generic model stacks ``blocks`` blocks with their own weights; the interpretable model is a
trend stack followed by a seasonality stack of ``blocks`` blocks each, weights shared within a
stack (as the paper's interpretable configuration). The backcast of a trend or seasonality block
is the same basis on the window's own steps ``t = [-L, ..., -1] / H`` (one time axis for window
and forecast; the paper writes each on its own grid), with its own coefficients ``theta_b``. Padding of a window shorter than L stays zero: backcasts are masked.

With Q > 1 forecast rows (a quantile head) each block emits Q sets of forecast coefficients.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["NBeats", "NBeatsBlock", "trend_basis", "seasonality_basis"]


def trend_basis(degree: int, t: Tensor) -> Tensor:
    """(degree + 1, T): rows t**0 .. t**degree."""
    return torch.stack([t ** i for i in range(degree + 1)])


def seasonality_basis(harmonics: int, t: Tensor) -> Tensor:
    """(1 + 2 * harmonics, T): a constant row, then cos(2 pi i t) and sin(2 pi i t), i = 1..harmonics."""
    rows = [torch.ones_like(t)]
    for i in range(1, harmonics + 1):
        rows += [torch.cos(2 * math.pi * i * t), torch.sin(2 * math.pi * i * t)]
    return torch.stack(rows)


class NBeatsBlock(nn.Module):
    """Four FC ReLU layers -> (theta_b, theta_f) -> basis -> (backcast (B, L), forecast (B, Q, H)).

    ``back`` (K_b, L) and ``fore`` (K_f, H) are fixed bases (buffers); None = generic (learned)."""

    def __init__(self, lookback: int, horizon: int, width: int, layers: int, rows: int,
                 back: Tensor | None = None, fore: Tensor | None = None) -> None:
        super().__init__()
        dims = [lookback] + [width] * layers
        self.fc = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.rows, self.horizon = rows, horizon
        k_b = lookback if back is None else back.shape[0]
        k_f = horizon if fore is None else fore.shape[0]
        self.theta_b = nn.Linear(width, k_b, bias=back is None)
        self.theta_f = nn.Linear(width, rows * k_f, bias=fore is None)
        self.back: Tensor | None
        self.fore: Tensor | None
        self.register_buffer("back", back, persistent=False)
        self.register_buffer("fore", fore, persistent=False)

    def forward(self, r: Tensor) -> tuple[Tensor, Tensor]:
        z = self.fc(r)  # (B, W)
        tb = self.theta_b(z)  # (B, K_b)
        tf = self.theta_f(z).view(r.shape[0], self.rows, -1)  # (B, Q, K_f)
        backcast = tb if self.back is None else tb @ self.back  # (B, L)
        forecast = tf if self.fore is None else tf @ self.fore  # (B, Q, H)
        return backcast, forecast


class NBeats(nn.Module):
    """The whole network: (x (B, L), observed (B, L) bool) -> forecast (B, Q, H)."""

    def __init__(self, lookback: int, horizon: int, *, kind: Literal["generic", "interpretable"] = "generic",
                 blocks: int = 6, width: int = 256, layers: int = 4, rows: int = 1, degree: int = 3,
                 harmonics: int | None = None, period: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.blocks = blocks
        if kind == "generic":
            self.stack = nn.ModuleList(NBeatsBlock(lookback, horizon, width, layers, rows) for _ in range(blocks))
            return
        t_f = torch.arange(horizon, dtype=torch.float32) / horizon  # (H,)
        t_b = torch.arange(-lookback, 0, dtype=torch.float32) / horizon  # (L,)
        k = max(harmonics if harmonics is not None else horizon // 2 - 1, 1)
        s_f, s_b = t_f, t_b
        if period is not None:  # the harmonics of one season of ``period`` steps
            s_f, s_b = t_f * horizon / period, t_b * horizon / period
            k = max(harmonics if harmonics is not None else period // 2, 1)
        trend = NBeatsBlock(lookback, horizon, width, layers, rows, trend_basis(degree, t_b), trend_basis(degree, t_f))
        season = NBeatsBlock(lookback, horizon, width, layers, rows, seasonality_basis(k, s_b), seasonality_basis(k, s_f))
        self.stack = nn.ModuleList([trend, season])  # each applied ``blocks`` times (shared weights)

    def _order(self) -> list[nn.Module]:
        if self.kind == "generic":
            return list(self.stack)
        return [self.stack[0]] * self.blocks + [self.stack[1]] * self.blocks

    def forward(self, x: Tensor, observed: Tensor) -> Tensor:
        keep = observed.to(x.dtype)  # (B, L)
        r = x * keep
        total: Tensor | None = None
        for block in self._order():
            backcast, forecast = block(r)  # (B, L), (B, Q, H)
            r = r - backcast * keep
            total = forecast if total is None else total + forecast
        assert total is not None
        return total  # (B, Q, H)
