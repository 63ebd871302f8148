"""The transcription task from the command line: train on a WAV manifest, evaluate, predict audio files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.tasks.transcription import TranscriptionTask

sf = pytest.importorskip("soundfile")


def _manifest(folder: Path, name: str, seed: int, n: int) -> Path:
    examples, _, _ = TranscriptionTask.toy_examples(seed)
    rows = []
    for i, ex in enumerate(examples[:n]):
        wav = folder / f"{name}{i}.wav"
        sf.write(str(wav), np.asarray(ex["audio"], dtype=np.float32), 8000)
        rows.append(json.dumps({"audio_filepath": wav.name, "text": ex["text"]}))
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_evaluate_predict_audio_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _manifest(tmp_path, "train", 0, 48)
    test = _manifest(tmp_path, "test", 1, 8)
    out = tmp_path / "run"
    code = main(["train", str(train), "--task", "transcription", "--model", "gru", "--out", str(out), "--test", str(test),
                 "--task.sample_rate", "8000", "--task.n_mels", "20", "--task.subsampling", "1", "--task.normalize", "false",
                 "--task.spec_augment", "false", "--model.d_model", "32", "--model.dropout", "0",
                 "--train.epochs", "20", "--train.batch_size", "8", "--train.lr", "0.01", "--train.progress", "false"])
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["test"]["wer"] == 0.0, trained
    assert main(["evaluate", str(out / "model"), str(test)]) == 0
    assert json.loads(capsys.readouterr().out)["cer"] == 0.0
    assert main(["predict", str(out / "model"), str(tmp_path / "test0.wav"), str(tmp_path / "test1.wav")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    texts = [json.loads(line)["text"] for line in test.read_text().splitlines()[:2]]
    assert [r["prediction"] for r in rows] == texts


def test_predict_names_a_missing_audio_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _manifest(tmp_path, "train", 0, 8)
    out = tmp_path / "run"
    assert main(["train", str(train), "--task", "transcription", "--model", "gru", "--out", str(out),
                 "--task.sample_rate", "8000", "--model.d_model", "8", "--train.epochs", "1", "--train.progress", "false"]) == 0
    capsys.readouterr()
    assert main(["predict", str(out / "model"), str(tmp_path / "nope.wav")]) != 0
    assert "nope.wav: expected an audio file; found no such file" in capsys.readouterr().err
