"""Tokenizers: text to a list of token strings, and back.

Ids come later from a :class:`~seqlab.data.vocab.Vocab`; a tokenizer only splits text. Four kinds:

=========  ==============================================================  ==================
kind       unit                                                            round trip
=========  ==============================================================  ==================
char       one Unicode character (spaces and newlines included)            exact
word       a regex match: words, numbers, punctuation, URLs, @/#-tags       spaces normalized
bpe        byte-level BPE (Sennrich et al., 2016) via HF ``tokenizers``    exact
unigram    byte-level Unigram LM (Kudo, 2018) via HF ``tokenizers``        exact
=========  ==============================================================  ==================

"Exact" means ``detokenize(tokenize(x)) == x`` for every string when ``lowercase=False``. The
subword kinds run on bytes (the GPT-2 byte-to-character map), and training always keeps all 256
byte symbols, so no text is ever out of vocabulary and the HF vocabulary holds no special tokens
at all: seqlab's ``Vocab`` adds ``<pad> <unk> <bos> <eos> <mask>`` itself.

Offsets are ``(start, end)`` character offsets into the *original* text, so ``text[start:end]`` is
what the token stands for. A byte-level token includes its leading space (``"Ġworld"`` covers
``" world"``); the byte tokens of one multi-byte character all carry that character's span.

Every tokenizer saves to ONE JSON file (the trained HF pipeline is embedded in it) and
``load_tokenizer`` reads any kind back.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import regex
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.io import write_json

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "UnigramTokenizer",
    "DEFAULT_WORD_PATTERN",
    "TOKENIZER_KINDS",
    "make_tokenizer",
    "tokenizer_from_json",
    "load_tokenizer",
]

_FORMAT = "seqlab.tokenizer"
_VERSION = 1
_BYTE_ALPHABET_SIZE = 256

_TokT = TypeVar("_TokT", bound="Tokenizer")


class Tokenizer(ABC):
    """Text to token strings and back; see the module docstring for the kinds.

    ``__init__`` only stores (and checks) options; ``fit`` learns what it must and returns
    ``self``; learned state ends in ``_``.
    """

    kind: ClassVar[str]

    def fit(self: _TokT, texts: Iterable[str]) -> _TokT:
        """Learn from ``texts``; a no-op for rule-based kinds. Returns ``self``."""
        return self

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, in order."""
        return [tok for tok, _, _ in self.tokenize_with_offsets(text)]

    @abstractmethod
    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """``(token, start, end)`` triples; ``text[start:end]`` is the span the token covers."""

    @abstractmethod
    def detokenize(self, tokens: Sequence[str]) -> str:
        """Text from tokens (the exact inverse of ``tokenize`` for char, bpe and unigram)."""

    def options(self) -> dict[str, Any]:
        """The constructor arguments, by name (what ``make_tokenizer`` accepts)."""
        return {name: getattr(self, name) for name in _option_names(type(self))}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict holding the options and any learned state."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self.kind,
            "options": self.options(),
        }

    @classmethod
    def from_json(cls: type[_TokT], data: dict[str, Any]) -> _TokT:
        """Rebuild from :meth:`to_json` output (use :func:`tokenizer_from_json` for any kind)."""
        return cls(**data["options"])

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` atomically (a temporary file, then ``os.replace``)."""
        write_json(path, self.to_json())

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


def _option_names(cls: type[Tokenizer]) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [name for name in params if name != "self"]


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be a bool, found {value!r}")
    return value


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, found {value!r}")
    return value


# --------------------------------------------------------------------------------------- char


class CharTokenizer(Tokenizer):
    """Every character is a token, spaces and newlines included; detokenize is ``"".join``."""

    kind = "char"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = _check_bool("lowercase", lowercase)

    def tokenize(self, text: str) -> list[str]:
        return [c.lower() for c in text] if self.lowercase else list(text)

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        return [(c.lower() if self.lowercase else c, i, i + 1) for i, c in enumerate(text)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


# --------------------------------------------------------------------------------------- word

_URL = r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]}'\"]*(?:\s|$))"
_EMAIL = r"[\w.+-]+@\w+(?:\.\w+)+"
_TAG = r"[@#]\w+"
_NUMBER = r"\d+(?:[.,:]\d+)+"
_WORD = r"\w+(?:['’-]\w+)*"
_PUNCT = r"[^\w\s]"
#: URLs, e-mail addresses, @mentions and #hashtags whole; numbers with separators (3.14, 1,000,
#: 12:30); words with internal apostrophes or hyphens (don't, state-of-the-art); then any other
#: non-space character on its own.
DEFAULT_WORD_PATTERN = "|".join([_URL, _EMAIL, _TAG, _NUMBER, _WORD, _PUNCT])

_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}…")
_NO_SPACE_AFTER = frozenset("([{$¿¡")


#: A pattern other than the built-in one may come from an untrusted ``config.json``; a pattern such
#: as ``(a|aa)+$`` backtracks for exponential time on some inputs, and the standard library's ``re``
#: cannot be interrupted. Such patterns therefore run under the ``regex`` module (a dependency of
#: sacrebleu, API-compatible with ``re``) with a time bound that grows with the text: a fixed
#: allowance plus this many seconds per character.
PATTERN_TIMEOUT_S = (2.0, 2e-5)


class WordTokenizer(Tokenizer):
    """Regex tokenization: each non-empty match of ``pattern`` is a token.

    A custom ``pattern`` is matched under a time bound (:data:`PATTERN_TIMEOUT_S`); a pattern
    that exceeds it is reported as backtracking catastrophically instead of hanging.

    ``detokenize`` joins with single spaces except before closing punctuation (``. , ! ? ; : % ) ] }``),
    after opening brackets, and inside straight double quotes (``He said "hi".``). It is lossy:
    the original whitespace is not kept.
    """

    kind = "word"

    def __init__(self, pattern: str = DEFAULT_WORD_PATTERN, lowercase: bool = False) -> None:
        if not isinstance(pattern, str):
            raise ConfigError(f"pattern must be a regex string, found {pattern!r}")
        self._bounded = pattern != DEFAULT_WORD_PATTERN
        try:
            compiled = re.compile(pattern)  # the semantics users write for; regex accepts a superset
            self._regex: Any = regex.compile(pattern) if self._bounded else compiled
        except (re.error, regex.error) as e:
            raise ConfigError(f"invalid word pattern {pattern!r}: {e}") from e
        self.pattern = pattern
        self.lowercase = _check_bool("lowercase", lowercase)

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        out = []
        timeout = PATTERN_TIMEOUT_S[0] + PATTERN_TIMEOUT_S[1] * len(text) if self._bounded else None
        try:
            matches = list(self._regex.finditer(text, timeout=timeout) if self._bounded else self._regex.finditer(text))
        except TimeoutError:
            raise SeqlabError(
                f"the word pattern {self.pattern!r} took more than {timeout:.1f} s on a text of {len(text)} "
                "characters: it backtracks catastrophically (nested or overlapping repetition such as "
                "(a|aa)+); use a pattern without nested repetition"
            ) from None
        for m in matches:
            if m.end() > m.start():
                tok = m.group().lower() if self.lowercase else m.group()
                out.append((tok, m.start(), m.end()))
        return out

    def detokenize(self, tokens: Sequence[str]) -> str:
        parts: list[str] = []
        glue_next = True  # no space before the first token
        in_quote = False
        for tok in tokens:
            if tok == '"':
                space = not glue_next and not in_quote  # a closing quote attaches left
                in_quote = not in_quote
                glue_after = in_quote  # an opening quote attaches right
            else:
                space = not glue_next and tok not in _NO_SPACE_BEFORE
                glue_after = tok in _NO_SPACE_AFTER
            if space:
                parts.append(" ")
            parts.append(tok)
            glue_next = glue_after
        return "".join(parts)


# ------------------------------------------------------------------------------------ subword


class _SubwordTokenizer(Tokenizer):
    """Shared HF ``tokenizers`` plumbing: byte-level pre-tokenizer and decoder, one model."""

    tokenizer_: HFTokenizer | None

    def __init__(self, vocab_size: int = 8000, lowercase: bool = False) -> None:
        self.vocab_size = _check_int("vocab_size", vocab_size, _BYTE_ALPHABET_SIZE)
        self.lowercase = _check_bool("lowercase", lowercase)
        self.tokenizer_ = None

    @abstractmethod
    def _empty_model(self) -> models.Model: ...

    @abstractmethod
    def _trainer(self) -> trainers.Trainer: ...

    def _canonicalize(self, hf: HFTokenizer) -> None:
        """Make a trained model independent of hash-map iteration order (default: nothing)."""

    def _pipeline(self) -> HFTokenizer:
        hf = HFTokenizer(self._empty_model())
        if self.lowercase:
            hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        return hf

    def fit(self: _TokT, texts: Iterable[str]) -> _TokT:
        assert isinstance(self, _SubwordTokenizer)
        hf = self._pipeline()
        hf.train_from_iterator(iter(texts), trainer=self._trainer())
        self._canonicalize(hf)
        self.tokenizer_ = hf
        return self

    @property
    def is_fitted(self) -> bool:
        return self.tokenizer_ is not None

    def _hf(self) -> HFTokenizer:
        if self.tokenizer_ is None:
            raise SeqlabError(
                f"{type(self).__name__} is not trained: call fit(texts) first, or load a trained "
                "one with load_tokenizer(path)"
            )
        return self.tokenizer_

    def tokenize(self, text: str) -> list[str]:
        return list(self._hf().encode(text, add_special_tokens=False).tokens)

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        enc = self._hf().encode(text, add_special_tokens=False)
        return [(tok, s, e) for tok, (s, e) in zip(enc.tokens, enc.offsets)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        decoder = self._hf().decoder
        assert decoder is not None
        return str(decoder.decode(list(tokens)))

    def learned_tokens(self) -> list[str]:
        """Every token the trained model can emit, in HF id order (includes the 256 bytes)."""
        vocab = self._hf().get_vocab(with_added_tokens=False)
        return sorted(vocab, key=vocab.__getitem__)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["hf"] = None if self.tokenizer_ is None else json.loads(self.tokenizer_.to_str())
        return data

    @classmethod
    def from_json(cls: type[_TokT], data: dict[str, Any]) -> _TokT:
        tok = cls(**data["options"])
        assert isinstance(tok, _SubwordTokenizer)
        if data.get("hf") is not None:
            tok.tokenizer_ = HFTokenizer.from_str(json.dumps(data["hf"]))
        return tok


class BPETokenizer(_SubwordTokenizer):
    """Byte-level byte-pair encoding (Sennrich, Haddow & Birch, 2016; GPT-2's byte map).

    ``vocab_size`` counts the 256 byte symbols; merges seen fewer than ``min_frequency`` times
    are not learned. Training is deterministic.
    """

    kind = "bpe"

    def __init__(
        self, vocab_size: int = 8000, min_frequency: int = 2, lowercase: bool = False
    ) -> None:
        super().__init__(vocab_size=vocab_size, lowercase=lowercase)
        self.min_frequency = _check_int("min_frequency", min_frequency, 1)

    def _empty_model(self) -> models.Model:
        return models.BPE()

    def _trainer(self) -> trainers.Trainer:
        return trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            show_progress=False,
            special_tokens=[],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )


class UnigramTokenizer(_SubwordTokenizer):
    """Byte-level Unigram language-model tokenizer (Kudo, 2018), decoded by Viterbi.

    HF's trainer gives the symbols it must add (bytes never seen, or pruned) scores in hash-map
    order, and sums floats in that order too; ``fit`` rounds scores to 1e-6 and re-deals those
    added symbols' scores in sorted order, so the same texts always give the same file.
    All 256 byte symbols are always kept, so the final size can pass a ``vocab_size`` near 256;
    on tiny corpora the trainer finds few multi-character pieces.
    """

    kind = "unigram"

    def _empty_model(self) -> models.Model:
        return models.Unigram()

    def _trainer(self) -> trainers.Trainer:
        return trainers.UnigramTrainer(
            vocab_size=self.vocab_size,
            show_progress=False,
            special_tokens=[],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )

    def _canonicalize(self, hf: HFTokenizer) -> None:
        raw = json.loads(hf.to_str())["model"]["vocab"]
        # no training text leaves non-finite scores (serialized as null): make them all equal
        pieces = [(p, float(s) if _finite(s) else 0.0) for p, s in raw]
        hf.model = models.Unigram(_canonical_unigram_vocab(pieces), None, False)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _canonical_unigram_vocab(pieces: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Round scores to 1e-6, re-deal the trainer's filler scores, sort by (score desc, piece).

    The trainer gives the k-th symbol it had to add the score ``min + k * 1e-4``, with k in
    hash-set order. We collect the single-character pieces on that ladder (learned ones that
    tie with a rung included: their scores are fixed, so the set of scores is too) and deal the
    ladder's scores back out in piece order.
    """
    scores = [round(s, 6) for _, s in pieces]
    if not scores:
        return []
    base, tol = min(scores), 2e-6
    singles = sorted((scores[i], i) for i, (p, _) in enumerate(pieces) if len(p) == 1)
    ladder, rung = [], 0
    for s, i in singles:
        if abs(s - (base + (rung + 1) * 1e-4)) <= tol:
            rung += 1
        elif s > base + (rung + 1) * 1e-4 + tol:
            break
        if abs(s - (base + rung * 1e-4)) <= tol:
            ladder.append(i)
    dealt = sorted((scores[i] for i in ladder), reverse=True)
    for i, s in zip(sorted(ladder, key=lambda i: pieces[i][0]), dealt):
        scores[i] = s
    out = [(p, scores[i]) for i, (p, _) in enumerate(pieces)]
    return sorted(out, key=lambda ps: (-ps[1], ps[0]))


# -------------------------------------------------------------------------------- factories

TOKENIZER_KINDS: dict[str, type[Tokenizer]] = {
    cls.kind: cls for cls in (CharTokenizer, WordTokenizer, BPETokenizer, UnigramTokenizer)
}


def make_tokenizer(kind: str, **options: Any) -> Tokenizer:
    """A new tokenizer of ``kind``; unknown kinds and options raise ConfigError naming valid ones."""
    if kind not in TOKENIZER_KINDS:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; valid: {', '.join(TOKENIZER_KINDS)}")
    cls = TOKENIZER_KINDS[kind]
    valid = _option_names(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {kind} tokenizer; valid: {', '.join(valid)}"
        )
    return cls(**options)


def tokenizer_from_json(data: dict[str, Any], source: str | Path | None = None) -> Tokenizer:
    """Rebuild any tokenizer from :meth:`Tokenizer.to_json` output.

    A malformed dict raises DataError (naming ``source``, the file it came from, when given).
    """

    def bad(expected: str, found: str) -> DataError:
        return DataError(source, None, expected, found)

    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        head = repr(data.get("format")) if isinstance(data, dict) else type(data).__name__
        raise bad(f"a seqlab tokenizer object with format {_FORMAT!r}", head)
    if data.get("version") != _VERSION:
        raise bad(f"tokenizer format version {_VERSION}", repr(data.get("version")))
    kind = data.get("kind")
    if kind not in TOKENIZER_KINDS:
        raise bad(f"a tokenizer kind in {', '.join(TOKENIZER_KINDS)}", repr(kind))
    options = data.get("options")
    if not isinstance(options, dict):
        raise bad("an 'options' object", repr(options))
    cls = TOKENIZER_KINDS[kind]
    try:
        return cls.from_json(data)
    except (SeqlabError, TypeError) as e:
        raise bad(f"valid options for a {kind} tokenizer", str(e)) from e
    except Exception as e:  # the HF parser raises a bare Exception
        raise bad(f"a valid embedded HF tokenizer for kind {kind}", str(e)) from e


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer saved by :meth:`Tokenizer.save`; a bad file raises DataError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, None, "a readable UTF-8 tokenizer JSON file", str(e)) from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, "valid JSON", f"{e.msg} (column {e.colno})") from e
    return tokenizer_from_json(data, source=path)
