"""Frontends: what a task puts in front of any encoder, turning a batch into vectors.

A frontend reads its own keys from the batch and returns ``(x (B, T', D), mask (B, T') bool)``,
True = a real position. It returns its own mask, so a frontend that shortens the sequence
(patching here; audio subsampling later) tells the encoder and head which positions are real.

- :class:`TokenFrontend`: token ids -> embeddings (word dropout, Lample et al. 2016), with an
  optional character CNN over each token (Ma & Hovy 2016) concatenated to them. Reads
  ``input_ids`` (B, T) long and, with characters, ``chars`` (B, T, L) long.
- :class:`ValueFrontend`: real values -> a linear projection, optionally of non-overlapping
  patches of ``patch`` steps (PatchTST, Nie et al. 2023). Reads ``values`` (B, T, F) float.

Shapes: B batch, T time, T' = ceil(T / patch), F features per step, D output width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.models.layers import CharCNN, TokenEmbedding

__all__ = ["TokenFrontend", "ValueFrontend", "patch_mask"]


class TokenFrontend(nn.Module):
    """``input_ids`` (+ ``chars``) -> (B, T, E + char_filters) and the batch's mask."""

    def __init__(
        self, vocab_size: int, dim: int, dropout: float = 0.0, word_dropout: float = 0.0, *,
        n_chars: int = 0, char_dim: int = 30, char_filters: int = 0,
        scaled: bool = False, init_std: float | None = None,
    ) -> None:
        super().__init__()
        if char_filters and not n_chars:
            raise ConfigError("char_filters needs a task that emits characters (labeling with word tokens)")
        self.embed = TokenEmbedding(vocab_size, dim, dropout, word_dropout, scaled=scaled, init_std=init_std)
        self.chars = CharCNN(n_chars, char_dim, char_filters, dropout=dropout) if char_filters else None
        self.output_dim = dim + char_filters

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        x = self.embed(batch["input_ids"])  # (B, T, E)
        if self.chars is not None:
            x = torch.cat([x, self.chars(batch["chars"])], dim=-1)  # (B, T, E + F)
        return x, batch["mask"]

    def mask_of(self, batch: dict[str, Tensor]) -> Tensor:
        """The mask ``forward`` returns, without computing embeddings: (B, T)."""
        return batch["mask"]


def patch_mask(mask: Tensor, patch: int) -> Tensor:
    """(B, T) -> (B, ceil(T / patch)): a patch is real when any step in it is real."""
    b, t = mask.shape
    pad = (-t) % patch
    m = F.pad(mask, (0, pad), value=False)  # (B, T + pad)
    return m.view(b, -1, patch).any(-1)


class ValueFrontend(nn.Module):
    """``values`` (B, T, F) float -> (B, T', D): padded steps are zeroed, then each patch of
    ``patch`` steps (all their features) is projected to D."""

    def __init__(self, n_features: int, dim: int, dropout: float = 0.0, patch: int = 1) -> None:
        super().__init__()
        if patch < 1:
            raise ConfigError(f"patch must be >= 1, found {patch}")
        self.patch = patch
        self.proj = nn.Linear(n_features * patch, dim)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        values, mask = batch["values"], batch["mask"]  # (B, T, F), (B, T)
        x = values.masked_fill(~mask.unsqueeze(-1), 0.0)
        b, t, f = x.shape
        pad = (-t) % self.patch
        x = F.pad(x, (0, 0, 0, pad)).reshape(b, (t + pad) // self.patch, self.patch * f)  # (B, T', P*F)
        return self.dropout(self.proj(x)), patch_mask(mask, self.patch)  # (B, T', D), (B, T')

    def mask_of(self, batch: dict[str, Tensor]) -> Tensor:
        """The mask ``forward`` returns: (B, T')."""
        return patch_mask(batch["mask"], self.patch)
