"""A vocabulary: tokens to ids, with reserved pad, unk, bos, eos and mask tokens.

The specials always take ids 0-4 in that order, so ``pad_id == 0`` everywhere in seqlab.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from seqlab.errors import ConfigError

__all__ = ["Vocab", "SPECIALS", "PAD", "UNK", "BOS", "EOS", "MASK"]

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<mask>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS, MASK)


class Vocab:
    """Bidirectional token/id map. ``specials=False`` gives a plain label vocabulary."""

    def __init__(self, tokens: Iterable[str] = (), specials: bool = True) -> None:
        self.has_specials = specials
        self.itos: list[str] = list(SPECIALS) if specials else []
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for t in tokens:
            self.add(t)

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: bool = True,
    ) -> Vocab:
        """Count tokens and keep those seen ``min_freq`` times, most frequent first.

        Ties are broken by first appearance, so the same data always gives the same ids.
        """
        if min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, found {min_freq}")
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        kept = [t for t, c in counts.most_common() if c >= min_freq]
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, specials=specials)

    def add(self, token: str) -> int:
        if token not in self.stoi:
            self.stoi[token] = len(self.itos)
            self.itos.append(token)
        return self.stoi[token]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    @property
    def pad_id(self) -> int:
        return self._special(PAD)

    @property
    def unk_id(self) -> int:
        return self._special(UNK)

    @property
    def bos_id(self) -> int:
        return self._special(BOS)

    @property
    def eos_id(self) -> int:
        return self._special(EOS)

    @property
    def mask_id(self) -> int:
        return self._special(MASK)

    def _special(self, tok: str) -> int:
        if not self.has_specials:
            raise ConfigError(f"this vocabulary has no special tokens (asked for {tok})")
        return self.stoi[tok]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to unk (an error for a vocab without specials)."""
        if self.has_specials:
            unk = self.stoi[UNK]
            return [self.stoi.get(t, unk) for t in tokens]
        out = []
        for t in tokens:
            if t not in self.stoi:
                raise ConfigError(f"unknown label {t!r}; known: {', '.join(self.itos[:20])}")
            out.append(self.stoi[t])
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_json(self) -> dict[str, Any]:
        return {"itos": self.itos, "specials": self.has_specials}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocab:
        v = cls(specials=False)
        v.has_specials = bool(data["specials"])
        v.itos = list(data["itos"])
        v.stoi = {t: i for i, t in enumerate(v.itos)}
        return v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={self.has_specials})"
