"""The transcription datasets: joins keep exact gold boundaries; FSDD splits hold the upstream test
recordings (or a whole speaker) out; Asterisk prompts are split whole. Real-data tests skip when the
data is absent."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from seqlab.audio.datasets import DIGITS, connect, spoken_text
from seqlab.errors import MissingDependencyError


def test_connect_keeps_each_piece_at_its_boundaries() -> None:
    rng = np.random.default_rng(0)
    pieces = [(3, rng.standard_normal(700).astype(np.float32)), (1, rng.standard_normal(345).astype(np.float32))]
    wave, words = connect(pieces, random.Random(5), dither=0.0)
    assert [w[0] for w in words] == ["three", "one"]
    for (_, piece), (_, start, end) in zip(pieces, words):
        a, b = round(start * 8000), round(end * 8000)
        assert b - a == len(piece) and np.array_equal(wave[a:b], piece)
    gaps = [words[0][1], words[1][1] - words[0][2], len(wave) / 8000 - words[1][2]]
    assert all(0.05 - 1e-3 <= g <= 0.3 + 1e-3 for g in gaps)
    again, _ = connect(pieces, random.Random(5), dither=0.0)
    assert np.array_equal(wave, again)


def test_spoken_text() -> None:
    assert spoken_text("Press 1 for help, # to exit.") == "press one for help pound to exit"
    assert spoken_text("[beep]") is None and spoken_text("Dial 911") is None
    assert spoken_text("That's it [pause] done") == "that's it done"


def _load(name: str, **options: object):  # type: ignore[no-untyped-def]
    import seqlab

    try:
        return seqlab.datasets.load(name, **options)
    except MissingDependencyError as e:
        pytest.skip(f"{name} is not on this machine: {e}")


_ID = re.compile(r"(\d)_(\d+)")


def _recordings(split: list[dict]) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return [(ex["speaker"], int(d), int(i)) for ex in split for d, i in _ID.findall(ex["id"].split("/")[-1])]


def test_fsdd_digits_seen_speaker_split() -> None:
    ds = _load("fsdd_digits")
    assert ds.task.name == "transcription" and ds.task.options["sample_rate"] == 8000
    recs = {name: _recordings(getattr(ds, name)) for name in ("train", "valid", "test")}
    every = [r for rs in recs.values() for r in rs]
    assert len(every) == len(set(every)) == 2000  # each recording once
    assert {i for _, _, i in recs["test"]} == set(range(5)) and {i for _, _, i in recs["valid"]} == set(range(5, 10))
    assert min(i for _, _, i in recs["train"]) == 10
    ex = ds.test[0]
    assert ex["text"].split() == [w[0] for w in ex["words"]] and set(ex["text"].split()) <= set(DIGITS)
    assert len({e["speaker"] for e in ds.test}) == 4


def test_fsdd_digits_leave_one_speaker_out() -> None:
    ds = _load("fsdd_digits", held_out_speaker="theo")
    assert {e["speaker"] for e in ds.test} == {"theo"}
    assert "theo" not in {e["speaker"] for e in ds.train + ds.valid}
    assert len(_recordings(ds.test)) == 500 and Counter(d for _, d, _ in _recordings(ds.test))[7] == 50


def test_asterisk_prompts_are_split_whole() -> None:
    ds = _load("asterisk_prompts")
    ids = [{e["id"] for e in s} for s in (ds.train, ds.valid, ds.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    rows = ds.train + ds.valid + ds.test
    assert len(rows) > 500 and all(re.fullmatch(r"[a-z' ]+", e["text"]) for e in rows)
