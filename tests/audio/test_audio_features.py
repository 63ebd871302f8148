"""Log-mel features pinned to librosa; normalisation, SpecAugment and resampling against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlab.audio.features import (
    FeatureConfig,
    LogMel,
    apply_masks,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    normalize,
    resample,
    spec_augment_masks,
    speed_perturb,
)
from seqlab.errors import ConfigError

librosa = pytest.importorskip("librosa", reason="librosa is the log-mel oracle (dev extra)")

CASES = [(8000, 40, "slaney"), (8000, 23, "htk"), (16000, 80, "slaney"), (16000, 64, "htk")]


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_scale_matches_librosa_and_inverts(scale: str) -> None:
    f = np.array([0.0, 50.0, 999.0, 1000.0, 1500.0, 4000.0, 8000.0])
    np.testing.assert_allclose(hz_to_mel(f, scale), librosa.hz_to_mel(f, htk=scale == "htk"), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-9)


@pytest.mark.parametrize("sr,n_mels,scale", CASES)
def test_filterbank_matches_librosa(sr: int, n_mels: int, scale: str) -> None:
    c = FeatureConfig(sample_rate=sr, n_mels=n_mels, scale=scale, fmin=20.0)
    ours = mel_filterbank(sr, c.fft_size, n_mels, 20.0, None, scale)
    ref = librosa.filters.mel(sr=sr, n_fft=c.fft_size, n_mels=n_mels, fmin=20.0, htk=scale == "htk", dtype=np.float64)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    unnormed = mel_filterbank(sr, c.fft_size, n_mels, 20.0, None, scale, norm="none")
    ref_un = librosa.filters.mel(sr=sr, n_fft=c.fft_size, n_mels=n_mels, fmin=20.0, htk=scale == "htk", norm=None, dtype=np.float64)
    np.testing.assert_allclose(unnormed, ref_un, atol=1e-12)


@pytest.mark.parametrize("sr,n_mels,scale", CASES)
def test_log_mel_matches_librosa_within_1e5(sr: int, n_mels: int, scale: str) -> None:
    rng = np.random.default_rng(sr + n_mels)
    y = (0.1 * rng.standard_normal(sr // 2 + 37)).astype(np.float32)  # not a multiple of the hop
    c = FeatureConfig(sample_rate=sr, n_mels=n_mels, scale=scale)
    ref = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=c.fft_size, hop_length=c.hop_length, win_length=c.win_length, n_mels=n_mels,
        htk=scale == "htk", center=True, pad_mode="constant", power=2.0)
    ref_log = np.log(np.maximum(ref, c.floor)).T  # (T, M)
    feats, fmask = LogMel(c)(torch.from_numpy(y)[None], torch.ones(1, len(y), dtype=torch.bool))
    assert feats.shape[1:] == ref_log.shape and bool(fmask.all())
    assert np.abs(feats[0].numpy() - ref_log).max() < 1e-5


def test_a_padded_batch_gives_each_utterance_its_own_frames() -> None:
    c = FeatureConfig(sample_rate=8000)
    lm = LogMel(c)
    rng = np.random.default_rng(0)
    waves = [torch.from_numpy(rng.standard_normal(n).astype(np.float32)) for n in (800, 1234, 3000)]
    batch = torch.zeros(3, 3000)
    mask = torch.zeros(3, 3000, dtype=torch.bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)], mask[i, : len(w)] = w, True
    batch[0, 900:] = 5.0  # garbage past the end must not leak in
    feats, fmask = lm(batch, mask)
    for i, w in enumerate(waves):
        alone, _ = lm(w[None], torch.ones(1, len(w), dtype=torch.bool))
        n = alone.shape[1]
        assert int(fmask[i].sum()) == n == 1 + len(w) // c.hop_length
        torch.testing.assert_close(feats[i, :n], alone[0], atol=1e-4, rtol=1e-5)


def test_log_floor() -> None:
    fb = torch.ones(2, 5)
    out = log_mel(torch.zeros(100), fb, torch.hann_window(8), 8, 4, floor=1e-6)
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-6))))


def test_normalize_uses_real_frames_only() -> None:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(3.0, 2.0, (2, 7, 4)))
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    out = normalize(x, mask, eps=0.0)
    for b, n in ((0, 7), (1, 4)):
        ref = (x[b, :n] - x[b, :n].mean(0)) / x[b, :n].std(0, unbiased=False)
        torch.testing.assert_close(out[b, :n], ref)
    assert bool((out[1, 4:] == 0).all())


def test_spec_augment_is_seeded_and_bounded() -> None:
    lengths = [50, 30, 80]
    a = spec_augment_masks(lengths, 20, torch.Generator().manual_seed(3), freq_width=5, time_width=7)
    b = spec_augment_masks(lengths, 20, torch.Generator().manual_seed(3), freq_width=5, time_width=7)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    time_keep, freq_keep = a
    assert time_keep.shape == (3, 80) and freq_keep.shape == (3, 20)
    assert int((~freq_keep).sum(1).max()) <= 2 * 5
    for i, n in enumerate(lengths):
        assert int((~time_keep[i]).sum()) <= 2 * min(7, int(0.2 * n))
        assert bool(time_keep[i, n:].all())  # masks fall on real frames
    x = torch.ones(3, 80, 20)
    masked = apply_masks(x, time_keep, freq_keep)
    assert torch.equal(masked == 0, ~(time_keep[:, :, None] & freq_keep[:, None, :]))
    many = [spec_augment_masks(lengths, 20, torch.Generator().manual_seed(s))[0] for s in range(5)]
    assert any(not torch.equal(many[0], m) for m in many[1:])


def test_resample_keeps_a_tone_and_its_length() -> None:
    sr_in, sr_out, f = 8000, 16000, 440.0
    t_in = np.arange(8000) / sr_in
    out = resample(np.sin(2 * np.pi * f * t_in), sr_in, sr_out)
    assert len(out) == 16000 and out.dtype == np.float32
    t_out = np.arange(16000) / sr_out
    mid = slice(1000, 15000)  # away from the filter's edge effects
    assert np.abs(out[mid] - np.sin(2 * np.pi * f * t_out[mid])).max() < 1e-2


def test_speed_perturb_changes_duration_and_pitch() -> None:
    sr, f = 8000, 500.0
    wave = np.sin(2 * np.pi * f * np.arange(sr) / sr)
    fast = speed_perturb(wave, 1.1)
    assert abs(len(fast) - sr / 1.1) <= 2
    spectrum = np.abs(np.fft.rfft(fast[500:-500] * np.hanning(len(fast) - 1000)))
    peak = np.argmax(spectrum) * sr / (len(fast) - 1000)
    assert abs(peak - f * 1.1) < 5.0
    assert np.array_equal(speed_perturb(wave, 1.0), wave.astype(np.float32))
    with pytest.raises(ConfigError):
        speed_perturb(wave, 0.0)


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="fmax"):
        FeatureConfig(sample_rate=8000, fmax=5000.0)
    with pytest.raises(ConfigError, match="n_fft"):
        FeatureConfig(sample_rate=16000, n_fft=256)
    c = FeatureConfig(sample_rate=8000)
    assert (c.win_length, c.hop_length, c.fft_size) == (200, 80, 256)
