"""Transcription data on disk: a JSONL manifest, or a folder of audio files with a TSV of transcripts.

Both return examples of the ``transcription`` task: ``{"audio_filepath": absolute path, "text": str}``
plus, when known, ``"offset"`` / ``"duration"`` (seconds: a segment of the file), ``"speaker"``, and
``"source_line": [list file, line]`` so that a problem found later in the audio itself names the line
it came from. Audio paths are resolved against the list file's folder.

- :func:`read_manifest`: one JSON object per line, the form NeMo and others use:
  ``{"audio_filepath": "a.wav", "text": "...", "duration": 1.2, "offset": 0.0, "speaker": "s1"}``
  (``audio_filepath`` and ``text`` required; other keys kept as they are).
- :func:`read_audio_dir`: ``transcripts.tsv`` in the folder (or a given file), ``file<TAB>text`` or
  ``file<TAB>text<TAB>speaker`` per line; ``file`` is relative to the folder.

Errors (:class:`seqlab.errors.DataError`) name the list file and line: invalid JSON, a missing or
mistyped key, a missing column, an audio file that is missing or that libsndfile cannot open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqlab.audio.io import audio_info
from seqlab.data.readers import json_object_line, read_lines
from seqlab.errors import DataError

__all__ = ["read_manifest", "read_audio_dir", "MANIFEST_KEYS"]

MANIFEST_KEYS = ("audio_filepath", "text")
_NUMBER_KEYS = ("duration", "offset")


def _resolve(base: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else base / p


def _example(path: Path, lineno: int, audio: Path, text: str, extra: dict[str, Any]) -> dict[str, Any]:
    audio_info(audio, where=(path, lineno))  # exists and opens: named by the list file and line
    return {**extra, "audio_filepath": str(audio), "text": text, "source_line": [str(path), lineno]}


def read_manifest(path: str | Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Examples from a JSONL manifest (see the module docstring); blank lines are skipped."""
    p = Path(path)
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(read_lines(p, encoding), start=1):
        if not line.strip():
            continue
        obj = json_object_line(p, lineno, line)
        missing = [k for k in MANIFEST_KEYS if k not in obj]
        if missing:
            raise DataError(p, lineno, "keys audio_filepath and text", f"keys {sorted(obj)}")
        for key in MANIFEST_KEYS:
            if not isinstance(obj[key], str):
                raise DataError(p, lineno, f"{key!r} as a string", repr(obj[key])[:80])
        for key in _NUMBER_KEYS:
            if key in obj and (isinstance(obj[key], bool) or not isinstance(obj[key], (int, float)) or obj[key] < 0):
                raise DataError(p, lineno, f"{key!r} as a number of seconds >= 0", repr(obj[key])[:80])
        if "speaker" in obj and not isinstance(obj["speaker"], (str, int)):
            raise DataError(p, lineno, "'speaker' as a string or an integer", repr(obj["speaker"])[:80])
        extra = {k: v for k, v in obj.items() if k not in MANIFEST_KEYS}
        out.append(_example(p, lineno, _resolve(p.parent, obj["audio_filepath"]), obj["text"], extra))
    if not out:
        raise DataError(p, None, "at least one JSON object", "an empty file")
    return out


def read_audio_dir(folder: str | Path, transcripts: str | Path = "transcripts.tsv", encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Examples from a folder of audio files and a TSV of transcripts (``file<TAB>text[<TAB>speaker]``;
    ``transcripts`` is relative to ``folder`` unless absolute). Blank lines are skipped."""
    base = Path(folder)
    if not base.is_dir():
        raise DataError(base, None, "a folder of audio files", "no such folder")
    tsv = _resolve(base, str(transcripts))
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(read_lines(tsv, encoding), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3) or not fields[0].strip():
            raise DataError(tsv, lineno, "file<TAB>text or file<TAB>text<TAB>speaker", repr(line)[:80])
        extra = {"speaker": fields[2].strip()} if len(fields) == 3 else {}
        out.append(_example(tsv, lineno, _resolve(base, fields[0].strip()), fields[1].strip(), extra))
    if not out:
        raise DataError(tsv, None, "at least one transcript line", "an empty file")
    return out
