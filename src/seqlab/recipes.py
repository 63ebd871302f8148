"""Default recipes: the settings a neural family gets for a task when the user sets nothing.

A family's config defaults are one-size-fits-all; on a small corpus they lose to an HMM or a
bag-of-n-grams model (a default BiLSTM tagger at 77% token accuracy where a feature CRF reaches
94%). The remedies are well known and depend on the data: regularise harder and train for more
steps when there is little of it, read the whole input when the task allows it, and give a word
tagger the characters of its words. :func:`derive` applies them, from the training split's size,
to the settings the user did not set, and returns what it chose with a reason for each. The model
prints the recipe when training starts and saves it beside its config, so a run is reproducible
from its record; ``seqlab.build(..., recipe=False)`` (CLI ``--no-recipe``) keeps the plain defaults.

The rules (each only where the user left the setting alone):

* **Context.** A recurrent encoder reads both directions when the task is not causal
  (``bidirectional=True``; the Transformer and Mamba families already decide this from the task).
* **Regularisation by size.** With fewer than 200k training units (tokens, characters or
  frames) dropout is 0.3 and word dropout (where the task's frontend has it) 0.1; under 1M,
  0.2 and 0.05. Above that the family's defaults stand.
* **Characters for word taggers.** A labeling task over word tokens (mean token length above
  1.5 characters) gets a character CNN of 50 filters (Ma & Hovy 2016; Lample et al. 2016).
  A word classifier can have one too (``char_filters=50``), but not by default: on tweets at
  2,000 examples it moved validation accuracy by 0.2 points for 1.5x the training time.
* **Pooling for recurrent classifiers.** A sequence-level head over a recurrent encoder pools
  the states by their mean instead of reading the last state of each direction (the attention
  families already pool by mean). Measured on the validation split of tweets at 2,000 examples
  (BiGRU, one seed): last 0.643, max 0.657, mean 0.661.
* **Learning rate.** Recurrent encoders train with Adam at 3e-3 (1e-3 is slow for them on small
  data); attention-based encoders keep 1e-3 with a warmup of 5% of the steps (at most 400).
* **Enough steps, and patience to use them.** Epochs are raised so the run has at least 3,000
  optimizer steps (at most 60 epochs); patience is 8 epochs under 5,000 training items, 5 under
  50,000, else the default. Items are what an epoch draws batches from: the examples, or an
  LM's blocks (a corpus of 40 long texts is thousands of blocks, not a small set). Early stopping on the validation split ends the run when it stops
  improving, so a generous epoch count costs time only while the model still improves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["DataStats", "Recipe", "derive", "MIN_STEPS", "MAX_EPOCHS"]

MIN_STEPS = 3000
MAX_EPOCHS = 60
_RECURRENT = ("lstm", "gru", "elman")


@dataclass(frozen=True)
class DataStats:
    """What the recipe reads from the training split: examples, units (the task's positions:
    tokens, characters, frames; summed), the mean characters per unit (word tokens are > 1.5) and
    ``items``, what one epoch draws batches from (the examples, except where the task cuts them
    into pieces: an LM's blocks). Steps per epoch and the patience rule count items, so a corpus
    of a few long texts is not mistaken for a small one."""

    examples: int
    units: int
    chars_per_unit: float = 1.0
    items: int | None = None

    @property
    def n_items(self) -> int:
        return self.examples if self.items is None else self.items

    def __str__(self) -> str:
        pieces = "" if self.n_items == self.examples else f" ({self.n_items:,} training items)"
        return f"{self.examples:,} examples{pieces}, {self.units:,} units"


@dataclass
class Recipe:
    """The settings derived for one fit: ``model`` (encoder), ``ends`` and ``train`` values, and
    one reason per setting (``notes``)."""

    stats: DataStats
    model: dict[str, Any] = field(default_factory=dict)
    ends: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-able: saved in the model's ``config.json`` and printed at the start of training."""
        return {"data": {"examples": self.stats.examples, "items": self.stats.n_items, "units": self.stats.units,
                         "chars_per_unit": round(self.stats.chars_per_unit, 3)},
                "model": dict(self.model), "ends": dict(self.ends), "train": dict(self.train),
                "notes": dict(self.notes)}

    def summary(self) -> str:
        values = {**self.model, **self.ends, **self.train}
        parts = [f"{k}={v!r} ({self.notes[k]})" for k, v in values.items()]
        return "; ".join(parts) if parts else "the family's defaults (nothing to adapt)"

    def __bool__(self) -> bool:
        return bool(self.model or self.ends or self.train)


def _has(cls_or_obj: Any, name: str) -> bool:
    return any(f.name == name for f in fields(cls_or_obj))


def derive(family: str, task: Any, config: Any, ends: Any, train: Any, stats: DataStats,
           explicit: Mapping[str, set[str]]) -> Recipe:
    """The recipe for ``family`` on ``task`` with this data; ``config``, ``ends``, ``train`` are the
    current dataclasses, ``explicit`` the keys the user set (``{"model": ..., "ends": ...,
    "train": ...}``), which are never changed."""
    r = Recipe(stats)
    user_model, user_ends, user_train = (set(explicit.get(k, ())) for k in ("model", "ends", "train"))

    def set_model(key: str, value: Any, why: str) -> None:
        if key not in user_model and _has(config, key) and getattr(config, key) != value:
            r.model[key], r.notes[key] = value, why

    def set_end(key: str, value: Any, why: str) -> None:
        if key not in user_ends and key in task.ends_used and getattr(ends, key) != value:
            r.ends[key], r.notes[key] = value, why

    def set_train(key: str, value: Any, why: str) -> None:
        if key not in user_train and getattr(train, key) != value:
            r.train[key], r.notes[key] = value, why

    recurrent = family in _RECURRENT
    if recurrent and not task.causal:
        set_model("bidirectional", True, f"task {task.name!r} sees the whole input")
    units = stats.units
    if units < 200_000:
        set_model("dropout", 0.3, "under 200k training units")
        set_end("word_dropout", 0.1, "under 200k training units")
    elif units < 1_000_000:
        set_model("dropout", 0.2, "under 1M training units")
        set_end("word_dropout", 0.05, "under 1M training units")
    if "char_filters" in task.ends_used and task.output == "token" and stats.chars_per_unit > 1.5:
        set_end("char_filters", 50, "a word tagger reads its words' characters")
    if recurrent and "pooling" in task.ends_used:
        set_end("pooling", "mean", "a sequence label reads every state, not only the two ends")
    lr = 3e-3 if recurrent else 1e-3
    set_train("lr", lr, "Adam for recurrent encoders on small data" if recurrent else "attention and SSM encoders")
    if "epochs" not in user_train and "max_steps" not in user_train and train.max_steps is None:
        batch = train.batch_size * train.grad_accum
        per_epoch = max(1, math.ceil(stats.n_items / batch))
        want = min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch))
        if want > train.epochs:
            set_train("epochs", want, f"at least {MIN_STEPS:,} steps ({per_epoch} per epoch), early-stopped")
    epochs = r.train.get("epochs", train.epochs)
    if stats.n_items < 5_000:
        set_train("patience", 8, "under 5,000 training items: noisy validation scores")
    elif stats.n_items < 50_000:
        set_train("patience", 5, "under 50,000 training items")
    if not recurrent and "warmup_steps" not in user_train and train.warmup_steps == 0:
        batch = train.batch_size * train.grad_accum
        total = epochs * max(1, math.ceil(stats.n_items / batch))
        if train.max_steps is not None:
            total = min(total, train.max_steps)
        set_train("warmup_steps", min(400, max(1, total // 20)), "5% of the steps (at most 400)")
    return r


def apply(recipe: Recipe, config: Any, ends: Any, train: Any) -> tuple[Any, Any, Any]:
    """The three dataclasses with the recipe's values in place."""
    return (replace(config, **recipe.model) if recipe.model else config,
            replace(ends, **recipe.ends) if recipe.ends else ends,
            replace(train, **recipe.train) if recipe.train else train)
