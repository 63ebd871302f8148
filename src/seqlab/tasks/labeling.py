"""Token labeling: one label per token (NER, POS, chunking, the copying problem).

Examples: ``{"tokens": [str], "tags": [str]}`` with equal lengths.
Loss: masked token cross-entropy.
Decoding: argmax per token. Metrics: span precision/recall/F1 through seqeval for BIO-style
tag sets (IOB2 or IOBES, strict mode) and token accuracy for every tag set.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import TruncationPolicy, pad_chars, pad_sequences, truncate
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError
from seqlab.metrics.spans import span_scores, token_accuracy
from seqlab.tasks.base import Batch, Encoded, Example, Item
from seqlab.tasks.text import TextCodec, TextTask, WordCharacters, as_tokens, encode_text_items

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["LabelingConfig", "LabelingTask", "detect_scheme", "tokens_tags"]

_BIO = re.compile(r"^(O|[BIES]-.+)$")


def detect_scheme(tag_sets: Sequence[Sequence[str]]) -> str:
    """``IOBES`` if tags use S-/E- prefixes, ``IOB2`` if B-/I-/O only, else ``none``."""
    tags = {t for seq in tag_sets for t in seq}
    if not tags or not all(_BIO.match(t) for t in tags):
        return "none"
    return "IOBES" if any(t[:2] in ("S-", "E-") for t in tags) else "IOB2"


@dataclass(frozen=True)
class LabelingConfig:
    """``scheme="auto"`` reads the scheme off the training tags."""

    scheme: Literal["auto", "IOB2", "IOBES", "none"] = "auto"
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int | None = None
    max_len: int | None = None
    truncation: TruncationPolicy = "head"
    outside_tag: str = "O"
    chars: bool = False  # also emit each token's character ids (a model asks for them)
    max_word_len: int = 20

    def __post_init__(self) -> None:
        if self.max_len is not None and self.max_len < 1:
            raise ConfigError(f"max_len must be >= 1 or None, found {self.max_len}")
        if self.max_word_len < 1:
            raise ConfigError(f"max_word_len must be >= 1, found {self.max_word_len}")


def tokens_tags(ex: Example, index: int) -> tuple[list[str], list[str]]:
    if not isinstance(ex, dict):
        raise DataError(None, None, f"example {index}: a record with 'tokens' and 'tags'",
                        f"{type(ex).__name__} {repr(ex)[:60]}")
    toks = as_tokens(ex.get("tokens"), "tokens", index)
    tags = as_tokens(ex.get("tags", []), "tags", index)
    if isinstance(toks, str) or isinstance(tags, str):
        raise DataError(None, None, f"example {index}: 'tokens' and 'tags' as lists", "a string")
    if tags and len(tags) != len(toks):
        raise DataError(None, None, f"example {index}: as many tags as tokens ({len(toks)})", f"{len(tags)} tags")
    return toks, tags


class LabelingTask(WordCharacters, TextTask):
    name = "labeling"
    output = "token"
    causal = False
    main_metric = "f1"
    greater_is_better = True
    alignment = "sequence -> one label per token"
    loss_name = "masked token cross-entropy"
    decoding = "argmax per token"
    metric_names = ("f1", "precision", "recall", "token_accuracy")
    input_keys = ("tokens",)
    prediction_kind = "token"
    prediction_words = "the labels of the kept tokens (changed if any one differs)"
    ends_used = ("frontend_dim", "word_dropout", "char_filters", "char_dim", "head")
    file_shapes = (("tokens", "tags"),)
    txt_format = "conll"
    keys = ("tokens", "tags")
    heads = ("softmax", "crf")

    def __init__(self, config: LabelingConfig | None = None) -> None:
        self.config = config or LabelingConfig()
        c = self.config
        self.codec = TextCodec("word", c.lowercase, c.min_freq, c.max_vocab)
        self.tags: Vocab | None = None
        self.scheme: str = c.scheme
        self.use_chars = c.chars
        self.char_vocab = None
        self._set_main_metric()

    def _set_main_metric(self) -> None:
        self.main_metric = "token_accuracy" if self.scheme == "none" else "f1"

    def fit(self, examples: Sequence[Example]) -> LabelingTask:
        pairs = [tokens_tags(ex, i) for i, ex in enumerate(examples)]
        self.codec.fit(t for t, _ in pairs)
        self.fit_chars(t for t, _ in pairs)
        tag_seqs = [g for _, g in pairs]
        names = sorted({t for seq in tag_seqs for t in seq})
        self.tags = Vocab(names, specials=False)
        if self.config.scheme == "auto":
            self.scheme = detect_scheme(tag_seqs)
        self._set_main_metric()
        return self

    def chars_per_unit(self, examples: Sequence[Example]) -> float:
        return self.mean_chars(tokens_tags(ex, i)[0] for i, ex in enumerate(examples))

    def unseen_labels(self, examples: Sequence[Example]) -> list[str]:
        known = self.tag_vocab.stoi
        return sorted({t for i, ex in enumerate(examples) for t in tokens_tags(ex, i)[1] if t not in known})

    @property
    def tag_vocab(self) -> Vocab:
        if self.tags is None:
            raise ConfigError("the task is not fitted: call fit() on training examples first")
        return self.tags

    @property
    def output_size(self) -> int:
        return len(self.tag_vocab)

    def encode(self, examples: Sequence[Example]) -> Encoded:
        pairs = [tokens_tags(ex, i) for i, ex in enumerate(examples)]
        ids, report = encode_text_items(self.codec, [t for t, _ in pairs], self.config.max_len, self.config.truncation)
        stoi = self.tag_vocab.stoi
        items = []
        for i, (x, (toks, tags)) in enumerate(zip(ids, pairs)):
            labels = [stoi.get(t, -100) for t in tags][: len(x)] if tags else [-100] * len(x)
            items.append({"input_ids": x, "labels": labels, "index": i, "length": len(toks)})
            if self.char_vocab is not None:
                items[-1]["chars"] = self.token_chars(toks, len(x))
        return Encoded(items=items, references=[g for _, g in pairs], report=report)

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        toks = []
        for i, v in enumerate(inputs):
            t = as_tokens(v, "input", i)
            toks.append(t.split() if isinstance(t, str) else t)
        ids, _ = encode_text_items(self.codec, toks, self.config.max_len, self.config.truncation)
        items: list[Item] = []
        for i, (x, t) in enumerate(zip(ids, toks)):
            items.append({"input_ids": x, "labels": [-100] * len(x), "index": i, "length": len(t)})
            if self.char_vocab is not None:
                items[-1]["chars"] = self.token_chars(t, len(x))
        return items

    def raw_tokens(self, value: Any) -> list[str]:
        """Labeling reads words: text is split on whitespace, as :meth:`encode_inputs` does."""
        if isinstance(value, str):
            return value.split()
        return super().raw_tokens(value)

    def input_tokens(self, value: Any) -> list[str]:
        raw = as_tokens(value, "input", 0)
        toks, _ = truncate(self.codec.tokens(raw.split() if isinstance(raw, str) else raw), self.config.max_len,
                           self.config.truncation)
        return toks or [self.codec.fitted_vocab.itos[self.codec.fitted_vocab.unk_id]]

    def output_labels(self) -> list[str]:
        return list(self.tag_vocab.itos)

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        ids, mask = pad_sequences([it["input_ids"] for it in items], pad_value=self.pad_id)
        labels, _ = pad_sequences([it["labels"] for it in items], pad_value=-100)
        batch = {
            "input_ids": ids,  # (B, T)
            "mask": mask,  # (B, T) bool
            "labels": labels,  # (B, T), -100 = no label
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
            "length": torch.tensor([it["length"] for it in items], dtype=torch.long),  # (B,) before truncation
        }
        if items and "chars" in items[0]:
            batch["chars"] = pad_chars([it["chars"] for it in items], ids.shape[1])  # (B, T, L)
        return batch

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        """Softmax per token, or (``head="crf"``) a linear-chain CRF over the token scores, its
        Viterbi constrained to well-formed spans of the task's scheme."""
        from seqlab.models.heads import CRFTokenHead, TokenHead, crf_constraints

        if spec.ends.head == "crf":
            constraints = crf_constraints(self.tag_vocab.itos, self.scheme)
            return CRFTokenHead(dim, self.output_size, spec.dropout, constraints)
        return TokenHead(dim, self.output_size, spec.dropout)

    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output``: (B, T, C) logits; padding and unlabeled tokens are skipped."""
        labels = batch["labels"].masked_fill(~batch["mask"], -100)
        total = F.cross_entropy(output.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
        return total, (labels != -100).sum()

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """``output``: (B, T, C) scores, or (B, T) long tag ids (a CRF head's Viterbi path)."""
        return self.decode_ids(output if output.dtype == torch.long else output.argmax(-1), batch)

    def decode_ids(self, best: Tensor, batch: Batch) -> list[list[str]]:
        """Tag strings from (B, T) ids; tokens cut by truncation get the outside tag."""
        itos = self.tag_vocab.itos
        n_kept = batch["mask"].sum(-1).tolist()
        out = []
        for row, k, n in zip(best.tolist(), n_kept, batch["length"].tolist()):
            out.append([itos[j] for j in row[:k]] + [self.config.outside_tag] * (n - k))
        return out

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Animals are entities (B-A), other words are not."""
        rng = random.Random(seed)
        words = ("red", "blue", "green", "cat", "dog", "sun", "moon")
        data: list[Example] = []
        for _ in range(48):
            toks = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            data.append({"tokens": toks, "tags": ["B-A" if t in ("cat", "dog") else "O" for t in toks]})
        return data, [["red", "cat"], ["dog", "sun", "moon"]], {}

    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        out["token_accuracy"] = token_accuracy(predictions, references)
        if self.scheme != "none":
            out.update(span_scores(predictions, references, scheme=self.scheme))  # type: ignore[arg-type]
        return out

    def state(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.config),
            "codec": self.codec.state(),
            "tags": self.tag_vocab.to_json(),
            "scheme": self.scheme,
            "chars": self.chars_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelingTask:
        task = cls(from_dict(LabelingConfig, state["config"]))
        task.codec = TextCodec.from_state(state["codec"])
        task.tags = Vocab.from_json(state["tags"])
        task.scheme = state["scheme"]
        task.load_chars_state(state.get("chars"))
        task._set_main_metric()
        return task


_tokens_tags = tokens_tags  # the earlier private name
