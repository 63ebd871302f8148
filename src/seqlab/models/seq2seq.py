"""Sequence-to-sequence RNNs: an encoder-decoder with or without attention.

* ``attention="none"``: the source is squeezed into one fixed vector, the encoder's final
  state, which initialises the decoder (Sutskever et al. 2014) and is fed to every step and to
  the output layer (Cho et al. 2014). The decoder never reads the per-position memory.
* ``"bahdanau"``: additive attention whose query is the decoder state before the step; the
  context enters the recurrence and the output layer (Bahdanau et al. 2015).
* ``"luong_dot"`` / ``"luong_general"``: multiplicative attention on the state after the step,
  ``h~ = tanh(W_c [c; h])`` feeds the output layer and, with ``input_feeding``, the next step's
  input (Luong et al. 2015).

The encoder is a (by default bidirectional) GRU or LSTM over packed sequences, so padding never
reaches a real position. A bridge ``tanh(W [h_fwd; h_bwd])`` maps each layer's final encoder
state to the decoder's initial state. Training feeds the gold previous token with probability
``teacher_forcing`` per token and row, else the model's own prediction (argmax or a sample);
:func:`teacher_forcing_schedule` gives the scheduled-sampling decay of Bengio et al. 2015.

Decoding follows :class:`seqlab.inference.decoding.Stepper`: ``start(batch) -> state``,
``step(tokens, state) -> (logits, state)`` and ``reorder(state, index)``.

Shapes: B batch, S source length, T target length, E embedding, H hidden, L layers,
M memory features (H * directions), P output features (E when ``tie_weights``, else H),
V target vocabulary. Masks are bool, True = real token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.config import check_at_least, check_fraction
from seqlab.data.vocab import SPECIALS
from seqlab.errors import ConfigError
from seqlab.inference.decoding import reorder_state
from seqlab.models.layers import TokenEmbedding, restore_alignment, right_align
from seqlab.models.layers.seq2seq_attention import SourceAttention
from seqlab.models.network import EndsConfig, training_loss

__all__ = ["seq2seq_network", "Seq2SeqConfig", "Seq2SeqModule", "teacher_forcing_schedule"]

Schedule = Literal["none", "linear", "exponential", "inverse_sigmoid"]
_K_DEFAULT = {"linear": 1.0, "exponential": 0.9999, "inverse_sigmoid": 1000.0}


def teacher_forcing_schedule(
    kind: Schedule, step: int, *, k: float | None = None, c: float = 1e-4, epsilon: float = 0.0,
    ratio: float = 1.0,
) -> float:
    """Teacher-forcing probability at training step ``step`` (Bengio et al. 2015, Sec. 2.4).

    linear ``max(epsilon, k - c * i)``; exponential ``k ** i`` (k < 1); inverse sigmoid
    ``k / (k + exp(i / k))`` (k >= 1); "none": the constant ``ratio``. ``k`` defaults to 1,
    0.9999 and 1000 respectively.
    """
    if step < 0:
        raise ConfigError(f"step must be >= 0, found {step}")
    if kind == "none":
        return ratio
    if kind not in _K_DEFAULT:
        raise ConfigError(f"unknown schedule {kind!r}; valid: none, linear, exponential, inverse_sigmoid")
    kk = _K_DEFAULT[kind] if k is None else k
    if kind == "linear":
        return max(epsilon, kk - c * step)
    if kind == "exponential":
        return float(kk**step)
    z = math.log(kk) - step / kk  # k / (k + exp(i / k)) = sigmoid(ln k - i / k), without overflow
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Settings of an RNN encoder-decoder: ``d_model`` is the token embedding width (both sides),
    ``hidden_size`` the recurrent state. Word dropout (on source tokens) and weight tying (decoder
    embedding = output projection) are the network's end settings (``word_dropout``,
    ``tie_weights``), set as for every family."""

    cell: Literal["gru", "lstm"] = "gru"
    d_model: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True  # the encoder's
    attention: Literal["none", "bahdanau", "luong_dot", "luong_general"] = "bahdanau"
    attention_dim: int = 0  # Bahdanau's A; 0: hidden_size
    input_feeding: bool = True  # Luong only
    dropout: float = 0.1
    share_embeddings: bool = False  # one embedding for source and target (same vocabulary)
    teacher_forcing: float = 1.0  # probability of feeding the gold previous token
    own_prediction: Literal["argmax", "sample"] = "argmax"  # what is fed otherwise
    scheduled_sampling: Schedule = "none"
    schedule_k: float | None = None
    schedule_c: float = 1e-4
    schedule_epsilon: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "hidden_size", "num_layers")
        check_fraction(self, "dropout")
        _check_choice("cell", self.cell, ("gru", "lstm"))
        _check_choice("attention", self.attention, ("none", "bahdanau", "luong_dot", "luong_general"))
        _check_choice("own_prediction", self.own_prediction, ("argmax", "sample"))
        _check_choice("scheduled_sampling", self.scheduled_sampling, ("none", *_K_DEFAULT))
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(f"teacher_forcing must be in [0, 1], found {self.teacher_forcing}")
        if self.attention_dim < 0:
            raise ConfigError(f"attention_dim must be >= 0, found {self.attention_dim}")
        k = self.schedule_k
        if self.scheduled_sampling == "exponential" and k is not None and not 0 < k < 1:
            raise ConfigError(f"the exponential schedule needs 0 < schedule_k < 1, found {k}")
        if self.scheduled_sampling == "inverse_sigmoid" and k is not None and k < 1:
            raise ConfigError(f"the inverse sigmoid schedule needs schedule_k >= 1, found {k}")
        if not 0.0 <= self.schedule_epsilon <= 1.0 or self.schedule_c < 0:
            raise ConfigError("schedule_epsilon must be in [0, 1] and schedule_c >= 0, found "
                              f"{self.schedule_epsilon}, {self.schedule_c}")

    def ratio_at(self, step: int) -> float:
        """The teacher-forcing ratio at training step ``step``."""
        return teacher_forcing_schedule(
            self.scheduled_sampling, step, k=self.schedule_k, c=self.schedule_c,
            epsilon=self.schedule_epsilon, ratio=self.teacher_forcing,
        )


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def _rnn(cell: str, input_size: int, hidden: int, layers: int, dropout: float, bi: bool) -> nn.RNNBase:
    cls = nn.LSTM if cell == "lstm" else nn.GRU
    return cls(input_size, hidden, layers, batch_first=True, bidirectional=bi,
               dropout=dropout if layers > 1 else 0.0)


class Seq2SeqModule(nn.Module):
    """RNN encoder-decoder: ``forward(batch) -> logits (B, T, V)``; attention weights (B, T, S)
    of the last forward are in :attr:`attention` (None without attention).

    ``batch``: ``src_ids`` (B, S) long, ``src_mask`` (B, S) bool, ``input_ids`` (B, T) long
    (``<bos>`` + target), ``mask`` (B, T) bool.
    """

    def __init__(self, config: Seq2SeqConfig, src_vocab_size: int, tgt_vocab_size: int, ends: EndsConfig | None = None) -> None:
        super().__init__()
        self.ends = ends or EndsConfig()
        c = self.config = config
        if c.share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ConfigError("share_embeddings needs one vocabulary, found sizes "
                              f"{src_vocab_size} (source) and {tgt_vocab_size} (target)")
        with torch.random.fork_rng(devices=[]):  # same seed -> same weights, global RNG untouched
            torch.manual_seed(c.seed)
            self._build(src_vocab_size, tgt_vocab_size)
        self.teacher_forcing_ratio = c.ratio_at(0)  # set_step(i) moves it along the schedule
        self.attention: Tensor | None = None

    def _build(self, src_vocab_size: int, tgt_vocab_size: int) -> None:
        e = self.ends
        c = self.config
        self.src_embed = TokenEmbedding(src_vocab_size, c.d_model, c.dropout, e.word_dropout,
                                        n_special=len(SPECIALS))
        self.tgt_embed = self.src_embed if c.share_embeddings else TokenEmbedding(
            tgt_vocab_size, c.d_model, c.dropout, n_special=len(SPECIALS))
        h, dirs = c.hidden_size, 2 if c.bidirectional else 1
        m = self.memory_dim = h * dirs
        p = self.out_dim = c.d_model if e.tie_weights else h
        self.encoder = _rnn(c.cell, c.d_model, h, c.num_layers, c.dropout, c.bidirectional)
        self.bridge = nn.Linear(m, h)  # final encoder state (per layer) -> decoder initial state
        self.bridge_cell = nn.Linear(m, h) if c.cell == "lstm" else None
        self.luong = c.attention.startswith("luong")
        self.feeds = c.attention == "none" or (self.luong and c.input_feeding)
        feed_dim = m if c.attention in ("none", "bahdanau") else (p if self.feeds else 0)
        self.decoder = _rnn(c.cell, c.d_model + feed_dim, h, c.num_layers, c.dropout, False)
        self.attn = None if c.attention == "none" else SourceAttention(c.attention, h, m, c.attention_dim or None)
        # output layer: Luong's W_c [c; h]; Bahdanau's / Cho's "deep output" from [s; c; y_prev]
        self.combine = nn.Linear(m + h if self.luong else h + m + c.d_model, p)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(p, tgt_vocab_size, bias=False)
        if e.tie_weights:
            self.out.weight = self.tgt_embed.weight_layer.weight

    # --- scheduled sampling hook -------------------------------------------------------
    def set_step(self, step: int) -> None:
        """Set :attr:`teacher_forcing_ratio` for training step ``step`` (the trainer's hook)."""
        self.teacher_forcing_ratio = self.config.ratio_at(step)

    # --- encoder -----------------------------------------------------------------------
    def encode(self, src_ids: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """-> memory (B, S, M) (zeros on padding), final states (L, B, M) and, for an LSTM,
        final cells (L, B, M); directions are concatenated per layer."""
        x = self.src_embed(src_ids)  # (B, S, E)
        x, mask_r, perm = right_align(x, src_mask)
        lengths = mask_r.sum(-1).clamp(min=1).cpu()  # (B,), packing needs >= 1
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, S, M)
        memory = restore_alignment(y, perm) * src_mask.unsqueeze(-1)  # (B, S, M)
        hn, cn = final if isinstance(final, tuple) else (final, None)

        def per_layer(s: Tensor) -> Tensor:  # (L * dirs, B, H) -> (L, B, dirs * H)
            n_l, b = self.config.num_layers, s.shape[1]
            return s.view(n_l, -1, b, s.shape[-1]).permute(0, 2, 1, 3).reshape(n_l, b, -1)

        return memory, per_layer(hn), None if cn is None else per_layer(cn)

    def start(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Decoder state before the first token: ``hidden`` (L, B, H) (a tuple (h, c) for an
        LSTM); with attention ``memory`` (B, S, M), ``keys`` (B, S, K), ``src_mask`` (B, S);
        ``feed`` (B, F) (the fixed summary without attention, Luong's previous h~ with input feeding)."""
        src_mask = batch["src_mask"].bool()
        memory, hn, cn = self.encode(batch["src_ids"], src_mask)
        h0 = torch.tanh(self.bridge(hn))  # (L, B, H)
        hidden: Any = h0 if cn is None or self.bridge_cell is None else (h0, self.bridge_cell(cn))
        b = memory.shape[0]
        state: dict[str, Any] = {"hidden": hidden}
        if self.attn is not None:  # only attention reads the per-position memory
            state.update(memory=memory, src_mask=src_mask, keys=self.attn.keys(memory))  # keys (B, S, K)
        if self.config.attention == "none":
            state["feed"] = hn[-1]  # (B, M) top layer's final state: the fixed summary
        elif self.feeds:
            state["feed"] = memory.new_zeros(b, self.out_dim)  # (B, P)
        return state

    # --- one decoder step ----------------------------------------------------------------
    def _top(self, hidden: Any) -> Tensor:
        return (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]  # (B, H)

    def _decode(self, emb: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any], Tensor | None]:
        """Target embeddings ``emb`` (B, T, E) after ``state`` -> tanh pre-output (B, T, P), the
        new state (inputs are not mutated) and attention weights (B, T, S) (None without). Any T
        for the variants whose next input does not depend on this step's output (no attention;
        Luong without input feeding: :attr:`parallel`); T = 1 for the others."""
        new = dict(state)
        kind = self.config.attention
        if kind == "bahdanau":
            assert self.attn is not None
            query = self._top(state["hidden"]).unsqueeze(1)  # (B, 1, H) state before the step
            ctx, w = self.attn(query, state["keys"], state["memory"], state["src_mask"])  # (B, 1, M)
            out, new["hidden"] = self.decoder(torch.cat([emb, ctx], -1), state["hidden"])  # (B, 1, H)
            pre = self.combine(torch.cat([out, ctx, emb], -1))  # (B, 1, P)
        elif kind == "none":
            summary = state["feed"].unsqueeze(1).expand(-1, emb.shape[1], -1)  # (B, T, M)
            out, new["hidden"] = self.decoder(torch.cat([emb, summary], -1), state["hidden"])  # (B, T, H)
            pre, w = self.combine(torch.cat([out, summary, emb], -1)), None  # (B, T, P)
        else:
            assert self.attn is not None
            x = torch.cat([emb, state["feed"].unsqueeze(1)], -1) if self.feeds else emb
            out, new["hidden"] = self.decoder(x, state["hidden"])  # (B, T, H)
            ctx, w = self.attn(out, state["keys"], state["memory"], state["src_mask"])  # (B, T, M)
            pre = self.combine(torch.cat([ctx, out], -1))  # (B, T, P)
        pre = torch.tanh(pre)
        if self.feeds and kind != "none":
            new["feed"] = pre[:, -1]  # (B, P)
        return pre, new, w

    def _step_logits(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any], Tensor | None]:
        """``tokens`` (B,) -> logits (B, V), the new state and the step's attention (B, S) or None."""
        pre, new, w = self._decode(self.tgt_embed(tokens.unsqueeze(1)), state)  # (B, 1, P)
        return self.out(self.drop(pre))[:, 0], new, None if w is None else w[:, 0]  # (B, V), state, (B, S)

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """Stepper protocol: ``tokens`` (N,) long -> next-token logits (N, V), new state."""
        logits, new, _ = self._step_logits(tokens, state)
        return logits, new

    def reorder(self, state: dict[str, Any], index: Tensor) -> dict[str, Any]:
        """Rows ``index`` (M,) of a state (beam search); the hidden state's batch dim is 1."""
        return {key: reorder_state(value, index, 1 if key == "hidden" else 0) for key, value in state.items()}

    # --- whole sequences -------------------------------------------------------------------
    def forward(
        self, batch: dict[str, Tensor], teacher_forcing_ratio: float | None = None,
        generator: torch.Generator | None = None, loss: bool = False,
    ) -> Any:
        """Logits (B, T, V) for next tokens. ``teacher_forcing_ratio`` defaults to
        :attr:`teacher_forcing_ratio` in training mode and to 1 (pure teacher forcing) in eval
        mode; below 1 the model's own prediction replaces the gold previous token with
        probability ``1 - ratio`` per row and step, drawn from ``generator`` (default: torch's
        global RNG, which the trainer seeds and saves in checkpoints, so runs resume exactly)."""
        if teacher_forcing_ratio is None:
            teacher_forcing_ratio = self.teacher_forcing_ratio if self.training else 1.0
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ConfigError(f"teacher_forcing_ratio must be in [0, 1], found {teacher_forcing_ratio}")
        state = self.start(batch)
        if teacher_forcing_ratio >= 1.0 and self.parallel:
            out = self._forward_parallel(batch["input_ids"], state)
        else:
            out = self._forward_steps(batch["input_ids"], state, teacher_forcing_ratio, generator)
        return training_loss(self, out, batch) if loss else out

    @torch.no_grad()
    def alignment(self, batch: dict[str, Tensor], i: int) -> Tensor:
        """Attention weights (T_i, S_i) of example ``i`` under teacher forcing, restricted to its
        real target and source positions; row t is the attention used to predict ``labels[t]``
        (target token t, or ``<eos>``). For :func:`seqlab.plots.save_attention_heatmap`."""
        if self.attn is None:
            raise ConfigError("attention='none' has no alignment: the source is one fixed vector")
        if not 0 <= i < batch["src_ids"].shape[0]:
            raise ConfigError(f"example index must be in [0, {batch['src_ids'].shape[0]}), found {i}")
        self(batch, teacher_forcing_ratio=1.0)
        assert self.attention is not None
        return self.attention[i][batch["mask"][i]][:, batch["src_mask"][i].bool()]  # (T_i, S_i)

    @property
    def parallel(self) -> bool:
        """Whether teacher-forced training can run the decoder RNN over all steps at once
        (no dependence of a step's input on the previous step's attention)."""
        return self.config.attention == "none" or (self.luong and not self.feeds)

    def _forward_steps(
        self, ids: Tensor, state: dict[str, Any], ratio: float, generator: torch.Generator | None,
    ) -> Tensor:
        """Reference path: one decoder step at a time (any variant, any ratio)."""
        gen = generator  # None: torch's global RNG, which the trainer seeds and checkpoints (exact resume)
        logits: list[Tensor] = []
        weights: list[Tensor] = []
        prev = ids[:, 0]  # (B,)
        for t in range(ids.shape[1]):
            if t > 0:
                prev = ids[:, t]
                if ratio < 1.0:
                    own = self._own_prediction(logits[-1].detach(), gen)  # (B,)
                    coin = torch.rand(ids.shape[0], generator=gen).to(ids.device) >= ratio  # (B,)
                    prev = torch.where(coin, own, prev)
            step_logits, state, w = self._step_logits(prev, state)
            logits.append(step_logits)
            if w is not None:
                weights.append(w)
        self.attention = torch.stack(weights, 1) if weights else None  # (B, T, S)
        return torch.stack(logits, 1)  # (B, T, V)

    def _own_prediction(self, logits: Tensor, gen: torch.Generator | None) -> Tensor:
        if self.config.own_prediction == "argmax":
            return logits.argmax(-1)  # (B,)
        probs = torch.softmax(logits.float().cpu(), -1)  # (B, V)
        return torch.multinomial(probs, 1, generator=gen)[:, 0].to(logits.device)

    def _forward_parallel(self, ids: Tensor, state: dict[str, Any]) -> Tensor:
        """Fast path under full teacher forcing: the decoder RNN runs once over (B, T)."""
        pre, _, self.attention = self._decode(self.tgt_embed(ids), state)  # (B, T, P), _, (B, T, S) or None
        return self.out(self.drop(pre))  # (B, T, V)


def seq2seq_network(config: Seq2SeqConfig, task: Any, ends: EndsConfig) -> Seq2SeqModule:
    """The registry's factory: the whole encoder-decoder for a generation task's vocabularies."""
    return Seq2SeqModule(config, src_vocab_size=task.input_size, tgt_vocab_size=task.output_size, ends=ends)
