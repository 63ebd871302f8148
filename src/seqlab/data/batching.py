"""Batching: padded tensors with masks, truncation with a report, length bucketing, batch sources.

Dimension legend: ``B`` batch size, ``T`` padded length (the longest sequence in the batch),
``F...`` optional trailing feature dimensions of float sequences.

Conventions (shared by every task and model in seqlab):

* A mask is ``torch.bool`` with ``True`` = real token, ``False`` = padding.
* Padding goes on the right unless ``side="left"`` is asked for (left padding suits batched
  generation with a causal model, where every row must end at the same position).
* Nothing here touches a global random state: the sampler and the batch source derive every
  random stream from ``(seed, epoch)`` or ``(seed, epoch, step)``, so a resumed run sees the same
  batches, with the same random masking, as one that never stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import torch
from torch import Tensor

from seqlab.errors import ConfigError, DataError

__all__ = [
    "pad_sequences",
    "pad_chars",
    "pad_floats",
    "TruncationPolicy",
    "truncate",
    "truncate_all",
    "TruncationReport",
    "BucketBatchSampler",
    "padding_fraction",
    "BatchSource",
    "batch_generator",
    "move_to",
]

_T = TypeVar("_T")
Side = Literal["right", "left"]
TruncationPolicy = Literal["error", "head", "tail", "middle", "none"]
_POLICIES: tuple[str, ...] = get_args(TruncationPolicy)

# ------------------------------------------------------------------------------- padding


def _pad(
    rows: list[Tensor], pad_value: float, side: Side, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Stack ``rows`` (each ``(L_i, F...)``) into ``(B, T, F...)`` values and a ``(B, T)`` mask."""
    if side not in ("right", "left"):
        raise ConfigError(f"side must be 'right' or 'left', found {side!r}")
    for i, r in enumerate(rows):
        if r.ndim == 0:
            raise DataError(None, None, "a sequence (1-D or more)", f"a scalar at index {i}")
        if r.shape[1:] != rows[0].shape[1:]:
            raise DataError(
                None,
                None,
                f"every step shaped {tuple(rows[0].shape[1:])} (as in sequence 0)",
                f"{tuple(r.shape[1:])} in sequence {i}",
            )
    feat = tuple(rows[0].shape[1:]) if rows else ()
    width = max((r.shape[0] for r in rows), default=0)
    values = torch.full((len(rows), width, *feat), pad_value, dtype=dtype)  # (B, T, F...)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)  # (B, T)
    for i, r in enumerate(rows):
        n = r.shape[0]
        cols = slice(0, n) if side == "right" else slice(width - n, width)
        values[i, cols] = r
        mask[i, cols] = True
    return values, mask


def pad_sequences(
    seqs: Sequence[Sequence[int] | Tensor],
    pad_value: int = 0,
    side: Side = "right",
    dtype: torch.dtype = torch.long,
) -> tuple[Tensor, Tensor]:
    """Pad integer sequences (token ids, labels) to one length.

    Returns ``(values, mask)``: values ``(B, T)`` of ``dtype`` (``torch.long`` by default) with
    ``pad_value`` in padded cells, and mask ``(B, T)`` bool, True on real tokens. ``T`` is the
    longest sequence (0 when ``seqs`` is empty or all are empty). Inputs are not modified.
    """
    if side == "right" and seqs and all(isinstance(s, list) and (not s or isinstance(s[0], int)) for s in seqs):
        return _pad_lists(seqs, pad_value, dtype)  # type: ignore[arg-type]
    rows = [torch.as_tensor(s, dtype=dtype) for s in seqs]
    return _pad(rows, pad_value, side, dtype)


def pad_chars(words: Sequence[Sequence[Sequence[int]]], width: int | None = None) -> Tensor:
    """Character ids per token, ``[[chars of token t] for t] for each sequence]``, padded with 0
    to ``(B, T, L)``: T the longest sequence (or ``width``), L the longest token."""
    t = max((len(w) for w in words), default=0) if width is None else width
    n = max(max((len(c) for w in words for c in w), default=1), 1)
    blank = [0] * n
    rows = [[list(c) + [0] * (n - len(c)) for c in w[:t]] + [blank] * (t - min(len(w), t)) for w in words]
    return torch.tensor(rows, dtype=torch.long).view(len(words), t, n)


def _pad_lists(seqs: Sequence[list[int]], pad_value: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Fast path for Python lists padded on the right: one tensor construction per batch
    instead of one per sequence (collation runs on every training step)."""
    lengths = [len(s) for s in seqs]
    width = max(lengths)
    values = torch.tensor([s + [pad_value] * (width - n) for s, n in zip(seqs, lengths)], dtype=dtype)
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)  # (B, T)
    return values.view(len(seqs), width), mask


def pad_floats(
    seqs: Sequence[Sequence[float] | Tensor | np.ndarray],
    pad_value: float = 0.0,
    side: Side = "right",
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Pad real-valued sequences (time series) to one length.

    Each sequence is ``(L_i,)`` or ``(L_i, F...)`` with the same trailing shape. Returns values
    ``(B, T)`` or ``(B, T, F...)`` of ``dtype`` (float32 by default) and mask ``(B, T)`` bool.
    """
    rows = [
        torch.as_tensor(np.asarray(s) if not isinstance(s, Tensor) else s, dtype=dtype)
        for s in seqs
    ]
    return _pad(rows, pad_value, side, dtype)


# ---------------------------------------------------------------------------- truncation


def truncate(
    ids: Sequence[_T], max_len: int | None, policy: TruncationPolicy, *, index: int | None = None
) -> tuple[list[_T], bool]:
    """Shorten ``ids`` to at most ``max_len`` items; returns ``(kept, was_truncated)``.

    Policies: ``"head"`` keeps the first ``max_len`` (cuts the end); ``"tail"`` keeps the last
    ``max_len``; ``"middle"`` keeps ``ceil(max_len / 2)`` from the start and ``floor(max_len / 2)``
    from the end; ``"error"`` raises DataError naming the example (``index``) and its length;
    ``"none"`` keeps everything. ``max_len=None`` also means no limit. A new list is returned.
    """
    if policy not in _POLICIES:
        raise ConfigError(f"unknown truncation policy {policy!r}; valid: {', '.join(_POLICIES)}")
    if max_len is not None and (
        isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1
    ):
        raise ConfigError(f"max_len must be an int >= 1 or None, found {max_len!r}")
    n = len(ids)
    if max_len is None or policy == "none" or n <= max_len:
        return list(ids), False
    if policy == "error":
        which = "an example" if index is None else f"example {index}"
        raise DataError(
            None,
            None,
            f"at most {max_len} tokens (truncation policy 'error')",
            f"{which} with {n} tokens",
        )
    if policy == "head":
        return list(ids[:max_len]), True
    if policy == "tail":
        return list(ids[n - max_len :]), True
    front = max_len - max_len // 2
    return [*ids[:front], *ids[n - (max_len - front) :]], True


@dataclass(frozen=True)
class TruncationReport:
    """How a truncation pass went: ``str(report)`` is a one-line summary for logs."""

    n_examples: int
    n_truncated: int
    max_len: int | None
    policy: str
    longest: int

    @property
    def fraction(self) -> float:
        """Share of examples that were cut (0.0 for no examples)."""
        return self.n_truncated / self.n_examples if self.n_examples else 0.0

    def __str__(self) -> str:
        if self.max_len is None or self.policy == "none":
            return f"no truncation of {self.n_examples:,} examples (policy {self.policy}); longest {self.longest}"
        return (
            f"truncated {self.n_truncated:,} of {self.n_examples:,} examples "
            f"({100 * self.fraction:.1f}%) to {self.max_len} tokens, policy {self.policy}; "
            f"longest {self.longest}"
        )


def truncate_all(
    seqs: Sequence[Sequence[_T]], max_len: int | None, policy: TruncationPolicy
) -> tuple[list[list[_T]], TruncationReport]:
    """Apply :func:`truncate` to every sequence; returns the new lists and a report.

    With policy ``"error"`` the first over-long example raises DataError naming its index.
    """
    kept: list[list[_T]] = []
    n_cut = 0
    for i, s in enumerate(seqs):
        out, cut = truncate(s, max_len, policy, index=i)
        kept.append(out)
        n_cut += cut
    longest = max((len(s) for s in seqs), default=0)
    return kept, TruncationReport(len(seqs), n_cut, max_len, str(policy), longest)


# ------------------------------------------------------------------------------- sampling


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, found {value!r}")
    return int(value)


class BucketBatchSampler:
    """Length-bucketed batches of indices, deterministic in ``(seed, epoch)``.

    With ``bucket=True`` the (shuffled) indices are cut into pools of ``pool_factor *
    batch_size``; each pool is sorted by length (stable), the pools are laid end to end and cut
    into batches, and with ``shuffle=True`` the batch order is shuffled, so batches hold
    similar lengths without arriving short-to-long. ``bucket=False`` gives plain (shuffled)
    batches. The random stream is ``numpy.random.default_rng([seed, epoch])``; no global RNG.

    ``max_tokens`` caps padded batch size: a batch stops growing when ``len(batch) * longest``
    would exceed it (an example longer than ``max_tokens`` gets a batch of its own), and
    ``batch_size`` still caps the count. ``drop_last`` drops a final batch smaller than
    ``batch_size``; it needs ``max_tokens=None`` (with a token budget every batch size varies).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        bucket: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        pool_factor: int = 50,
        max_tokens: int | None = None,
    ) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)  # (N,) int64
        if self.lengths.size and self.lengths.min() < 0:
            raise ConfigError(f"lengths must be >= 0, found {int(self.lengths.min())}")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.pool_factor = _check_int("pool_factor", pool_factor, 1)
        self.seed = _check_int("seed", seed, 0)
        self.max_tokens = None if max_tokens is None else _check_int("max_tokens", max_tokens, 1)
        if drop_last and max_tokens is not None:
            raise ConfigError(
                "drop_last applies to fixed-size batches; it cannot be combined with max_tokens"
            )
        self.shuffle, self.bucket, self.drop_last = bool(shuffle), bool(bucket), bool(drop_last)
        self._len_cache: int | None = None

    @property
    def num_items(self) -> int:
        return int(self.lengths.size)

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``: every index exactly once (but a dropped last batch)."""
        epoch = _check_int("epoch", epoch, 0)
        rng = np.random.default_rng([self.seed, epoch])
        n = self.num_items
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket and n:
            pool = self.pool_factor * self.batch_size
            chunks = [order[i : i + pool] for i in range(0, n, pool)]
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")] for c in chunks])
        batches = self._cut(order)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        bs = self.batch_size
        if self.max_tokens is None:
            return [order[i : i + bs].tolist() for i in range(0, len(order), bs)]
        out: list[list[int]] = []
        cur: list[int] = []
        longest = 0
        for idx in order.tolist():
            length = int(self.lengths[idx])
            grown = max(longest, length)
            if cur and (len(cur) >= bs or grown * (len(cur) + 1) > self.max_tokens):
                out.append(cur)
                cur, grown = [], length
            cur.append(idx)
            longest = grown
        if cur:
            out.append(cur)
        return out

    def __len__(self) -> int:
        """Batches per epoch. Exact without ``max_tokens``; with it, the count for epoch 0
        (other epochs can differ by a few batches)."""
        n, bs = self.num_items, self.batch_size
        if self.max_tokens is None:
            return n // bs if self.drop_last else -(-n // bs)
        if self._len_cache is None:
            self._len_cache = len(self.batches(0))
        return self._len_cache


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded cells (``sum over batches of len(batch) * longest``) that are padding."""
    total = real = 0
    for b in batches:
        lens = [int(lengths[i]) for i in b]
        total += len(lens) * max(lens, default=0)
        real += sum(lens)
    return 1.0 - real / total if total else 0.0


# ---------------------------------------------------------------------------- batch source


def batch_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by a hash of ``(seed, epoch, step)`` (numpy SeedSequence)."""
    for name, v in (("seed", seed), ("epoch", epoch), ("step", step)):
        _check_int(name, v, 0)
    state = np.random.SeedSequence([seed, epoch, step]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


class BatchSource:
    """What the trainer iterates: encoded items, a collate function and a sampler.

    ``collate(items, generator)`` turns a list of items into a dict of tensors; any randomness it
    needs (MLM masking, noise) must come from ``generator``, which :meth:`collate` seeds from
    ``(seed, epoch, step)``. A batch is then a pure function of its position, so a run resumed at
    ``(epoch, step)`` sees exactly the batches an uninterrupted run would. ``step`` counts batches
    within the epoch. The trainer knows nothing else about the data.
    """

    def __init__(
        self,
        items: Sequence[Any],
        collate: Callable[[Sequence[Any], torch.Generator], dict[str, Tensor]],
        sampler: BucketBatchSampler,
        seed: int = 0,
    ) -> None:
        if sampler.num_items != len(items):
            raise ConfigError(
                f"the sampler has lengths for {sampler.num_items} items but there are {len(items)}"
            )
        self.items = items
        self.collate_fn = collate
        self.sampler = sampler
        self.seed = _check_int("seed", seed, 0)

    def batches(self, epoch: int) -> list[list[int]]:
        """Global batches of item indices for ``epoch`` (the sampler's)."""
        return self.sampler.batches(epoch)

    def collate(self, indices: Sequence[int], epoch: int, step: int) -> dict[str, Tensor]:
        """Collate the items at ``indices`` with the generator of ``(seed, epoch, step)``."""
        gen = batch_generator(self.seed, epoch, step)
        return self.collate_fn([self.items[i] for i in indices], gen)

    def iter_epoch(
        self, epoch: int, start_step: int = 0
    ) -> Iterator[tuple[int, dict[str, Tensor]]]:
        """Yield ``(step, batch)`` for ``epoch``, starting at ``start_step`` (to resume)."""
        for step, indices in enumerate(self.batches(epoch)):
            if step >= start_step:
                yield step, self.collate(indices, epoch, step)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochBatchSource:
    """A batch source whose data changes with the epoch: ``make(epoch)`` builds that epoch's
    :class:`BatchSource` (freshly drawn synthetic examples, for one). The last one is cached,
    so an epoch's data is built once however its batches are asked for; a batch is still a
    pure function of ``(epoch, step)`` when ``make`` is a pure function of the epoch."""

    def __init__(self, make: Callable[[int], BatchSource]) -> None:
        self.make = make
        self._cached: tuple[int, BatchSource] | None = None

    def at(self, epoch: int) -> BatchSource:
        """Epoch ``epoch``'s source."""
        epoch = _check_int("epoch", epoch, 0)
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self.make(epoch))
        return self._cached[1]

    def batches(self, epoch: int) -> list[list[int]]:
        return self.at(epoch).batches(epoch)

    def collate(self, indices: Sequence[int], epoch: int, step: int) -> dict[str, Tensor]:
        return self.at(epoch).collate(indices, epoch, step)


def move_to(
    batch: dict[str, Tensor], device: torch.device | str, non_blocking: bool = False
) -> dict[str, Tensor]:
    """A new dict with every tensor moved to ``device``; the input dict is not modified."""
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
