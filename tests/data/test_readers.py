"""Readers and writers: exact round trips, errors that name the line, and fuzzing.

The fuzz tests feed random bytes and text to every reader: the only outcomes allowed are
a list of examples or a DataError (never IndexError, KeyError, UnicodeDecodeError, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqlab.data.readers import (
    read_conll,
    read_csv,
    read_jsonl,
    read_lines,
    read_text,
    write_conll,
    write_jsonl,
)
from seqlab.errors import DataError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _error(fn: Callable[..., Any], *args: Any, **kw: Any) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    return info.value


# --------------------------------------------------------------------------- CoNLL


def test_conll_wnut_layout_tab_only_separator_and_no_final_blank(tmp_path: Path) -> None:
    text = "@paul\tO\nEmpire\tB-facility\nState\tI-facility\n\t\nFrom\tO\nParis\tB-geo-loc"
    got = read_conll(_write(tmp_path / "ner.txt", text), sep="\t")
    assert got == [
        {"tokens": ["@paul", "Empire", "State"], "tags": ["O", "B-facility", "I-facility"]},
        {"tokens": ["From", "Paris"], "tags": ["O", "B-geo-loc"]},
    ]
    assert read_conll(tmp_path / "ner.txt") == got  # whitespace split agrees


def test_conll_crlf_docstart_and_columns(tmp_path: Path) -> None:
    text = (
        "-DOCSTART- -X- O O\r\n\r\n"
        "EU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n\r\n\r\n"
        "Peter NNP B-NP B-PER\r\n"
    )
    p = _write(tmp_path / "a.conll", text)
    assert read_conll(p) == [
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
        {"tokens": ["Peter"], "tags": ["B-PER"]},
    ]
    assert read_conll(p, token_col=0, label_col=1)[0]["tags"] == ["NNP", "VBZ"]


def test_conll_round_trip_and_atomic_write(tmp_path: Path) -> None:
    examples = [{"tokens": ["a", "b"], "tags": ["B-X", "O"]}, {"tokens": ["ç"], "tags": ["O"]}]
    p = tmp_path / "out.conll"
    p.write_text("old contents")
    write_conll(p, examples)
    assert p.read_text(encoding="utf-8") == "a\tB-X\nb\tO\n\nç\tO\n\n"
    assert read_conll(p) == examples
    assert os.listdir(tmp_path) == ["out.conll"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a O\nb O\nc\n", 3, "2 columns as on line 1"),
        ("a O\n\nb X O\n", 3, "found 3 columns"),
        ("\n\nsolo\n", 3, "at least 2 columns"),
        ("", 1, "at least one sentence"),
        ("\n \t\n-DOCSTART- O\n", 1, "at least one sentence"),
    ],
)
def test_conll_errors_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    p = _write(tmp_path / "bad.conll", text)
    err = _error(read_conll, p)
    assert (err.path, err.line) == (str(p), line)
    assert f"line {line}:" in str(err) and fragment in str(err)


def test_conll_empty_label_with_tab_separator(tmp_path: Path) -> None:
    err = _error(read_conll, _write(tmp_path / "t.txt", "a\tO\nb\t\n"), sep="\t")
    assert err.line == 2 and "non-empty token and label" in str(err)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    err = _error(read_conll, tmp_path / "nope.conll")
    assert err.path == str(tmp_path / "nope.conll") and "no such file" in str(err)
    assert "a directory" in str(_error(read_jsonl, tmp_path))


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path / "x.conll", b"a O\r\nb O\r\n\r\nc\xff O\r\n")
    err = _error(read_conll, p)
    assert err.line == 4 and "utf-8" in str(err) and "\\xff" in str(err)
    assert read_conll(p, encoding="latin-1")[1]["tokens"] == ["c\xff"]


def test_write_conll_rejects_what_cannot_round_trip(tmp_path: Path) -> None:
    bads: list[dict[str, Any]] = [
        {"tokens": ["a b"], "tags": ["O"]},
        {"tokens": ["a"], "tags": []},
        {"tokens": [], "tags": []},
        {"tokens": ["-DOCSTART-"], "tags": ["O"]},
    ]
    for bad in bads:
        _error(write_conll, tmp_path / "w.conll", [bad])
    assert not (tmp_path / "w.conll").exists()


token = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
    max_size=8,
).filter(lambda s: s.split() == [s] and s != "-DOCSTART-")


@FUZZ
@given(st.lists(st.lists(st.tuples(token, token), min_size=1, max_size=5), min_size=1, max_size=5))
def test_conll_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, sents: list[list[tuple[str, str]]]
) -> None:
    examples = [{"tokens": [t for t, _ in s], "tags": [g for _, g in s]} for s in sents]
    p = tmp_path_factory.mktemp("rt") / "x.conll"
    write_conll(p, examples)
    assert read_conll(p) == examples
    assert read_conll(p, sep="\t") == examples


# --------------------------------------------------------------------------- JSONL


def test_jsonl_shapes_extras_and_blank_lines(tmp_path: Path) -> None:
    rows = ['{"text": "hi", "label": "pos", "id": 7}', "", "  ", '{"text": "yo", "label": 2}']
    assert read_jsonl(_write(tmp_path / "c.jsonl", "\r\n".join(rows))) == [
        {"text": "hi", "label": "pos", "id": 7},
        {"text": "yo", "label": 2},
    ]
    gen = '{"source": "abc", "target": ["A", "B"]}\n'
    assert read_jsonl(_write(tmp_path / "g.jsonl", gen)) == [
        {"source": "abc", "target": ["A", "B"]}
    ]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    examples: list[dict[str, Any]] = [
        {"tokens": ["ünï", "\u2028x"], "tags": ["O", "B-X"], "id": "s1"},
        {"tokens": [], "tags": []},
    ]
    write_jsonl(tmp_path / "r.jsonl", examples)
    assert read_jsonl(tmp_path / "r.jsonl") == examples
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8").count("\n") == 2


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        (['{"text": "a"}', "{oops"], 2, "invalid JSON"),
        (['{"text": "a"}', "", "[1, 2]"], 3, "found list"),
        (['{"txt": "a"}'], 1, "found keys ['txt']"),
        (['{"text": "a", "tokens": ["a"], "tags": ["O"]}'], 1, "expected keys"),
        (['{"text": "a"}', '{"text": "b", "label": "x"}'], 2, "as on line 1"),
        (['{"tokens": ["a", "b"], "tags": ["O"]}'], 1, "as many tags as tokens (2)"),
        (['{"tokens": "a b", "tags": ["O"]}'], 1, "'tokens' as a list of strings"),
        (['{"tokens": [1], "tags": ["O"]}'], 1, "'tokens' as a list of strings"),
        (['{"text": "a", "label": true}'], 1, "'label' as a string or an integer"),
        (['{"text": 5}'], 1, "'text' as a string"),
        (['{"source": "a", "target": null}'], 1, "'target' as a string or a list"),
        (["", "  "], 1, "at least one JSON object"),
    ],
)
def test_jsonl_errors_name_the_line(
    tmp_path: Path, lines: list[str], line: int, fragment: str
) -> None:
    p = _write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    err = _error(read_jsonl, p)
    assert err.line == line and err.path == str(p)
    assert fragment in str(err)


def test_write_jsonl_rejects_unserialisable(tmp_path: Path) -> None:
    err = _error(write_jsonl, tmp_path / "w.jsonl", [{"text": "a"}, {"text": object()}])
    assert "example 1" in str(err)
    assert not (tmp_path / "w.jsonl").exists()


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["text", "label", "tokens", "tags", "source", "id"]), json_value
        ),
        max_size=4,
    )
)
def test_jsonl_fuzz_structured(
    tmp_path_factory: pytest.TempPathFactory, objs: list[dict[str, Any]]
) -> None:
    p = tmp_path_factory.mktemp("j") / "f.jsonl"
    p.write_text("\n".join(json.dumps(o) for o in objs), encoding="utf-8")
    try:
        got = read_jsonl(p)
    except DataError:
        return
    assert got == objs


# --------------------------------------------------------------------------- plain text


def test_text_modes(tmp_path: Path) -> None:
    p = _write(tmp_path / "t.txt", "First line\r\nsecond\r\n\r\n\r\nThird para\rend\n")
    assert read_text(p) == [{"text": "First line\nsecond\n\n\nThird para\nend\n"}]
    assert read_text(p, mode="line") == [
        {"text": t} for t in ["First line", "second", "Third para", "end"]
    ]
    assert read_text(p, mode="paragraph") == [
        {"text": "First line\nsecond"},
        {"text": "Third para\nend"},
    ]


def test_text_errors(tmp_path: Path) -> None:
    assert _error(read_text, _write(tmp_path / "e.txt", " \n\n")).line == 1
    assert "mode" in str(_error(read_text, _write(tmp_path / "f.txt", "x"), mode="words"))
    assert read_lines(_write(tmp_path / "g.txt", "\ufeffa\r\nb")) == ["a", "b"]  # BOM dropped


# --------------------------------------------------------------------------- CSV


def test_csv_quoted_multiline_fields_and_columns(tmp_path: Path) -> None:
    text = 'id,label,text\r\n1,pos,"good, very"\r\n2,neg,"two\r\nlines"\r\n\r\n3,neu,plain\r\n'
    p = _write(tmp_path / "c.csv", text)
    assert read_csv(p) == [
        {"text": "good, very", "label": "pos"},
        {"text": "two\nlines", "label": "neg"},
        {"text": "plain", "label": "neu"},
    ]
    assert read_csv(p, label_col=None)[0] == {"text": "good, very"}
    assert read_csv(p, text_col="id", label_col="label")[2] == {"text": "3", "label": "neu"}
    tsv = _write(tmp_path / "c.tsv", "text\tlabel\na,b\tc\n")
    assert read_csv(tsv, delimiter="\t") == [{"text": "a,b", "label": "c"}]


def test_csv_encoding(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "l.csv",
        "sentiment,text\npositive,caf\xe9\nnegative,ok\nneutral,na\xefve\n".encode("latin-1"),
    )
    err = _error(read_csv, p, label_col="sentiment")
    assert err.line == 2 and "utf-8" in str(err)
    got = read_csv(p, label_col="sentiment", encoding="latin-1")
    assert [e["text"] for e in got] == ["café", "ok", "naïve"]
    assert "known text encoding" in str(_error(read_csv, p, encoding="no-such-codec"))


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("text,label\na,b\nc\nd,e\n", 3, "2 fields as in the header"),
        ('text,label\na,"multi\nline",x\n', 2, "found 3 fields"),
        ("txt,label\na,b\n", 1, "header with columns ['text', 'label']"),
        ("text,label\n", 2, "at least one data row"),
        ("", 1, "a header row"),
    ],
)
def test_csv_errors_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    err = _error(read_csv, _write(tmp_path / "bad.csv", text))
    assert err.line == line and fragment in str(err)


# --------------------------------------------------------------------------- fuzz: every reader

READERS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    "conll": read_conll,
    "conll_tab": lambda p: read_conll(p, sep="\t", token_col=1, label_col=2),
    "jsonl": read_jsonl,
    "text_line": lambda p: read_text(p, mode="line"),
    "text_paragraph": lambda p: read_text(p, mode="paragraph"),
    "csv": read_csv,
}
garbage_text = st.text(
    alphabet=st.sampled_from(list('ab \t\n\r",{}[]:1-DOCSTART\\\x00é\u2028')), max_size=60
)


def _only_data_error(reader: Callable[[Path], list[dict[str, Any]]], path: Path) -> None:
    try:
        got = reader(path)
    except DataError as e:
        assert e.path == str(path)
        return
    assert isinstance(got, list) and got and all(isinstance(x, dict) for x in got)


@pytest.mark.parametrize("kind", list(READERS))
@FUZZ
@given(data=st.binary(max_size=80))
def test_fuzz_bytes(tmp_path_factory: pytest.TempPathFactory, kind: str, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / f"fuzz_bytes_{kind}"
    path.write_bytes(data)
    _only_data_error(READERS[kind], path)


@pytest.mark.parametrize("kind", list(READERS))
@FUZZ
@given(text=garbage_text | st.text(max_size=60))
def test_fuzz_text(tmp_path_factory: pytest.TempPathFactory, kind: str, text: str) -> None:
    path = tmp_path_factory.getbasetemp() / f"fuzz_text_{kind}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_data_error(READERS[kind], path)
