"""Reading audio (WAV, FLAC, anything libsndfile reads, through ``soundfile``) and precomputed
features (``.npy``), with errors a user can act on.

Every problem raises :class:`seqlab.errors.DataError` naming the audio file (and, when the path came
from a manifest or transcript list, that file and line): a missing file, an unreadable or
truncated one (a WAV whose data chunk is shorter than its header says; libsndfile would read the
shorter data without a word), a sample rate other than the one asked for, a channel count other
than one. Resampling is never silent: ``resample=True`` converts the rate with
:func:`seqlab.audio.features.resample` (band-limited polyphase); ``downmix=True`` averages channels.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from seqlab.audio.features import resample as _resample
from seqlab.errors import DataError

__all__ = ["read_audio", "read_features", "audio_info", "Where"]

Where = tuple[str | Path, int] | None  # (the list file, its 1-based line) a path was read from


def _error(path: Path, where: Where, expected: str, found: str) -> DataError:
    if where is None:
        return DataError(path, None, expected, found)
    return DataError(where[0], where[1], f"{expected} in audio file {str(path)!r}", found)


def _wav_truncation(path: Path) -> str | None:
    """For a RIFF/WAVE file, a description of the shortfall when its data chunk holds fewer bytes
    than its header declares (None when it is whole, or not a WAV)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - pos - 8
                return None if have >= n or n == 0xFFFFFFFF else f"{have} of the {n} data bytes its header declares"
            pos += 8 + n + (n & 1)
    return "no data chunk"


def audio_info(path: str | Path, where: Where = None) -> tuple[int, int, int]:
    """``(sample rate, channels, frames)`` of an audio file, with the errors of :func:`read_audio`."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise _error(p, where, "an audio file", "no such file")
    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.SoundFileError) as e:
        raise _error(p, where, "a readable audio file (WAV, FLAC, ...)", str(e)) from None
    return int(info.samplerate), int(info.channels), int(info.frames)


def read_audio(
    path: str | Path, sample_rate: int, *, resample: bool = False, downmix: bool = False,
    offset: float = 0.0, duration: float | None = None, where: Where = None,
) -> np.ndarray:
    """(N,) float32 samples in [-1, 1] of a mono file at ``sample_rate``; ``offset`` and
    ``duration`` (seconds) cut a segment. A file at another rate is an error unless ``resample``;
    several channels are an error unless ``downmix``."""
    import soundfile as sf

    p = Path(path)
    rate, channels, frames = audio_info(p, where)
    short = _wav_truncation(p)
    if short is not None:
        raise _error(p, where, "a whole WAV file", f"a truncated one ({short})")
    if rate != sample_rate and not resample:
        raise _error(p, where, f"audio at {sample_rate} Hz (or resample=True to convert)", f"{rate} Hz")
    if channels != 1 and not downmix:
        raise _error(p, where, "mono audio (or downmix=True to average the channels)", f"{channels} channels")
    start = int(round(offset * rate))
    stop = None if duration is None else start + int(round(duration * rate))
    if start < 0 or start > frames or (stop is not None and (stop > frames + 1 or stop < start)):
        seconds = frames / rate
        raise _error(p, where, f"offset/duration within its {seconds:.3f} s", f"offset {offset}, duration {duration}")
    try:
        data, _ = sf.read(str(p), start=start, stop=stop, dtype="float32", always_2d=True)  # (N, C)
    except (RuntimeError, sf.SoundFileError) as e:
        raise _error(p, where, "a readable audio file (WAV, FLAC, ...)", f"a read error: {e}") from None
    wave = data.mean(axis=1) if channels != 1 else data[:, 0]
    if not len(wave):
        raise _error(p, where, "at least one sample", "none")
    return _resample(wave, rate, sample_rate) if rate != sample_rate else np.ascontiguousarray(wave, dtype=np.float32)


def read_features(path: str | Path, n_features: int | None = None, where: Where = None) -> np.ndarray:
    """(T, F) float32 features from a ``.npy`` file: a 2-D finite array with at least one frame (and
    ``n_features`` columns when given)."""
    p = Path(path)
    if not p.is_file():
        raise _error(p, where, "a .npy feature file", "no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise _error(p, where, "a .npy array of features (frames x features)", f"an unreadable file ({e})") from None
    return check_features(arr, p, n_features, where)


def check_features(arr: np.ndarray, path: str | Path | None, n_features: int | None = None, where: Where = None) -> np.ndarray:
    """The checks of :func:`read_features` on an array already in memory."""
    p = Path(path) if path is not None else Path("<features>")
    if arr.ndim != 2 or not arr.shape[0]:
        raise _error(p, where, "a 2-D array of features (frames x features, at least one frame)", f"shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise _error(p, where, "finite numbers", "NaN, infinity or non-numbers")
    if n_features is not None and arr.shape[1] != n_features:
        raise _error(p, where, f"{n_features} features per frame", str(arr.shape[1]))
    return np.asarray(arr, dtype=np.float32)
