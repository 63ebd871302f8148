"""Sequence classification: a whole sequence to one label.

Examples: ``{"text": str, "label": str}`` or ``{"tokens": [str], "label": str}``.
Loss: cross-entropy, one unit per sequence. Decoding: argmax. Metrics: accuracy, macro-F1.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import (
    TruncationPolicy,
    TruncationReport,
    pad_chars,
    pad_sequences,
    truncate,
)
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.metrics.classification import accuracy, macro_f1
from seqlab.tasks.base import Batch, Encoded, Example, Item, ProbeRows
from seqlab.tasks.text import (
    TextCodec,
    TextOptions,
    TextTask,
    WordCharacters,
    as_tokens,
    encode_text_items,
    text_field,
)

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["ClassificationConfig", "ClassificationTask", "text_field"]

_TOY_WORDS = ("red", "blue", "green", "cat", "dog", "sun", "moon")


@dataclass(frozen=True)
class ClassificationConfig(TextOptions):
    """Text settings (words, lowercased, by default) and the length limit; ``max_len=None``
    means no limit."""

    lowercase: bool = True
    max_vocab: int | None = 50000
    max_len: int | None = 256
    truncation: TruncationPolicy = "head"
    max_word_len: int = 20  # characters a character CNN reads of each word

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_len is not None and self.max_len < 1:
            raise ConfigError(f"max_len must be >= 1 or None, found {self.max_len}")
        if self.max_word_len < 1:
            raise ConfigError(f"max_word_len must be >= 1, found {self.max_word_len}")


class ClassificationTask(WordCharacters, TextTask):
    name = "classification"
    output = "sequence"
    causal = False
    main_metric = "accuracy"
    greater_is_better = True
    alignment = "whole sequence -> one label"
    loss_name = "cross-entropy"
    decoding = "argmax"
    metric_names = ("accuracy", "macro_f1")
    input_keys = ("tokens", "text")
    prediction_kind = "sequence"
    prediction_words = "the predicted label"
    ends_used = ("frontend_dim", "word_dropout", "pooling", "char_filters", "char_dim")
    file_shapes = (("text", "label"), ("tokens", "label"))
    keys = ("text", "tokens", "label")
    probe_rows: ProbeRows = "sequence"

    def __init__(self, config: ClassificationConfig | None = None) -> None:
        self.config = config or ClassificationConfig()
        self.codec = TextCodec.from_options(self.config)
        self.labels: Vocab | None = None

    def fit(self, examples: Sequence[Example]) -> ClassificationTask:
        self.codec.fit(text_field(ex, i) for i, ex in enumerate(examples))
        self.fit_chars(self.codec.tokens(text_field(ex, i)) for i, ex in enumerate(examples))
        self.labels = Vocab(sorted({self._label(ex, i) for i, ex in enumerate(examples)}), specials=False)
        return self

    @staticmethod
    def _label(ex: Example, index: int) -> str:
        if "label" not in ex:
            raise DataError(None, None, f"example {index}: a 'label' field", f"keys {sorted(ex)}")
        return str(ex["label"])

    def unseen_labels(self, examples: Sequence[Example]) -> list[str]:
        known = self.label_vocab.stoi
        return sorted({lab for i, ex in enumerate(examples) if (lab := self._label(ex, i)) not in known})

    @property
    def label_vocab(self) -> Vocab:
        if self.labels is None:
            raise ConfigError("the task is not fitted: call fit() on training examples first")
        return self.labels

    @property
    def output_size(self) -> int:
        return len(self.label_vocab)

    def chars_per_unit(self, examples: Sequence[Example]) -> float:
        """Mean characters per word token (the recipe's cue for a character CNN); 1.0 when the
        codec does not read words (characters or trained subwords)."""
        if self.codec.kind != "word":
            return 1.0
        return self.mean_chars(self.codec.tokens(text_field(ex, i)) for i, ex in enumerate(examples))

    def _items(self, values: Sequence[str | list[str]], labels: Sequence[int]) -> tuple[list[Item], TruncationReport]:
        ids, report = encode_text_items(self.codec, values, self.config.max_len, self.config.truncation)
        items: list[Item] = [{"input_ids": x, "label": y, "index": i} for i, (x, y) in enumerate(zip(ids, labels))]
        if self.char_vocab is not None:
            for it, v in zip(items, values):
                it["chars"] = self.token_chars(self.codec.tokens(v), len(it["input_ids"]))
        return items, report

    def encode(self, examples: Sequence[Example]) -> Encoded:
        refs = [self._label(ex, i) for i, ex in enumerate(examples)]
        known = self.label_vocab.stoi
        items, report = self._items([text_field(ex, i) for i, ex in enumerate(examples)],
                                    [known.get(r, -100) for r in refs])
        return Encoded(items=items, references=refs, report=report)

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        values = [as_tokens(v, "input", i) for i, v in enumerate(inputs)]
        return self._items(values, [-100] * len(values))[0]

    def input_tokens(self, value: Any) -> list[str]:
        toks, _ = truncate(self.codec.tokens(as_tokens(value, "input", 0)), self.config.max_len, self.config.truncation)
        return toks or [self.codec.fitted_vocab.itos[self.codec.fitted_vocab.unk_id]]

    def output_labels(self) -> list[str]:
        return list(self.label_vocab.itos)

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        ids, mask = pad_sequences([it["input_ids"] for it in items], pad_value=self.pad_id)
        batch = {
            "input_ids": ids,  # (B, T)
            "mask": mask,  # (B, T) bool
            "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),  # (B,)
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
        }
        if items and "chars" in items[0]:
            batch["chars"] = pad_chars([it["chars"] for it in items], ids.shape[1])  # (B, T, L)
        return batch

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        from seqlab.models.heads import SequenceHead

        return SequenceHead(dim, self.output_size, spec.ends.pooling, spec.dropout, getattr(encoder, "last", None))

    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output``: (B, C) logits. Labels unseen in training (-100) are skipped."""
        labels = batch["labels"]
        keep = labels != -100
        total = F.cross_entropy(output.float(), labels, ignore_index=-100, reduction="sum")
        return total, keep.sum()

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        return self.label_vocab.decode(output.argmax(-1).tolist())

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Is "cat" among the words?"""
        rng = random.Random(seed)
        data: list[Example] = []
        for _ in range(48):
            toks = [rng.choice(_TOY_WORDS) for _ in range(rng.randint(2, 6))]
            data.append({"tokens": toks, "label": "cat" if "cat" in toks else "other"})
        return data, ["red cat sun".split(), "blue moon".split()], {}

    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        out["accuracy"] = accuracy(predictions, references)
        out["macro_f1"] = macro_f1(predictions, references)
        return out

    def state(self) -> dict[str, Any]:
        return {"config": to_dict(self.config), "codec": self.codec.state(), "labels": self.label_vocab.to_json(),
                "chars": self.chars_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClassificationTask:
        task = cls(from_dict(ClassificationConfig, state["config"]))
        task.codec = TextCodec.from_state(state["codec"])
        task.labels = Vocab.from_json(state["labels"])
        task.load_chars_state(state.get("chars"))
        return task
