"""State space family: Mamba (Gu & Dao 2023) and its LTI ablation.

Dimensions: B batch, T time, E input (embedding) width, M model width (``d_model``, the
residual stream), I inner width (``expand * M``), N state size per channel (``d_state``),
R rank of the Δ projection (``dt_rank``), K convolution width (``d_conv``).

A Mamba layer is ``x + Mixer(RMSNorm(x))``; the mixer projects to 2I channels (a signal and a
gate), runs the signal through a depthwise causal convolution and SiLU, then the selective SSM
(S6): input-dependent Δ = softplus(W_Δ W_R u + b), B = W_B u and C = W_C u, a diagonal
A = -exp(A_log) (initialised to -(1..N), "S4D-real") and a skip D; the result is gated by
SiLU(z) and projected back to M (the paper's Fig. 3 and Algorithm 2). ``selective=False`` is the
ablation of Section 4.3 / Table 7: the same block with Δ, B and C learned constants instead of
functions of the input, i.e. a time-invariant (S4D-like) SSM.

Causal for ``lm``. For ``classification``, ``labeling`` and ``mlm`` every layer adds a second
mixer run over each sequence reversed within its own length (a bidirectional pass), so padding
never reaches a real position in either direction. Causal encoders decode incrementally with
:meth:`MambaEncoder.step`: O(1) work and memory per token with a cached (conv, SSM) state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import check_at_least, check_fraction
from seqlab.errors import ConfigError
from seqlab.models.layers import gpt_embedding_init, restore_alignment, right_align
from seqlab.models.layers.scan import selective_scan, selective_step

__all__ = ["MambaConfig", "SSMLayerSettings", "MambaEncoder", "MambaLayer", "MambaMixer", "MixerState", "reverse_within_length"]

MixerState = tuple[Tensor, Tensor]  # conv inputs (B, I, K - 1), SSM state (B, I, N)


@dataclass(frozen=True)
class SSMLayerSettings:
    """The settings of one selective SSM (Mamba) layer, shared by the Mamba and hybrid families."""

    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 0  # 0 = ceil(M / 16)
    dt_min: float = 1e-3  # softplus(Δ bias) starts log-uniform in [dt_min, dt_max]
    dt_max: float = 1e-1
    selective: bool = True  # False: Δ, B, C fixed (LTI ablation)
    chunk: int = 64  # scan chunk length (memory/speed trade-off, no effect on results)

    def check_ssm(self) -> None:
        check_at_least(self, 1, "d_state", "d_conv", "expand", "chunk")
        if self.dt_rank < 0:
            raise ConfigError(f"dt_rank must be >= 0 (0 = automatic), found {self.dt_rank}")
        if not 0.0 < self.dt_min <= self.dt_max:
            raise ConfigError(f"need 0 < dt_min <= dt_max, found {self.dt_min} and {self.dt_max}")

    def ssm_settings(self) -> dict[str, Any]:
        """This object's SSM layer settings, by name (to build a layer config from a larger one)."""
        return {f.name: getattr(self, f.name) for f in fields(SSMLayerSettings)}


@dataclass(frozen=True)
class MambaConfig(SSMLayerSettings):
    """Encoder settings of a Mamba model: ``d_model`` is the model width M (the residual stream),
    and the layer settings of :class:`SSMLayerSettings`."""

    d_model: int = 128
    num_layers: int = 2
    causal: bool | None = None  # None: the task decides (lm: causal; others: bidirectional)
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "num_layers")
        self.check_ssm()
        check_fraction(self, "dropout")

    embedding_init = gpt_embedding_init  # token rows N(0, 0.02): tied LM logits start near uniform



def _inverse_softplus(x: Tensor) -> Tensor:
    return x + torch.log(-torch.expm1(-x))


class MambaMixer(nn.Module):
    """One direction of a Mamba layer: (B, T, M) -> (B, T, M), causal in T."""

    def __init__(self, config: MambaConfig, d_model: int) -> None:
        super().__init__()
        c = config
        inner, n = c.expand * d_model, c.d_state
        rank = c.dt_rank or math.ceil(d_model / 16)
        self.inner, self.n, self.k, self.rank, self.chunk = inner, n, c.d_conv, rank, c.chunk
        self.selective = c.selective
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, c.d_conv, groups=inner, padding=c.d_conv - 1)
        dt = torch.exp(torch.rand(inner) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt_bias = _inverse_softplus(dt.clamp(min=1e-4))  # (I,): softplus(bias) = dt
        if c.selective:
            self.x_proj = nn.Linear(inner, rank + 2 * n, bias=False)
            self.dt_proj = nn.Linear(rank, inner)
            with torch.no_grad():
                nn.init.uniform_(self.dt_proj.weight, -(rank**-0.5), rank**-0.5)
                self.dt_proj.bias.copy_(dt_bias)
        else:
            self.dt_bias = nn.Parameter(dt_bias)  # (I,)
            self.B = nn.Parameter(torch.ones(n))  # (N,)
            self.C = nn.Parameter(torch.randn(n) / math.sqrt(n))  # (N,)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(inner, 1))  # (I, N)
        self.D = nn.Parameter(torch.ones(inner))  # (I,)
        self.out_proj = nn.Linear(inner, d_model, bias=False)

    def _ssm_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``u`` (B, T, I) -> Δ (B, T, I), B (B, T, N), C (B, T, N)."""
        if self.selective:
            r, b, c = self.x_proj(u).split([self.rank, self.n, self.n], dim=-1)  # (B, T, R), (B, T, N) x2
            return F.softplus(self.dt_proj(r)), b, c
        shape = (*u.shape[:2], self.n)
        return F.softplus(self.dt_bias).expand_as(u), self.B.expand(shape), self.C.expand(shape)

    def forward(self, x: Tensor) -> tuple[Tensor, MixerState]:
        """``x`` (B, T, M) -> (B, T, M) and the state after the last step."""
        t = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, I) x2
        xc = xs.transpose(1, 2)  # (B, I, T)
        padded = F.pad(xc, (max(self.k - 1 - t, 0), 0))  # (B, I, >= K - 1)
        conv_state = padded[..., padded.shape[-1] - (self.k - 1) :]  # (B, I, K - 1): the last inputs
        u = F.silu(self.conv(xc)[..., :t]).transpose(1, 2)  # (B, T, I)
        delta, b, c = self._ssm_inputs(u)
        # A = -exp(.) <= 0 and Δ = softplus(.) >= 0 by construction: no domain check on the hot path
        y, h = selective_scan(u, delta, -torch.exp(self.A_log), b, c, self.D, chunk=self.chunk,
                              check_domain=False)  # (B, T, I)
        return self.out_proj(y * F.silu(z)), (conv_state, h)

    def step(self, x: Tensor, state: MixerState) -> tuple[Tensor, MixerState]:
        """One token: ``x`` (B, M) -> (B, M), with O(I (K + N)) work and memory."""
        conv_state, h = state
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, I) x2
        window = torch.cat([conv_state, xs.unsqueeze(-1)], dim=-1)  # (B, I, K)
        bias = self.conv.bias
        assert bias is not None  # nn.Conv1d(bias=True)
        u = F.silu((window * self.conv.weight.squeeze(1)).sum(-1) + bias)  # (B, I)
        delta, b, c = self._ssm_inputs(u.unsqueeze(1))
        y, h = selective_step(u, delta[:, 0], -torch.exp(self.A_log), b[:, 0], c[:, 0], self.D, h)  # (B, I)
        return self.out_proj(y * F.silu(z)), (window[..., 1:], h)


def reverse_within_length(mask: Tensor) -> Tensor:
    """(B, T) index that reverses each row's real prefix and leaves its padding in place.

    ``mask`` must be right-padded (real positions first); the index is its own inverse.
    """
    t = torch.arange(mask.shape[1], device=mask.device)  # (T,)
    lengths = mask.sum(-1, keepdim=True)  # (B, 1)
    return torch.where(t < lengths, lengths - 1 - t, t)  # (B, T)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    return torch.gather(x, 1, index.unsqueeze(-1).expand_as(x))  # (B, T, M)


class MambaLayer(nn.Module):
    """``x + Mixer(RMSNorm(x))``; bidirectional: ``+ reverse(Mixer'(reverse(RMSNorm(x))))`` too."""

    def __init__(self, config: MambaConfig, d_model: int, bidirectional: bool) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_model)
        self.mixer = MambaMixer(config, d_model)
        self.backward_mixer = MambaMixer(config, d_model) if bidirectional else None
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, reverse: Tensor | None) -> tuple[Tensor, MixerState]:
        xn = self.norm(x)  # (B, T, M)
        y, state = self.mixer(xn)
        out = x + self.dropout(y)
        if self.backward_mixer is not None:
            if reverse is None:
                raise ConfigError("a bidirectional Mamba layer needs the reversal index")
            yb, _ = self.backward_mixer(_gather_time(xn, reverse))
            out = out + self.dropout(_gather_time(yb, reverse))
        return out, state

    def step(self, x: Tensor, state: MixerState | None) -> tuple[Tensor, MixerState]:
        """Causal incremental use: ``x`` (B, T, M) tokens after ``state`` -> (B, T, M), the new
        state. From the start (``state`` None) the tokens run in parallel; after a state, one
        O(1) recurrent step each."""
        if state is None:
            return self(x, None)
        outs = []
        for t in range(x.shape[1]):
            y, state = self.mixer.step(self.norm(x[:, t]), state)  # (B, M)
            outs.append(x[:, t] + self.dropout(y))
        return torch.stack(outs, 1), state  # (B, T, M)


class MambaEncoder(nn.Module):
    """(B, T, E) embeddings + (B, T) mask -> (B, T, M) states, causal or bidirectional."""

    def __init__(self, config: MambaConfig, input_dim: int) -> None:
        super().__init__()
        c = config
        d_model = c.d_model
        self.causal = c.causal is not False  # None (built outside a task): causal
        self.proj_in: nn.Module = nn.Linear(input_dim, d_model) if input_dim != d_model else nn.Identity()
        self.layers = nn.ModuleList([MambaLayer(c, d_model, not self.causal) for _ in range(c.num_layers)])
        self.norm = nn.RMSNorm(d_model)
        self.output_dim = d_model

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x, mask_r, perm = right_align(x, mask)  # real positions first: padding follows them
        reverse = None if self.causal else reverse_within_length(mask_r)
        h = self.proj_in(x)  # (B, T, M)
        for layer in self.layers:
            h, _ = layer(h, reverse)
        return restore_alignment(self.norm(h), perm)

    state_batch_dim = 0  # step states are (B, I, K - 1) and (B, I, N): beam search reorders dim 0

    def step(self, x: Tensor, state: list[MixerState] | None) -> tuple[Tensor, list[MixerState]]:
        """Incremental causal decoding: ``x`` (B, T, E) tokens that follow ``state`` (None: the
        start) -> (B, T, M) and the new state. A prompt without state runs in parallel; later
        tokens cost one recurrent step each."""
        if not self.causal:
            raise ConfigError("a bidirectional Mamba cannot decode incrementally; build it with causal=true")
        h = self.proj_in(x)  # (B, T, M)
        new: list[MixerState] = []
        for i, layer in enumerate(self.layers):  # layer by layer: causal, so the same as token by token
            h, s = cast(MambaLayer, layer).step(h, None if state is None else state[i])
            new.append(s)
        return self.norm(h), new
