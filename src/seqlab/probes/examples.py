"""Curated and generated example sets for the probes (plain data).

- :func:`minimal_pairs`: sentence pairs that differ only in word order ("the dog bites the
  man" / "the man bites the dog"), each labelled with who did what to whom. Use: a
  classifier or tagger that ignores order gives both sentences the same output
  (:func:`seqlab.probes.sensitivity`, or compare ``predict`` on the two sides).
- :func:`sense_pairs`: one ambiguous word in two contexts that select different senses
  ("river bank" / "bank loan"). Use: a model that reads context must give the word (or the
  next token) different distributions in the two sentences.
- :func:`short_and_long`: seeded token lists of short and long lengths over a given alphabet.
  Use: mixed-length inputs for :func:`seqlab.probes.audits.padding_audit` and inputs longer
  than ``max_len`` for :func:`seqlab.probes.audits.truncation_audit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["minimal_pairs", "sense_pairs", "short_and_long"]

_ACTORS = ("dog", "man", "cat", "child", "teacher", "farmer")
_VERBS = ("bites", "sees", "follows", "calls", "pushes", "helps")

_SENSES: tuple[tuple[str, str, str, str, str], ...] = (
    # word, sentence A, sense A, sentence B, sense B
    ("bank", "we sat on the river bank", "shore", "she asked the bank for a loan", "finance"),
    ("bat", "the bat flew out of the cave", "animal", "he swung the bat at the ball", "club"),
    ("spring", "the flowers bloom in spring", "season", "the spring in the mattress broke", "coil"),
    ("pitch", "the players ran onto the pitch", "field", "the singer hit a high pitch", "tone"),
    ("bark", "the dog began to bark loudly", "sound", "the bark of the old tree peeled", "skin"),
    ("match", "he lit a match in the dark", "flame", "they won the football match", "game"),
    ("seal", "a seal swam near the rocks", "animal", "break the seal on the envelope", "closure"),
    ("light", "turn on the light please", "lamp", "the box is light to carry", "weight"),
)


def minimal_pairs() -> list[dict[str, str]]:
    """Word-order minimal pairs ``the A V the B`` / ``the B V the A`` over a few actors and verbs
    (every unordered actor pair once per verb: 6 verbs x 15 pairs = 90 pairs).

    Returns:
        ``[{"first", "second", "first_label", "second_label", "verb"}, ...]``; a label is
        ``"agent>patient"`` (``"dog>man"``: the dog did it to the man).
    """
    out = []
    for verb in _VERBS:
        for i, a in enumerate(_ACTORS):
            for b in _ACTORS[i + 1 :]:
                out.append({"first": f"the {a} {verb} the {b}", "second": f"the {b} {verb} the {a}",
                            "first_label": f"{a}>{b}", "second_label": f"{b}>{a}", "verb": verb})
    return out


def sense_pairs() -> list[dict[str, Any]]:
    """Sentences pairing one ambiguous word with two contexts that select its senses.

    Returns:
        ``[{"word", "first", "first_sense", "second", "second_sense", "first_index",
        "second_index"}, ...]``; ``*_index`` is the word's token position (whitespace split).
    """
    out = []
    for word, a, sa, b, sb in _SENSES:
        out.append({"word": word, "first": a, "first_sense": sa, "second": b, "second_sense": sb,
                    "first_index": a.split().index(word), "second_index": b.split().index(word)})
    return out


def short_and_long(
    n: int, short: tuple[int, int] = (2, 8), long: tuple[int, int] = (32, 64),
    alphabet: Sequence[str] = tuple("abcdefgh"), seed: int = 0,
) -> dict[str, list[list[str]]]:
    """``n`` short and ``n`` long token lists, lengths uniform on the inclusive ranges ``short``
    and ``long``, tokens uniform over ``alphabet`` (use a trained model's vocabulary), drawn
    from ``numpy.random.default_rng(seed)``.

    Returns:
        ``{"short": [[tok, ...], ...], "long": [[tok, ...], ...]}``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"n must be an integer >= 0, found {n!r}")
    for name, (lo, hi) in (("short", short), ("long", long)):
        if not 1 <= lo <= hi:
            raise ConfigError(f"{name} must be a length range (lo, hi) with 1 <= lo <= hi, found {(lo, hi)}")
    if not alphabet:
        raise ConfigError("alphabet must hold at least one token")
    rng = np.random.default_rng(seed)
    toks = list(alphabet)

    def draw(lo: int, hi: int) -> list[list[str]]:
        lengths = rng.integers(lo, hi + 1, size=n).tolist()
        return [[toks[j] for j in rng.integers(0, len(toks), size=k).tolist()] for k in lengths]

    return {"short": draw(*short), "long": draw(*long)}
