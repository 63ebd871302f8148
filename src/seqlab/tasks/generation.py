"""Sequence-to-sequence generation (many-to-many, unaligned): a source to a new target sequence.

Examples: ``{"source": str | [str], "target": str | [str]}``: text (tokenized by the
configured tokenizer) or token lists used as they are (CMUdict's letters -> phonemes).
Source and target have their own :class:`~seqlab.tasks.text.TextCodec` (tokenizer + vocabulary)
unless ``shared_vocab`` fits one codec on both sides (then ``input_size == output_size``).

Batch format (the contract every encoder-decoder codes against)::

    src_ids    (B, S) long   source ids, 0 (<pad>) on padding
    src_mask   (B, S) bool   True on real source tokens
    input_ids  (B, T) long   <bos> + target           (decoder inputs, teacher forcing)
    labels     (B, T) long   target + <eos>, -100 on padding
    mask       (B, T) bool   True on real decoder positions
    index      (B,)   long   row -> item index

Loss: teacher-forced cross-entropy summed over target tokens, ``<eos>`` included (the units).
Decoding: free-running, through :mod:`seqlab.inference.decoding` (greedy / beam / sampling),
from ``bos_id`` until ``eos_id``; :meth:`GenerationTask.decode_ids` turns the generated id rows
into outputs (text, or token lists when the training targets were token lists).
Metrics (:mod:`seqlab.metrics.generation`): loss, perplexity, BLEU and chrF (sacrebleu, with
:meth:`GenerationTask.metric_signatures`), exact match, and error rates through jiwer: WER and
CER for text; for token-list targets PER (each token one jiwer word) and WER as the G2P
literature counts it, the share of outputs not exactly right (``1 - exact_match``).

Shapes: B batch, S source length, T target length + 1, V target vocabulary.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import TruncationPolicy, TruncationReport, pad_sequences, truncate
from seqlab.errors import ConfigError
from seqlab.metrics import generation as gm
from seqlab.metrics.lm import perplexity
from seqlab.tasks.base import Batch, Encoded, Example, Item, ProbeRows
from seqlab.tasks.text import TextCodec, TextTask, as_tokens, text_field

if TYPE_CHECKING:
    from seqlab.inference.decoding import DecodingConfig

__all__ = ["GenerationConfig", "GenerationTask", "PairTruncationReport", "METRICS"]

Tokenizer = Literal["word", "char", "bpe", "unigram"]
# metric -> greater is better
METRICS: dict[str, bool] = {
    "loss": False, "perplexity": False, "bleu": True, "chrf": True, "exact_match": True,
    "wer": False, "cer": False, "per": False,
}


@dataclass(frozen=True)
class GenerationConfig:
    """Tokenizers and vocabularies per side, length limits, and the selection metric.

    ``*_tokenizer``: how text is split (token lists bypass it). ``shared_vocab``: one codec for
    both sides (needs one tokenizer). ``max_source_len`` / ``max_target_len``: token limits
    (``None``: none; the target's excludes ``<eos>``), applied by ``truncation``.
    ``main_metric``: what model selection follows; ``None`` picks ``wer`` for token-list
    targets, ``bleu`` for text. ``bleu_tokenize``: sacrebleu's tokenizer (``None``: 13a for
    text, none for token lists).
    """

    source_tokenizer: Tokenizer = "char"
    target_tokenizer: Tokenizer = "char"
    shared_vocab: bool = False
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int | None = None
    vocab_size: int = 8000
    max_source_len: int | None = 256
    max_target_len: int | None = 256
    truncation: TruncationPolicy = "head"
    main_metric: str | None = None
    bleu_tokenize: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, found {self.min_freq}")
        for name in ("max_source_len", "max_target_len"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1 or None, found {v}")
        if self.shared_vocab and self.source_tokenizer != self.target_tokenizer:
            raise ConfigError(
                f"shared_vocab needs one tokenizer; found source {self.source_tokenizer!r}, target {self.target_tokenizer!r}"
            )
        if self.main_metric is not None and self.main_metric not in METRICS:
            raise ConfigError(f"unknown main_metric {self.main_metric!r}; valid: {', '.join(METRICS)}")


@dataclass(frozen=True)
class PairTruncationReport(TruncationReport):
    """The source's report, with the target's beside it; ``n_truncated`` counts examples cut
    on either side."""

    target: TruncationReport | None = None

    def __str__(self) -> str:
        base = super().__str__()
        return f"source: {base}; target: {self.target}" if self.target else f"source: {base}"


def _codec(c: GenerationConfig, tokenizer: str) -> TextCodec:
    return TextCodec(tokenizer, c.lowercase, c.min_freq, c.max_vocab, c.vocab_size)


def _encode_side(
    codec: TextCodec, values: Sequence[str | list[str]], max_len: int | None, policy: TruncationPolicy, nonempty: bool
) -> tuple[list[list[int]], list[bool], TruncationReport]:
    """Ids per value, whether each was cut, and the report (``nonempty``: an empty value
    becomes one ``<unk>``, so every source row has a real position)."""
    out: list[list[int]] = []
    cuts: list[bool] = []
    longest = 0
    for i, v in enumerate(values):
        ids = codec.encode(v)
        longest = max(longest, len(ids))
        kept, cut = truncate(ids, max_len, policy, index=i)
        out.append(kept if kept or not nonempty else [codec.fitted_vocab.unk_id])
        cuts.append(cut)
    return out, cuts, TruncationReport(len(values), sum(cuts), max_len, policy, longest)


class GenerationTask(TextTask):
    name = "generation"
    output = "sequence_to_sequence"
    shape = "encoder_decoder"
    input_keys = ("source",)
    prediction_kind = "sequence"
    prediction_words = "the generated output sequence"
    ends_used = ("word_dropout", "tie_weights")
    uses_decoding = True
    file_shapes = (("source", "target"),)
    keys = ("source", "target")
    probe_rows: ProbeRows = ""
    decodes_free = True
    causal = False  # the source encoder sees the whole source; the decoder is causal by construction
    decoder_causal: ClassVar[bool] = True
    alignment = "source sequence -> new target sequence (unaligned)"
    loss_name = "teacher-forced cross-entropy (target tokens + <eos>)"
    decoding = "greedy / beam / sampling (seqlab.inference.decoding)"
    metric_names: ClassVar[tuple[str, ...]] = ("perplexity", "bleu", "chrf", "wer", "cer", "per", "exact_match")

    def __init__(self, config: GenerationConfig | None = None) -> None:
        self.config = config or GenerationConfig()
        c = self.config
        self.source_codec = _codec(c, c.source_tokenizer)
        self.target_codec = self.source_codec if c.shared_vocab else _codec(c, c.target_tokenizer)
        self.token_targets = False  # set by fit: were the training targets token lists?
        self._set_main_metric()

    def _set_main_metric(self) -> None:
        self.main_metric = self.config.main_metric or ("wer" if self.token_targets else "bleu")
        self.greater_is_better = METRICS[self.main_metric]

    # --- vocabulary -----------------------------------------------------------------
    def fit(self, examples: Sequence[Example]) -> GenerationTask:
        src = [text_field(ex, i, ("source",)) for i, ex in enumerate(examples)]
        tgt = [text_field(ex, i, ("target",)) for i, ex in enumerate(examples)]
        if self.config.shared_vocab:
            self.source_codec.fit([*src, *tgt])
        else:
            self.source_codec.fit(src)
            self.target_codec.fit(tgt)
        self.token_targets = bool(tgt) and all(isinstance(t, list) for t in tgt)
        self._set_main_metric()
        return self

    @property
    def input_codec(self) -> TextCodec:
        return self.source_codec

    @property
    def output_size(self) -> int:
        return len(self.target_codec.fitted_vocab)

    @property
    def bos_id(self) -> int:
        return self.target_codec.fitted_vocab.bos_id

    @property
    def eos_id(self) -> int:
        return self.target_codec.fitted_vocab.eos_id

    # --- encoding -------------------------------------------------------------------
    def reference(self, value: str | list[str]) -> str | list[str]:
        """The user-facing form a prediction is compared with (lowercased if configured)."""
        norm = self.target_codec._norm(value)
        return norm if self.token_targets or isinstance(norm, str) else " ".join(norm)

    def encode(self, examples: Sequence[Example]) -> Encoded:
        c = self.config
        src_raw = [text_field(ex, i, ("source",)) for i, ex in enumerate(examples)]
        tgt_raw = [text_field(ex, i, ("target",)) for i, ex in enumerate(examples)]
        src, src_cut, rs = _encode_side(self.source_codec, src_raw, c.max_source_len, c.truncation, nonempty=True)
        tgt, tgt_cut, rt = _encode_side(self.target_codec, tgt_raw, c.max_target_len, c.truncation, nonempty=False)
        items = [{"src": s, "tgt": t, "index": i} for i, (s, t) in enumerate(zip(src, tgt))]
        cut = sum(a or b for a, b in zip(src_cut, tgt_cut))
        report = PairTruncationReport(rs.n_examples, cut, rs.max_len, rs.policy, rs.longest, target=rt)
        return Encoded(items=items, references=[self.reference(t) for t in tgt_raw], report=report)

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        c = self.config
        srcs = [as_tokens(v, "source", i) for i, v in enumerate(inputs)]
        src, _, _ = _encode_side(self.source_codec, srcs, c.max_source_len, c.truncation, nonempty=True)
        return [{"src": s, "tgt": [], "index": i} for i, s in enumerate(src)]

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [max(len(it["src"]), len(it["tgt"]) + 1) for it in items]

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        src, src_mask = pad_sequences([it["src"] for it in items], pad_value=self.pad_id)
        inputs, mask = pad_sequences([[self.bos_id, *it["tgt"]] for it in items], pad_value=self.pad_id)
        labels, _ = pad_sequences([[*it["tgt"], self.eos_id] for it in items], pad_value=-100)
        return {
            "src_ids": src,  # (B, S)
            "src_mask": src_mask,  # (B, S) bool
            "input_ids": inputs,  # (B, T) <bos> + target
            "labels": labels,  # (B, T) target + <eos>, -100 on padding
            "mask": mask,  # (B, T) bool
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
        }

    # --- learning and decoding --------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output``: (B, T, V) teacher-forced logits -> (summed CE, number of target tokens)."""
        labels = batch["labels"].masked_fill(~batch["mask"], -100)  # (B, T)
        total = F.cross_entropy(output.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
        return total, (labels != -100).sum()

    def decode_ids(self, rows: Sequence[Sequence[int]]) -> list[Any]:
        """Generated id rows (each cut at its first ``<eos>``; specials dropped) -> outputs:
        token lists for token-list targets, else detokenized text."""
        out: list[Any] = []
        for row in rows:
            ids = list(row)
            if self.eos_id in ids:
                ids = ids[: ids.index(self.eos_id)]
            toks = self.target_codec.decode(ids)
            out.append(toks if self.token_targets else self.target_codec.detokenize(toks))
        return out

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """``output`` (B, L) long generated ids, or (B, T, V) teacher-forced logits (their argmax
        per position: an optimistic proxy, since each step saw the gold prefix)."""
        ids = output if output.dtype == torch.long else output.argmax(-1)  # (B, L)
        return self.decode_ids(ids.tolist())

    def predictions(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """Free-running decoding of the batch (``network``: the encoder-decoder, a stepper with
        ``start(batch)``), from ``<bos>`` to ``<eos>`` or ``decoding.max_len`` tokens (default:
        twice the longest source + 10): one output per row, or a list of ``n_best``."""
        from seqlab.inference.decoding import decode_with

        src_mask = batch["src_mask"]
        start = torch.full((src_mask.shape[0],), self.bos_id, dtype=torch.long, device=src_mask.device)
        max_len = int(src_mask.sum(-1).max()) * 2 + 10
        with torch.no_grad():
            hyps = decode_with(decoding, network, start, network.start(batch), max_len, self.eos_id,
                               stream=int(batch["index"].min()))
        if decoding.n_best > 1:
            return [self.decode_ids([h.tokens for h in row[: decoding.n_best]]) for row in hyps]
        return self.decode_ids([row[0].tokens for row in hyps])

    def tally(self, network: Any, output: Tensor, batch: Batch, decoding: DecodingConfig) -> list[Any]:
        """The best output per row (metrics score one output, whatever ``n_best`` asks)."""
        return self.predictions(network, output, batch, dataclasses.replace(decoding, n_best=1))

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Reverse a short word, letter by letter."""
        rng = random.Random(seed)
        data: list[Example] = []
        for _ in range(48):
            letters = [rng.choice("abcde") for _ in range(rng.randint(1, 4))]
            data.append({"source": letters, "target": letters[::-1]})
        return data, [list("ab"), list("cde")], {}

    def metric_signatures(self) -> dict[str, str]:
        """sacrebleu's signatures for the BLEU and chrF this task reports."""
        tok = self.config.bleu_tokenize or ("none" if self.token_targets else "13a")
        return {"bleu": gm.bleu_signature(tok), "chrf": gm.chrf_signature()}

    def metrics(self, predictions: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        out["perplexity"] = perplexity(nll_sum, n_units)
        if not predictions:
            return out
        out["bleu"] = gm.bleu(predictions, references, self.config.bleu_tokenize)[0]
        out["chrf"] = gm.chrf(predictions, references)[0]
        out["exact_match"] = gm.exact_match(predictions, references)
        if self.token_targets:
            out["per"] = gm.token_error_rate(predictions, references)
            out["wer"] = 1.0 - out["exact_match"]
        else:
            out["wer"] = gm.wer(predictions, references)
            out["cer"] = gm.cer(predictions, references)
        return out

    # --- persistence ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        shared = self.config.shared_vocab
        return {
            "config": to_dict(self.config),
            "source_codec": self.source_codec.state(),
            "target_codec": None if shared else self.target_codec.state(),
            "token_targets": self.token_targets,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GenerationTask:
        task = cls(from_dict(GenerationConfig, state["config"]))
        task.source_codec = TextCodec.from_state(state["source_codec"])
        task.target_codec = task.source_codec if state["target_codec"] is None else TextCodec.from_state(state["target_codec"])
        task.token_targets = bool(state["token_targets"])
        task._set_main_metric()
        return task
