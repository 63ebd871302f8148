"""Noise augmentation: the realised signal-to-noise ratio is the one asked for (oracle: the
definition, measured on the added noise), it is seeded, and the task adds it only in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlab.audio.features import add_noise
from seqlab.errors import ConfigError
from seqlab.tasks.transcription import TranscriptionConfig, TranscriptionTask


@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
def test_add_noise_gives_the_requested_snr(snr: float) -> None:
    t = np.arange(80_000) / 8000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = add_noise(wave, snr, torch.Generator().manual_seed(1))
    noise = out.astype(np.float64) - wave
    measured = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured - snr) < 0.1  # 80k samples: the noise power is within ~1% of its expectation
    assert abs(np.mean(noise)) < 0.05 * np.std(noise)  # zero-mean
    assert np.array_equal(out, add_noise(wave, snr, torch.Generator().manual_seed(1)))
    assert not np.array_equal(out, add_noise(wave, snr, torch.Generator().manual_seed(2)))


def test_add_noise_leaves_silence_alone() -> None:
    z = np.zeros(100, dtype=np.float32)
    assert np.array_equal(add_noise(z, 10.0, torch.Generator()), z)


def test_task_adds_noise_only_when_training() -> None:
    examples, _, options = TranscriptionTask.toy_examples()
    task = TranscriptionTask(TranscriptionConfig(**options, noise_snr=(5.0, 5.0), spec_augment=False)).fit(examples)
    items = task.encode(examples[:4]).items
    clean = task.collate(items)["wave"]
    noisy = task.collate(items, torch.Generator().manual_seed(0))["wave"]
    mask = task.collate(items)["mask"]
    assert torch.equal(clean, torch.from_numpy(np.stack([np.pad(it["signal"], (0, clean.shape[1] - len(it["signal"])))
                                                         for it in items])))
    for b, it in enumerate(items):
        n = len(it["signal"])
        x, y = clean[b, :n].double(), noisy[b, :n].double()
        snr = 10 * torch.log10(x.square().mean() / (y - x).square().mean())
        assert abs(float(snr) - 5.0) < 0.5  # a few thousand samples each
        assert bool((noisy[b, ~mask[b]] == 0).all())  # padding stays zero
    with pytest.raises(ConfigError, match="noise_snr"):
        TranscriptionConfig(noise_snr=(20.0, 10.0))
