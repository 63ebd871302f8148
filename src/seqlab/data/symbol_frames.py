"""Symbol strings as frame sequences, so that a frames -> labels task (transcription, CTC or RNN-T;
its ``symbols`` input) can map them to label strings: grapheme-to-phoneme conversion as CTC (Rao et al. 2015, "Grapheme-
to-phoneme conversion using long short-term memory recurrent neural networks", ICASSP: a BiLSTM
with a CTC output layer over the letters).

CTC emits at most one label per frame and needs a blank between repeated labels, so a word whose
pronunciation is longer than its spelling ("x" -> K S) cannot be aligned to one frame per letter.
Each symbol is therefore repeated ``repeat`` times: ``T = repeat * len(word)`` frames.

Shapes: a word of L symbols -> (repeat * L, K + 1) float32 one-hot frames, K the alphabet's size;
column K is "a symbol outside the alphabet".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, DataError

__all__ = ["symbol_frames", "as_transcription"]


def symbol_frames(symbols: Sequence[str], alphabet: Sequence[str], repeat: int = 2) -> np.ndarray:
    """(repeat * L, K + 1) float32: row ``repeat * i + r`` is the one-hot of symbol i (column K
    for a symbol outside ``alphabet``)."""
    if repeat < 1:
        raise ConfigError(f"repeat must be >= 1, found {repeat}")
    if not symbols:
        raise DataError(None, None, "at least one symbol", "an empty sequence")
    index = {s: i for i, s in enumerate(alphabet)}
    ids = np.array([index.get(s, len(alphabet)) for s in symbols], dtype=np.int64)
    out = np.zeros((len(ids) * repeat, len(alphabet) + 1), dtype=np.float32)
    out[np.arange(len(out)), np.repeat(ids, repeat)] = 1.0
    return out


def as_transcription(
    examples: Sequence[dict[str, Any]], source: str = "source", target: str = "target",
) -> list[dict[str, Any]]:
    """Sequence pairs (``{"source": [...], "target": [...]}``, as the ``cmudict`` dataset gives
    them) as transcription examples: ``{"symbols": source, "text": "T1 T2 ..."}`` (for
    ``output="phonemes"``: whitespace-separated targets; the task makes the frames with
    :func:`symbol_frames`); other keys are kept."""
    out = []
    for i, ex in enumerate(examples):
        if source not in ex or target not in ex:
            raise DataError(None, None, f"example {i}: a record with {source!r} and {target!r}", repr(ex)[:80])
        rest = {k: v for k, v in ex.items() if k not in (source, target)}
        out.append({**rest, "symbols": [str(s) for s in ex[source]], "text": " ".join(ex[target])})
    return out
