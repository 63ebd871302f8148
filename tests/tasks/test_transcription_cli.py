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


def test_align_puts_each_letter_inside_its_tone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Gold times are known: tone k of a toy utterance spans [0.02 + 0.08 k, 0.08 + 0.08 k] s. A model
    that transcribes the toy exactly must align every letter inside its tone (one 10 ms frame slack)."""
    import seqlab
    from seqlab.audio.align import align

    train, _, opts = TranscriptionTask.toy_examples(0)
    model = seqlab.build("gru", task="transcription", task_options={**opts, "spec_augment": False, "normalize": False,
                         "subsampling": 1}, d_model=32, dropout=0.0,
                         train={"epochs": 20, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False})
    model.fit(train)
    test, _, _ = TranscriptionTask.toy_examples(1)
    checked = 0
    for ex in test[:10]:
        if model.predict([ex["audio"]])[0] != ex["text"]:
            continue
        letters = align(model, ex["audio"], ex["text"], level="labels")
        assert [w.word for w in letters] == list(ex["text"])
        for k, w in enumerate(letters):
            lo, hi = 0.02 + 0.08 * k, 0.08 + 0.08 * k
            assert lo - 0.011 <= w.start < w.end <= hi + 0.011, (ex["text"], k, w)
        checked += 1
    assert checked >= 8
    (word,) = align(model, test[0]["audio"], test[0]["text"], chunk=3)  # checkpointed: the same path
    assert word.word == test[0]["text"]
    sf.write(str(tmp_path / "a.wav"), np.asarray(test[0]["audio"], dtype=np.float32), 8000)
    model.save(tmp_path / "m")
    assert main(["align", str(tmp_path / "m"), str(tmp_path / "a.wav"), "--text", test[0]["text"]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [w["word"] for w in out["words"]] == [test[0]["text"]] and out["words"][0]["end"] > out["words"][0]["start"]
