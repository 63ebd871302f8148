"""Transcription datasets built from data on this machine: connected digits from the Free Spoken
Digit Dataset, and the Asterisk voice prompts (Debian packages).

``fsdd_digits`` (:func:`read_fsdd_digits`): FSDD (``recordings/{digit}_{speaker}_{index}.wav``, 8 kHz
mono, CC BY-SA 4.0; four of its six speakers here) holds isolated digits. Connected-digit utterances
are built by joining one speaker's recordings, in a seeded random order, into utterances of 1 to 7
digits with 50-300 ms of silence before, between and after them (plus -80 dB seeded dither, so
silence is not digital zero). The joins are kept as gold word boundaries (``"words"``: ``[digit,
start s, end s]`` per digit). Splits follow the upstream convention: recordings 0-4 of every
speaker are the test set, 5-9 validation, 10-49 training (the seen-speaker split). With
``held_out_speaker`` the test set is all of that speaker's recordings and the other three speakers
train (10-49) and validate (0-9): leave one speaker out. Every recording lands in exactly one
utterance of its split (``train_passes`` > 1 joins the training recordings again in new orders).
Each recording's DC offset (its sample mean) is removed before joining (``remove_dc``, the default):
one speaker's recordings (nicolas) sit on a constant offset of about 0.007 full scale, so joining
them to silence at zero would put a step at every join and a constant in the lowest mel bands
during his digits only, a channel cue no other speaker has (``remove_dc=False`` keeps the raw
samples). Where the folder is: ``$SEQLAB_FSDD_DIR``, else ``../shared/data/fsdd`` beside the working directory
or above the installed package.

``asterisk_prompts`` (:func:`read_asterisk_prompts`): the English voice prompts of Asterisk (Debian
``asterisk-core-sounds-en-wav``: 8 kHz WAV; ``asterisk-core-sounds-en``: the transcripts,
``core-sounds-en.txt.gz``, ``name: text`` lines), one speaker, CC-BY-SA 3.0. Tone entries (``[beep]``
and other bracketed-only lines) and transcripts without audio are left out; bracketed notes inside a
transcript are removed, single digits and the keys # and * become words, and the few prompts with
longer numbers are left out (:func:`spoken_text`). Whole prompts are split (a prompt is in one split only).
"""

from __future__ import annotations

import gzip
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import DataError, MissingDependencyError

__all__ = ["DIGITS", "FSDD_SPEAKERS", "fsdd_root", "read_fsdd_digits", "connect", "read_asterisk_prompts", "asterisk_paths", "spoken_text"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_SPEAKERS = ("jackson", "nicolas", "theo", "yweweler")
FSDD_RATE = 8000
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def fsdd_root() -> Path:
    """The FSDD folder (holding ``recordings/``), or MissingDependencyError saying where to put it."""
    candidates: list[str | Path] = [os.environ.get("SEQLAB_FSDD_DIR", ""), Path.cwd().parent / "shared" / "data" / "fsdd",
                                    Path(__file__).resolve().parents[4] / "shared" / "data" / "fsdd"]
    for c in candidates:
        if c and (Path(c) / "recordings").is_dir():
            return Path(c)
    raise MissingDependencyError(
        "the fsdd_digits dataset needs the Free Spoken Digit Dataset's recordings/ folder: set SEQLAB_FSDD_DIR, "
        "or place it at ../shared/data/fsdd")


def _recordings(root: Path, remove_dc: bool = True) -> dict[str, list[tuple[int, int, np.ndarray]]]:
    """speaker -> [(digit, index, samples)] sorted by (digit, index); ``remove_dc`` subtracts each
    recording's mean."""
    from seqlab.audio.io import read_audio

    out: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    for p in sorted((root / "recordings").glob("*.wav")):
        m = _NAME.match(p.name)
        if m is None:
            continue
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        wave = read_audio(p, FSDD_RATE)
        if remove_dc:
            wave = (wave - wave.mean(dtype=np.float64)).astype(np.float32)
        out.setdefault(speaker, []).append((digit, index, wave))
    if not out:
        raise DataError(root / "recordings", None, "{digit}_{speaker}_{index}.wav files", "none")
    return {s: sorted(v, key=lambda r: (r[0], r[1])) for s, v in sorted(out.items())}


def connect(
    pieces: list[tuple[int, np.ndarray]], rng: random.Random, sample_rate: int = FSDD_RATE,
    gap: tuple[float, float] = (0.05, 0.3), dither: float = 1e-4,
) -> tuple[np.ndarray, list[list[Any]]]:
    """Join ``(digit, samples)`` pieces with random silences (seconds, uniform in ``gap``) before,
    between and after them: the waveform and ``[[digit word, start s, end s], ...]``."""
    parts: list[np.ndarray] = []
    words: list[list[Any]] = []
    pos = 0

    def silence() -> None:
        nonlocal pos
        n = int(rng.uniform(*gap) * sample_rate)
        parts.append(np.zeros(n, dtype=np.float32))
        pos += n

    silence()
    for digit, wave in pieces:
        words.append([DIGITS[digit], round(pos / sample_rate, 6), round((pos + len(wave)) / sample_rate, 6)])
        parts.append(wave.astype(np.float32))
        pos += len(wave)
        silence()
    out = np.concatenate(parts)
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(len(out)).astype(np.float32)
    return out + dither * noise, words


def _utterances(recs: list[tuple[int, int, np.ndarray]], speaker: str, rng: random.Random, tag: str,
                passes: int = 1, max_digits: int = 7) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in range(passes):
        order = list(recs)
        rng.shuffle(order)
        i = 0
        while i < len(order):
            k = rng.randint(1, max_digits)
            group = order[i : i + k]
            i += k
            wave, words = connect([(d, w) for d, _, w in group], rng)
            ids = "-".join(f"{d}_{j}" for d, j, _ in group)
            out.append({"audio": wave, "text": " ".join(w[0] for w in words), "speaker": speaker, "words": words,
                        "id": f"{tag}/{speaker}/{p}/{ids}"})
    return out


def read_fsdd_digits(held_out_speaker: str | None = None, train_passes: int = 1, mix_seed: int = 0,
                     remove_dc: bool = True) -> list[dict[str, Any]]:
    """Connected-digit utterances, each with its ``"split"`` (see the module docstring)."""
    if held_out_speaker is not None and held_out_speaker not in FSDD_SPEAKERS:
        raise DataError(None, None, f"held_out_speaker one of {', '.join(FSDD_SPEAKERS)}", repr(held_out_speaker))
    if train_passes < 1:
        raise DataError(None, None, "train_passes >= 1", str(train_passes))
    recs = _recordings(fsdd_root(), remove_dc)
    rng = random.Random(mix_seed)
    examples: list[dict[str, Any]] = []
    for speaker, rows in recs.items():
        if held_out_speaker is None:
            parts = {"test": [r for r in rows if r[1] < 5], "valid": [r for r in rows if 5 <= r[1] < 10],
                     "train": [r for r in rows if r[1] >= 10]}
        elif speaker == held_out_speaker:
            parts = {"test": rows}
        else:
            parts = {"valid": [r for r in rows if r[1] < 10], "train": [r for r in rows if r[1] >= 10]}
        for split, chosen in parts.items():
            passes = train_passes if split == "train" else 1
            examples += [{**u, "split": split} for u in _utterances(chosen, speaker, rng, split, passes)]
    return examples


# --------------------------------------------------------------------------- Asterisk prompts

ASTERISK_INSTALL = ("apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav "
                    "(Debian/Ubuntu; `make data` does it where apt is available)")
_ASTERISK_WAV = Path("/usr/share/asterisk/sounds/en")
_ASTERISK_TXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
_BRACKETS = re.compile(r"\[[^\]]*\]")


def asterisk_paths() -> tuple[Path, Path]:
    """(the folder of en WAV prompts, the transcript file), or MissingDependencyError naming the install."""
    wav = Path(os.environ.get("SEQLAB_ASTERISK_SOUNDS", _ASTERISK_WAV))
    txt = Path(os.environ.get("SEQLAB_ASTERISK_TRANSCRIPTS", _ASTERISK_TXT))
    if not txt.is_file():
        alt = txt.with_suffix("") if txt.suffix == ".gz" else txt
        txt = alt if alt.is_file() else txt
    if not wav.is_dir() or not txt.is_file():
        raise MissingDependencyError(f"the asterisk_prompts dataset needs the Debian packages: {ASTERISK_INSTALL}")
    return wav, txt


def spoken_text(text: str) -> str | None:
    """A prompt's transcript as spoken words: bracketed notes removed, lower case, single digits and
    the keys ``#`` / ``*`` as words (one, pound, star), other punctuation dropped (apostrophes kept).
    None when a number of several digits is left (how it is read aloud is not written down)."""
    t = _BRACKETS.sub(" ", text).lower().replace("#", " pound ").replace("*", " star ")
    t = re.sub(r"(?<![0-9a-z])([0-9])(?![0-9a-z])", lambda m: f" {DIGITS[int(m.group(1))]} ", t)
    if re.search(r"[0-9]", t):
        return None
    return " ".join(re.sub(r"[^a-z' ]", " ", t).split()) or None


def read_asterisk_prompts() -> list[dict[str, Any]]:
    """One example per prompt with audio and a spoken transcript: ``{"audio_filepath", "text", "id"}``;
    text is lower-cased with punctuation other than apostrophes removed."""
    wav, txt = asterisk_paths()
    raw = gzip.decompress(txt.read_bytes()).decode("utf-8", "replace") if txt.suffix == ".gz" else txt.read_text("utf-8", "replace")
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if ":" not in line or line.startswith(("#", ";")):
            continue
        name, text = (s.strip() for s in line.split(":", 1))
        spoken = spoken_text(text)
        path = wav / f"{name}.wav"
        if not spoken or not path.is_file():
            continue
        out.append({"audio_filepath": str(path), "text": spoken, "id": name, "source_line": [str(txt), lineno]})
    if not out:
        raise DataError(txt, None, "name: text lines with WAV files beside them", "none")
    return out
