"""Transformer family: Pre-LayerNorm blocks over ``scaled_dot_product_attention``.

Shapes: B batch, T time (Tq new queries, Tk keys incl. cached), D = d_model, the model width,
H heads, Dh = D / H, F feed-forward width. Masks are (B, T) bool, True = real token.

One encoder class serves three shapes: bidirectional (encoder-only, for classification,
labeling and mlm pretraining, Devlin et al. 2019), causal (decoder-only, for the LM, Radford et
al. 2018), and, through :class:`TransformerDecoderBlock` (a block whose cross-attention is on),
the decoder of an encoder-decoder (Vaswani et al. 2017). Blocks are Pre-LN (Xiong et al. 2020):
x + Attn(LN(x)), then x + FFN(LN(x)), and a final LayerNorm. The feed-forward is dense or a
mixture of experts (:mod:`seqlab.models.layers.moe`); positions are none, sinusoidal, learned,
RoPE or ALiBi (:mod:`seqlab.models.layers.positions`).

Padding: attention never looks at padded keys and positions count real tokens only, so a
sequence gets the same outputs whatever padding (left or right) surrounds it. Incremental
decoding (:meth:`TransformerEncoder.step`) keeps each layer's keys and values (a KV cache) and
continues positions from the cache's length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from seqlab.config import check_at_least, check_fraction
from seqlab.data.vocab import SPECIALS
from seqlab.errors import ConfigError, SeqlabError
from seqlab.models.layers import TokenEmbedding
from seqlab.models.layers.attention import (
    AttentionMask,
    KVCache,
    MultiHeadAttention,
    make_attention_mask,
)
from seqlab.models.layers.moe import FeedForward, MoEFeedForward
from seqlab.models.layers.positions import (
    LearnedPositions,
    SinusoidalPositions,
    alibi_bias,
    alibi_slopes,
    positions_from_mask,
    rope_angles,
)
from seqlab.models.network import EndsConfig, training_loss

__all__ = [
    "AttentionLayerSettings", "TransformerConfig", "TransformerEncoder", "TransformerBlock", "TransformerDecoderBlock", "BlockCache",
    "TransformerState", "TransformerSeq2Seq", "transformer_network", "transfer_encoder", "cross_attention_mask",
]

PositionScheme = Literal["none", "sinusoidal", "learned", "rope", "alibi"]


@dataclass(frozen=True)
class AttentionLayerSettings:
    """The settings of one attention block, shared by the Transformer and hybrid families:
    ``n_heads`` heads, a feed-forward of width ``d_ff`` (None: 4 * D), attention dropout."""

    n_heads: int = 4
    d_ff: int | None = None
    attention_dropout: float = 0.0

    def check_attention(self, d_model: int, positions: str) -> None:
        check_at_least(self, 1, "n_heads")
        if self.d_ff is not None and self.d_ff < 1:
            raise ConfigError(f"d_ff must be >= 1 (or unset), found {self.d_ff}")
        if d_model % self.n_heads:
            raise ConfigError(f"d_model ({d_model}) must be a multiple of n_heads ({self.n_heads})")
        if positions == "rope" and (d_model // self.n_heads) % 2:
            raise ConfigError(f"positions='rope' needs an even head width; d_model / n_heads = {d_model // self.n_heads}")
        check_fraction(self, "attention_dropout")

    def attention_settings(self) -> dict[str, Any]:
        """This object's attention block settings, by name (to build a block config from a larger one)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(AttentionLayerSettings)}


@dataclass(frozen=True)
class TransformerConfig(AttentionLayerSettings):
    """Encoder settings of a Transformer. ``d_model`` is the model width D.

    The feed-forward width is ``d_ff``, or 4 * D when unset. ``causal=None`` follows the task (lm: causal; others: not).
    ``moe_experts > 0`` replaces each feed-forward by that many experts, ``moe_top_k`` per token,
    adding ``moe_loss_weight`` x the balancing loss (summed over layers) to the training loss.
    ``max_len`` bounds learned positions only.
    """

    d_model: int = 128
    num_layers: int = 2
    dropout: float = 0.1
    positions: PositionScheme = "rope"
    max_len: int = 512
    causal: bool | None = None
    moe_experts: int = 0
    moe_top_k: int = 1
    moe_loss_weight: float = 0.01
    norm_eps: float = 1e-5
    bias: bool = True  # biases in the blocks' linear layers and LayerNorms (False: as GPT-2 variants / nanoGPT)
    scale_embedding: bool | None = None  # None: True with sinusoidal positions (see embedding_init)
    decoder_layers: int = 0  # encoder-decoder (generation): decoder depth; 0 = num_layers
    share_embeddings: bool = False  # encoder-decoder: one embedding for source and target
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "num_layers", "max_len")
        check_at_least(self, 0, "decoder_layers")
        self.check_attention(self.d_model, self.positions)
        check_fraction(self, "dropout")
        if self.moe_experts < 0 or self.moe_loss_weight < 0:
            raise ConfigError(f"moe_experts and moe_loss_weight must be >= 0, found {self.moe_experts}, {self.moe_loss_weight}")
        if self.moe_experts and not 1 <= self.moe_top_k <= self.moe_experts:
            raise ConfigError(f"moe_top_k must be in [1, moe_experts={self.moe_experts}], found {self.moe_top_k}")

    def embedding_init(self) -> tuple[bool, float | None]:
        """(scaled, init_std) of the token embeddings (:class:`TokenEmbedding`). Sinusoidal
        positions have amplitude 1, so tokens enter at unit scale: N(0, 1/D) times sqrt(D)
        (Vaswani et al. 2017). Otherwise GPT-2's N(0, 0.02), unscaled: with tied output weights
        the model starts near uniform (loss ln V). Measured on Shakespeare characters against
        nanoGPT: N(0, 1) starts at loss 113, the scaled form at 9.9, N(0, 0.02) at 4.5, and
        N(0, 0.02) reached the lowest validation loss after 1,000 steps (2.01 vs 2.20 scaled)."""
        scaled = self.positions == "sinusoidal" if self.scale_embedding is None else self.scale_embedding
        return (True, None) if scaled else (False, 0.02)

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


@dataclass(frozen=True)
class BlockCache:
    """One block's cache: self-attention keys/values so far, cross-attention's memory keys/values."""

    self_kv: KVCache
    cross_kv: KVCache | None = None


@dataclass(frozen=True)
class TransformerState:
    """An incremental decoder's state: one cache per block and the number of tokens seen."""

    caches: tuple[BlockCache, ...]
    length: int


class TransformerBlock(nn.Module):
    """Pre-LN block: x + Attn(LN(x)) [+ CrossAttn(LN(x), memory)] + FFN(LN(x)), dropout on each
    sublayer's output. ``cross=True`` adds the cross-attention (see :class:`TransformerDecoderBlock`)."""

    def __init__(self, config: TransformerConfig, cross: bool = False) -> None:
        super().__init__()
        c = config
        d = c.d_model
        b = c.bias
        self.ln1 = nn.LayerNorm(d, eps=c.norm_eps, bias=b)
        self.attn = MultiHeadAttention(d, c.n_heads, c.attention_dropout, bias=b)
        self.ln_cross = nn.LayerNorm(d, eps=c.norm_eps, bias=b) if cross else None
        self.cross_attn = MultiHeadAttention(d, c.n_heads, c.attention_dropout, cross=True, bias=b) if cross else None
        self.ln2 = nn.LayerNorm(d, eps=c.norm_eps, bias=b)
        self.ffn: nn.Module
        if c.moe_experts:
            self.ffn = MoEFeedForward(d, c.ff_width, c.moe_experts, c.moe_top_k, c.dropout)
        else:
            self.ffn = FeedForward(d, c.ff_width, c.dropout, bias=b)
        self.drop = nn.Dropout(c.dropout)

    def forward(
        self, x: Tensor, mask: Tensor, attn: AttentionMask, rope: tuple[Tensor, Tensor] | None = None,
        cache: BlockCache | None = None, memory: Tensor | None = None, memory_attn: AttentionMask | None = None,
    ) -> tuple[Tensor, BlockCache, Tensor | None]:
        """``x`` (B, Tq, D), ``mask`` (B, Tq) -> (B, Tq, D), the new cache, the MoE loss (or None)."""
        a, self_kv = self.attn(self.ln1(x), attn, rope, None if cache is None else cache.self_kv)
        x = x + self.drop(a)  # (B, Tq, D)
        cross_kv = None
        if self.cross_attn is not None and self.ln_cross is not None:
            if memory_attn is None:
                memory_attn = cross_attention_mask(None)  # no memory padding
            c, cross_kv = self.cross_attn(
                self.ln_cross(x), memory_attn, cache=None if cache is None else cache.cross_kv, memory=memory
            )
            x = x + self.drop(c)
        aux = None
        if isinstance(self.ffn, MoEFeedForward):
            f, aux = self.ffn(self.ln2(x), mask)
        else:
            f = self.ffn(self.ln2(x))
        return x + self.drop(f), BlockCache(self_kv, cross_kv), aux  # (B, Tq, D)


class TransformerDecoderBlock(TransformerBlock):
    """The encoder-decoder's decoder block: causal self-attention, cross-attention over the
    encoder's output (``memory`` (B, S, D) with ``memory_attn`` from its padding mask), FFN.
    Its cache holds the memory's keys/values after the first step."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config, cross=True)


class TransformerEncoder(nn.Module):
    """(B, T, D_in) embeddings + (B, T) mask -> (B, T, D) states (zeros on padding).

    An input projection maps D_in to D when they differ (character features); learned or
    sinusoidal positions are added to the input, RoPE and ALiBi act inside attention.
    After a forward, ``aux_loss`` holds the mixture-of-experts balancing loss (weighted), or None.
    """

    slopes: Tensor

    def __init__(self, config: TransformerConfig, input_dim: int, cross: bool = False, num_layers: int | None = None) -> None:
        super().__init__()
        c = config
        d = c.d_model
        self.config = c
        self.causal = bool(c.causal)
        self.cross = cross
        self.output_dim = d
        self.head_dim = d // c.n_heads
        self.proj = nn.Linear(input_dim, d) if input_dim != d else nn.Identity()
        self.pos_embed: nn.Module | None = None
        if c.positions == "sinusoidal":
            self.pos_embed = SinusoidalPositions(d)
        elif c.positions == "learned":
            self.pos_embed = LearnedPositions(c.max_len, d)
        self.register_buffer("slopes", alibi_slopes(c.n_heads), persistent=False)  # (H,), used by ALiBi
        block = TransformerDecoderBlock if cross else TransformerBlock
        self.blocks = nn.ModuleList([block(c) for _ in range(num_layers or c.num_layers)])
        self.norm = nn.LayerNorm(d, eps=c.norm_eps, bias=c.bias)
        self.aux_loss: Tensor | None = None

    def _run(
        self, x: Tensor, mask: Tensor, key_mask: Tensor | None, pos: Tensor, k_pos: Tensor,
        caches: Sequence[BlockCache | None], memory: Tensor | None = None, memory_mask: Tensor | None = None,
    ) -> tuple[Tensor, tuple[BlockCache, ...]]:
        h = self.proj(x)  # (B, Tq, D)
        if self.pos_embed is not None:
            h = h + self.pos_embed(pos)
        kind = self.config.positions
        rope = rope_angles(pos, self.head_dim) if kind == "rope" else None  # (B, 1, Tq, Dh) x 2
        bias = alibi_bias(self.slopes, pos, k_pos) if kind == "alibi" else None  # (B, H, Tq, Tk)
        attn = make_attention_mask(key_mask, pos.shape[1], k_pos.shape[1], self.causal, bias)
        memory_attn = cross_attention_mask(memory_mask) if self.cross else None
        new: list[BlockCache] = []
        auxes: list[Tensor] = []
        for block, cache in zip(self.blocks, caches):
            h, c, aux = block(h, mask, attn, rope, cache, memory, memory_attn)
            new.append(c)
            if aux is not None:
                auxes.append(aux)
        self.aux_loss = self.config.moe_loss_weight * torch.stack(auxes).sum() if auxes else None
        return self.norm(h), tuple(new)  # (B, Tq, D)

    def _check_memory(self, memory: Tensor | None) -> None:
        if self.cross and memory is None:
            raise ConfigError("this decoder stack has cross-attention: pass the encoder's memory")

    def forward(self, x: Tensor, mask: Tensor, memory: Tensor | None = None, memory_mask: Tensor | None = None) -> Tensor:
        """``memory`` (B, S, D) and ``memory_mask`` (B, S): the encoder's output, for a decoder
        stack built with ``cross=True``."""
        self._check_memory(memory)
        pos = positions_from_mask(mask)  # (B, T)
        key_mask = None if bool(mask.all()) else mask
        h, _ = self._run(x, mask, key_mask, pos, pos, [None] * len(self.blocks), memory, memory_mask)
        return h * mask.unsqueeze(-1).to(h.dtype)  # (B, T, D)

    def step(
        self, x: Tensor, state: TransformerState | None, memory: Tensor | None = None, memory_mask: Tensor | None = None,
    ) -> tuple[Tensor, TransformerState]:
        """Incremental causal decoding: ``x`` (B, Tq, D_in) new tokens (a prompt, then one at a
        time; no padding) -> (B, Tq, D) and the state with their keys/values appended. A decoder
        stack (``cross=True``) reads ``memory`` on the first step and caches its keys/values."""
        if not self.causal:
            raise ConfigError("a bidirectional Transformer cannot decode incrementally (causal=false)")
        b, tq = x.shape[:2]
        past = 0 if state is None else state.length
        k_pos = torch.arange(past + tq, device=x.device).expand(b, -1)  # (B, Tk)
        mask = torch.ones(b, tq, dtype=torch.bool, device=x.device)
        caches: Sequence[BlockCache | None] = [None] * len(self.blocks) if state is None else state.caches
        if state is None:
            self._check_memory(memory)
        h, new = self._run(x, mask, None, k_pos[:, past:], k_pos, caches, memory, memory_mask)
        return h, TransformerState(new, past + tq)

    state_batch_dim = 0  # cached keys/values are (B, H, T, Dh)

    @staticmethod
    def reorder(state: TransformerState | None, index: Tensor) -> TransformerState | None:
        """The state of rows ``index`` (M,) long, in that order (beam search); rows may repeat."""
        if state is None:
            return None

        def pick(kv: KVCache) -> KVCache:
            return kv[0].index_select(0, index.to(kv[0].device)), kv[1].index_select(0, index.to(kv[1].device))

        caches = tuple(
            BlockCache(pick(c.self_kv), None if c.cross_kv is None else pick(c.cross_kv)) for c in state.caches
        )
        return TransformerState(caches, state.length)


def cross_attention_mask(memory_mask: Tensor | None) -> AttentionMask:
    """What a decoder query may see of the encoder's memory: its real positions (every query
    alike). A source with no real token lets its queries see everything (their output is
    meaningless, but no softmax row is empty)."""
    if memory_mask is None or bool(memory_mask.all()):
        return AttentionMask(None, None, None, False)
    mm = memory_mask.bool()
    mm = mm | ~mm.any(-1, keepdim=True)  # (B, S)
    allowed = mm[:, None, None, :]  # (B, 1, 1, S)
    return AttentionMask(allowed, None, allowed, False)


class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder Transformer (Vaswani et al. 2017) with Pre-LN blocks, for generation.

    ``forward(batch)`` -> (B, T, V) teacher-forced logits for ``labels``; ``start``/``step``/
    ``reorder`` are the :class:`seqlab.inference.decoding.Stepper` protocol, with the decoder's
    self-attention keys/values cached and the memory's cross-attention keys/values computed once
    (so a decoded token costs one position, not the whole prefix). The encoder is bidirectional,
    the decoder causal; both use ``positions``. With ``tie_weights`` the output projection is
    the target embedding.

    ``batch``: ``src_ids`` (B, S), ``src_mask`` (B, S), ``input_ids`` (B, T) (``<bos>`` + target),
    ``mask`` (B, T). Shapes: S source, T target, D width, V target vocabulary.
    """

    def __init__(self, config: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int,
                 ends: EndsConfig | None = None) -> None:
        super().__init__()
        c = self.config = config
        e = ends or EndsConfig()
        if c.share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ConfigError("share_embeddings needs one vocabulary (task option shared_vocab=true), found sizes "
                              f"{src_vocab_size} (source) and {tgt_vocab_size} (target)")
        d = c.d_model
        scaled, std = c.embedding_init()
        self.src_embed = TokenEmbedding(src_vocab_size, d, c.dropout, e.word_dropout, n_special=len(SPECIALS),
                                        scaled=scaled, init_std=std)
        self.tgt_embed = self.src_embed if c.share_embeddings else TokenEmbedding(
            tgt_vocab_size, d, c.dropout, n_special=len(SPECIALS), scaled=scaled, init_std=std)
        self.encoder = TransformerEncoder(dataclasses.replace(c, causal=False), d)
        self.decoder = TransformerEncoder(dataclasses.replace(c, causal=True), d, cross=True,
                                          num_layers=c.decoder_layers or c.num_layers)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(d, tgt_vocab_size, bias=False)
        if e.tie_weights:
            self.out.weight = self.tgt_embed.weight_layer.weight
        self.aux_loss: Tensor | None = None

    def encode(self, src_ids: Tensor, src_mask: Tensor) -> Tensor:
        """-> memory (B, S, D), zeros on padding."""
        return cast(Tensor, self.encoder(self.src_embed(src_ids), src_mask))

    def _logits(self, h: Tensor) -> Tensor:
        return cast(Tensor, self.out(self.drop(h)))

    def forward(self, batch: dict[str, Tensor], loss: bool = False) -> Any:
        """Teacher-forced logits (B, T, V); ``loss=True``: (summed training loss, units)."""
        src_mask = batch["src_mask"].bool()
        memory = self.encode(batch["src_ids"], src_mask)  # (B, S, D)
        h = self.decoder(self.tgt_embed(batch["input_ids"]), batch["mask"].bool(), memory, src_mask)  # (B, T, D)
        auxes = [a for a in (self.encoder.aux_loss, self.decoder.aux_loss) if a is not None]
        self.aux_loss = torch.stack(auxes).sum() if auxes else None
        out = self._logits(h)  # (B, T, V)
        return training_loss(self, out, batch) if loss else out

    @torch.no_grad()
    def alignment(self, batch: dict[str, Tensor], i: int, layer: int = -1) -> Tensor:
        """Cross-attention weights (T_i, S_i) of example ``i`` under teacher forcing, averaged over
        the heads of decoder block ``layer`` (default: the last), restricted to its real target
        and source positions; row t is the attention used to predict ``labels[t]``. For
        :func:`seqlab.plots.save_attention_heatmap`."""
        if not 0 <= i < batch["src_ids"].shape[0]:
            raise ConfigError(f"example index must be in [0, {batch['src_ids'].shape[0]}), found {i}")
        cross = cast(TransformerBlock, self.decoder.blocks[layer]).cross_attn
        assert cross is not None
        cross.record_weights = True
        try:
            self(batch)
            weights = cross.last_weights
        finally:
            cross.record_weights, cross.last_weights = False, None
        assert weights is not None
        w = weights[i].mean(0)  # (T, S)
        return w[batch["mask"][i].bool()][:, batch["src_mask"][i].bool()]  # (T_i, S_i)

    def start(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Decoder state before the first token: the memory, its mask and no cache yet."""
        src_mask = batch["src_mask"].bool()
        return {"memory": self.encode(batch["src_ids"], src_mask), "src_mask": src_mask, "cache": None}

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """``tokens`` (N,) -> next-token logits (N, V) and the state with their keys/values."""
        h, cache = self.decoder.step(self.tgt_embed(tokens[:, None]), state["cache"], state["memory"], state["src_mask"])
        return self._logits(h[:, 0]), {**state, "cache": cache}  # (N, V)

    def reorder(self, state: dict[str, Any], index: Tensor) -> dict[str, Any]:
        """Rows ``index`` (M,) of a state (beam search)."""
        idx = index.to(state["memory"].device)
        return {"memory": state["memory"].index_select(0, idx), "src_mask": state["src_mask"].index_select(0, idx),
                "cache": TransformerEncoder.reorder(state["cache"], idx)}


def transformer_network(config: TransformerConfig, task: Any, ends: EndsConfig) -> TransformerSeq2Seq:
    """The registry's factory for encoder-decoder tasks: the whole network for the task's vocabularies."""
    return TransformerSeq2Seq(config, src_vocab_size=task.input_size, tgt_vocab_size=task.output_size, ends=ends)


def _vocab(model: Any) -> Any:
    codec = getattr(model.task, "codec", None)
    if codec is None:
        raise ConfigError(f"task {model.task.name!r} has no token vocabulary to transfer")
    return codec.fitted_vocab


def transfer_encoder(src: Any, dst: Any, train: Sequence[Any] | None = None) -> Any:
    """Start ``dst`` from a pretrained ``src`` (e.g. mlm pretraining -> classification): copy
    the encoder's weights and the token embeddings, matching embedding rows by token string
    (a token ``src`` never saw keeps its fresh row). Both are Transformer ``NeuralModel``s with
    the same encoder shape. If ``dst`` is not built yet, its task is fitted on ``train`` and its
    network built first; then ``dst.fit(train)`` fine-tunes it. Returns ``dst``."""
    from seqlab.models.neural import NeuralModel

    if not isinstance(src, NeuralModel) or not isinstance(dst, NeuralModel):
        raise ConfigError("transfer_encoder takes two neural seqlab models")
    if dst.module_ is None and not train:
        raise SeqlabError("dst is not built yet: pass its training examples as train=")
    dst.prepare(train or [])
    s, d = src.module, dst.module
    try:
        d.encoder.load_state_dict(s.encoder.state_dict(), strict=True)
    except RuntimeError as e:
        raise ConfigError(f"the encoders differ in shape; build dst with src's model settings: {e}") from None
    src_vocab, dst_vocab = _vocab(src), _vocab(dst)
    src_w, dst_w = s.frontend.embed.weight, d.frontend.embed.weight  # (V_src, E), (V_dst, E)
    if src_w.shape[1] != dst_w.shape[1]:
        raise ConfigError(f"embedding widths differ: {src_w.shape[1]} vs {dst_w.shape[1]}")
    pairs = [(i, src_vocab.stoi[t]) for i, t in enumerate(dst_vocab.itos) if t in src_vocab.stoi]
    if pairs:
        rows = torch.tensor([p[0] for p in pairs], device=dst_w.device)
        cols = torch.tensor([p[1] for p in pairs], device=src_w.device)
        with torch.no_grad():
            dst_w[rows] = src_w[cols].to(dst_w.device)
    return dst
