"""The task contract: how inputs and outputs align, the loss, decoding and metrics.

A task turns raw examples (plain dicts, as the readers return them) into encoded items, items
into padded batches, and model outputs into a loss, predictions and metrics. It builds the two
ends of a neural network around any family's encoder (:meth:`Task.build_frontend`,
:meth:`Task.build_head`), so a family only ever sees ``(x (B, T, D), mask)``. It also declares
what it owns, so the rest of the package derives from the task registry instead of restating
it: the example keys it reads (``keys``), how the CLI turns a line of text into an input
(:meth:`Task.parse_input`), tiny examples for the contract tests (:meth:`Task.toy_examples`),
and how probes see it (``probe_rows``). Text tasks add a codec, vocabularies and per-token views
(:class:`seqlab.tasks.text.TextTask`).

Shapes: B batch, T time (padded length), C classes, V vocabulary.
A batch is ``dict[str, Tensor]``; ``batch["mask"]`` is ``(B, T)`` bool, True = real token, and
``batch["index"]`` (B,) long maps rows to items.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from seqlab.data.batching import TruncationReport
from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from seqlab.inference.decoding import DecodingConfig
    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["Task", "TaskSpec", "Encoded", "EvalAccumulator", "Example", "Item", "Batch", "ProbeRows"]

Example = dict[str, Any]
Item = dict[str, Any]
Batch = dict[str, Tensor]
ProbeRows = Literal["token", "sequence", ""]


@dataclass
class Encoded:
    """A split encoded for one task: the items, their references, and the truncation report."""

    items: list[Item]
    references: list[Any]
    report: TruncationReport


@dataclass(frozen=True)
class TaskSpec:
    """A task by name with its options: what a dataset poses (``Dataset.task``), so that
    ``build(family, task=ds.task)`` and ``build(family, task=ds)`` give the same model."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


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
        output: what the head returns, in words: ``"sequence"`` (B, C), ``"token"`` (B, T, C),
            ``"next_token"`` / ``"masked_token"`` (B, T, V), ``"values"`` (B, K),
            ``"sequence_to_sequence"``.
        shape: ``"encoder"`` (frontend -> encoder -> head) or ``"encoder_decoder"`` (the family
            builds the whole network).
        causal: True if the encoder must not see the future (causal LM).
        main_metric / greater_is_better: what early stopping and model selection use.
        alignment / loss_name / decoding / metric_names: the formulation sheet, in words.
        keys: the example fields the task reads (the readers' and user files' contract).
        heads: alternative heads a user may pick (``head="crf"``); the first is the default.
        probe_rows: what the probes see: one output row per input token, one per sequence, or
            nothing ("").
        decodes_free: predictions come from free-running decoding (a generator), not from one
            forward pass.
        file_shapes: the key sets an example read from a user's file may have (one of them).
        txt_format: how a ``.txt`` file is read for this task ("text" or "conll").
        input_keys: the example fields that hold the raw input (first found wins).
        prediction_kind: how a probe compares predictions of an input and of its cut version:
            "sequence" (one per input), "token" (one per kept token), "next" (the next token after
            the prefix), or "" (no comparison).
        prediction_words: that comparison in words, for reports.
        ends_used: the network end settings (:class:`seqlab.models.network.EndsConfig`) its
            frontend and head read; setting another one is refused.
        uses_decoding: a decoding configuration means something for it (a generator, an LM).
        splits_text: a text can be cut into train/valid/test pieces (language modeling), so a
            file of too few documents for a random split is cut contiguously instead.
    """

    name: ClassVar[str]
    output: ClassVar[str]
    shape: ClassVar[str] = "encoder"
    causal: ClassVar[bool] = False
    main_metric: str
    greater_is_better: bool = True
    alignment: ClassVar[str] = ""
    loss_name: ClassVar[str] = ""
    decoding: ClassVar[str] = ""
    metric_names: ClassVar[tuple[str, ...]] = ()
    keys: ClassVar[tuple[str, ...]] = ()
    heads: ClassVar[tuple[str, ...]] = ("default",)
    probe_rows: ProbeRows = ""
    decodes_free: ClassVar[bool] = False
    file_shapes: ClassVar[tuple[tuple[str, ...], ...]] = ()
    txt_format: ClassVar[str] = "text"
    input_keys: ClassVar[tuple[str, ...]] = ()
    ends_used: ClassVar[tuple[str, ...]] = ()
    uses_decoding: ClassVar[bool] = False
    splits_text: ClassVar[bool] = False
    prediction_kind: ClassVar[str] = ""
    prediction_words: ClassVar[str] = ""

    # --- fitting --------------------------------------------------------------------
    @abstractmethod
    def fit(self, examples: Sequence[Example]) -> Task:
        """Build vocabularies, scalers, ... from training examples; returns self."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Width of the head's output (classes, vocabulary or values)."""

    # --- encoding -------------------------------------------------------------------
    @abstractmethod
    def encode(self, examples: Sequence[Example]) -> Encoded:
        """Encode a split (applying the truncation policy and reporting it)."""

    @abstractmethod
    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        """Encode raw user inputs for prediction (no labels)."""

    @abstractmethod
    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        """Pad items into a batch; must set ``mask`` (B, T) and ``index`` (B,)."""

    @abstractmethod
    def lengths(self, items: Sequence[Item]) -> list[int]:
        """Per-item lengths for length bucketing."""

    def chars_per_unit(self, examples: Sequence[Example]) -> float:
        """Mean characters per unit of the input (a word tagger's tokens: above 1.5); the default
        recipe (:mod:`seqlab.recipes`) gives word-level tasks a character CNN. 1.0 unless a
        task's units are words."""
        return 1.0

    def parse_input(self, text: str) -> Any:
        """One raw input from a line of text (the CLI's ``--text``/``--file``); text tasks take the
        line as it is."""
        return text

    def unseen_labels(self, examples: Sequence[Example]) -> list[str]:
        """The labels of ``examples`` that training never showed (they count as errors; a model
        cannot predict them). Default: none (tasks without label vocabularies)."""
        return []

    def warn_unseen(self, examples: Sequence[Example]) -> None:
        """One warning on stderr naming the labels of ``examples`` never seen in training."""
        unseen = self.unseen_labels(examples)
        if unseen:
            shown = ", ".join(map(repr, unseen[:10])) + (f" and {len(unseen) - 10} more" if len(unseen) > 10 else "")
            print(f"[seqlab] {len(unseen)} label(s) never seen in training, scored as errors: {shown}", file=sys.stderr)

    def check_input(self, value: Any, index: int) -> None:  # noqa: B027 (a hook; the default accepts)
        """Refuse an input ``predict`` cannot read (default: anything goes)."""

    # --- the network's two ends (neural families) --------------------------------------
    def build_frontend(self, spec: EndsSpec) -> nn.Module:
        """The module that turns a batch into ``(x (B, T, D), mask)``; it has ``output_dim``."""
        raise ConfigError(f"task {self.name!r} has no neural frontend")

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        """The head over the encoder's (B, T, dim) states."""
        raise ConfigError(f"task {self.name!r} has no neural head")

    def check_head(self, head: str | None) -> None:
        if head is not None and head not in self.heads:
            raise ConfigError(f"head {head!r} is not available for task {self.name!r}; valid: {', '.join(self.heads)}")

    # --- learning and decoding --------------------------------------------------------
    @abstractmethod
    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(sum of per-unit losses, number of units)`` for exact normalisation."""

    @abstractmethod
    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """Predictions for the batch's rows, in row order, as user-facing values. ``output`` is
        what the network's head decided: scores, or a structured head's best ids (long)."""

    def default_decoding(self) -> DecodingConfig:
        """How a model of this task decodes when the user says nothing (saved with the model)."""
        from seqlab.inference.decoding import DecodingConfig

        return DecodingConfig()

    def predictions(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """What ``predict`` returns for a batch: :meth:`decode` of the head's decision (tasks whose
        outputs are generated override this; ``decoding`` says how)."""
        return self.decode(network.decide(output, batch), batch)

    def tally(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """Per-row records that :meth:`metrics` sums (default: the predictions)."""
        return self.predictions(network, output, batch, decoding)

    @abstractmethod
    def metrics(self, tallies: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        """The task's metrics from :meth:`tally`'s records; always includes ``loss`` (mean NLL per unit)."""

    # --- persistence ------------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-ready state (config, tokenizer, vocabularies)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> Task:
        """Rebuild a fitted task from :meth:`state`."""

    # --- declarations for the tests ------------------------------------------------------
    @classmethod
    @abstractmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """``(training examples, raw inputs, task options)``: a tiny problem with a rule a model can
        learn in a few steps, for the task and family contract tests."""

    @staticmethod
    def base_metrics(nll_sum: float, n_units: int) -> dict[str, float]:
        return {"loss": nll_sum / max(n_units, 1)}
