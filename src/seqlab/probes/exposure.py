"""Exposure bias: how much worse an encoder-decoder gets when it must read its own outputs.

Training with teacher forcing always feeds the gold previous token; at test time a model feeds
its own (Ranzato et al. 2016, "exposure bias"). :func:`exposure_bias` measures the gap per
target position j: the error rate of the teacher-forced argmax (gold prefix ``y_<j``) against
the error rate of free-running greedy decoding (own prefix). :func:`scheduled_sampling_gap`
trains a teacher-forced and a scheduled-sampling RNN encoder-decoder (Bengio et al. 2015) with
one seed and reports both, to show how far scheduled sampling narrows the gap.

Works for any generation model with ``model.task`` (the generation task) and ``model.module``
exposing ``forward(batch) -> (B, T, V)`` teacher-forced logits and the stepper protocol
(``start(batch)``, ``step(tokens, state)``): the ``seq2seq`` family and the Transformer
encoder-decoder. Shapes: B batch, T target length + 1 (``<eos>``), V target vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqlab.errors import ConfigError
from seqlab.formatting import format_rows
from seqlab.probes.results import family_of, result_dict

__all__ = ["ExposureResult", "exposure_bias", "scheduled_sampling_gap", "greedy_ids"]


@dataclass(frozen=True)
class ExposureResult:
    """Per target position ``positions[i]`` (0 = the first target token; the last position of
    an example is its ``<eos>``): ``teacher_forced[i]`` and ``free_running[i]`` error rates over
    the ``counts[i]`` examples whose target reaches that position."""

    family: str
    positions: list[int]
    teacher_forced: list[float]
    free_running: list[float]
    counts: list[int]

    @property
    def tf_error(self) -> float:
        """Token-weighted teacher-forced error rate over all counted positions."""
        n = sum(self.counts)
        return sum(e * c for e, c in zip(self.teacher_forced, self.counts)) / n if n else float("nan")

    @property
    def fr_error(self) -> float:
        """Token-weighted free-running error rate over all counted positions."""
        n = sum(self.counts)
        return sum(e * c for e, c in zip(self.free_running, self.counts)) / n if n else float("nan")

    @property
    def gap(self) -> float:
        """``fr_error - tf_error``: the cost of reading its own outputs."""
        return self.fr_error - self.tf_error

    def __str__(self) -> str:
        rows: list[list[Any]] = [[p, t, f, c] for p, t, f, c in
                                 zip(self.positions, self.teacher_forced, self.free_running, self.counts)]
        rows.append(["all", self.tf_error, self.fr_error, sum(self.counts)])
        head = f"exposure bias: {self.family}; gap (free-running - teacher-forced error) = {self.gap:.4g}"
        return "\n".join([head, format_rows(rows, ["position", "teacher-forced err", "free-running err", "n"])])

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self, "tf_error", "fr_error", "gap")

    def save_plot(self, path: str | Path) -> Path:
        """Both error rates against target position."""
        from seqlab.plots import save_line_plot

        series = {"teacher-forced": (self.positions, self.teacher_forced),
                  "free-running": (self.positions, self.free_running)}
        return save_line_plot(series, path, xlabel="target position", ylabel="error rate",
                              title=f"exposure bias: {self.family} (gap {self.gap:.3g})")


def greedy_ids(module: Any, batch: dict[str, torch.Tensor], bos: int, eos: int, max_len: int) -> list[list[int]]:
    """Free-running greedy outputs per row, ``<eos>`` included when the row produced it."""
    from seqlab.inference.decoding import greedy

    B = batch["src_ids"].shape[0]
    start = torch.full((B,), bos, dtype=torch.long, device=batch["src_ids"].device)
    hyps = greedy(module, start, module.start(batch), max_len, eos)
    return [h.tokens + ([eos] if h.finished else []) for h in hyps]


def exposure_bias(model: Any, examples: Sequence[dict[str, Any]], max_positions: int | None = None) -> ExposureResult:
    """Teacher-forced against free-running error rate per target position.

    ``examples``: ``{"source", "target"}`` pairs. Position j of an example is its target token j,
    or ``<eos>`` at j = len(target). Teacher-forced: the argmax of ``model.module(batch)`` at j
    (it saw the gold ``<bos> y_<j``) differs from the gold token. Free-running: the greedy output
    (``<bos>``, then its own tokens, until ``<eos>``) differs at j; positions past the
    hypothesis' end count as errors. ``max_positions``: only positions ``< max_positions``.
    The module runs in eval mode (pure teacher forcing, no dropout).
    """
    task = model.task
    if not task.decodes_free:
        raise ConfigError(f"exposure_bias is for generators (encoder-decoders on the generation task), not {task.name!r}")
    module = model.module
    if not examples:
        raise ConfigError("exposure_bias needs at least one {'source', 'target'} example")
    if max_positions is not None and max_positions < 1:
        raise ConfigError(f"max_positions must be >= 1 or None, found {max_positions}")
    items = task.encode(list(examples)).items
    width = max(len(it["tgt"]) + 1 for it in items)
    if max_positions is not None:
        width = min(width, max_positions)
    tf_err, fr_err, counts = [0] * width, [0] * width, [0] * width
    batch_size = int(getattr(getattr(model, "train_config", None), "batch_size", 32))
    device = next(iter(module.parameters()), torch.empty(0)).device if hasattr(module, "parameters") else None
    was_training = getattr(module, "training", False)
    if hasattr(module, "eval"):
        module.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(items), batch_size):
                batch = task.collate(items[lo : lo + batch_size])
                if device is not None:
                    batch = {k: v.to(device) for k, v in batch.items()}
                labels = batch["labels"].masked_fill(~batch["mask"].bool(), -100).cpu()  # (B, T)
                tf = module(batch).argmax(-1).cpu()  # (B, T)
                free = greedy_ids(module, batch, task.bos_id, task.eos_id, labels.shape[1])
                for r in range(labels.shape[0]):
                    gold = [int(t) for t in labels[r] if int(t) != -100]
                    for j, g in enumerate(gold[:width]):
                        counts[j] += 1
                        tf_err[j] += int(int(tf[r, j]) != g)
                        fr_err[j] += int(j >= len(free[r]) or free[r][j] != g)
    finally:
        if hasattr(module, "train"):
            module.train(was_training)
    keep = [j for j in range(width) if counts[j]]
    return ExposureResult(family_of(model), keep, [tf_err[j] / counts[j] for j in keep],
                          [fr_err[j] / counts[j] for j in keep], [counts[j] for j in keep])


def scheduled_sampling_gap(
    train_pairs: Sequence[dict[str, Any]], test_pairs: Sequence[dict[str, Any]], schedule: str = "inverse_sigmoid",
    *, train: Any = None, task_options: dict[str, Any] | None = None, max_positions: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train two ``seq2seq`` models with the same seed and settings, one teacher-forced
    (``scheduled_sampling="none"``, ratio 1) and one with the ``schedule`` (linear, exponential,
    inverse_sigmoid; ``schedule_k`` / ``schedule_c`` in ``options``), and measure both on
    ``test_pairs``.

    Returns ``{"teacher_forced": ExposureResult, "scheduled_sampling": ExposureResult,
    "narrowed": gap_tf - gap_ss}`` (positive: scheduled sampling narrowed the gap).
    ``options``: Seq2SeqConfig fields; ``train``: TrainConfig settings (default: quiet, 5 epochs).
    """
    from seqlab.models.registry import build

    if schedule not in ("linear", "exponential", "inverse_sigmoid"):
        raise ConfigError(f"schedule must be linear, exponential or inverse_sigmoid, found {schedule!r}")
    for key in ("scheduled_sampling", "teacher_forcing"):
        if key in options:
            raise ConfigError(f"{key} is set by scheduled_sampling_gap itself; pass schedule= instead")
    settings = {"epochs": 5, "progress": False, "patience": None, **dict(train or {})}
    out: dict[str, Any] = {}
    for name, kind in (("teacher_forced", "none"), ("scheduled_sampling", schedule)):
        model = build("seq2seq", "generation", task_options=task_options, train=settings,
                      scheduled_sampling=kind, teacher_forcing=1.0, **options)
        model.fit(list(train_pairs))
        out[name] = exposure_bias(model, test_pairs, max_positions)
    out["narrowed"] = out["teacher_forced"].gap - out["scheduled_sampling"].gap
    return out
