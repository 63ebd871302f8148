"""The RNN transducer's own network (Graves 2012): a prediction network over the labels emitted
so far and a joiner, to put over any encoder.

Shapes: B batch, T encoder frames, U labels, H encoder width, P predictor width, J joiner width,
V labels (the blank included; the blank id is also the predictor's start symbol).

:class:`TransducerHead` is the transducer as a task head (``head="rnnt"`` of the transcription
task): it owns its loss, and decides by greedy or prefix beam search.

The loss and the decoders live in :mod:`seqlab.inference.rnnt`; this module only holds
parameters and offers them in the form those functions take (``step`` and ``join``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from seqlab.config import check_at_least, check_fraction
from seqlab.errors import ConfigError
from seqlab.inference.rnnt import (
    TransducerHypothesis,
    rnnt_beam_search,
    rnnt_greedy,
    rnnt_loss,
    rnnt_loss_fused,
    rnnt_prefix_beam_search,
)
from seqlab.models.heads import Head

__all__ = ["TransducerConfig", "Predictor", "Joiner", "Transducer", "TransducerHead"]


@dataclass(frozen=True)
class TransducerConfig:
    """``pred_dim`` P (embedding and LSTM width), ``pred_layers`` LSTM layers, ``joint_dim`` J;
    ``fused_above``: compute the loss by function merging (chunks of ``chunk`` frames) when
    B * T * (U+1) * V exceeds this many logits (None: never)."""

    pred_dim: int = 128
    pred_layers: int = 1
    joint_dim: int = 256
    dropout: float = 0.1
    fused_above: int | None = 50_000_000
    chunk: int = 16

    def __post_init__(self) -> None:
        check_at_least(self, 1, "pred_dim", "pred_layers", "joint_dim", "chunk")
        check_fraction(self, "dropout")


class Predictor(nn.Module):
    """Labels (B, U) -> (B, U+1, P): the LSTM's output after the start symbol and each label."""

    def __init__(self, vocab_size: int, blank: int, c: TransducerConfig) -> None:
        super().__init__()
        self.blank = blank
        self.embed = nn.Embedding(vocab_size, c.pred_dim)
        self.drop = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(c.pred_dim, c.pred_dim, c.pred_layers, batch_first=True)

    def forward(self, targets: Tensor) -> Tensor:
        start = targets.new_full((targets.shape[0], 1), self.blank)  # (B, 1)
        y = torch.cat([start, targets.clamp(min=0)], dim=1)  # (B, U+1)
        out, _ = self.lstm(self.drop(self.embed(y)))
        return out

    def step(self, labels: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One label per row (N,) and the (h, c) state, batch first (N, layers, P), or None ->
        (N, P) and the next state."""
        hc = None if state is None else tuple(s.transpose(0, 1).contiguous() for s in state)
        out, new = self.lstm(self.embed(labels).unsqueeze(1), hc)
        return out[:, 0], tuple(s.transpose(0, 1) for s in new)


class Joiner(nn.Module):
    """(..., H) encoder and (..., P) predictor outputs, broadcast -> (..., V) logits:
    W tanh(W_e enc + W_p pred)."""

    def __init__(self, enc_dim: int, pred_dim: int, vocab_size: int, c: TransducerConfig) -> None:
        super().__init__()
        self.enc = nn.Linear(enc_dim, c.joint_dim)
        self.pred = nn.Linear(pred_dim, c.joint_dim, bias=False)
        self.out = nn.Linear(c.joint_dim, vocab_size)

    def forward(self, enc: Tensor, pred: Tensor) -> Tensor:
        return self.out(torch.tanh(self.enc(enc) + self.pred(pred)))


class Transducer(nn.Module):
    """Predictor + joiner over an encoder of width ``enc_dim``: the loss, greedy and beam decoding."""

    def __init__(self, enc_dim: int, vocab_size: int, blank: int = 0, config: TransducerConfig | None = None) -> None:
        super().__init__()
        c = config or TransducerConfig()
        self.config, self.blank = c, blank
        self.predictor = Predictor(vocab_size, blank, c)
        self.joiner = Joiner(enc_dim, c.pred_dim, vocab_size, c)

    def loss(self, enc: Tensor, enc_lengths: Tensor, targets: Tensor, target_lengths: Tensor, reduction: str = "mean") -> Tensor:
        """enc (B, T, H), targets (B, U) -> the RNN-T loss; fused (function merging) when the
        logits would exceed ``config.fused_above``."""
        pred = self.predictor(targets)  # (B, U+1, P)
        B, T = enc.shape[:2]
        size = B * T * pred.shape[1] * self.joiner.out.out_features
        if self.config.fused_above is not None and size > self.config.fused_above:
            return rnnt_loss_fused(enc, pred, self.joiner, targets, enc_lengths, target_lengths, self.blank, reduction, self.config.chunk)
        logits = self.joiner(enc.unsqueeze(2), pred.unsqueeze(1))  # (B, T, U+1, V)
        return rnnt_loss(logits, targets, enc_lengths, target_lengths, self.blank, reduction)

    def greedy(self, enc: Tensor, lengths: Tensor, max_symbols: int = 10) -> list[list[int]]:
        """Greedy labels per utterance of ``enc`` (B, T, H)."""
        return rnnt_greedy(enc, lengths, self.predictor.step, self.joiner, self.blank, max_symbols)

    def beam_search(self, enc: Tensor, beam: int = 4, nbest: int = 1, max_symbols: int = 10) -> list[TransducerHypothesis]:
        """Beam search over one utterance ``enc`` (T, H)."""
        return rnnt_beam_search(enc, self.predictor.step, self.joiner, self.blank, beam, max_symbols, nbest)



class TransducerHead(Head):
    """A :class:`Transducer` as a network head over an encoder's (B, T', H) states.

    ``forward`` returns the states with padding zeroed (the joiner needs the labels, so the
    (B, T', U+1, V) logits exist only inside :meth:`loss`); the head owns its loss (the RNN-T
    NLL summed over utterances, units = reference labels, as the CTC head's per-label loss).
    ``lengths(batch)`` gives the (B,) real frames per row (the task's ``output_lengths``), and the
    batch holds ``labels`` (B, U) and ``label_lengths`` (B,). :meth:`decide` is greedy decoding:
    (B, U_max) label ids, -1 past each row's end; :meth:`transcribe` also does beam search.
    """

    def __init__(
        self, dim: int, n_labels: int, lengths: Callable[[dict[str, Tensor]], Tensor], blank: int = 0,
        config: TransducerConfig | None = None, max_symbols: int = 5,
    ) -> None:
        super().__init__()
        if max_symbols < 1:
            raise ConfigError(f"max_symbols must be >= 1, found {max_symbols}")
        self.transducer = Transducer(dim, n_labels, blank, config)
        self.blank, self.max_symbols = blank, max_symbols
        self._lengths = lengths

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return h * mask.unsqueeze(-1).to(h.dtype)  # (B, T', H)

    def loss(self, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        lengths = self._lengths(batch).clamp(min=1, max=output.shape[1])
        targets, n = batch["labels"], batch["label_lengths"]
        total = self.transducer.loss(output, lengths, targets, n, reduction="sum")
        return total, n.sum().clamp(min=1)

    def transcribe(self, output: Tensor, mask: Tensor, beam: int = 1) -> list[list[int]]:
        """Label ids per row: greedy (``beam`` 1, batched) or :func:`rnnt_prefix_beam_search`
        of that width, one row at a time (``max_symbols`` labels per frame at most)."""
        lengths = mask.sum(1)
        enc = output.to(self.transducer.joiner.out.weight.dtype)
        if beam <= 1:
            return self.transducer.greedy(enc, lengths, self.max_symbols)
        t = self.transducer
        return [rnnt_prefix_beam_search(enc[b, : int(lengths[b])], t.predictor.step, t.joiner, self.blank, beam,
                                        self.max_symbols)[0].tokens for b in range(len(enc))]

    def decide(self, output: Tensor, mask: Tensor) -> Tensor:
        """(B, U_max) long greedy label ids, -1 past each row's end."""
        rows = self.transcribe(output, mask)
        ids = torch.full((len(rows), max([len(r) for r in rows] + [1])), -1, dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        return ids

    def probabilities(self, output: Tensor, mask: Tensor, differentiable: bool = False) -> Tensor:
        raise ConfigError("an RNN-T head has no per-frame label distribution (its joiner scores depend on the "
                          "labels emitted so far); probes and alignment need the CTC head")
