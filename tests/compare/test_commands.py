"""``seqlab compare`` and ``seqlab report`` from the command line, on a data file the test writes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import seqlab
from seqlab.cli import main


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, tiny_labeling) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("data") / "ner.jsonl"
    rows = [*tiny_labeling.train, *tiny_labeling.valid, *tiny_labeling.test]
    random.Random(0).shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_report_of_a_trained_run(data_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    assert main(["train", str(data_file), "--task", "labeling", "--model", "gru", "--model.d_model", "16",
                 "--model.hidden_size", "16", "--model.char_filters", "0", "--train.max_steps", "8",
                 "--train.progress", "false", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert main(["report", str(run), "--n-boot", "50", "--worst", "5"]) == 0
    res = json.loads((run / "report" / "results.json").read_text())
    for k in ("f1", "token_accuracy", "loss"):
        assert res["metrics"][k] == pytest.approx(evaluated[k], rel=1e-6)
    for name in ("loss", "metric", "lr", "grad_norm"):
        assert (run / "report" / "figures" / f"{name}.png").exists(), name
    losses = [w["loss"] for w in res["worst"]]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True)
    model = seqlab.load(run)
    first = res["worst"][0]
    assert model.predict([first["input"]])[0] == first["prediction"][0]
    page = (run / "report" / "report.html").read_text()
    assert "Worst-predicted" in page and "http" not in page


def test_compare_on_a_data_file(data_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cmp"
    assert main(["compare", str(data_file), "--task", "labeling", "--models", "hmm,crf", "--out", str(out),
                 "--n-boot", "50", "--no-probe"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert [r["family"] for r in res["families"]] == ["hmm", "crf"] and "hmm" in printed
    for r in res["families"]:
        assert r["metrics"]["f1"] == pytest.approx(seqlab.load(out / "runs" / r["family"] / "model").evaluate(
            _test_split(data_file))["f1"])
    assert main(["report", str(out / "runs" / "crf"), "--n-boot", "20"]) == 0  # a compare run renders alone too
    single = json.loads((out / "runs" / "crf" / "report" / "results.json").read_text())
    assert single["metrics"]["f1"] == pytest.approx(res["families"][1]["metrics"]["f1"])
    assert main(["compare", str(data_file), "--task", "labeling", "--models", "nosuch", "--out", str(out)]) == 2
    assert "nosuch" in capsys.readouterr().err


def _test_split(path: Path) -> list:
    from seqlab.datasets import load_files

    return load_files("labeling", str(path), seed=0).test
