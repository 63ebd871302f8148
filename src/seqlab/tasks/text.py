"""Text to ids: a tokenizer plus a vocabulary, fitted on training data, saved as JSON.

Every text task (classification, labeling, LM, MLM, and later generation) uses this one codec,
so tokenization options mean the same thing everywhere: ``tokenizer`` (char, word, bpe,
unigram), ``lowercase``, ``min_freq``/``max_vocab`` for counted vocabularies and
``vocab_size`` for trained subword models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from seqlab.data.batching import TruncationPolicy, TruncationReport, truncate
from seqlab.data.tokenizers import Tokenizer, make_tokenizer, tokenizer_from_json
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.tasks.base import Item, ProbeRows, Task

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsConfig, EndsSpec

__all__ = ["TextCodec", "TextOptions", "TextTask", "as_tokens", "encode_text_items", "text_field", "lm_head", "WordCharacters"]


@dataclass(frozen=True)
class TextOptions:
    """The text settings every text task shares; task configs extend it (and may change defaults)."""

    tokenizer: Literal["word", "char", "bpe", "unigram"] = "word"
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int | None = None
    vocab_size: int = 8000

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, found {self.min_freq}")


def as_tokens(value: Any, field: str, index: int) -> list[str] | str:
    """Validate an example field that holds text or a token list."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return list(value)
    raise DataError(None, None, f"example {index}: field {field!r} as a string or a list of strings", repr(value)[:80])


def text_field(example: Any, index: int, keys: tuple[str, ...] = ("tokens", "text")) -> str | list[str]:
    """The example's input: the first of ``keys`` it has (token list or string)."""
    if not isinstance(example, dict):
        raise DataError(None, None, f"example {index}: a record with a {' or '.join(repr(k) for k in keys)} field",
                        f"{type(example).__name__} {repr(example)[:60]}")
    for key in keys:
        if key in example:
            return as_tokens(example[key], key, index)
    raise DataError(None, None, f"example {index}: a {' or '.join(repr(k) for k in keys)} field", f"keys {sorted(example)}")


class TextCodec:
    """Tokenizer + :class:`Vocab`. Token lists given by the user bypass the tokenizer."""

    def __init__(
        self,
        tokenizer: str = "word",
        lowercase: bool = False,
        min_freq: int = 1,
        max_vocab: int | None = None,
        vocab_size: int = 8000,
    ) -> None:
        self.kind = tokenizer
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.vocab_size = vocab_size
        opts: dict[str, Any] = {}
        if tokenizer in ("bpe", "unigram"):
            opts["vocab_size"] = vocab_size
        self.tokenizer: Tokenizer = make_tokenizer(tokenizer, **opts)
        self.vocab: Vocab | None = None

    def _norm(self, value: str | Sequence[str]) -> str | list[str]:
        if isinstance(value, str):
            return value.lower() if self.lowercase else value
        return [t.lower() for t in value] if self.lowercase else list(value)

    def fit(self, values: Iterable[str | Sequence[str]]) -> TextCodec:
        normed = [self._norm(v) for v in values]
        texts = [v for v in normed if isinstance(v, str)]
        if texts and self.kind in ("bpe", "unigram"):
            self.tokenizer.fit(texts)
        self.vocab = Vocab.build(
            (self._split(v) for v in normed), min_freq=self.min_freq, max_size=self.max_vocab
        )
        return self

    def _split(self, value: str | list[str]) -> list[str]:
        return self.tokenizer.tokenize(value) if isinstance(value, str) else value

    def tokens(self, value: str | Sequence[str]) -> list[str]:
        """Token strings of a text (tokenized) or a token list (normalised only)."""
        return self._split(self._norm(value))

    def encode(self, value: str | Sequence[str]) -> list[int]:
        return self.fitted_vocab.encode(self.tokens(value))

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> list[str]:
        vocab = self.fitted_vocab
        return [vocab.itos[i] for i in ids if not (skip_special and i < 5 and vocab.has_specials)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.tokenizer.detokenize(tokens)

    @property
    def fitted_vocab(self) -> Vocab:
        if self.vocab is None:
            raise SeqlabError("the text codec is not fitted: call fit() on training data first")
        return self.vocab

    def state(self) -> dict[str, Any]:
        return {
            "tokenizer": self.kind,
            "lowercase": self.lowercase,
            "min_freq": self.min_freq,
            "max_vocab": self.max_vocab,
            "vocab_size": self.vocab_size,
            "tokenizer_state": self.tokenizer.to_json(),
            "vocab": None if self.vocab is None else self.vocab.to_json(),
        }

    @classmethod
    def from_options(cls, o: TextOptions) -> TextCodec:
        return cls(o.tokenizer, o.lowercase, o.min_freq, o.max_vocab, o.vocab_size)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextCodec:
        codec = cls(
            tokenizer=state["tokenizer"],
            lowercase=state["lowercase"],
            min_freq=state["min_freq"],
            max_vocab=state["max_vocab"],
            vocab_size=state["vocab_size"],
        )
        codec.tokenizer = tokenizer_from_json(state["tokenizer_state"])
        codec.vocab = None if state["vocab"] is None else Vocab.from_json(state["vocab"])
        return codec


def encode_text_items(
    codec: TextCodec, values: Sequence[str | Sequence[str]], max_len: int | None, policy: TruncationPolicy
) -> tuple[list[list[int]], TruncationReport]:
    """Encode and truncate a list of inputs, counting the truncated ones (an empty input
    becomes one ``<unk>`` so every row has a real position)."""
    out: list[list[int]] = []
    n_cut = longest = 0
    for v in values:
        ids = codec.encode(v)
        longest = max(longest, len(ids))
        kept, cut = truncate(ids, max_len, policy)
        n_cut += int(cut)
        out.append(kept if kept else [codec.fitted_vocab.unk_id])
    report = TruncationReport(n_examples=len(values), n_truncated=n_cut, max_len=max_len, policy=policy, longest=longest)
    return out, report


class TextTask(Task):
    """The text part of a task: a codec (tokenizer + vocabulary) for the input, the token
    frontend, and per-token views for the probes (:meth:`input_tokens`, :meth:`output_labels`).
    Subclasses set ``self.codec`` (the input's codec) in ``__init__``."""

    codec: TextCodec
    probe_rows: ProbeRows = "token"

    @property
    def input_codec(self) -> TextCodec:
        """The codec of what the encoder reads (a generator's source codec)."""
        return self.codec

    @property
    def input_size(self) -> int:
        """Number of input ids (embedding rows)."""
        return len(self.input_codec.fitted_vocab)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def char_vocab_size(self) -> int:
        """Rows of a character embedding (0: the task emits no characters)."""
        return 0

    def prepare_ends(self, ends: EndsConfig) -> None:
        """Called before :meth:`fit` with the network's end settings (a task may emit more
        inputs for them, e.g. characters for a character CNN)."""
        if ends.char_filters:
            raise ConfigError(f"char_filters needs a task that emits characters (labeling with word tokens); "
                              f"task {self.name!r} does not")

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["input_ids"]) for it in items]

    def build_frontend(self, spec: EndsSpec) -> nn.Module:
        from seqlab.models.frontends import TokenFrontend

        e = spec.ends
        scaled, std = spec.embedding_init
        return TokenFrontend(self.input_size, spec.embedding_dim, spec.dropout, e.word_dropout,
                             n_chars=self.char_vocab_size, char_dim=e.char_dim, char_filters=e.char_filters,
                             scaled=scaled, init_std=std)

    def raw_tokens(self, value: Any) -> list[str]:
        """An input's tokens before any truncation: a token list as it is, text through the input
        codec's tokenizer (an example dict through its :attr:`input_keys`)."""
        if isinstance(value, dict):
            for key in self.input_keys:
                if key in value:
                    return self.raw_tokens(value[key])
            raise DataError(None, None, f"an input with one of the fields {self.input_keys}", f"keys {sorted(value)}")
        return list(self.input_codec.tokens(value)) if isinstance(value, str) else list(value)

    def input_tokens(self, value: Any) -> list[str]:
        """The tokens a model sees for one raw input (tokenizer, lowercasing, truncation as in
        :meth:`encode_inputs`): one output row per token for token-level tasks (probes)."""
        raise SeqlabError(f"task {self.name!r} does not expose per-token inputs")

    def output_labels(self) -> list[str]:
        """Names of the output columns: vocabulary (lm), tags (labeling) or classes."""
        raise SeqlabError(f"task {self.name!r} does not expose output labels")


class WordCharacters:
    """Character ids for each kept word token, for a character CNN in the frontend (Ma & Hovy
    2016): the part a word-token task (labeling, classification) shares. The task emits them
    only when its network asks (:meth:`prepare_ends` with ``char_filters > 0``) or when its saved
    state has a character vocabulary. The host class provides ``config.max_len``,
    ``config.truncation`` and ``config.max_word_len``."""

    config: Any
    use_chars: bool = False
    char_vocab: Vocab | None = None

    @staticmethod
    def mean_chars(token_lists: Iterable[Sequence[str]]) -> float:
        """Mean characters per token (the recipe's cue for a character CNN: words are > 1.5)."""
        n = total = 0
        for toks in token_lists:
            n += len(toks)
            total += sum(map(len, toks))
        return total / max(n, 1)

    def fit_chars(self, token_lists: Iterable[Sequence[str]]) -> None:
        """The character vocabulary of the training tokens (when characters are emitted)."""
        self.char_vocab = Vocab.build(t for toks in token_lists for t in toks) if self.use_chars else None

    @property
    def char_vocab_size(self) -> int:
        """Rows of the character embedding (0 when the task emits no characters)."""
        return len(self.char_vocab) if self.char_vocab is not None else 0

    def token_chars(self, toks: Sequence[str], n_kept: int) -> list[list[int]]:
        """Character ids of the kept tokens (truncated as the ids are), each cut to
        ``max_word_len``; at least one row, as the ids have at least one position."""
        assert self.char_vocab is not None
        kept, _ = truncate(list(toks), self.config.max_len, self.config.truncation)
        cut = self.config.max_word_len
        rows = [self.char_vocab.encode(list(t[:cut])) or [self.char_vocab.unk_id] for t in kept[:n_kept]]
        return rows or [[self.char_vocab.unk_id]]

    def prepare_ends(self, ends: EndsConfig) -> None:
        """A character CNN in the frontend asks the task for each token's character ids."""
        if ends.char_filters:
            self.use_chars = True

    def chars_state(self) -> dict[str, Any] | None:
        return None if self.char_vocab is None else self.char_vocab.to_json()

    def load_chars_state(self, state: Any) -> None:
        if state is not None:
            self.use_chars = True
            self.char_vocab = Vocab.from_json(state)


def lm_head(spec: EndsSpec, dim: int, frontend: nn.Module, vocab_size: int) -> Head:
    """A token-prediction head, tied to the frontend's embedding matrix when ``tie_weights``."""
    from seqlab.models.heads import LMHead

    tied = getattr(frontend, "embed").weight_layer if spec.ends.tie_weights else None  # noqa: B009
    return LMHead(dim, tied, vocab_size, spec.embedding_dim, spec.dropout)
