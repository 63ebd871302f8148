"""The transcription task: CTC loss against brute-force alignment sums, subsampling masks against
one-row-at-a-time runs, greedy decoding and metrics against hand answers, and a model that learns
the toy tone alphabet exactly."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import seqlab
from seqlab.audio.features import FeatureConfig
from seqlab.audio.frontend import AudioFrontend, ConvSubsampling, CTCHead
from seqlab.errors import ConfigError, DataError
from seqlab.metrics import transcription as tm
from seqlab.tasks import make_task
from seqlab.tasks.transcription import TranscriptionTask


def _collapse(path: tuple[int, ...], blank: int = 0) -> list[int]:
    out: list[int] = []
    prev = None
    for p in path:
        if p != prev and p != blank:
            out.append(p)
        prev = p
    return out


def _brute_ctc(logp: np.ndarray, target: list[int]) -> float:
    """-log of the sum over every frame path that collapses to ``target``."""
    t, v = logp.shape
    total = 0.0
    for path in itertools.product(range(v), repeat=t):
        if _collapse(path) == target:
            total += math.exp(sum(logp[i, p] for i, p in enumerate(path)))
    return -math.log(total)


def _task(**options: object) -> TranscriptionTask:
    train, _, opts = TranscriptionTask.toy_examples(0)
    task = make_task("transcription", {**opts, **options}).fit(train)
    assert isinstance(task, TranscriptionTask)
    return task


def test_loss_is_the_brute_force_alignment_sum_per_row() -> None:
    task = _task(subsampling=1, spec_augment=False)
    hop = task.config.features.hop_length
    # rows of 3 and 5 frames (T = 1 + N // hop): padding must not count
    items = [{"signal": np.zeros(2 * hop, np.float32), "labels": [1, 2], "index": 0},
             {"signal": np.zeros(4 * hop + 3, np.float32), "labels": [2, 2], "index": 1}]
    batch = task.collate(items)
    assert task.output_lengths(batch).tolist() == [3, 5]
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3, dtype=torch.float64)
    total, units = task.loss(logits, batch)
    logp = logits.log_softmax(-1).numpy()
    expected = _brute_ctc(logp[0, :3], [1, 2]) + _brute_ctc(logp[1, :5], [2, 2])
    assert float(total) == pytest.approx(expected, rel=1e-5) and int(units) == 4


@pytest.mark.parametrize("kind", ["conv", "stack"])
def test_subsampling_masks_and_padding_match_single_rows(kind: str) -> None:
    torch.manual_seed(0)
    fe = AudioFrontend(FeatureConfig(sample_rate=8000, n_mels=20), 0, 8, subsampling=4, channels=4, kind=kind).eval()
    lengths = [1000, 2345, 400]
    wave = torch.zeros(3, max(lengths))
    mask = torch.zeros(3, max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        wave[i, :n], mask[i, :n] = torch.randn(n), True
    wave[2, 400:] = 9.0  # garbage past the end
    x, m = fe({"wave": wave, "mask": mask})
    assert torch.equal(m, fe.mask_of({"wave": wave, "mask": mask}))
    for i, n in enumerate(lengths):
        alone, am = fe({"wave": wave[i : i + 1, :n], "mask": mask[i : i + 1, :n]})
        frames = 1 + n // 80
        assert int(m[i].sum()) == alone.shape[1] == math.ceil(math.ceil(frames / 2) / 2)
        torch.testing.assert_close(x[i, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ConfigError, match="subsampling"):
        ConvSubsampling(10, 4, 3)


def test_head_decides_padding_as_blank_and_greedy_decodes() -> None:
    head = CTCHead(4, 3)
    out = torch.tensor([[[0.0, 5, 0], [0, 5, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 9]]])
    mask = torch.tensor([[True] * 5 + [False]])
    logp = head.decide(out, mask)
    assert float(logp[0, 5, 0]) == 0.0 and math.isinf(float(logp[0, 5, 2]))
    task = _task(subsampling=1)
    batch = {"mask": torch.ones(1, 4 * 80, dtype=torch.bool), "wave": torch.zeros(1, 4 * 80)}  # 5 frames
    (text,) = task.decode(logp, batch)
    # labels: 1 = 'a', 2 = 'b' (sorted); path a a _ a b -> "aab"
    assert task.labels[:3] == ["<blank>", "a", "b"] and text == "aab"


def test_metrics_against_hand_counts() -> None:
    hyps, refs = ["one two three", "four", "", "six"], ["one too three", "four five", "", "six"]
    # edits: 1 sub + 1 del + 0 + 0 over 3 + 2 + 0 + 1 words
    assert tm.wer(hyps, refs) == pytest.approx(2 / 6)
    assert tm.edit_counts(["ab"], ["abc"], "char") == (1, 3)
    b = tm.breakdown(hyps, refs, ["x", "y", "x", "y"])
    assert b["x"]["wer"] == pytest.approx(1 / 3) and b["y"]["wer"] == pytest.approx(1 / 3)
    task = _task()
    refs_d = [{"text": r, "speaker": s, "seconds": d} for r, s, d in zip(refs, "xyxy", (1.0, 3.0, 1.0, 30.0))]
    m = task.metrics(hyps, refs_d, 1.0, 2)
    assert m["wer"] == pytest.approx(2 / 6) and m["wer[speaker=x]"] == pytest.approx(1 / 3)
    assert m["wer[len<=2s]"] == pytest.approx(1 / 3) and m["wer[len=2-5s]"] == pytest.approx(1 / 2)
    assert m["wer[len>20s]"] == 0.0 and m["loss"] == 0.5


@pytest.mark.parametrize("output,text,units", [
    ("chars", "ab  ba", ["a", "b", " ", "b", "a"]),
    ("words", "ab  ba", ["ab", "ba"]),
    ("phonemes", "HH AH0 L", ["HH", "AH0", "L"]),
])
def test_output_units_round_trip(output: str, text: str, units: list[str]) -> None:
    task = make_task("transcription", {"output": output, "sample_rate": 8000})
    assert isinstance(task, TranscriptionTask)
    task.fit([{"audio": [0.0] * 800, "text": text}])
    norm = task._text({"text": text}, 0)
    assert task._units(norm) == units and task._join(units) == norm
    assert task.labels[0] == "<blank>" and set(task.labels[1:]) == set(units)


def test_subwords_round_trip() -> None:
    texts = ["three one four", "one five nine", "two six five three"]
    task = make_task("transcription", {"output": "subwords", "sample_rate": 8000, "subword_vocab_size": 270})
    assert isinstance(task, TranscriptionTask)
    task.fit([{"audio": [0.0] * 800, "text": t} for t in texts])
    for t in texts:
        assert task._join(task._units(t)) == t
    again = TranscriptionTask.from_state(json.loads(json.dumps(task.state())))
    assert again._units(texts[0]) == task._units(texts[0])


def test_training_collate_is_seeded_and_augments() -> None:
    task = _task(speed_factors=(0.9, 1.1))
    items = task.encode(TranscriptionTask.toy_examples(0)[0][:6]).items
    a = task.collate(items, torch.Generator().manual_seed(1))
    b = task.collate(items, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {"time_keep", "freq_keep"} <= set(a) and not {"time_keep", "freq_keep"} & set(task.collate(items))
    plain = task.collate(items)
    assert a["mask"].sum(1).tolist() != plain["mask"].sum(1).tolist()  # speed changed lengths
    for n, m in zip(a["mask"].sum(1).tolist(), plain["mask"].sum(1).tolist()):
        assert min(abs(n - m / 0.9), abs(n - m / 1.1)) <= 2


def test_infeasible_utterances_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    task = _task(subsampling=4)
    task.encode([{"audio": [0.1] * 160, "text": "abcabc"}])
    assert "cannot align" in capsys.readouterr().err


def test_bad_inputs_are_refused_clearly() -> None:
    task = _task()
    with pytest.raises(DataError, match="'audio' as a non-empty 1-D list"):
        task.encode([{"audio": [[1.0]], "text": "a"}])
    with pytest.raises(DataError, match="a record with one of the keys audio_filepath, audio, features"):
        task.fit([{"wav": [0.0], "text": "a"}])
    with pytest.raises(DataError, match="one kind of input"):
        task.fit([{"audio": [0.0] * 100, "text": "a"}, {"features": [[0.0]], "text": "a"}])
    with pytest.raises(DataError, match="the model was trained on audio"):
        task.check_input(np.zeros((4, 3)), 0)


def test_precomputed_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = []
    for i in range(4):
        np.save(tmp_path / f"f{i}.npy", rng.standard_normal((12, 6)))
        train.append({"features": str(tmp_path / f"f{i}.npy"), "text": "ab"})
    task = make_task("transcription", {"subsampling": 2}).fit(train)
    assert isinstance(task, TranscriptionTask) and task.n_features == 6 and task.input_kind == "features"
    batch = task.collate(task.encode(train).items, torch.Generator().manual_seed(0))
    assert batch["features"].shape == (4, 12, 6) and batch["freq_keep"].shape == (4, 6)
    assert task.output_lengths(batch).tolist() == [6] * 4
    np.save(tmp_path / "bad.npy", rng.standard_normal((12, 5)))
    with pytest.raises(DataError, match="bad.npy: expected 6 features per frame; found 5"):
        task.encode([{"features": str(tmp_path / "bad.npy"), "text": "a"}])


def test_a_model_learns_the_tone_alphabet_and_round_trips(tmp_path: Path) -> None:
    """The toy rule is known (one pitch per letter): a small BiGRU must transcribe held-out
    utterances exactly, from a manifest of WAV files, and a saved model must predict the same.
    (Raw log-mel at the full frame rate: per-utterance normalisation of one-tone utterances hides
    which tone it was, a property of the toy, not of speech.)"""
    sf = pytest.importorskip("soundfile")
    train, _, opts = TranscriptionTask.toy_examples(0)
    test, _, _ = TranscriptionTask.toy_examples(1)
    rows = []
    for i, ex in enumerate(test[:8]):
        sf.write(str(tmp_path / f"u{i}.wav"), np.asarray(ex["audio"], dtype=np.float32), 8000)
        rows.append(json.dumps({"audio_filepath": f"u{i}.wav", "text": ex["text"], "speaker": f"s{i % 2}"}))
    (tmp_path / "test.jsonl").write_text("\n".join(rows) + "\n")
    from seqlab.audio.readers import read_manifest

    manifest = read_manifest(tmp_path / "test.jsonl")
    model = seqlab.build("gru", task="transcription", task_options={**opts, "spec_augment": False, "normalize": False, "subsampling": 1}, d_model=32, num_layers=1, dropout=0.0,
                         train={"epochs": 20, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False})
    model.fit(train)
    metrics = model.evaluate(manifest)
    assert metrics["cer"] == 0.0 and metrics["wer"] == 0.0, metrics
    assert {"wer[speaker=s0]", "wer[speaker=s1]", "wer[len<=2s]"} <= set(metrics)
    preds = model.predict([str(tmp_path / "u0.wav"), test[1]["audio"]])
    assert preds == [test[0]["text"], test[1]["text"]]
    model.save(tmp_path / "saved")
    assert seqlab.load(tmp_path / "saved").predict([str(tmp_path / "u0.wav")]) == preds[:1]
