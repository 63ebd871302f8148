"""Conformer family (Gulati et al. 2020): convolution + self-attention + macaron feed-forward.

Shapes: B batch, T time, D = d_model, H heads, Dh = D / H, F feed-forward width, K the
depthwise kernel. Masks are (B, T) bool, True = real frame.

A block is x + FFN/2, x + MHSA, x + Conv, x + FFN/2, then LayerNorm (the paper's eq. 1), each
module Pre-LN. The convolution module is pointwise conv (D -> 2D) + GLU, depthwise conv (K),
batch or layer norm, swish, pointwise conv. Positions: ``relative``, Transformer-XL's relative
sinusoidal scores (Dai et al. 2019, sec. 3.3: content ``(q + u) k`` plus position
``(q + v) W_r R_{i-j}``, the paper's choice), or ``rope`` (rotary, Su et al. 2021, on PyTorch's
fused attention kernels; faster, the default). Both reuse :mod:`seqlab.models.layers`.

Padding never reaches a real frame: attention skips padded keys, padded frames are zeroed
before each convolution, and batch norm takes its statistics over real frames only. With
``causal`` the attention is causal and the depthwise convolution looks back only (left padding),
so the encoder serves the LM task too (in training, batch statistics still mix time steps;
``conv_norm="layer"`` avoids that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import check_at_least, check_fraction
from seqlab.errors import ConfigError
from seqlab.models.layers import gpt_embedding_init
from seqlab.models.layers.attention import (
    AttentionMask,
    MultiHeadAttention,
    attention,
    make_attention_mask,
)
from seqlab.models.layers.positions import SinusoidalPositions, positions_from_mask, rope_angles

__all__ = ["ConformerConfig", "ConformerEncoder", "ConformerBlock", "RelativeAttention", "ConvModule", "MaskedBatchNorm"]


@dataclass(frozen=True)
class ConformerConfig:
    """Encoder settings of a Conformer. ``d_model`` is the model width D; ``d_ff`` the
    feed-forward width (None: 4 * D); ``conv_kernel`` the depthwise kernel K (odd);
    ``positions`` ``rope`` or ``relative``; ``conv_norm`` ``batch`` (the paper) or ``layer``;
    ``causal=None`` follows the task (lm: causal; others: not)."""

    d_model: int = 144
    num_layers: int = 4
    n_heads: int = 4
    d_ff: int | None = None
    conv_kernel: int = 15
    positions: Literal["rope", "relative"] = "rope"
    conv_norm: Literal["batch", "layer"] = "batch"
    dropout: float = 0.1
    attention_dropout: float = 0.0
    causal: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "num_layers", "n_heads", "conv_kernel")
        check_fraction(self, "dropout", "attention_dropout")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.positions not in ("rope", "relative"):
            raise ConfigError(f"positions must be 'rope' or 'relative', found {self.positions!r}")
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise ConfigError(f"positions='rope' needs an even head width; d_model / n_heads = {self.d_model // self.n_heads}")
        if self.conv_norm not in ("batch", "layer"):
            raise ConfigError(f"conv_norm must be 'batch' or 'layer', found {self.conv_norm!r}")
        if self.conv_kernel % 2 == 0:
            raise ConfigError(f"conv_kernel must be odd (centred), found {self.conv_kernel}")
        if self.d_ff is not None and self.d_ff < 1:
            raise ConfigError(f"d_ff must be >= 1 (or unset), found {self.d_ff}")

    embedding_init = gpt_embedding_init  # token rows N(0, 0.02) when the task embeds tokens

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over (B, D, T) whose training statistics count real frames only."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.training or mask is None:
            return super().forward(x)
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        n = m.sum().clamp(min=1.0)
        mean = (x * m).sum((0, 2)) / n  # (D,)
        var = (((x - mean[None, :, None]) * m) ** 2).sum((0, 2)) / n  # (D,) biased, used to normalise
        with torch.no_grad():
            assert self.running_mean is not None and self.running_var is not None
            mom = self.momentum if self.momentum is not None else 0.1
            self.running_mean.mul_(1 - mom).add_(mom * mean.detach())
            self.running_var.mul_(1 - mom).add_(mom * var.detach() * n / (n - 1).clamp(min=1.0))
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


class ConvModule(nn.Module):
    """LN -> pointwise conv (D -> 2D) -> GLU -> depthwise conv (K) -> norm -> swish ->
    pointwise conv -> dropout: (B, T, D) -> (B, T, D)."""

    def __init__(self, c: ConformerConfig, causal: bool) -> None:
        super().__init__()
        d, k = c.d_model, c.conv_kernel
        self.ln = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.causal = causal
        self.pad = (k - 1, 0) if causal else ((k - 1) // 2, (k - 1) // 2)
        self.dw = nn.Conv1d(d, d, k, groups=d)
        self.norm: nn.Module = MaskedBatchNorm(d) if c.conv_norm == "batch" else nn.LayerNorm(d)
        self.pw2 = nn.Conv1d(d, d, 1)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        h = self.ln(x).transpose(1, 2)  # (B, D, T)
        h = F.glu(self.pw1(h), dim=1) * m  # (B, D, T): padding zeroed before the depthwise conv
        h = self.dw(F.pad(h, self.pad))  # (B, D, T)
        if isinstance(self.norm, MaskedBatchNorm):
            h = self.norm(h, mask)
        else:
            h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        h = self.pw2(F.silu(h))  # (B, D, T)
        return self.drop(h.transpose(1, 2))  # (B, T, D)


class FeedForwardHalf(nn.Module):
    """LN -> Linear(D, F) -> swish -> dropout -> Linear(F, D) -> dropout (scaled by 1/2 by the block)."""

    def __init__(self, c: ConformerConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.ff_width), nn.SiLU(),
                                 nn.Dropout(c.dropout), nn.Linear(c.ff_width, c.d_model), nn.Dropout(c.dropout))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


class RelativeAttention(nn.Module):
    """Self-attention with Transformer-XL relative positions: score(i, j) = ((q_i + u) . k_j +
    (q_i + v) . W_r R_{i-j}) / sqrt(Dh), R sinusoidal in the offset i - j. The position term
    enters the fused attention kernel as an additive bias."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.h, self.dh, self.dropout = n_heads, d // n_heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.pos = nn.Linear(d, d, bias=False)  # W_r
        self.u = nn.Parameter(torch.zeros(n_heads, self.dh))
        self.v = nn.Parameter(torch.zeros(n_heads, self.dh))
        self.out = nn.Linear(d, d)
        self.rel = SinusoidalPositions(d)

    def forward(self, x: Tensor, key_mask: Tensor | None, causal: bool) -> Tensor:
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.h, self.dh).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))  # (B, H, T, Dh)
        offsets = torch.arange(T - 1, -T, -1, device=x.device)  # (2T-1,) offsets i - j, from T-1 down
        r = self.pos(self.rel(offsets.unsqueeze(0)).to(x.dtype)).view(2 * T - 1, self.h, self.dh)  # (2T-1, H, Dh)
        bd = torch.einsum("bhtd,rhd->bhtr", q + self.v[None, :, None], r)  # (B, H, T, 2T-1)
        i = torch.arange(T, device=x.device)
        idx = (T - 1) - (i[:, None] - i[None, :])  # (T, T) column of offset i - j
        bias = bd.gather(-1, idx.expand(B, self.h, T, T)) / math.sqrt(self.dh)  # (B, H, T, T)
        mask = make_attention_mask(key_mask, T, T, causal, bias)
        y = attention(q + self.u[None, :, None], k, v, mask, self.dropout if self.training else 0.0)  # (B, H, T, Dh)
        return self.out(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class ConformerBlock(nn.Module):
    """x + FFN/2, x + MHSA, x + Conv, x + FFN/2, LayerNorm: (B, T, D) -> (B, T, D)."""

    def __init__(self, c: ConformerConfig, causal: bool) -> None:
        super().__init__()
        self.ff1, self.ff2 = FeedForwardHalf(c), FeedForwardHalf(c)
        self.ln_att = nn.LayerNorm(c.d_model)
        self.att: nn.Module = (RelativeAttention(c.d_model, c.n_heads, c.attention_dropout) if c.positions == "relative"
                               else MultiHeadAttention(c.d_model, c.n_heads, c.attention_dropout))
        self.conv = ConvModule(c, causal)
        self.ln_out = nn.LayerNorm(c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.causal = causal

    def forward(self, x: Tensor, mask: Tensor, key_mask: Tensor | None, attn: AttentionMask | None,
                rope: tuple[Tensor, Tensor] | None) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.ln_att(x)
        if isinstance(self.att, RelativeAttention):
            a = self.att(h, key_mask, self.causal)
        else:
            assert attn is not None
            a, _ = self.att(h, attn, rope)
        x = x + self.drop(a)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        out: Tensor = self.ln_out(x)
        return out


class ConformerEncoder(nn.Module):
    """(B, T, D_in) features + (B, T) mask -> (B, T, D) states (zeros on padding). An input
    projection maps D_in to D when they differ; the task's front end does any subsampling."""

    def __init__(self, config: ConformerConfig, input_dim: int) -> None:
        super().__init__()
        c = config
        self.config = c
        self.causal = bool(c.causal)
        self.output_dim = c.d_model
        self.head_dim = c.d_model // c.n_heads
        self.proj = nn.Linear(input_dim, c.d_model) if input_dim != c.d_model else nn.Identity()
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([ConformerBlock(c, self.causal) for _ in range(c.num_layers)])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.drop(self.proj(x))  # (B, T, D)
        key_mask = None if bool(mask.all()) else mask
        T = h.shape[1]
        rope, attn = None, None
        if self.config.positions == "rope":
            rope = rope_angles(positions_from_mask(mask), self.head_dim)  # (B, 1, T, Dh) x 2
            attn = make_attention_mask(key_mask, T, T, self.causal)
        for block in self.blocks:
            h = block(h, mask, key_mask, attn, rope)
        return h * mask.unsqueeze(-1).to(h.dtype)  # (B, T, D)
