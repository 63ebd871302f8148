"""Speed perturbation against an analytic resampling oracle: a sum of tones well below Nyquist is a
band-limited signal x(t) known at every time, so the utterance played ``a`` times faster is exactly
``x(a n / sr)`` at output sample ``n``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from seqlab.audio.features import resample, speed_perturb

SR = 8000
TONES = ((220.0, 0.5, 0.3), (710.0, 0.3, 1.1), (1530.0, 0.2, 2.0))  # (Hz, amplitude, phase)


def tones(t: np.ndarray) -> np.ndarray:
    """The oracle signal at times ``t`` (seconds)."""
    return sum(a * np.sin(2 * np.pi * f * t + ph) for f, a, ph in TONES)


@pytest.mark.parametrize("factor", [0.8, 0.9, 0.95, 1.1, 1.25])
def test_speed_perturb_matches_the_band_limited_signal_at_scaled_times(factor: float) -> None:
    n = SR  # one second
    wave = tones(np.arange(n) / SR)
    out = speed_perturb(wave, factor)
    # resample_poly(up, down) with up / down = 1 / factor (exact for these factors) -> ceil(n * up / down)
    r = Fraction(1 / factor).limit_denominator(100)
    assert r == Fraction(1 / factor).limit_denominator(10**6)  # the factors are exact ratios
    assert len(out) == -(-n * r.numerator // r.denominator)
    oracle = tones(factor * np.arange(len(out)) / SR)
    edge = 200  # the FIR filter's start-up and tail
    err = np.abs(out[edge:-edge] - oracle[edge:-edge])
    assert err.max() < 2e-3  # measured: 6.3e-4 to 9.2e-4
    # and it is not the unperturbed signal: the oracle at the unscaled times is far off
    assert np.abs(out[edge:-edge] - tones(np.arange(len(out)) / SR)[edge:-edge]).max() > 0.3


def test_speed_perturb_is_resampling_played_at_the_original_rate() -> None:
    wave = tones(np.arange(4000) / SR)
    # 1.25x faster = resample 8 kHz -> 6.4 kHz, then play at 8 kHz
    assert np.allclose(speed_perturb(wave, 1.25), resample(wave, SR, 6400), atol=1e-6)
    assert np.allclose(speed_perturb(wave, 0.8), resample(wave, SR, 10000), atol=1e-6)
