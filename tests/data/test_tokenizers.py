"""Tokenizers: exact outputs, exact round trips, offsets, persistence, determinism, errors."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.data.tokenizers import (
    TOKENIZER_KINDS,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    UnigramTokenizer,
    WordTokenizer,
    load_tokenizer,
    make_tokenizer,
    tokenizer_from_json,
)
from seqlab.errors import ConfigError, DataError, SeqlabError

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! Hello there, world.",
    "Don't panic: 42 is the answer to life, the universe and everything.",
    "naïve café résumé — déjà vu, 日本語のテキスト",
    "lower lowest newer newest wider widest",
] * 8

VARIED = [
    "",
    " ",
    "hello world",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\n\n\nblank lines",
    "Unicode: naïve café, Zürich, Ελληνικά, русский, 日本語, 한국어",
    "emoji 🦓🎉 and ZWJ 👩‍👩‍👧 and combining e\u0301",
    "<unk> <pad> [CLS] look like specials but are text",
    "control \x00\x01\x7f chars and \u200b zero width",
    'numbers 3.14159 1,000,000 and symbols ~!@#$%^&*()_+{}|:"<>?',
]


@functools.cache
def trained(kind: str) -> Tokenizer:
    """A subword tokenizer trained once per test session on CORPUS."""
    return make_tokenizer(kind, vocab_size=320).fit(CORPUS)


# ----------------------------------------------------------------------------------- char


def test_char_tokens_exact() -> None:
    tok = CharTokenizer()
    assert tok.tokenize("ab c\n") == ["a", "b", " ", "c", "\n"]
    assert tok.tokenize_with_offsets("hé!") == [("h", 0, 1), ("é", 1, 2), ("!", 2, 3)]
    assert CharTokenizer(lowercase=True).tokenize("AbC") == ["a", "b", "c"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_char_round_trip_and_offsets(text: str) -> None:
    tok = CharTokenizer()
    assert tok.detokenize(tok.tokenize(text)) == text
    assert all(text[s:e] == t for t, s, e in tok.tokenize_with_offsets(text))


# ----------------------------------------------------------------------------------- word


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "Hello, world! Don't stop state-of-the-art.",
            ["Hello", ",", "world", "!", "Don't", "stop", "state-of-the-art", "."],
        ),
        (
            "See https://x.com/a?b=1. @bob #NLP 3.14 1,000 12:30 a@b.com",
            [
                "See",
                "https://x.com/a?b=1",
                ".",
                "@bob",
                "#NLP",
                "3.14",
                "1,000",
                "12:30",
                "a@b.com",
            ],
        ),
        ("naïve 日本語 🦓!", ["naïve", "日本語", "🦓", "!"]),
        ("3rd-place, 2020...", ["3rd-place", ",", "2020", ".", ".", "."]),
        ("  \n ", []),
    ],
)
def test_word_tokens_exact(text: str, tokens: list[str]) -> None:
    tok = WordTokenizer()
    assert tok.tokenize(text) == tokens
    assert all(text[s:e] == t for t, s, e in tok.tokenize_with_offsets(text))


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world! Don't stop state-of-the-art.",
        'He said "hi" (really) $5 100%...',
        "Is it? Yes; no: maybe [sure] {ok}",
    ],
)
def test_word_detokenize_restores_ordinary_spacing(text: str) -> None:
    tok = WordTokenizer()
    assert tok.detokenize(tok.tokenize(text)) == text


def test_word_lowercase_keeps_original_offsets() -> None:
    tok = WordTokenizer(lowercase=True)
    assert tok.tokenize_with_offsets("Big CAT") == [("big", 0, 3), ("cat", 4, 7)]


def test_word_custom_pattern_and_bad_pattern() -> None:
    assert WordTokenizer(pattern=r"\S+").tokenize("a,b  c.") == ["a,b", "c."]
    assert WordTokenizer(pattern=r"x*").tokenize("axxb") == ["xx"]  # empty matches skipped
    with pytest.raises(ConfigError, match="invalid word pattern"):
        WordTokenizer(pattern="(")


# -------------------------------------------------------------------------------- subword


def test_bpe_byte_alphabet_only_gives_exact_byte_tokens() -> None:
    tok = BPETokenizer(vocab_size=256).fit(CORPUS)
    assert len(tok.learned_tokens()) == 256
    # GPT-2 byte map: space -> 'Ġ', 0xC3 -> 'Ã', 0xA9 -> '©' ("é" is C3 A9 in UTF-8)
    assert tok.tokenize("h é") == ["h", "Ġ", "Ã", "©"]
    assert tok.tokenize_with_offsets("é") == [("Ã", 0, 1), ("©", 0, 1)]


def test_bpe_frequent_words_become_single_tokens() -> None:
    tok = BPETokenizer(vocab_size=300).fit(["hello world"] * 50)
    assert tok.tokenize("hello world") == ["hello", "Ġworld"]
    assert tok.tokenize_with_offsets("hello world") == [("hello", 0, 5), ("Ġworld", 5, 11)]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_learns_frequent_pieces(kind: str) -> None:
    tok = trained(kind)
    assert "Ġthe" in tok.tokenize("Hello, the dog")
    assert all(len(t) == 1 for t in make_tokenizer(kind, vocab_size=256).fit([]).tokenize("the"))


@pytest.mark.parametrize("name", ["bpe", "unigram"])
@pytest.mark.parametrize("text", VARIED)
def test_subword_round_trip_exact(name: str, text: str) -> None:
    tok = trained(name)
    assert tok.detokenize(tok.tokenize(text)) == text


@pytest.mark.parametrize("name", ["bpe", "unigram"])
@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_subword_round_trip_any_text(name: str, text: str) -> None:
    tok = trained(name)
    assert tok.detokenize(tok.tokenize(text)) == text


@pytest.mark.parametrize("name", ["bpe", "unigram"])
@pytest.mark.parametrize("text", VARIED)
def test_subword_offsets_cover_what_each_span_decodes_to(name: str, text: str) -> None:
    tok = trained(name)
    triples = tok.tokenize_with_offsets(text)
    assert [t for t, _, _ in triples] == tok.tokenize(text)
    # a character split over several tokens gives each of them its span, so merge overlaps
    groups: list[tuple[int, int, list[str]]] = []
    for t, s, e in triples:
        if groups and s < groups[-1][1]:
            groups[-1] = (groups[-1][0], max(e, groups[-1][1]), [*groups[-1][2], t])
        else:
            assert s == (groups[-1][1] if groups else 0)  # contiguous, nothing skipped
            groups.append((s, e, [t]))
    assert (groups[-1][1] if groups else 0) == len(text)
    for s, e, toks in groups:
        assert tok.detokenize(toks) == text[s:e]


def test_bpe_ascii_offsets_exact() -> None:
    bpe = trained("bpe")
    text = "Hello  world!\n"
    triples = bpe.tokenize_with_offsets(text)
    assert all(bpe.detokenize([t]) == text[s:e] for t, s, e in triples)


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_lowercase(kind: str) -> None:
    tok = make_tokenizer(kind, vocab_size=320, lowercase=True).fit(CORPUS)
    upper, lower = (
        tok.tokenize_with_offsets("HELLO, THE DOG"),
        tok.tokenize_with_offsets("hello, the dog"),
    )
    assert upper == lower  # same tokens, same offsets into the original text
    assert "Ġthe" in tok.tokenize("a THE")
    assert "Ġthe" not in trained(kind).tokenize("a THE")


@pytest.mark.parametrize("cls", [BPETokenizer, UnigramTokenizer])
def test_training_is_deterministic(cls: type[Tokenizer]) -> None:
    a = make_tokenizer(cls.kind, vocab_size=330).fit(CORPUS)
    b = make_tokenizer(cls.kind, vocab_size=330).fit(iter(CORPUS))  # a one-shot iterator works
    assert a.to_json() == b.to_json()


def test_hf_vocab_holds_no_specials() -> None:
    for tok in (trained("bpe"), trained("unigram")):
        assert isinstance(tok, (BPETokenizer, UnigramTokenizer))
        data = tok.to_json()["hf"]
        assert data["added_tokens"] == []
        assert not any(t.startswith("<") and t.endswith(">") for t in tok.learned_tokens())
        assert len(tok.learned_tokens()) <= 320


@pytest.mark.parametrize("cls", [BPETokenizer, UnigramTokenizer])
def test_untrained_use_is_a_clear_error(cls: type[Tokenizer]) -> None:
    tok = make_tokenizer(cls.kind)
    with pytest.raises(SeqlabError, match="not trained: call fit"):
        tok.tokenize("x")
    with pytest.raises(SeqlabError, match="not trained"):
        tok.detokenize(["x"])


# ---------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("name", ["char", "word", "bpe", "unigram"])
def test_save_load_identical(name: str, tmp_path: Path) -> None:
    tok = trained(name) if name in ("bpe", "unigram") else make_tokenizer(name, lowercase=True)
    path = tmp_path / "sub" / "tok.json"
    tok.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tok.json"]  # no temp left behind
    back = load_tokenizer(path)
    assert type(back) is type(tok) and back.to_json() == tok.to_json()
    for text in VARIED:
        assert back.tokenize_with_offsets(text) == tok.tokenize_with_offsets(text)
    assert tokenizer_from_json(json.loads(path.read_text(encoding="utf-8"))).options() == (
        tok.options()
    )


def test_untrained_subword_round_trips_untrained(tmp_path: Path) -> None:
    BPETokenizer(vocab_size=500).save(tmp_path / "t.json")
    back = load_tokenizer(tmp_path / "t.json")
    assert isinstance(back, BPETokenizer) and not back.is_fitted and back.vocab_size == 500


# --------------------------------------------------------------------------------- errors


def test_make_tokenizer_unknown_kind_lists_valid() -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer kind 'sentencepiece'.*char, word"):
        make_tokenizer("sentencepiece")
    assert set(TOKENIZER_KINDS) == {"char", "word", "bpe", "unigram"}


def test_make_tokenizer_unknown_option_lists_valid() -> None:
    with pytest.raises(ConfigError, match="vocab.*valid: vocab_size, min_frequency, lowercase"):
        make_tokenizer("bpe", vocab=100)
    with pytest.raises(ConfigError, match="valid: lowercase"):
        make_tokenizer("char", pattern="x")


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("bpe", {"vocab_size": 100}, "vocab_size must be an int >= 256"),
        ("unigram", {"vocab_size": 300.0}, "vocab_size must be an int"),
        ("bpe", {"min_frequency": 0}, "min_frequency must be an int >= 1"),
        ("char", {"lowercase": "yes"}, "lowercase must be a bool"),
    ],
)
def test_bad_option_values(kind: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_tokenizer(kind, **options)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.json"):
        load_tokenizer(tmp_path / "missing.json")


def test_load_not_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n "kind": "char",\n oops\n}', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json, line 3: expected valid JSON") as info:
        load_tokenizer(path)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "format 'seqlab.tokenizer'"),
        (lambda d: d.update(version=99), "format version 1"),
        (
            lambda d: d.update(kind="wordpiece"),
            "kind in char, word, bpe, unigram; found 'wordpiece'",
        ),
        (lambda d: d.update(options=[1]), "an 'options' object"),
        (lambda d: d["options"].update(size=3), "valid options for a bpe tokenizer"),
        (lambda d: d["hf"].update(model={"type": "Nope"}), "a valid embedded HF tokenizer"),
    ],
)
def test_load_corrupt_content_names_file(mutate: object, message: str, tmp_path: Path) -> None:
    data = trained("bpe").to_json()
    assert callable(mutate)
    mutate(data)
    path = tmp_path / "corrupt.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match="corrupt.json") as info:
        load_tokenizer(path)
    assert message in str(info.value)


def test_from_json_rejects_non_object() -> None:
    with pytest.raises(DataError, match="<input>: expected a seqlab tokenizer"):
        tokenizer_from_json([])  # type: ignore[arg-type]


def test_catastrophic_custom_pattern_is_bounded_not_a_hang():
    """(a|aa)+$ on 'a'*40+'b' backtracks for hours under plain re; a custom pattern (which may
    come from an untrusted config.json) must end in a clear error instead."""
    import threading

    import pytest

    from seqlab.data import tokenizers as tk
    from seqlab.errors import SeqlabError

    tok = tk.WordTokenizer("(a|aa)+$")
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["out"] = tok.tokenize("a" * 40 + "b")
        except SeqlabError as e:
            box["err"] = e

    old = tk.PATTERN_TIMEOUT_S
    tk.PATTERN_TIMEOUT_S = (0.2, 0.0)
    try:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(30)
    finally:
        tk.PATTERN_TIMEOUT_S = old
    assert not t.is_alive(), "tokenizing with a catastrophic pattern hung"
    assert "backtracks catastrophically" in str(box.get("err"))
    # an ordinary custom pattern still tokenizes, with re's semantics
    assert tk.WordTokenizer(r"\w+").tokenize("naïve café, ok") == ["naïve", "café", "ok"]
    with pytest.raises(Exception, match="invalid word pattern"):
        tk.WordTokenizer("(unclosed")
