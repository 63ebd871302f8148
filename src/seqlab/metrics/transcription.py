"""Transcription metrics: WER and CER through jiwer, overall and broken down by speaker and length.

Rates are corpus rates: total edits (substitutions + deletions + insertions) over total reference
units, so a breakdown's groups add up to the whole. An empty reference contributes its
hypothesis's units as insertions and no reference units. Words are whitespace-separated; characters
are jiwer's (spaces included, as jiwer counts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["edit_counts", "wer", "cer", "error_rates", "breakdown", "length_bucket", "LENGTH_BUCKETS"]

#: Upper edges (seconds) of the length buckets a breakdown uses; the last is open.
LENGTH_BUCKETS: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)


def _jiwer() -> Any:
    import jiwer

    return jiwer


def edit_counts(hypotheses: Sequence[str], references: Sequence[str], unit: str = "word") -> tuple[int, int]:
    """``(edits, reference units)`` summed over the pairs; ``unit`` is "word" or "char"."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    jiwer = _jiwer()
    edits = units = 0
    pairs = [(h, r) for h, r in zip(hypotheses, references) if r.strip()]
    for h, r in zip(hypotheses, references):
        if not r.strip():  # jiwer refuses empty references: every hypothesis unit is an insertion
            edits += len(h.split()) if unit == "word" else len(h.strip())
    if pairs:
        hyps, refs = [p[0] for p in pairs], [p[1] for p in pairs]
        out = jiwer.process_words(refs, hyps) if unit == "word" else jiwer.process_characters(refs, hyps)
        edits += int(out.substitutions + out.deletions + out.insertions)
        units += int(out.substitutions + out.deletions + out.hits)
    return edits, units


def _rate(edits: int, units: int) -> float:
    return edits / units if units else (0.0 if edits == 0 else float("inf"))


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate."""
    return _rate(*edit_counts(hypotheses, references, "word"))


def cer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus character error rate."""
    return _rate(*edit_counts(hypotheses, references, "char"))


def error_rates(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``{"wer", "cer"}`` of the pairs."""
    return {"wer": wer(hypotheses, references), "cer": cer(hypotheses, references)}


def length_bucket(seconds: float) -> str:
    """The name of the length bucket holding ``seconds``: "<=2s", "2-5s", ..., ">20s"."""
    low = 0.0
    for edge in LENGTH_BUCKETS:
        if seconds <= edge:
            return f"<={edge:g}s" if low == 0.0 else f"{low:g}-{edge:g}s"
        low = edge
    return f">{LENGTH_BUCKETS[-1]:g}s"


def breakdown(hypotheses: Sequence[str], references: Sequence[str], groups: Sequence[Any]) -> dict[str, dict[str, float]]:
    """``{group: {"wer", "cer", "n"}}`` for each distinct group label (sorted by name)."""
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(str(g), []).append(i)
    out: dict[str, dict[str, float]] = {}
    for g in sorted(members):
        idx = members[g]
        hyps, refs = [hypotheses[i] for i in idx], [references[i] for i in idx]
        out[g] = {**error_rates(hyps, refs), "n": float(len(idx))}
    return out
