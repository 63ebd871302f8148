"""Hybrid family: Mamba layers interleaved with attention layers, as in Jamba (Lieber et al. 2024).

Dimensions: B batch, T time (Tq new tokens, Tk keys incl. cached), E input (embedding) width,
M model width (``d_model``, the residual stream), H heads, Dh = M / H, I = expand * M,
N state size, K convolution width.

Layer ``i`` (0-based) is an attention layer when ``(i + 1) % attention_every == 0`` and a Mamba
layer otherwise, so ``attention_every=k`` gives the pattern (k - 1 Mamba, 1 attention) repeated;
Jamba's 1:7 attention-to-Mamba ratio is ``attention_every=8``. Mamba layers are
:class:`~seqlab.models.mamba.MambaLayer` (``x + Mixer(RMSNorm(x))``, with a reversed pass when
bidirectional); attention layers are Pre-LN :class:`~seqlab.models.transformer.TransformerBlock`
(``x + Attn(LN(x))``, then ``x + FFN(LN(x))``); a final RMSNorm closes the stack.

Positions default to ``"none"``, as in Jamba: the Mamba layers below an attention layer already
encode order in their states (Jamba reports that explicit positions add nothing), and without
them attention has no trained length to extrapolate from. ``positions="rope"`` rotates queries
and keys as the Transformer family does. A stack whose first layer is attention sees order
only through the layers after it, so ``attention_every=1`` (no Mamba at all) needs RoPE.

Padding: the batch is right-aligned first (real tokens first, as :mod:`seqlab.models.mamba`
needs), attention masks padded keys and counts positions over real tokens, and the reversed
Mamba pass reverses each row within its own length; so a sequence gets the same outputs
whatever padding (left or right) surrounds it. Causal for ``lm`` (Mamba forward only, causal
attention); bidirectional for the other tasks. Causal encoders decode incrementally with
:meth:`HybridEncoder.step`: Mamba layers carry their O(1) (conv, SSM) state, attention layers
a KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.config import check_at_least
from seqlab.errors import ConfigError
from seqlab.inference.decoding import reorder_state
from seqlab.models.layers import gpt_embedding_init, restore_alignment, right_align
from seqlab.models.layers.attention import AttentionMask, make_attention_mask
from seqlab.models.layers.positions import positions_from_mask, rope_angles
from seqlab.models.mamba import (
    MambaConfig,
    MambaLayer,
    MixerState,
    SSMLayerSettings,
    reverse_within_length,
)
from seqlab.models.transformer import (
    AttentionLayerSettings,
    BlockCache,
    TransformerBlock,
    TransformerConfig,
)

__all__ = ["HybridConfig", "HybridEncoder", "HybridState", "layer_kinds"]

LayerState = MixerState | BlockCache  # Mamba: (conv (B, I, K - 1), SSM (B, I, N)); attention: KV cache


@dataclass(frozen=True)
class HybridConfig(SSMLayerSettings, AttentionLayerSettings):
    """Encoder settings of a hybrid Mamba + attention model: the stack (``d_model`` is the model
    width M, ``num_layers``, ``attention_every``), the Mamba layers' settings
    (:class:`~seqlab.models.mamba.SSMLayerSettings`) and the attention layers'
    (:class:`~seqlab.models.transformer.AttentionLayerSettings`, ``d_ff`` None = 4 * M), each
    defined once where its layer is."""

    d_model: int = 128  # model width M (the residual stream)
    num_layers: int = 2
    attention_every: int = 2  # layer i is attention when (i + 1) % attention_every == 0 (Jamba: 8)
    positions: Literal["none", "rope"] = "none"
    causal: bool | None = None  # None: the task decides (lm: causal; others: bidirectional)
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "num_layers", "attention_every")
        if self.positions not in ("none", "rope"):
            raise ConfigError(f"positions must be 'none' or 'rope', found {self.positions!r}")
        if self.attention_every > self.num_layers:
            raise ConfigError(
                f"attention_every={self.attention_every} > num_layers={self.num_layers} leaves no attention layer; "
                "lower attention_every, add layers, or use the mamba family"
            )
        if self.attention_every == 1 and self.positions == "none":
            raise ConfigError("attention_every=1 has no Mamba layer to carry order: set positions='rope'")
        self.mamba_config()  # the two layer kinds validate their own settings (state, heads, dropout, ...)
        self.attention_config()

    embedding_init = gpt_embedding_init  # token rows N(0, 0.02): tied LM logits start near uniform

    def mamba_config(self) -> MambaConfig:
        """The settings of the Mamba layers."""
        return MambaConfig(**self.ssm_settings(), d_model=self.d_model, num_layers=1, causal=self.causal,
                           dropout=self.dropout)

    def attention_config(self) -> TransformerConfig:
        """The settings of the attention layers (Pre-LN Transformer blocks of width M)."""
        return TransformerConfig(**self.attention_settings(), d_model=self.d_model, num_layers=1, dropout=self.dropout,
                                 positions=self.positions, causal=self.causal)


def layer_kinds(num_layers: int, attention_every: int) -> list[str]:
    """``"attention"`` or ``"mamba"`` for each layer: attention when ``(i + 1) % k == 0``."""
    return ["attention" if (i + 1) % attention_every == 0 else "mamba" for i in range(num_layers)]


@dataclass(frozen=True)
class HybridState:
    """An incremental decoder's state: one entry per layer (Mamba: its (conv, SSM) state;
    attention: its KV cache), batch first in every tensor, and the number of tokens seen."""

    layers: tuple[LayerState, ...]
    length: int


class HybridEncoder(nn.Module):
    """(B, T, E) embeddings + (B, T) mask -> (B, T, M) states (zeros on padding), causal or
    bidirectional."""

    def __init__(self, config: HybridConfig, input_dim: int) -> None:
        super().__init__()
        c = config
        d_model = c.d_model
        self.config = c
        self.causal = c.causal is not False  # None (built outside a task): causal
        self.kinds = layer_kinds(c.num_layers, c.attention_every)
        self.head_dim = d_model // c.n_heads
        self.proj_in: nn.Module = nn.Linear(input_dim, d_model) if input_dim != d_model else nn.Identity()
        mamba, attention = c.mamba_config(), c.attention_config()
        self.layers = nn.ModuleList([
            TransformerBlock(attention) if kind == "attention" else MambaLayer(mamba, d_model, not self.causal)
            for kind in self.kinds
        ])
        self.norm = nn.RMSNorm(d_model)
        self.output_dim = d_model

    def _attention(self, key_mask: Tensor | None, pos: Tensor, k_pos: Tensor) -> tuple[AttentionMask, tuple[Tensor, Tensor] | None]:
        """The mask and RoPE angles every attention layer shares: queries at ``pos`` (B, Tq),
        keys at ``k_pos`` (B, Tk), ``key_mask`` (B, Tk) or None (no padding)."""
        attn = make_attention_mask(key_mask, pos.shape[1], k_pos.shape[1], self.causal)
        rope = rope_angles(pos, self.head_dim) if self.config.positions == "rope" else None  # (B, 1, Tq, Dh) x 2
        return attn, rope

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x, mask, perm = right_align(x, mask)  # real positions first: padding follows them
        reverse = None if self.causal else reverse_within_length(mask)  # (B, T)
        pos = positions_from_mask(mask)  # (B, T)
        attn, rope = self._attention(None if bool(mask.all()) else mask, pos, pos)
        h = self.proj_in(x)  # (B, T, M)
        for layer in self.layers:
            if isinstance(layer, MambaLayer):
                h, _ = layer(h, reverse)
            else:
                h, _, _ = layer(h, mask, attn, rope)
        h = self.norm(h) * mask.unsqueeze(-1).to(h.dtype)  # (B, T, M)
        return restore_alignment(h, perm)

    def step(self, x: Tensor, state: HybridState | None) -> tuple[Tensor, HybridState]:
        """Incremental causal decoding: ``x`` (B, Tq, E) tokens that follow ``state`` (None: the
        start; no padding) -> (B, Tq, M) and the new state. Layer by layer: a Mamba layer runs a
        prompt without state in parallel and later tokens one O(1) step each; an attention layer
        attends from the new tokens to its cached keys/values and theirs."""
        if not self.causal:
            raise ConfigError("a bidirectional hybrid cannot decode incrementally; build it with causal=true")
        b, tq = x.shape[:2]
        past = 0 if state is None else state.length
        k_pos = torch.arange(past + tq, device=x.device).expand(b, -1)  # (B, Tk)
        attn, rope = self._attention(None, k_pos[:, past:], k_pos)
        mask = torch.ones(b, tq, dtype=torch.bool, device=x.device)  # (B, Tq)
        h = self.proj_in(x)  # (B, Tq, M)
        new: list[LayerState] = []
        for i, layer in enumerate(self.layers):
            s = None if state is None else state.layers[i]
            if isinstance(layer, MambaLayer):
                assert s is None or isinstance(s, tuple)
                h, s = layer.step(h, s)
            else:
                assert s is None or isinstance(s, BlockCache)
                h, s, _ = layer(h, mask, attn, rope, s)
            new.append(s)
        return self.norm(h), HybridState(tuple(new), past + tq)

    state_batch_dim = 0  # every state tensor is batch first

    @staticmethod
    def reorder(state: HybridState | None, index: Tensor) -> HybridState | None:
        """The state of rows ``index`` (N,) long, in that order (beam search); rows may repeat."""
        return None if state is None else reorder_state(state, index, dim=0)

