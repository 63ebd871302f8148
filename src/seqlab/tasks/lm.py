"""Causal language modeling: predict each next token from the prefix.

Examples: ``{"text": str}`` (documents). Training and evaluation cut the token stream (each
document followed by ``<eos>``) into blocks of ``block_size`` next-token predictions.
Loss: masked next-token cross-entropy. Decoding: greedy, sampling (see ``seqlab.models``).
Metrics: perplexity, bits per token and bits per character (the summed NLL in bits over the
number of characters the predicted tokens spell).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import TruncationReport, pad_sequences
from seqlab.errors import ConfigError
from seqlab.metrics.lm import bits_per_unit, perplexity
from seqlab.tasks.base import Batch, Encoded, Example, Item
from seqlab.tasks.text import TextCodec, TextOptions, TextTask, as_tokens, lm_head, text_field

if TYPE_CHECKING:
    from torch import nn

    from seqlab.inference.decoding import DecodingConfig
    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["LMConfig", "LMTask", "stream_blocks"]


@dataclass(frozen=True)
class LMConfig(TextOptions):
    """Text settings (characters by default) and the training context length."""

    tokenizer: Literal["word", "char", "bpe", "unigram"] = "char"
    block_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_size < 1:
            raise ConfigError(f"block_size must be >= 1, found {self.block_size}")


def stream_blocks(stream: Sequence[int], block: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, end)`` windows of ``block + overlap`` ids with stride ``block``, covering the stream."""
    spans = []
    start = 0
    while start + overlap < len(stream):
        spans.append((start, min(start + block + overlap, len(stream))))
        start += block
    return spans


def _text(ex: Example, index: int) -> str | list[str]:
    return text_field(ex, index, ("text", "tokens"))


class LMTask(TextTask):
    name = "lm"
    output = "next_token"
    causal = True
    main_metric = "loss"
    greater_is_better = False
    alignment = "prefix -> next token"
    loss_name = "masked next-token cross-entropy"
    decoding = "greedy / sampling"
    metric_names: ClassVar[tuple[str, ...]] = ("perplexity", "bits_per_char", "bits_per_token")
    input_keys = ("text", "tokens")
    prediction_kind = "next"
    prediction_words = ("the next-token prediction at the final kept position (against the uncut prefix up to that "
                        "position; for a causal model cut_tail cannot change it)")
    ends_used = ("frontend_dim", "word_dropout", "tie_weights")
    uses_decoding = True
    splits_text = True
    file_shapes = (("text",),)
    keys = ("text", "tokens")
    overlap = 1  # a block of n inputs needs n + 1 ids

    def __init__(self, config: LMConfig | None = None) -> None:
        self.config = config or LMConfig()
        self.codec = TextCodec.from_options(self.config)
        self._char_len: Tensor | None = None

    def fit(self, examples: Sequence[Example]) -> LMTask:
        self.codec.fit(_text(ex, i) for i, ex in enumerate(examples))
        self._char_len = None
        return self

    @property
    def output_size(self) -> int:
        return len(self.codec.fitted_vocab)

    @property
    def char_lengths(self) -> Tensor:
        """(V,) how many characters each token id spells (specials and ``<eos>`` count one)."""
        if self._char_len is None:
            vocab = self.codec.fitted_vocab
            extra = 1 if self.codec.kind == "word" else 0
            lens = [1 if i < 5 else max(len(t) + extra, 1) for i, t in enumerate(vocab.itos)]
            self._char_len = torch.tensor(lens, dtype=torch.long)
        return self._char_len

    def stream(self, examples: Sequence[Example]) -> list[int]:
        eos = self.codec.fitted_vocab.eos_id
        ids: list[int] = []
        for i, ex in enumerate(examples):
            ids.extend(self.codec.encode(_text(ex, i)))
            ids.append(eos)
        return ids

    def encode(self, examples: Sequence[Example]) -> Encoded:
        ids = self.stream(examples)
        spans = stream_blocks(ids, self.config.block_size, self.overlap)
        items = [{"ids": ids[a:b], "index": i} for i, (a, b) in enumerate(spans)]
        report = TruncationReport(n_examples=len(examples), n_truncated=0, max_len=None, policy="none", longest=len(ids))
        return Encoded(items=items, references=[None] * len(items), report=report)

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        out: list[Item] = []
        for i, v in enumerate(inputs):
            ids = self.codec.encode(as_tokens(v, "prompt", i)) or [self.codec.fitted_vocab.eos_id]
            out.append({"ids": ids[-self.config.block_size :] + [self.pad_id], "index": i})
        return out

    def input_tokens(self, value: Any) -> list[str]:
        toks = self.codec.tokens(as_tokens(value, "prompt", 0))[-self.config.block_size :]
        return toks or [self.codec.fitted_vocab.itos[self.codec.fitted_vocab.eos_id]]

    def output_labels(self) -> list[str]:
        return list(self.codec.fitted_vocab.itos)

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["ids"]) - self.overlap for it in items]

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        ids, mask = pad_sequences([it["ids"][:-1] for it in items], pad_value=self.pad_id)
        labels, _ = pad_sequences([it["ids"][1:] for it in items], pad_value=-100)
        return {
            "input_ids": ids,  # (B, T)
            "mask": mask,  # (B, T) bool
            "labels": labels,  # (B, T) next ids, -100 on padding
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        }

    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output``: (B, T, V) next-token logits."""
        labels = batch["labels"].masked_fill(~batch["mask"], -100)
        total = F.cross_entropy(output.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
        return total, (labels != -100).sum()

    def default_decoding(self) -> DecodingConfig:
        """An LM continues a prompt by sampling (temperature 1) unless asked otherwise."""
        from seqlab.inference.decoding import DecodingConfig

        return DecodingConfig(method="sample")

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        return lm_head(spec, dim, frontend, self.output_size)


    def tally(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """Per block: characters spelled by its targets and top-1 hits (for bits/char, accuracy)."""
        labels = batch["labels"].masked_fill(~batch["mask"], -100)
        valid = labels != -100
        chars = (self.char_lengths[labels.clamp(min=0)] * valid).sum(-1)  # (B,)
        hits = ((output.argmax(-1) == labels) & valid).sum(-1)  # (B,)
        return [{"chars": int(c), "hits": int(h)} for c, h in zip(chars, hits)]

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """The most likely next token after each prompt (its last real position)."""
        last = batch["mask"].sum(-1) - 1  # (B,)
        best = output[torch.arange(output.shape[0]), last].argmax(-1)  # (B,)
        return self.codec.fitted_vocab.decode(best.tolist())

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Documents of words drawn from a small vocabulary, in word tokens."""
        rng = random.Random(seed)
        words = ("red", "blue", "green", "cat", "dog", "sun", "moon")
        text = " ".join(rng.choice(words) for _ in range(300))
        docs: list[Example] = [{"text": text[i : i + 200]} for i in range(0, len(text), 200)]
        return docs, ["red ", "the cat"], {"tokenizer": "word", "block_size": 16}

    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        chars = sum(p["chars"] for p in predictions)
        out["perplexity"] = perplexity(nll_sum, n_units)
        out["bits_per_token"] = bits_per_unit(nll_sum, n_units)
        out["bits_per_char"] = bits_per_unit(nll_sum, chars) if chars else math.nan
        out["accuracy"] = sum(p["hits"] for p in predictions) / max(n_units, 1)
        return out

    def state(self) -> dict[str, Any]:
        return {"config": to_dict(self.config), "codec": self.codec.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LMTask:
        task = cls(from_dict(LMConfig, state["config"]))
        task.codec = TextCodec.from_state(state["codec"])
        return task
