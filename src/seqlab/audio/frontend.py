"""The transcription task's two ends around any encoder: the audio frontend and the CTC head.

::

    wave (B, N) --log-mel--> (B, T, M) --normalise, SpecAugment--> --conv subsampling--> (B, T', C*M') --linear--> (B, T', D)
    h (B, T', H) --CTCHead--> logits (B, T', V)   (V includes the blank, id 0)

- :class:`ConvSubsampling`: 0, 1 or 2 layers of Conv2d (kernel 3, stride 2, padding 1) + ReLU over
  (time, mel), the speech front end of ESPnet and Conformer (Gulati et al. 2020): 1x, 2x or 4x fewer
  frames, ``T' = ceil(T / 2)`` per layer (:func:`subsampled_lengths`). Positions past a row's length
  are zeroed before each layer, so a padded batch gives each row what it would get alone.
  The convolutions are He-initialised and the projection is layer-normalised: with PyTorch's default
  initialisation and no norm, a BiGRU-CTC on FSDD digits sat on the all-blank plateau for hundreds
  of steps longer.
- :class:`StackSubsampling`: ``factor`` consecutive frames side by side (``subsampling_kind="stack"``).
- :class:`AudioFrontend`: the above from waveforms (``batch["wave"]``) or precomputed features
  (``batch["features"]``); SpecAugment keep-masks come in the batch (``time_keep``, ``freq_keep``),
  drawn by the task's collate from its seeded generator (training only).
- :class:`CTCHead`: a linear map to the label set with the blank; ``decide`` gives log-probabilities
  with every padded position a certain blank, so decoders may run over the padded length.

Shapes: B batch, N samples, T frames, T' subsampled frames, M mel bands (or features), D width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqlab.audio.features import (
    FeatureConfig,
    LogMel,
    apply_masks,
    frame_lengths,
    lengths_mask,
    normalize,
    subsampled_lengths,
)
from seqlab.errors import ConfigError
from seqlab.models.heads import Head

__all__ = ["ConvSubsampling", "StackSubsampling", "AudioFrontend", "CTCHead", "subsampled_lengths", "lengths_mask"]


class ConvSubsampling(nn.Module):
    """(B, T, F), (B, T) -> (B, ceil(T / factor), C * ceil(F / factor)) and its mask."""

    def __init__(self, n_features: int, channels: int, factor: int) -> None:
        super().__init__()
        if factor not in (1, 2, 4):
            raise ConfigError(f"subsampling must be 1, 2 or 4, found {factor}")
        self.factor = factor
        n_layers = int(math.log2(factor))
        convs = [nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=2, padding=1) for i in range(n_layers)]
        for conv in convs:  # He initialisation for ReLU layers: the default shrinks activations layer by layer
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        self.convs = nn.ModuleList(convs)
        f = n_features
        for _ in range(n_layers):
            f = (f + 1) // 2
        self.output_dim = channels * f if n_layers else n_features

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if not self.convs:
            return x, mask
        lengths = mask.sum(1)  # (B,)
        h = x.unsqueeze(1)  # (B, 1, T, F)
        for conv in self.convs:
            keep = lengths_mask(lengths, h.shape[2])[:, None, :, None].to(h.dtype)  # (B, 1, T, 1)
            h = torch.relu(conv(h * keep))  # (B, C, ceil(T/2), ceil(F/2))
            lengths = subsampled_lengths(lengths, 2)
        b, c, t, f = h.shape
        out = h.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, T', C*F')
        return out, lengths_mask(lengths, t)


class StackSubsampling(nn.Module):
    """(B, T, F), (B, T) -> (B, ceil(T / factor), factor * F): ``factor`` consecutive frames side by
    side (frame stacking, as in low-frame-rate CTC; Sak et al. 2015), padded frames zeroed."""

    def __init__(self, n_features: int, factor: int) -> None:
        super().__init__()
        if factor not in (1, 2, 4):
            raise ConfigError(f"subsampling must be 1, 2 or 4, found {factor}")
        self.factor = factor
        self.output_dim = n_features * factor

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b, t, f = x.shape
        pad = (-t) % self.factor
        x = torch.nn.functional.pad(x * mask.unsqueeze(-1).to(x.dtype), (0, 0, 0, pad))
        out = x.reshape(b, (t + pad) // self.factor, self.factor * f)  # (B, T', factor*F)
        return out, lengths_mask(subsampled_lengths(mask.sum(1), self.factor), out.shape[1])


class AudioFrontend(nn.Module):
    """Batch -> ``(x (B, T', D), mask (B, T'))``: log-mel (or given features), per-utterance
    normalisation, the batch's SpecAugment masks, convolutional subsampling, a linear map to D."""

    def __init__(
        self, features: FeatureConfig | None, n_features: int, dim: int, *, subsampling: int = 2,
        channels: int = 32, dropout: float = 0.0, normalise: bool = True, kind: str = "conv",
    ) -> None:
        super().__init__()
        self.logmel = LogMel(features) if features is not None else None
        self.hop = features.hop_length if features is not None else 0
        n_in = features.n_mels if features is not None else n_features
        self.normalise = normalise
        self.subsample: ConvSubsampling | StackSubsampling = (
            ConvSubsampling(n_in, channels, subsampling) if kind == "conv" else StackSubsampling(n_in, subsampling))
        self.proj = nn.Linear(self.subsample.output_dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim

    def features(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, T, M) normalised features (before SpecAugment) and the frame mask (B, T)."""
        if self.logmel is not None:
            if "wave" not in batch:
                raise ConfigError("this model reads audio; the batch holds precomputed features")
            x, mask = self.logmel(batch["wave"], batch["mask"])
        else:
            if "features" not in batch:
                raise ConfigError("this model reads precomputed features; the batch holds audio")
            x, mask = batch["features"], batch["mask"]
        return (normalize(x, mask) if self.normalise else x * mask.unsqueeze(-1)), mask

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        x, mask = self.features(batch)  # (B, T, M), (B, T)
        if "time_keep" in batch:
            x = apply_masks(x, batch["time_keep"], batch["freq_keep"])
        x, mask = self.subsample(x, mask)  # (B, T', C*M'), (B, T')
        return self.dropout(self.norm(self.proj(x))), mask

    def frame_lengths(self, batch: dict[str, Tensor]) -> Tensor:
        """(B,) frames per row before subsampling."""
        n = batch["mask"].sum(1)
        return frame_lengths(n, self.hop) if self.logmel is not None else n

    def mask_of(self, batch: dict[str, Tensor]) -> Tensor:
        """The mask ``forward`` returns: (B, T')."""
        lengths = subsampled_lengths(self.frame_lengths(batch), self.subsample.factor)
        t = batch["mask"].shape[1]
        t = 1 + t // self.hop if self.logmel is not None else t
        return lengths_mask(lengths, int(subsampled_lengths(torch.tensor([t]), self.subsample.factor)[0]))


class CTCHead(Head):
    """(B, T', H) -> (B, T', V) label scores, the blank at ``blank``."""

    def __init__(self, dim: int, n_labels: int, dropout: float = 0.0, blank: int = 0) -> None:
        super().__init__()
        self.blank = blank
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, n_labels)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(h))  # (B, T', V)

    def decide(self, output: Tensor, mask: Tensor) -> Tensor:
        """(B, T', V) float32 log-probabilities; padded positions are a certain blank."""
        logp = output.float().log_softmax(-1)
        certain = torch.full_like(logp, float("-inf"))
        certain[..., self.blank] = 0.0
        return torch.where(mask.unsqueeze(-1), logp, certain)
