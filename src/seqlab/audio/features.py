"""Log-mel features, per-utterance normalisation, SpecAugment and speed perturbation.

There is no torchaudio for the torch seqlab runs on, so the front end is written here on
``torch.stft``; ``librosa`` is its test oracle only (a dev extra). Everything is a small pure
function of tensors plus :class:`LogMel`, a parameter-free module that holds the window and the
filterbank as non-persistent buffers (they are rebuilt from the config, never saved).

- :func:`mel_filterbank`: triangular filters on the HTK mel scale (``2595 log10(1 + f/700)``) or
  Slaney's (linear below 1 kHz, logarithmic above; Slaney 1998, Auditory Toolbox), optionally
  area-normalised ("slaney" norm: each filter has unit area in Hz), (n_mels, n_fft // 2 + 1).
- :func:`log_mel`: framed power spectrum (Hann window, frames centred with zero padding, so frame
  ``t`` is centred on sample ``t * hop``) -> mel -> ``log(max(mel, floor))``. A padded batch gives
  each utterance exactly the frames it would get alone: the padding is zeros, as the centring is.
- :func:`normalize`: per-utterance, per-band mean and variance over the real frames.
- :func:`spec_augment_masks` / :func:`apply_masks`: time and frequency masks (SpecAugment, Park et
  al. 2019), drawn from an explicit ``torch.Generator``.
- :func:`resample` / :func:`speed_perturb`: band-limited polyphase resampling
  (``scipy.signal.resample_poly``: a Kaiser-windowed FIR low-pass, then up/down by integers).
  Speed perturbation (Ko et al. 2015) resamples by a factor and plays the result at the original
  rate, so tempo and pitch change together.
- :func:`add_noise`: white Gaussian noise at a signal-to-noise ratio (dB) over the utterance, drawn
  from an explicit ``torch.Generator`` (noise augmentation: recordings differ in their background).

Shapes: B batch, N samples, T frames, M mel bands, K = n_fft // 2 + 1 frequency bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from seqlab.config import check_at_least
from seqlab.errors import ConfigError

__all__ = [
    "FeatureConfig", "LogMel", "mel_filterbank", "hz_to_mel", "mel_to_hz", "log_mel", "frame_lengths",
    "normalize", "subsampled_lengths", "lengths_mask", "spec_augment_masks", "apply_masks", "resample", "speed_perturb",
    "add_noise",
]

MelScale = Literal["htk", "slaney"]


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings. Window and hop are in milliseconds so one config serves any sample rate;
    ``n_fft`` None = the smallest power of two that holds the window. ``fmax`` None = Nyquist.
    ``floor``: the log's floor on mel power (``log(max(mel, floor))``)."""

    sample_rate: int = 16000
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    fmin: float = 0.0
    fmax: float | None = None
    scale: MelScale = "slaney"
    norm: Literal["slaney", "none"] = "slaney"
    floor: float = 1e-10

    def __post_init__(self) -> None:
        check_at_least(self, 1, "sample_rate", "n_mels")
        if self.win_ms <= 0 or self.hop_ms <= 0:
            raise ConfigError(f"win_ms and hop_ms must be > 0, found {self.win_ms} and {self.hop_ms}")
        if self.scale not in ("htk", "slaney") or self.norm not in ("slaney", "none"):
            raise ConfigError(f"scale must be htk or slaney and norm slaney or none; found {self.scale}, {self.norm}")
        if self.n_fft is not None and self.n_fft < self.win_length:
            raise ConfigError(f"n_fft ({self.n_fft}) must hold the window ({self.win_length} samples)")
        if self.floor <= 0:
            raise ConfigError(f"floor must be > 0, found {self.floor}")
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not 0 <= self.fmin < top <= self.sample_rate / 2:
            raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate / 2; found fmin={self.fmin}, fmax={top}")

    @property
    def win_length(self) -> int:
        return max(1, round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return max(1, round(self.sample_rate * self.hop_ms / 1000))

    @property
    def fft_size(self) -> int:
        return self.n_fft if self.n_fft is not None else 1 << (self.win_length - 1).bit_length()


# --------------------------------------------------------------------------- mel scale


def hz_to_mel(f: np.ndarray, scale: MelScale = "slaney") -> np.ndarray:
    """Frequencies in Hz -> mels on the HTK or Slaney scale (float64)."""
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0  # Slaney: linear 66.7 Hz per mel below 1 kHz
    logstep = math.log(6.4) / 27.0  # then 27 mels per factor 6.4
    lin = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, lin)


def mel_to_hz(m: np.ndarray, scale: MelScale = "slaney") -> np.ndarray:
    """The inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
    scale: MelScale = "slaney", norm: Literal["slaney", "none"] = "slaney",
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float64 triangular filters: ``n_mels + 2`` points equally spaced
    in mels from ``fmin`` to ``fmax``; filter ``i`` rises from point ``i`` to ``i + 1`` and falls to
    ``i + 2``, evaluated at the FFT bin frequencies. ``norm="slaney"`` scales each to unit area
    (``2 / (f[i+2] - f[i])``)."""
    top = sample_rate / 2 if fmax is None else fmax
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)  # (K,)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.asarray(fmin), scale), hz_to_mel(np.asarray(top), scale), n_mels + 2), scale)
    width = np.diff(edges)  # (M + 1,)
    ramps = edges[:, None] - bins[None, :]  # (M + 2, K)
    rise = -ramps[:-2] / width[:-1, None]  # (M, K)
    fall = ramps[2:] / width[1:, None]  # (M, K)
    weights = np.maximum(0.0, np.minimum(rise, fall))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


# --------------------------------------------------------------------------- features


def frame_lengths(n_samples: Tensor, hop: int) -> Tensor:
    """(B,) samples -> (B,) frames of centred framing: ``1 + n // hop``."""
    return 1 + torch.div(n_samples, hop, rounding_mode="floor")


def log_mel(
    wave: Tensor, filterbank: Tensor, window: Tensor, n_fft: int, hop: int, floor: float = 1e-10,
) -> Tensor:
    """(B, N) or (N,) float waveform -> (B, T, M) or (T, M) log mel power, T = 1 + N // hop.

    ``filterbank`` (M, K) and ``window`` (win_length,) in the waveform's dtype."""
    squeeze = wave.dim() == 1
    x = wave.unsqueeze(0) if squeeze else wave  # (B, N)
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=window.shape[0], window=window, center=True,
                      pad_mode="constant", return_complex=True)  # (B, K, T)
    power = spec.real.square() + spec.imag.square()  # (B, K, T)
    mel = torch.matmul(power.transpose(1, 2), filterbank.T)  # (B, T, M)
    out = mel.clamp_min(floor).log()
    return out[0] if squeeze else out


def subsampled_lengths(n: Tensor, factor: int) -> Tensor:
    """(B,) frame counts -> (B,) after ``factor`` (1, 2 or 4) subsampling: ``ceil(n / 2)`` per halving."""
    for _ in range(int(math.log2(factor))):
        n = torch.div(n + 1, 2, rounding_mode="floor")
    return n


def lengths_mask(lengths: Tensor, t: int) -> Tensor:
    """(B,) lengths -> (B, t) bool, True on the first ``lengths[b]`` positions."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class LogMel(nn.Module):
    """Waveforms (B, N) with a sample mask (B, N) -> log mel (B, T, M) and the frame mask (B, T)."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        fb = mel_filterbank(c.sample_rate, c.fft_size, c.n_mels, c.fmin, c.fmax, c.scale, c.norm)
        self.register_buffer("filterbank", torch.from_numpy(fb).float(), persistent=False)  # (M, K)
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)
        self.output_dim = c.n_mels

    def forward(self, wave: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        c = self.config
        wave = wave.masked_fill(~mask, 0.0)  # padding is silence, as the centring's is
        fb: Tensor = self.filterbank  # type: ignore[assignment]
        window: Tensor = self.window  # type: ignore[assignment]
        feats = log_mel(wave, fb, window, c.fft_size, c.hop_length, c.floor)  # (B, T, M)
        return feats, self.frame_mask(mask)

    def frame_mask(self, mask: Tensor) -> Tensor:
        """(B, N) sample mask -> (B, T) frame mask."""
        n_frames = 1 + mask.shape[1] // self.config.hop_length
        lengths = frame_lengths(mask.sum(1), self.config.hop_length)  # (B,)
        return torch.arange(n_frames, device=mask.device)[None, :] < lengths[:, None]


def normalize(x: Tensor, mask: Tensor, eps: float = 1e-5) -> Tensor:
    """(B, T, M) features, (B, T) mask -> each utterance's bands to zero mean and unit variance over
    its real frames; padded frames become 0."""
    m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    n = m.sum(1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    mean = (x * m).sum(1, keepdim=True) / n  # (B, 1, M)
    var = ((x - mean).square() * m).sum(1, keepdim=True) / n
    return (x - mean) / (var + eps).sqrt() * m


# --------------------------------------------------------------------------- SpecAugment


def spec_augment_masks(
    n_frames: Sequence[int] | Tensor, n_mels: int, generator: torch.Generator, *,
    freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 10, max_time_fraction: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """Keep-masks for SpecAugment (Park et al. 2019): ``(time_keep (B, T) bool, freq_keep (B, M) bool)``,
    T = max(n_frames). Each utterance gets ``freq_masks`` bands of width ``U[0, freq_width]`` and
    ``time_masks`` spans of width ``U[0, min(time_width, max_time_fraction * its frames)]``,
    placed uniformly; drawn from ``generator`` only."""
    lengths = [int(n) for n in (n_frames.tolist() if isinstance(n_frames, Tensor) else n_frames)]
    t_max = max(lengths, default=0)
    time_keep = torch.ones(len(lengths), t_max, dtype=torch.bool)
    freq_keep = torch.ones(len(lengths), n_mels, dtype=torch.bool)

    def draw(high: int) -> int:  # uniform on [0, high]
        return int(torch.randint(0, high + 1, (1,), generator=generator))

    for b, t in enumerate(lengths):
        for _ in range(freq_masks):
            w = draw(min(freq_width, n_mels))
            f0 = draw(n_mels - w)
            freq_keep[b, f0 : f0 + w] = False
        cap = min(time_width, int(max_time_fraction * t))
        for _ in range(time_masks):
            w = draw(cap)
            t0 = draw(t - w)
            time_keep[b, t0 : t0 + w] = False
    return time_keep, freq_keep


def apply_masks(x: Tensor, time_keep: Tensor, freq_keep: Tensor) -> Tensor:
    """(B, T, M) -> the masked features (set to 0: the mean of normalised features)."""
    keep = time_keep[:, : x.shape[1], None] & freq_keep[:, None, :]  # (B, T, M)
    return x * keep.to(x.dtype)


# --------------------------------------------------------------------------- resampling


def resample(wave: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """(N,) -> (ceil(N * rate_out / rate_in),) float32: polyphase band-limited resampling
    (``scipy.signal.resample_poly``, Kaiser window, beta 5)."""
    if rate_in == rate_out:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import resample_poly

    r = Fraction(rate_out, rate_in)
    return resample_poly(np.asarray(wave, dtype=np.float64), r.numerator, r.denominator).astype(np.float32)


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """(N,) -> about (N / factor,): the utterance ``factor`` times faster (tempo and pitch), by
    resampling with the rational ratio nearest ``1 / factor`` (denominator <= 100)."""
    if factor <= 0:
        raise ConfigError(f"speed factor must be > 0, found {factor}")
    if factor == 1.0:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import resample_poly

    r = Fraction(1 / factor).limit_denominator(100)
    return resample_poly(np.asarray(wave, dtype=np.float64), r.numerator, r.denominator).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, generator: torch.Generator) -> np.ndarray:
    """(N,) -> (N,) float32: ``wave`` plus white Gaussian noise whose power is the utterance's mean
    power over ``10 ** (snr_db / 10)``, drawn from ``generator``. A silent wave is returned as is."""
    x = np.asarray(wave, dtype=np.float32)
    power = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    if power <= 0.0:
        return x
    noise = torch.randn(len(x), generator=generator, dtype=torch.float64).numpy()
    return (x + math.sqrt(power / 10.0 ** (snr_db / 10.0)) * noise).astype(np.float32)
