"""The command line: every verb has --help; train/evaluate/predict round trip on user files."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab.cli import main
from seqlab.data.readers import write_conll
from tests_support import reversal_pairs

VERBS = ["train", "evaluate", "predict", "generate", "datasets", "models", "tasks", "demo", "probe", "experiment", "serve"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: seqlab " + verb in capsys.readouterr().out


def _ner_file(tmp_path: Path) -> Path:
    sents = []
    for i in range(40):
        name = ["Ann", "Bob", "Cid"][i % 3]
        sents.append({"tokens": [name, "visited", "Rome", "today"], "tags": ["B-PER", "O", "B-LOC", "O"]})
    path = tmp_path / "ner.conll"
    write_conll(path, sents)
    return path


def test_train_evaluate_predict_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _ner_file(tmp_path)
    cfg = tmp_path / "run.toml"
    cfg.write_text('[model]\nname = "gru"\nhidden_size = 16\n[train]\nepochs = 10\nbatch_size = 4\nlr = 0.02\nprogress = false\n')
    out = tmp_path / "run"
    code = main(["train", str(data), "--task", "labeling", "--config", str(cfg), "--model.d_model", "8",
                 "--model.bidirectional", "true", "--out", str(out)])
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["test"]["f1"] == 1.0
    assert (out / "model" / "model.safetensors").exists() and (out / "train" / "metrics.jsonl").exists()
    record = json.loads((out / "run.json").read_text())["trained"]
    assert record["stopped_by"] in ("epochs", "early_stopping") and record["steps"] > 0
    assert main(["evaluate", str(out), str(data), "--split", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == 1.0
    assert main(["evaluate", str(out)]) == 0  # the run remembers its data file
    assert json.loads(capsys.readouterr().out)["f1"] == 1.0
    assert main(["predict", str(out), "--text", "Bob visited Rome today"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["prediction"] == ["B-PER", "O", "B-LOC", "O"]


def test_unknown_key_names_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _ner_file(tmp_path)
    code = main(["train", str(data), "--task", "labeling", "--model", "lstm", "--model.hiden_size", "3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'hiden_size'" in err and "hidden_size" in err
    code = main(["train", str(data), "--task", "labeling", "--model", "lstm", "--optim.lr", "3"])
    assert code == 2 and "'optim'" in capsys.readouterr().err


def test_models_datasets_tasks_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "lstm" in capsys.readouterr().out
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    from seqlab.models.registry import FAMILIES
    from seqlab.tasks import TASKS

    assert set(rows) == set(TASKS)
    for task, row in rows.items():  # the families column is read off the registry
        served = [f.name for f in FAMILIES.values() if task in f.tasks]
        assert (", ".join(served) if served else "") in row, (task, row)
    assert "lstm, gru, elman" in rows["labeling"]
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("wnut16", "tweets", "shakespeare_char", "shakespeare_word", "cmudict", "pydoc"):
        assert name in out


def test_torchrun_training_saves_once(tmp_path: Path) -> None:
    data = _ner_file(tmp_path)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", port,
           "-m", "seqlab.cli", "train", str(data), "--task", "labeling", "--model", "gru", "--out", str(out),
           "--model.hidden_size", "8", "--model.d_model", "8", "--train.epochs", "2", "--train.progress", "false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count('"run"') == 1  # only rank 0 reports and saves
    assert (out / "model" / "model.safetensors").exists()


def test_classical_lm_trains_and_generates_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A classical family through the same verbs: train an n-gram LM on a text file, evaluate
    it, and generate with each decoding method."""
    data = tmp_path / "text.txt"
    data.write_text("\n".join(["the cat sat on the mat", "the dog sat on the log"] * 30) + "\n")
    out = tmp_path / "ngram"
    assert main(["train", str(data), "--task", "lm", "--model", "ngram", "--model.order", "3",
                 "--task.tokenizer", "word", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--split", "train"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] < 3.0
    runs = [["--method", "greedy"], ["--method", "beam", "--beam", "3"], ["--top-p", "0.9", "--temperature", "0.7"]]
    for extra in runs:
        assert main(["predict", str(out), "--text", "the cat", "--generate", "4", *extra]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert rows[0]["input"] == "the cat" and rows[0]["prediction"].strip(), (extra, rows)
    assert main(["predict", str(out), "--text", "the cat", "--generate", "3", "--method", "greedy"]) == 0
    assert json.loads(capsys.readouterr().out)["prediction"].split()[:2] == ["sat", "on"]


def test_generate_decodes_from_an_encoder_decoder_and_an_lm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import seqlab

    pairs = reversal_pairs(120, 0, "abcd", 2, 4)
    model = seqlab.build("seq2seq", task="generation", attention="luong_general", input_feeding=False,
                         d_model=16, hidden_size=32, dropout=0.0,
                         train={"epochs": 15, "batch_size": 16, "lr": 1e-2, "progress": False, "patience": None})
    model.fit(pairs).save(tmp_path / "s2s")
    assert main(["generate", str(tmp_path / "s2s"), "--text", "abc", "--method", "beam", "--n-best", "2"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["input"] == "abc" and len(row["output"]) == 2 and row["output"][0] == model.predict(["abc"], decoding={"method": "beam", "n_best": 2})[0][0]
    # sampling: seeded (same output twice), and temperature 0 is greedy
    sampled = []
    for _ in range(2):
        assert main(["generate", str(tmp_path / "s2s"), "--text", "abc", "--method", "sample", "--temperature", "1.5",
                     "--seed", "7"]) == 0
        sampled.append(json.loads(capsys.readouterr().out)["output"])
    assert sampled[0] == sampled[1]
    assert main(["generate", str(tmp_path / "s2s"), "--text", "abc", "--method", "sample", "--temperature", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == model.predict(["abc"], decoding={"method": "greedy"})[0]
    assert main(["generate", str(tmp_path / "s2s"), "--text", "abc", "--text", "dab", "--alignment",
                 str(tmp_path / "al.png")]) == 0
    assert (tmp_path / "al-0.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "al-1.png").exists()
    data = tmp_path / "text.txt"
    data.write_text("\n".join(["a b c d"] * 20) + "\n")
    assert main(["train", str(data), "--task", "lm", "--model", "ngram", "--model.order", "2",
                 "--task.tokenizer", "word", "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "lm"), "--text", "a", "--max-new-tokens", "2", "--method", "greedy"]) == 0
    assert json.loads(capsys.readouterr().out)["output"].split() == ["b", "c"]


def test_a_renamed_model_key_names_its_new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Dotted keys of earlier versions fail with the new key's name (embedding_dim -> d_model)."""
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"w{i % 3} x", "label": str(i % 2)}) for i in range(20)) + "\n")
    code = main(["train", str(data), "--task", "classification", "--model", "gru", "--model.embedding_dim", "8",
                 "--out", str(tmp_path / "run")])
    assert code != 0 and "now d_model" in capsys.readouterr().err


def test_evaluate_on_a_file_scores_the_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a file, evaluate scores every example in it (not a tenth) and says so."""
    import seqlab
    from seqlab.data.readers import read_conll

    data = _ner_file(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(data), "--task", "labeling", "--model", "gru", "--model.d_model", "8",
                 "--model.hidden_size", "8", "--train.epochs", "1", "--train.progress", "false", "--out", str(out)]) == 0
    capsys.readouterr()
    other = tmp_path / "other.conll"
    sents = [{"tokens": ["Ann", "left"], "tags": ["B-PER", "O"]}] * 7 + [{"tokens": ["Rome"], "tags": ["B-LOC"]}] * 3
    write_conll(other, sents)
    assert main(["evaluate", str(out), str(other)]) == 0
    captured = capsys.readouterr()
    assert "the whole file" in captured.err and "10 examples" in captured.err
    model = seqlab.load(out)
    assert json.loads(captured.out) == pytest.approx(model.evaluate(read_conll(other)))


def test_task_is_honoured_for_bundled_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--task mlm on pydoc trains a masked LM; a task the dataset cannot pose is refused, naming those it can."""
    from seqlab.data import datasets

    assert datasets.load("pydoc", task="mlm").task.name == "mlm"
    out = tmp_path / "mlm"
    assert main(["train", "pydoc", "--model", "gru", "--task", "mlm", "--model.d_model", "8", "--model.hidden_size", "8",
                 "--model.bidirectional", "true", "--train.max_steps", "1", "--train.progress", "false",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert json.loads((out / "run.json").read_text())["task"] == "mlm"
    assert json.loads((out / "model" / "config.json").read_text())["task"] == "mlm"
    assert main(["train", "tweets", "--model", "gru", "--task", "labeling", "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "cannot pose task 'labeling'" in err and "classification" in err


def test_a_missing_run_or_data_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nope")]) != 0
    assert "no such run or model directory" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.jsonl"), "--task", "classification", "--model", "gru"]) != 0
    assert "no such data file" in capsys.readouterr().err


def test_nan_weights_are_refused_when_loading(tmp_path: Path) -> None:
    import torch

    import seqlab
    from seqlab.errors import SeqlabError
    from seqlab.io import read_tensors, write_tensors

    model = seqlab.build("gru", task="classification", d_model=8, hidden_size=8, train={"epochs": 1, "progress": False})
    model.fit([{"text": "a b", "label": "x"}, {"text": "c", "label": "y"}])
    path = model.save(tmp_path / "m")
    state = read_tensors(path / "model.safetensors")
    write_tensors(path / "model.safetensors", {k: torch.full_like(v, float("nan")) for k, v in state.items()})
    with pytest.raises(SeqlabError, match="NaN weights"):
        seqlab.load(path)


def test_a_single_text_file_lm_gets_every_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One .txt document is cut contiguously into train/valid/test (a random split of one example
    left two splits empty), and evaluate scores a non-empty test split with finite numbers."""
    text = tmp_path / "story.txt"
    text.write_text("".join(f"line {i} of the story goes on\n" for i in range(60)), encoding="utf-8")
    out = tmp_path / "lm"
    assert main(["train", str(text), "--task", "lm", "--model", "ngram", "--model.order", "3", "--out", str(out)]) == 0
    trained = json.loads(capsys.readouterr().out)["test"]
    assert trained and all(v == v for v in trained.values())  # not empty, no NaN
    assert main(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(trained)


def test_evaluating_an_empty_split_says_so() -> None:
    import seqlab
    from seqlab.errors import SeqlabError

    lm = seqlab.build("ngram", task="lm", order=2).fit([{"text": "a b c"}])
    with pytest.raises(SeqlabError, match="empty"):
        lm.evaluate([])


def test_plain_user_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """predict --file missing or binary, a non-UTF-8 --config, --port out of range, and a
    config.json missing a key each end in a message that names the thing, not a traceback."""
    import seqlab

    model = seqlab.build("gru", task="classification", d_model=8, hidden_size=8, train={"epochs": 1, "progress": False})
    run = model.fit([{"text": "a b", "label": "x"}, {"text": "c", "label": "y"}]).save(tmp_path / "m")
    assert main(["predict", str(run), "--file", str(tmp_path / "none.txt")]) != 0
    assert "none.txt" in capsys.readouterr().err
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert main(["predict", str(run), "--file", str(binary)]) != 0
    assert "blob.bin" in capsys.readouterr().err
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(b'[model]\nname = "\xff"\n')
    assert main(["train", "adding", "--config", str(cfg)]) != 0
    assert "UTF-8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", str(run), "--port", "99999"])
    assert "0 to 65535" in capsys.readouterr().err
    meta = json.loads((run / "config.json").read_text())
    del meta["task_state"]["codec"]
    (run / "config.json").write_text(json.dumps(meta))
    assert main(["evaluate", str(run), "adding"]) != 0
    err = capsys.readouterr().err
    assert "config.json" in err and "'codec'" in err


def test_non_finite_metrics_print_as_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    from seqlab.cli import _print_json

    _print_json({"loss": float("inf"), "f1": 0.5, "nested": {"x": float("nan")}})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"loss": None, "f1": 0.5, "nested": {"x": None}}
    assert "loss" in captured.err and "nested.x" in captured.err


def test_given_splits_and_reader_options_are_used_as_they_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """seqlab train TRAIN --valid V --test T uses the files as given; --reader.KEY reaches the
    reader; a regression JSONL file reads with the task's own keys; evaluate RUN re-reads the same."""
    import seqlab
    from seqlab.data.readers import read_jsonl, write_jsonl

    def rows(n: int, k: int) -> list[dict]:
        return [{"text": f"w{(i + k) % 3} y", "label": str((i + k) % 2)} for i in range(n)]

    tr, va, te = tmp_path / "train.jsonl", tmp_path / "valid.jsonl", tmp_path / "test.jsonl"
    write_jsonl(tr, rows(30, 0))
    write_jsonl(va, rows(5, 1))
    write_jsonl(te, rows(7, 2))
    out = tmp_path / "cls"
    assert main(["train", str(tr), "--valid", str(va), "--test", str(te), "--task", "classification", "--model", "gru",
                 "--model.d_model", "8", "--model.hidden_size", "8", "--train.epochs", "1", "--train.progress", "false",
                 "--out", str(out)]) == 0
    trained = json.loads(capsys.readouterr().out)["test"]
    assert trained == pytest.approx(seqlab.load(out).evaluate(read_jsonl(te)))  # exactly the given test file
    assert main(["evaluate", str(out)]) == 0
    assert "7 examples" in capsys.readouterr().err
    # reader options: one LM example per line
    text = tmp_path / "lines.txt"
    text.write_text("".join(f"line {i} goes on\n" for i in range(40)), encoding="utf-8")
    assert main(["train", str(text), "--task", "lm", "--model", "ngram", "--model.order", "2", "--reader.mode", "line",
                 "--out", str(tmp_path / "lm")]) == 0
    assert json.loads(capsys.readouterr().out)["test"]
    assert main(["train", "adding", "--model", "gru", "--reader.mode", "line"]) != 0
    assert "for data files" in capsys.readouterr().err
    # a regression JSONL file: the task's keys (values, target), not the text shapes
    series = tmp_path / "series.jsonl"
    write_jsonl(series, [{"values": [0.1 * i, 0.2], "target": 0.1 * i + 0.2} for i in range(30)])
    assert main(["train", str(series), "--task", "regression", "--model", "gru", "--model.d_model", "8",
                 "--model.hidden_size", "8", "--train.epochs", "1", "--train.progress", "false",
                 "--out", str(tmp_path / "reg")]) == 0
    assert set(json.loads(capsys.readouterr().out)["test"]) >= {"mae", "rmse", "r2"}


def test_ctrl_c_says_whether_a_checkpoint_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupting a classical fit does not promise a checkpoint it never wrote."""
    from seqlab.models.classical.crf import CRFModel

    def interrupted(self, train, valid):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(CRFModel, "_fit", interrupted)
    data = _ner_file(tmp_path)
    code = main(["train", str(data), "--task", "labeling", "--model", "crf", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 130 and "keeps no checkpoint" in err and "resume" not in err
