"""Models saved before the frontend -> encoder -> head refactor (format 1) load and answer as
they did, or fail saying they predate it.

``legacy/format1/<name>/`` holds a tiny model saved by commit 6bff5a0 (see
``legacy/make_format1.py``) and ``expected.json``: the inputs and data it was asked about and
its answers then (predictions and evaluate metrics).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import seqlab
from seqlab.errors import SeqlabError
from seqlab.io import read_tensors, write_tensors

FORMAT1 = Path(__file__).parent / "legacy" / "format1"
NAMES = sorted(p.name for p in FORMAT1.iterdir() if (p / "config.json").exists())


def _expected(name: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads((FORMAT1 / name / "expected.json").read_text())
    return expected


def _copy(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    shutil.copytree(FORMAT1 / name, path)
    return path


def test_every_family_and_task_is_covered() -> None:
    covered = {(_expected(n)["family"], _expected(n)["task"]) for n in NAMES}
    assert covered == {
        ("lstm", "classification"), ("gru", "labeling"), ("transformer", "lm"), ("mamba", "classification"),
        ("hybrid", "labeling"), ("seq2seq", "generation"), ("transformer", "generation"),
    }


def test_saved_models_are_tiny() -> None:
    total = sum(f.stat().st_size for f in FORMAT1.rglob("*") if f.is_file())
    assert total < 300_000


@pytest.mark.parametrize("name", NAMES)
def test_format1_model_loads_and_answers_as_before(name: str) -> None:
    meta = json.loads((FORMAT1 / name / "config.json").read_text())
    assert meta.get("format", 1) == 1  # really an old model
    expected = _expected(name)
    model = seqlab.load(FORMAT1 / name)
    assert model.family == expected["family"] and model.task.name == expected["task"]
    assert model.predict(expected["inputs"]) == expected["predictions"]
    assert model.evaluate(expected["data"]) == pytest.approx(expected["metrics"], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_format1_model_saved_again_loads_as_format2(name: str, tmp_path: Path) -> None:
    expected = _expected(name)
    model = seqlab.load(FORMAT1 / name)
    model.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["format"] == 2
    again = seqlab.load(tmp_path / "again")
    assert again.predict(expected["inputs"]) == expected["predictions"]
    assert again.evaluate(expected["data"]) == pytest.approx(expected["metrics"], rel=1e-5, abs=1e-6)


def test_format1_setting_that_no_longer_exists_says_it_predates_this_version(tmp_path: Path) -> None:
    path = _copy("lstm_classifier", tmp_path)
    meta = json.loads((path / "config.json").read_text())
    meta["model_config"]["retired_setting"] = 3
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(SeqlabError, match="earlier seqlab") as info:
        seqlab.load(path)
    assert "retired_setting" in str(info.value)


def test_format1_weights_that_do_not_fit_fail_naming_the_path(tmp_path: Path) -> None:
    path = _copy("lstm_classifier", tmp_path)
    state = read_tensors(path / "model.safetensors")
    key = next(k for k in state if k.startswith("embed."))
    state[key] = state[key][:, :3].contiguous()  # a narrower embedding than the config says
    write_tensors(path / "model.safetensors", state)
    with pytest.raises(SeqlabError, match="weights do not fit") as info:
        seqlab.load(path)
    assert str(path) in str(info.value)


def test_format1_weights_missing_a_tensor_fail_naming_the_path(tmp_path: Path) -> None:
    path = _copy("gru_crf_tagger", tmp_path)
    state = read_tensors(path / "model.safetensors")
    del state[next(k for k in state if k.startswith("chars."))]
    write_tensors(path / "model.safetensors", state)
    with pytest.raises(SeqlabError, match="weights do not fit") as info:
        seqlab.load(path)
    assert str(path) in str(info.value)


def test_format1_widths_are_migrated_to_today_s_names() -> None:
    mamba = seqlab.load(FORMAT1 / "mamba_classifier")  # embedding_dim 8, hidden_size (model width) 12
    assert (mamba.config.d_model, mamba.ends.frontend_dim) == (12, 8)
    lm = seqlab.load(FORMAT1 / "transformer_lm")  # embedding_dim 8, hidden_size (feed-forward width) 16
    assert (lm.config.d_model, lm.config.d_ff) == (8, 16)
    hybrid = seqlab.load(FORMAT1 / "hybrid_tagger")  # hidden_size 0: the embedding width
    assert (hybrid.config.d_model, hybrid.ends.frontend_dim) == (8, None)
    lstm = seqlab.load(FORMAT1 / "lstm_classifier")
    assert (lstm.config.d_model, lstm.ends.pooling, lstm.ends.word_dropout) == (8, "mean", 0.1)
    tagger = seqlab.load(FORMAT1 / "gru_crf_tagger")
    assert (tagger.head, tagger.ends.char_filters, tagger.ends.char_dim) == ("crf", 4, 4)


def test_a_checkpoint_of_the_old_layout_loads_into_the_network() -> None:
    """A resumed run loads its checkpoint with load_state_dict: the Network renames the format-1
    keys (embed.*, chars.*) itself, so a run begun before the frontend resumes onto the same weights."""
    import torch

    from seqlab.models.network import EndsConfig, build_network
    from seqlab.models.rnn import RNNConfig, RNNEncoder
    from seqlab.tasks import make_task

    task = make_task("labeling")
    task.prepare_ends(EndsConfig(char_filters=3))
    task.fit([{"tokens": ["a", "bc"], "tags": ["O", "B-X"]}])
    net = build_network(task, RNNConfig(d_model=4, hidden_size=4), EndsConfig(char_filters=3, char_dim=2), RNNEncoder)
    new = {k: v.clone() for k, v in net.state_dict().items()}
    old = {(k[len("frontend."):] if k.startswith("frontend.") else k): v.clone() + 1 for k, v in new.items()}
    assert any(k.startswith("embed.") for k in old) and any(k.startswith("chars.") for k in old)
    net.load_state_dict(old, strict=True)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, new[k] + 1)
