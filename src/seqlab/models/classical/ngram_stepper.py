"""An n-gram model's backoff tables as a :class:`~seqlab.inference.decoding.Stepper`, so greedy,
beam search and sampling (:mod:`seqlab.inference.decoding`) generate from it.

The state is the history, (N, order) model ids left-padded with -1, and ``</s>`` (or ``<s>``)
starts a new sentence, as in training. A prompt primes the stepper: its last token is the first
one fed, the rest builds the state.

Shapes: N stepper rows (beam hypotheses), V vocabulary size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqlab.inference.decoding import reorder_state
from seqlab.models.classical.ngram_tables import (
    BOS,
    EOS,
    NGramTables,
    _context_chain,
    next_log10_rows,
)

__all__ = ["NGramStepper"]


class NGramStepper:
    """An n-gram model's tables as a stepper over model ids (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2)."""

    def __init__(self, tables: NGramTables) -> None:
        self.tables = tables
        self.width = max(tables.order, 1)

    def prime(self, history: list[int]) -> tuple[Tensor, Any]:
        start = history[-1] if history else BOS
        return torch.tensor([start]), self._pad([history[:-1]])

    def _pad(self, rows: list[list[int]]) -> Tensor:
        w = self.width
        return torch.tensor([[-1] * (w - len(r[-w:])) + r[-w:] for r in rows], dtype=torch.long).view(len(rows), w)

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        rows = []
        for hist, tok in zip(state.tolist(), tokens.tolist()):
            rows.append([] if tok in (BOS, EOS) else [*(h for h in hist if h >= 0), tok])
        chains = np.stack([_context_chain(self.tables, r) for r in rows]) if rows else np.zeros((0, self.width - 1), dtype=np.int64)
        logits = torch.from_numpy(next_log10_rows(self.tables, chains) * math.log(10))  # (N, V)
        return logits, self._pad(rows)

    def reorder(self, state: Any, index: Tensor) -> Any:
        return reorder_state(state, index)
