"""The audit sub-commands, end to end on a saved run (and the fresh-model probes)."""

import argparse
import json

import seqlab
from seqlab.io import write_json
from seqlab.probes.audit_commands import COMMANDS
from tests_support import ner_data


def _call(name: str, argv: list[str]) -> int:
    add, run = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"seqlab probe {name}")
    add(parser)
    return run(parser.parse_args(argv))


def test_commands_on_a_saved_run(tmp_path, capsys) -> None:
    data = [{"tokens": ex["tokens"], "label": "loc" if "B-LOC" in ex["tags"] else "no"} for ex in ner_data(40)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(ex) + "\n" for ex in data), encoding="utf-8")
    run = tmp_path / "run"
    model = seqlab.build("gru", "classification", hidden_size=8, d_model=8).prepare(data)
    model.save(run / "model")
    write_json(run / "run.json", {"dataset": str(path), "task": "classification", "seed": 0})
    assert set(COMMANDS) == {"padding", "truncation", "exposure", "long-range", "length"}
    assert _call("padding", [str(run), "--n", "5", "--extra", "2", "--json", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["passed"] is True
    assert _call("truncation", [str(run), "--split", "train", "--max-len", "2", "--plot", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "padding audit: gru on classification" in out and "truncation audit" in out


def test_fresh_model_commands(tmp_path, capsys) -> None:
    argv = ["--model", "ngram", "--n-train", "500", "--n-eval", "8", "--n-distractors", "3", "--set", "model.order=3"]
    assert _call("long-range", [*argv, "--distances", "0", "2", "--json", str(tmp_path / "lr.json")]) == 0
    assert json.loads((tmp_path / "lr.json").read_text())["accuracy"] == [1.0, 0.25]
    assert _call("length", [*argv, "--train-length", "4", "--factors", "1", "2"]) == 0
    assert "length generalization: ngram" in capsys.readouterr().out
