"""Audio reading and the transcription readers: what they return, and errors naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqlab.audio.io import read_audio, read_features
from seqlab.audio.readers import read_audio_dir, read_manifest
from seqlab.errors import DataError

sf = pytest.importorskip("soundfile")


def _tone(n: int = 800, sr: int = 8000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 300 * np.arange(n) / sr)).astype(np.float32)


def _write(path: Path, wave: np.ndarray, sr: int = 8000, **kw: object) -> Path:
    sf.write(str(path), wave, sr, **kw)
    return path


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_read_audio_round_trips(tmp_path: Path, ext: str) -> None:
    wave = _tone()
    p = _write(tmp_path / f"a.{ext}", wave, subtype="PCM_16")
    out = read_audio(p, 8000)
    assert out.dtype == np.float32 and out.shape == wave.shape
    assert np.abs(out - wave).max() < 1e-4  # 16-bit quantisation
    seg = read_audio(p, 8000, offset=0.01, duration=0.02)
    np.testing.assert_allclose(seg, out[80:240])


def test_read_audio_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.wav.*no such file"):
        read_audio(tmp_path / "missing.wav", 8000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match="junk.wav: expected a readable audio file"):
        read_audio(junk, 8000)
    whole = _write(tmp_path / "whole.wav", _tone(4000), subtype="PCM_16").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.wav: expected a whole WAV file; found a truncated one"):
        read_audio(tmp_path / "cut.wav", 8000)
    whole_flac = _write(tmp_path / "whole.flac", _tone(4000)).read_bytes()
    (tmp_path / "cut.flac").write_bytes(whole_flac[: len(whole_flac) // 2])
    with pytest.raises(DataError, match="cut.flac"):
        read_audio(tmp_path / "cut.flac", 8000)
    p16 = _write(tmp_path / "hi.wav", _tone(1600, 16000), 16000)
    with pytest.raises(DataError, match=r"hi.wav: expected audio at 8000 Hz \(or resample=True.*found 16000 Hz"):
        read_audio(p16, 8000)
    assert len(read_audio(p16, 8000, resample=True)) == 800
    stereo = _write(tmp_path / "st.wav", np.stack([_tone(), -_tone()], 1))
    with pytest.raises(DataError, match="st.wav: expected mono audio.*found 2 channels"):
        read_audio(stereo, 8000)
    assert np.abs(read_audio(stereo, 8000, downmix=True)).max() < 1e-4
    with pytest.raises(DataError, match="offset/duration"):
        read_audio(p16, 16000, offset=5.0)


def test_read_features(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.ones((5, 3)))
    assert read_features(tmp_path / "f.npy", 3).shape == (5, 3)
    with pytest.raises(DataError, match="f.npy: expected 4 features per frame; found 3"):
        read_features(tmp_path / "f.npy", 4)
    np.save(tmp_path / "g.npy", np.ones(5))
    with pytest.raises(DataError, match="g.npy: expected a 2-D array"):
        read_features(tmp_path / "g.npy")
    np.save(tmp_path / "n.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="n.npy: expected finite numbers"):
        read_features(tmp_path / "n.npy")


def test_manifest(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone())
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "b.flac", _tone())
    rows = [{"audio_filepath": "a.wav", "text": "one two", "duration": 0.1, "speaker": "s1"},
            {"audio_filepath": str(tmp_path / "sub" / "b.flac"), "text": "three", "offset": 0.0}]
    m = tmp_path / "train.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    ex = read_manifest(m)
    assert [e["text"] for e in ex] == ["one two", "three"]
    assert ex[0]["audio_filepath"] == str(tmp_path / "a.wav") and ex[0]["speaker"] == "s1" and ex[0]["duration"] == 0.1
    assert ex[1]["source_line"] == [str(m), 2]


@pytest.mark.parametrize("line,match", [
    ('{"audio_filepath": "a.wav"}', "line 2: expected keys audio_filepath and text"),
    ('{"audio_filepath": "a.wav", "text": 3}', "line 2: expected 'text' as a string"),
    ('{"audio_filepath": "a.wav", "text": "x", "duration": "long"}', "line 2: expected 'duration' as a number"),
    ('{"audio_filepath": "gone.wav", "text": "x"}', r"line 2: expected an audio file in audio file '.*gone.wav'; found no such file"),
    ("not json", "line 2: expected a JSON object"),
])
def test_manifest_errors_name_the_line(tmp_path: Path, line: str, match: str) -> None:
    _write(tmp_path / "a.wav", _tone())
    m = tmp_path / "m.jsonl"
    m.write_text('{"audio_filepath": "a.wav", "text": "ok"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"m.jsonl, {match}"):
        read_manifest(m)


def test_audio_dir(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", _tone())
    _write(tmp_path / "b.wav", _tone())
    (tmp_path / "transcripts.tsv").write_text("a.wav\thello there\tsp1\nb.wav\tbye\n")
    ex = read_audio_dir(tmp_path)
    assert [(e["text"], e.get("speaker")) for e in ex] == [("hello there", "sp1"), ("bye", None)]
    (tmp_path / "bad.tsv").write_text("a.wav\tfine\nb.wav only\n")
    with pytest.raises(DataError, match="bad.tsv, line 2: expected file<TAB>text"):
        read_audio_dir(tmp_path, "bad.tsv")
    (tmp_path / "gone.tsv").write_text("c.wav\tfine\n")
    with pytest.raises(DataError, match="gone.tsv, line 1: .*c.wav'; found no such file"):
        read_audio_dir(tmp_path, "gone.tsv")
