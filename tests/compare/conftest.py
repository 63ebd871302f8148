"""Tiny datasets made by the tests: a two-type tagging set and a three-class sentiment set."""

from __future__ import annotations

import random

import pytest

from seqlab.data.splits import Dataset, DatasetInfo

ANIMALS, COLOURS, OTHER = ("cat", "dog", "owl"), ("red", "blue"), ("the", "sun", "moon", "saw", "a", "big", "sky")


def _tagged(rng: random.Random) -> dict:
    toks, tags = [], []
    for _ in range(rng.randint(2, 9)):
        w = rng.choice(ANIMALS + COLOURS + OTHER + OTHER)
        if w in COLOURS and rng.random() < 0.5:  # a two-token colour entity: "blue owl" when followed by an animal
            toks += [w, "owl"]
            tags += ["B-COL", "I-COL"]
            continue
        toks.append(w)
        tags.append("B-ANI" if w in ANIMALS else "B-COL" if w in COLOURS else "O")
    if rng.random() < 0.15:  # label noise, so families differ
        i = rng.randrange(len(tags))
        tags[i] = "O"
    return {"tokens": toks, "tags": tags}


def _review(rng: random.Random) -> dict:
    words = [rng.choice(("good", "bad", "fine", "the", "a", "film", "plot", "not", "very")) for _ in range(rng.randint(2, 8))]
    score = words.count("good") - words.count("bad")
    label = "pos" if score > 0 else "neg" if score < 0 else "neu"
    if rng.random() < 0.1:
        label = rng.choice(("pos", "neg", "neu"))
    return {"text": " ".join(words), "label": label}


def _dataset(name: str, task: str, make: object, sizes: tuple[int, int, int], seed: int = 0) -> Dataset:
    rng = random.Random(seed)
    ex = [make(rng) for _ in range(sum(sizes))]  # type: ignore[operator]
    a, b = sizes[0], sizes[0] + sizes[1]
    info = DatasetInfo(name, task, "made by the tests", "tests", "-", "")
    return Dataset(name, task, ex[:a], ex[a:b], ex[b:], info)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_labeling() -> Dataset:
    return _dataset("tiny_ner", "labeling", _tagged, (80, 20, 30))


@pytest.fixture(scope="session")
def tiny_classification() -> Dataset:
    return _dataset("tiny_sentiment", "classification", _review, (120, 30, 40))

