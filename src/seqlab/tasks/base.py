"""The task contract: how inputs and outputs align, the loss, decoding and metrics.

A task turns raw examples (plain dicts, as the readers return them) into encoded items, items
into padded batches, and model outputs into a loss, predictions and metrics. It owns the
vocabularies and the tokenizer, so a model family only ever sees integer ids (or floats, for
forecasting) and a boolean mask. Every family that can produce the task's ``output`` shape
serves the task without special cases.

Shapes: B batch, T time (padded length), C classes, V vocabulary.
A batch is ``dict[str, Tensor]``; ``batch["mask"]`` is ``(B, T)`` bool, True = real token.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from seqlab.data.batching import TruncationReport
from seqlab.errors import SeqlabError

__all__ = ["Task", "Encoded", "EvalAccumulator", "Example", "Item", "Batch"]

Example = dict[str, Any]
Item = dict[str, Any]
Batch = dict[str, Tensor]


@dataclass
class Encoded:
    """A split encoded for one task: the items, their references, and the truncation report."""

    items: list[Item]
    references: list[Any]
    report: TruncationReport


@dataclass
class EvalAccumulator:
    """Sums over an evaluation pass: loss, units, predictions in item order."""

    nll_sum: float = 0.0
    n_units: int = 0
    predictions: dict[int, Any] = field(default_factory=dict)

    def add(self, nll: Tensor, units: Tensor, preds: Sequence[Any], index: Tensor) -> None:
        self.nll_sum += float(nll)
        self.n_units += int(units)
        for i, p in zip(index.tolist(), preds):
            self.predictions[int(i)] = p

    def ordered(self, n: int) -> list[Any]:
        return [self.predictions[i] for i in range(n) if i in self.predictions]

    @property
    def mean_loss(self) -> float:
        return self.nll_sum / max(self.n_units, 1)


class Task(ABC):
    """One sequence task. Subclasses set the class attributes and implement the methods.

    Class attributes:
        name: registry name (``"classification"``, ``"labeling"``, ...).
        output: what the model must return: ``"sequence"`` (B, C), ``"token"`` (B, T, C),
            ``"next_token"`` (B, T, V) from a causal encoder, ``"masked_token"`` (B, T, V).
        causal: True if the encoder must not see the future (causal LM).
        main_metric / greater_is_better: what early stopping and model selection use.
        alignment / loss_name / decoding / metric_names: the formulation sheet, in words.
    """

    name: ClassVar[str]
    output: ClassVar[str]
    causal: ClassVar[bool] = False
    main_metric: str
    greater_is_better: bool = True
    alignment: ClassVar[str] = ""
    loss_name: ClassVar[str] = ""
    decoding: ClassVar[str] = ""
    metric_names: ClassVar[tuple[str, ...]] = ()

    # --- vocabulary -----------------------------------------------------------------
    @abstractmethod
    def fit(self, examples: Sequence[Example]) -> Task:
        """Build the tokenizer and vocabularies from training examples; returns self."""

    @property
    @abstractmethod
    def input_size(self) -> int:
        """Number of input ids (embedding rows)."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Number of output classes (C or V)."""

    @property
    def pad_id(self) -> int:
        return 0

    # --- encoding -------------------------------------------------------------------
    @abstractmethod
    def encode(self, examples: Sequence[Example]) -> Encoded:
        """Encode a split (applying the truncation policy and reporting it)."""

    @abstractmethod
    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        """Encode raw user inputs for prediction (strings or token lists, no labels)."""

    @abstractmethod
    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        """Pad items into a batch; must set ``input_ids``, ``mask`` and ``index`` (B,)."""

    def input_tokens(self, value: Any) -> list[str]:
        """The tokens a model sees for one raw input (tokenizer, lowercasing, truncation as in
        :meth:`encode_inputs`): one output row per token for token-level tasks (probes)."""
        raise SeqlabError(f"task {self.name!r} does not expose per-token inputs (lm, labeling, classification do)")

    def output_labels(self) -> list[str]:
        """Names of the output columns: vocabulary (lm), tags (labeling) or classes."""
        raise SeqlabError(f"task {self.name!r} does not expose output labels (lm, labeling, classification do)")

    def lengths(self, items: Sequence[Item]) -> list[int]:
        """Per-item lengths for length bucketing."""
        return [len(it["input_ids"]) for it in items]

    # --- learning and decoding --------------------------------------------------------
    @abstractmethod
    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(sum of per-unit losses, number of units)`` for exact normalisation."""

    @abstractmethod
    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """Predictions for the batch's rows, in row order, as user-facing values."""

    @abstractmethod
    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        """The task's metrics; always includes ``loss`` (mean NLL per unit)."""

    # --- persistence ------------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-ready state (config, tokenizer, vocabularies)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Task:
        """Rebuild a fitted task from :meth:`state`."""

    @staticmethod
    def base_metrics(nll_sum: float, n_units: int) -> dict[str, float]:
        return {"loss": nll_sum / max(n_units, 1)}
