"""Masked language modeling: recover tokens hidden in a sequence (Devlin et al. 2019).

Blocks of ``block_size`` ids are cut from the token stream as for the causal LM. Collation
hides each real token with probability ``mask_prob`` (at least one per block): 80% become
``<mask>``, 10% a random token, 10% stay. The choice is drawn from the generator the batch
source passes, so it is a pure function of (seed, epoch, step); evaluation batches get a
generator seeded by their item indices, so every evaluation sees the same holes.
Loss: cross-entropy on the hidden positions. Metric: masked-token accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from seqlab.config import from_dict
from seqlab.data.batching import pad_sequences
from seqlab.errors import ConfigError
from seqlab.metrics.lm import perplexity
from seqlab.tasks.base import Batch, Example, Item, ProbeRows
from seqlab.tasks.lm import LMConfig, LMTask
from seqlab.tasks.text import TextCodec

if TYPE_CHECKING:
    from seqlab.inference.decoding import DecodingConfig

__all__ = ["MLMConfig", "MLMTask", "mask_tokens"]


@dataclass(frozen=True)
class MLMConfig(LMConfig):
    """The LM's text options (word tokens by default) plus the masking rate."""

    tokenizer: Literal["word", "char", "bpe", "unigram"] = "word"
    mask_prob: float = 0.15

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1), found {self.mask_prob}")


def mask_tokens(
    ids: Tensor, mask: Tensor, mask_id: int, vocab_size: int, prob: float, generator: torch.Generator, n_special: int = 5
) -> tuple[Tensor, Tensor]:
    """Hide tokens for MLM. ``ids``/``mask``: (B, T). Returns (inputs, labels with -100 = not hidden)."""
    draw = torch.rand(ids.shape, generator=generator)
    hide = (draw < prob) & mask
    # every row with a real token hides at least one: its position of smallest draw
    none = ~hide.any(-1) & mask.any(-1)
    first = draw.masked_fill(~mask, 2.0).argmin(-1)
    hide[none, first[none]] = True
    labels = ids.masked_fill(~hide, -100)
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(n_special, max(vocab_size, n_special + 1), ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[hide & (action < 0.8)] = mask_id
    swap = hide & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


class MLMTask(LMTask):
    name = "mlm"
    output = "masked_token"
    causal = False
    main_metric = "loss"
    greater_is_better = False
    alignment = "sequence with holes -> the missing tokens"
    loss_name = "cross-entropy on masked positions"
    decoding = "argmax"
    metric_names = ("masked_accuracy",)
    overlap = 0
    prediction_kind = ""
    prediction_words = ""
    probe_rows: ProbeRows = ""  # its outputs mean something only at the hidden positions
    uses_decoding = False  # it fills <mask>s by argmax

    def __init__(self, config: MLMConfig | None = None) -> None:
        super().__init__(config or MLMConfig())
        self.mask_prob = (config or MLMConfig()).mask_prob

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        ids, mask = pad_sequences([it["ids"] for it in items], pad_value=self.pad_id)
        index = torch.tensor([it["index"] for it in items], dtype=torch.long)
        if generator is None:
            generator = torch.Generator().manual_seed(int(index.sum()) * 1_000_003 + len(items))
        if items and all(it.get("fill") for it in items):  # prediction inputs: their own <mask>s, no others
            return {"input_ids": ids, "mask": mask, "labels": torch.full_like(ids, -100), "index": index}
        vocab = self.codec.fitted_vocab
        inputs, labels = mask_tokens(ids, mask, vocab.mask_id, len(vocab), self.mask_prob, generator)
        return {"input_ids": inputs, "mask": mask, "labels": labels, "index": index}

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        """Prompts may hold ``<mask>`` tokens (word/char tokenizers keep them as typed); only those
        are predicted."""
        items = super().encode_inputs(inputs)
        return [{"ids": it["ids"][:-1], "index": it["index"], "fill": True} for it in items]

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["ids"]) for it in items]

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """For each row, the most likely token at each of its ``<mask>`` positions, in order."""
        holes = (batch["input_ids"] == self.codec.fitted_vocab.mask_id) & batch["mask"]  # (B, T)
        best = output.argmax(-1)  # (B, T)
        itos = self.codec.fitted_vocab.itos
        return [[itos[int(i)] for i in row[hole]] for row, hole in zip(best, holes)]

    def tally(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """Per row: hidden tokens recovered, and hidden tokens."""
        labels = batch["labels"]
        valid = labels != -100
        hits = ((output.argmax(-1) == labels) & valid).sum(-1)
        return [{"hits": int(h), "total": int(n)} for h, n in zip(hits, valid.sum(-1))]

    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        total = sum(p["total"] for p in predictions)
        out["masked_accuracy"] = sum(p["hits"] for p in predictions) / max(total, 1)
        out["perplexity"] = perplexity(nll_sum, n_units)
        return out

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        docs, _, opts = LMTask.toy_examples(seed)
        return docs, ["red <mask> sun", "the <mask>"], opts

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MLMTask:
        task = cls(from_dict(MLMConfig, state["config"]))
        task.codec = TextCodec.from_state(state["codec"])
        return task
