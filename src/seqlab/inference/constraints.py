"""Hard constraints on tag paths: allowed transitions, first tags and last tags.

Shapes: N tags. ``Constraints.apply`` turns forbidden moves into -inf scores, so the same
Viterbi / n-best code decodes constrained and unconstrained.

:func:`span_constraints` gives the well-formedness rules of span encodings (Ramshaw & Marcus
1995 for IOB; Ratinov & Roth 2009 for IOBES): in IOB2 an ``I-X`` only follows ``B-X`` or
``I-X``; in IOBES a span opened by ``B-X``/``I-X`` must go on with ``I-X`` or close with
``E-X``, and a path may not start inside a span nor end with one open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.errors import ConfigError, DataError

__all__ = ["Constraints", "span_constraints"]


@dataclass(frozen=True)
class Constraints:
    """``transitions[i, j]``: may tag j follow tag i; ``start[j]`` / ``end[j]``: may a path
    start / end with tag j. All bool: (N, N), (N,), (N,)."""

    transitions: Tensor
    start: Tensor
    end: Tensor

    def __post_init__(self) -> None:
        n = self.start.shape[0] if self.start.dim() == 1 else -1
        for name, t, shape in (("transitions", self.transitions, (n, n)), ("start", self.start, (n,)), ("end", self.end, (n,))):
            if t.dtype != torch.bool or tuple(t.shape) != shape:
                raise DataError(None, None, f"constraint {name} as a bool tensor of shape {shape}",
                                f"{t.dtype} of shape {tuple(t.shape)}")

    @property
    def num_tags(self) -> int:
        return int(self.start.shape[0])

    def apply(self, transitions: Tensor, start: Tensor, end: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Scores with forbidden moves set to -inf (new tensors; the inputs are not changed)."""
        if self.num_tags != start.shape[0]:
            raise DataError(None, None, f"constraints for {start.shape[0]} tags", f"constraints for {self.num_tags}")
        dev = transitions.device
        neg = float("-inf")
        return (
            transitions.masked_fill(~self.transitions.to(dev), neg),
            start.masked_fill(~self.start.to(dev), neg),
            end.masked_fill(~self.end.to(dev), neg),
        )


def _split(tag: str, scheme: str, prefixes: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in prefixes:
        return tag[0], tag[2:]
    raise ConfigError(f"tag {tag!r} is not an {scheme} tag (O, or {'/'.join(p + '-X' for p in prefixes)})")


def span_constraints(tags: Sequence[str], scheme: str) -> Constraints:
    """Well-formedness of ``scheme`` ("IOB2" or "IOBES") over the tag list ``tags`` (index = id).

    A tag outside the scheme is a ConfigError, so a tag vocabulary with special entries must be
    filtered (or those entries forbidden) by the caller.
    """
    if scheme not in ("IOB2", "IOBES"):
        raise ConfigError(f"span constraints need scheme 'IOB2' or 'IOBES', found {scheme!r}")
    prefixes = "BI" if scheme == "IOB2" else "BIES"
    parts = [_split(t, scheme, prefixes) for t in tags]
    n = len(parts)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for i, (p, x) in enumerate(parts):
        for j, (q, y) in enumerate(parts):
            inside = p in ("B", "I")  # a span is open after tag i
            if scheme == "IOB2":
                allowed[i, j] = q != "I" or (inside and x == y)
            else:
                allowed[i, j] = (q in ("I", "E") and x == y) if inside else q in ("O", "B", "S")
    start = torch.tensor([p != "I" and p != "E" for p, _ in parts], dtype=torch.bool)
    if scheme == "IOB2":
        end = torch.ones(n, dtype=torch.bool)
    else:
        end = torch.tensor([p in ("O", "E", "S") for p, _ in parts], dtype=torch.bool)
    return Constraints(allowed, start, end)
