"""Forced alignment of a transcript to audio with a trained transcription model.

The model's CTC posteriors for the audio, then the best CTC path of the transcript through them
(:func:`seqlab.inference.align.ctc_align`, the chain Viterbi over the CTC topology; checkpointed in
linear memory for long audio), then label segments grouped into words. Times are in seconds: a head
frame lasts ``hop_ms * subsampling`` ms. Log-mel frame ``i`` is centred on ``i * hop`` (centred
framing), so it stands for ``[i * hop - hop / 2, i * hop + hop / 2)``; a head frame made by stacking
frames ``k j .. k j + k - 1`` (the default subsampling) stands for ``[j * frame - hop / 2, (j + 1) *
frame - hop / 2)``, and a segment covering head frames ``[a, b)`` spans ``[a * frame - hop / 2,
b * frame - hop / 2)`` (clamped at 0). The strided convolutions get the same origin (their
receptive field is wider than a frame, so no one interval is theirs). CTC paths are peaky (a label often holds one or two frames and the rest
is blank), so a word's span is where its labels fire, inside its true extent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqlab.errors import ConfigError, DataError
from seqlab.inference.align import Segment, ctc_align, token_segments, word_segments

__all__ = ["WordTime", "align", "frame_seconds", "frame_origin"]


@dataclass(frozen=True)
class WordTime:
    """A word of the transcript, its start and end in seconds, and its mean log posterior."""

    word: str
    start: float
    end: float
    score: float


def frame_seconds(task: Any) -> float:
    """Seconds per head frame of a transcription task."""
    return float(task.config.hop_ms) * int(task.config.subsampling) / 1000.0


def frame_origin(task: Any) -> float:
    """Seconds from ``j * frame_seconds`` to where head frame ``j`` starts: ``-hop / 2`` (centred
    framing: frame ``i`` is centred on ``i * hop``)."""
    return -float(task.config.hop_ms) / 2000.0


def align(model: Any, audio: Any, text: str, chunk: int | None = None, level: str = "words") -> list[WordTime]:
    """Word times (``level="labels"``: the time of every output label) of ``text`` in ``audio`` (a
    path, a waveform or a record, as ``predict`` takes) under a trained transcription ``model``.
    Labels of the text the model never saw are an error."""
    task = model.task
    if not getattr(task, "aligns_to_frames", False):
        raise ConfigError(f"align needs a model whose task aligns labels to frames (transcription); "
                          f"this one's task is {task.name!r}")
    if getattr(model, "head", None) == "rnnt":
        raise ConfigError("align needs CTC posteriors over frames; this model has an RNN-T head (head='rnnt')")
    units = task._units(task._text({"text": text}, 0))
    unknown = sorted({u for u in units if u not in task.stoi})
    if unknown:
        raise DataError(None, None, "a transcript in the model's labels", f"unknown label(s) {unknown}")
    targets = [task.stoi[u] for u in units]
    items = task.encode_inputs([audio])
    ((output, batch),) = list(model.outputs(items, 1))
    logp = model.module.decide(output, batch)[0]  # (T', V) log-probabilities
    n = int(task.output_lengths(batch)[0])
    logp = logp[:n].double()
    path = ctc_align(logp, targets, blank=0, chunk=chunk)
    tokens = token_segments(path, logp, names=task.labels)
    if level not in ("words", "labels"):
        raise ConfigError(f"level must be words or labels, found {level!r}")
    by_word = level == "words" and task.config.output == "chars"
    words: list[Segment] = word_segments(tokens, " ") if by_word else tokens
    dt, t0 = frame_seconds(task), frame_origin(task)
    return [WordTime(str(w.label), round(max(w.start * dt + t0, 0.0), 4), round(max(w.end * dt + t0, 0.0), 4),
                     round(w.score, 4)) for w in words]

