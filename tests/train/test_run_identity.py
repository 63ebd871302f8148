"""A run directory resumes only the run it was started with (issue: runs never mix).

Each case fails on a run directory that resumes whatever checkpoint it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqlab
from seqlab.cli import main
from seqlab.data.readers import write_jsonl
from seqlab.errors import SeqlabError
from seqlab.train.identity import IDENTITY_FILE, fingerprint, flatten

TRAIN = {"epochs": 2, "batch_size": 4, "lr": 1e-2, "progress": False, "patience": None}


def _data(offset: int) -> list[dict]:
    return [{"tokens": [f"w{(i + offset) % 5}", "x"], "label": str((i + offset) % 2)} for i in range(16)]


def _model(**train):  # type: ignore[no-untyped-def]
    return seqlab.build("gru", task="classification", d_model=8, hidden_size=8, train={**TRAIN, **train})


def test_other_data_in_the_same_run_directory_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _model().fit(_data(0), run_dir=run)
    with pytest.raises(SeqlabError, match="other training data.*--fresh"):
        _model().fit(_data(1), run_dir=run)
    fresh = _model().fit(_data(1), run_dir=run, resume=False)  # a deliberate fresh start
    assert fresh.result_ is not None and fresh.result_.history


def test_changed_settings_are_refused_with_the_difference(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _model().fit(_data(0), run_dir=run)
    with pytest.raises(SeqlabError, match=r"train\.lr: 0\.01 in the run, 0\.001 now"):
        _model(lr=1e-3).fit(_data(0), run_dir=run)


def test_more_epochs_is_a_named_continuation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    first = _model().fit(_data(0), run_dir=run)
    assert first.result_ is not None and first.result_.epochs_run == 2
    again = _model(epochs=3).fit(_data(0), run_dir=run)
    assert "continuing the run with a new budget: train.epochs: 2 in the run, 3 now" in capsys.readouterr().err
    assert again.result_ is not None and again.result_.epochs_run == 3  # it went on from epoch 2
    assert json.loads((run / IDENTITY_FILE).read_text())["settings"]["train.epochs"] == 3


def test_cli_refuses_a_second_data_file_with_the_same_stem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's case: two files with the same stem default to the same run directory."""
    a, b = tmp_path / "a" / "reviews.jsonl", tmp_path / "b" / "reviews.jsonl"
    a.parent.mkdir()
    b.parent.mkdir()
    write_jsonl(a, [{"text": f"w{i % 3} y", "label": str(i % 2)} for i in range(20)])
    write_jsonl(b, [{"text": f"v{i % 4} z", "label": "p" if i % 3 else "q"} for i in range(20)])
    common = ["--task", "classification", "--model", "gru", "--model.d_model", "8", "--model.hidden_size", "8",
              "--train.epochs", "1", "--train.progress", "false", "--out", str(tmp_path / "runs" / "reviews")]
    assert main(["train", str(a), *common]) == 0
    capsys.readouterr()
    assert main(["train", str(b), *common]) != 0
    assert "other training data" in capsys.readouterr().err
    assert main(["train", str(b), *common, "--fresh"]) == 0


def test_fingerprint_and_flatten() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint([{"x": 1.0}]) != fingerprint([{"x": 1.0000001}])
    assert flatten({"train": {"lr": 0.1, "betas": (0.9, 0.99)}, "family": "gru"}) == {
        "train.lr": 0.1, "train.betas": [0.9, 0.99], "family": "gru"}


def test_arrays_are_fingerprinted_by_their_bytes() -> None:
    """Audio in the examples: two long waveforms that differ only in the middle used to print (and
    so hash) alike, because str() abbreviates large arrays; dtype and shape count too; a tensor
    hashes as its array; JSON-native data keeps its old fingerprint (runs recorded before resume)."""
    import hashlib
    import json

    import numpy as np
    import torch

    a = np.zeros(20_000, dtype=np.float32)
    b = a.copy()
    b[10_000] = 1e-3
    assert str(a) == str(b)  # what made them collide
    assert fingerprint([{"audio": a}]) != fingerprint([{"audio": b}])
    assert fingerprint([{"audio": a}]) == fingerprint([{"audio": a.copy()}])
    assert fingerprint(a) != fingerprint(a.astype(np.float64)) and fingerprint(a) != fingerprint(a.reshape(100, 200))
    assert fingerprint(torch.from_numpy(b)) == fingerprint(b)
    plain = [{"tokens": ["a", "b"], "x": 1.5}]
    old = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()
    assert fingerprint(plain) == old


def test_a_run_directory_held_by_a_live_process_is_refused(tmp_path: Path) -> None:
    """A second run started into a directory another live process holds is refused; a lock left
    by a process that has ended (a kill) is taken over; the lock goes when the run ends."""
    import os
    import subprocess

    from seqlab.train.identity import LOCK_FILE

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(str(os.getppid()))  # a live process that is not this one
    with pytest.raises(SeqlabError, match="in use by another run"):
        _model().fit(_data(0), run_dir=run)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run / LOCK_FILE).write_text(str(dead.pid))  # its process is gone: a stale lock
    _model().fit(_data(0), run_dir=run)
    assert not (run / LOCK_FILE).exists()
