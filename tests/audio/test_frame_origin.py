"""Head-frame times for alignment: log-mel frame i is centred on sample i * hop (an impulse lights
the frames symmetric about it), so a stacked head frame j stands for [j*frame - hop/2, (j+1)*frame - hop/2)."""

from __future__ import annotations

import numpy as np
import torch

from seqlab.audio.align import frame_origin, frame_seconds
from seqlab.audio.features import FeatureConfig, LogMel
from seqlab.tasks.transcription import TranscriptionConfig, TranscriptionTask


def test_an_impulse_lights_the_frames_centred_on_it_and_its_stacked_frame_holds_it() -> None:
    cfg = FeatureConfig(sample_rate=8000, n_mels=20)  # hop 80 samples, window 200
    n = 4000  # the impulse: 0.5 s
    wave = torch.zeros(1, 8000)
    wave[0, n] = 1.0
    feats, _ = LogMel(cfg)(wave, torch.ones(1, 8000, dtype=torch.bool))
    lit = np.flatnonzero(feats[0].max(-1).values.numpy() > np.log(cfg.floor) + 1.0)
    centres = lit * cfg.hop_length
    assert np.all(np.abs(centres - n) < cfg.win_length / 2)  # only frames whose window holds it
    assert centres.min() + centres.max() == 2 * n  # symmetric about the impulse: frames are centred
    task = TranscriptionTask(TranscriptionConfig(sample_rate=8000, subsampling=4, subsampling_kind="stack"))
    dt, t0 = frame_seconds(task), frame_origin(task)
    assert (dt, t0) == (0.04, -0.005)
    j = int(n / cfg.hop_length) // 4  # the head frame stacking log-mel frame n / hop
    assert j * dt + t0 <= n / 8000 < (j + 1) * dt + t0
