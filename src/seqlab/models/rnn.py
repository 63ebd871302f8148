"""Recurrent family: Elman RNN, LSTM and GRU on PyTorch's fused (cuDNN/oneDNN) modules.

Uni- or bidirectional, stacked, with dropout between layers. Padded positions never reach a
real position's state: sequences are packed (``pack_padded_sequence``) so the recurrence stops
at each row's length, and a batch padded on the left is realigned first, so the same tokens
give the same outputs whatever padding surrounds them.

References: Elman 1990; Hochreiter & Schmidhuber 1997 (LSTM); Cho et al. 2014 (GRU);
Schuster & Paliwal 1997 (bidirectional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.config import check_at_least, check_fraction
from seqlab.errors import ConfigError
from seqlab.models.layers import first_index, last_index, restore_alignment, right_align

__all__ = ["RNNConfig", "RNNEncoder"]

RNNState = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class RNNConfig:
    """Encoder settings of a recurrent model: ``d_model`` is the width of the vectors entering
    the recurrence, ``hidden_size`` its state width (per direction). ``dropout`` also applies in
    the network's ends; ``seed`` initialises the whole network."""

    cell: Literal["lstm", "gru", "elman"] = "lstm"
    d_model: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.1
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least(self, 1, "d_model", "hidden_size", "num_layers")
        check_fraction(self, "dropout")


class RNNEncoder(nn.Module):
    """(B, T, D_in) embeddings + (B, T) mask -> (B, T, H * directions) states."""

    def __init__(self, config: RNNConfig, input_dim: int) -> None:
        super().__init__()
        c = config
        kw = {
            "input_size": input_dim,
            "hidden_size": c.hidden_size,
            "num_layers": c.num_layers,
            "bidirectional": c.bidirectional,
            "batch_first": True,
            "dropout": c.dropout if c.num_layers > 1 else 0.0,
        }
        self.rnn: nn.RNNBase
        if c.cell == "lstm":
            self.rnn = nn.LSTM(**kw)
        elif c.cell == "gru":
            self.rnn = nn.GRU(**kw)
        else:
            self.rnn = nn.RNN(nonlinearity=c.nonlinearity, **kw)
        self.bidirectional = c.bidirectional
        self.causal = not c.bidirectional
        self.hidden_size = c.hidden_size
        self.output_dim = c.hidden_size * (2 if c.bidirectional else 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x, mask_r, perm = right_align(x, mask)
        lengths = mask_r.sum(-1).clamp(min=1).cpu()  # (B,), packing needs >= 1
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        # pad_packed_sequence fills padded steps with zeros: no extra masking pass is needed
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, T, H*dirs)
        return restore_alignment(y, perm)

    def step(self, x: Tensor, state: RNNState | None) -> tuple[Tensor, RNNState]:
        """One incremental step for causal decoding: ``x`` (B, 1, D) -> (B, 1, H), new state."""
        if self.bidirectional:
            raise ConfigError("a bidirectional RNN cannot decode incrementally")
        y, new_state = self.rnn(x, state)
        return y, new_state

    def last(self, h: Tensor, mask: Tensor) -> Tensor:
        """Summary vector (B, H*dirs): the last real state; for a bidirectional RNN the forward
        direction's last state and the backward direction's state at the first position."""
        rows = torch.arange(h.shape[0], device=h.device)
        fwd = h[rows, last_index(mask)]  # (B, H*dirs)
        if not self.bidirectional:
            return fwd
        bwd = h[rows, first_index(mask)]
        return torch.cat([fwd[:, : self.hidden_size], bwd[:, self.hidden_size :]], dim=-1)
