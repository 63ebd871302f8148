"""fsdd_digits removes each recording's DC offset before joining (oracle: the recording's own
sample mean, read with soundfile); ``remove_dc=False`` keeps the raw samples."""

from __future__ import annotations

import numpy as np
import pytest

from seqlab.errors import MissingDependencyError


def test_joined_digits_have_no_dc_step() -> None:
    from seqlab.audio.datasets import fsdd_root, read_fsdd_digits

    try:
        root = fsdd_root()
    except MissingDependencyError as e:
        pytest.skip(f"FSDD is not on this machine: {e}")
    import soundfile as sf

    raw_mean = float(np.mean(sf.read(root / "recordings" / "0_nicolas_0.wav", dtype="float32")[0]))
    assert abs(raw_mean) > 0.003  # this speaker's recordings sit on an offset (the reason for the fix)
    for remove in (True, False):
        rows = [e for e in read_fsdd_digits(remove_dc=remove) if e["speaker"] == "nicolas" and e["split"] == "test"]
        ex = next(e for e in rows if "0_0" in e["id"].split("/")[-1].split("-"))
        k = ex["id"].split("/")[-1].split("-").index("0_0")
        _, start, end = ex["words"][k]
        seg = np.asarray(ex["audio"][round(start * 8000) : round(end * 8000)], dtype=np.float64)
        gap = np.asarray(ex["audio"][: round(ex["words"][0][1] * 8000)], dtype=np.float64)
        assert abs(gap.mean()) < 1e-4  # the silences are dither around zero either way
        expected = 0.0 if remove else raw_mean
        assert abs(seg.mean() - expected) < 1e-5  # the dither's mean over the word is ~1e-4 / sqrt(n)
