"""Attention heatmaps: a real PNG is written; bad shapes and values are clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.plots import save_attention_heatmap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_heatmap_writes_a_png(tmp_path: Path) -> None:
    weights = torch.softmax(torch.randn(3, 4), -1)  # (T, S)
    path = save_attention_heatmap(weights, ["a", "b", "c", "<eos>"], ["x", "y", "<eos>"], tmp_path / "sub" / "a.png")
    data = path.read_bytes()
    assert path == tmp_path / "sub" / "a.png"
    assert data[:8] == PNG_MAGIC
    # the IHDR chunk carries width and height: a figure, not an empty file
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


def test_heatmap_accepts_numpy_and_lists(tmp_path: Path) -> None:
    save_attention_heatmap(np.eye(2), ["a", "b"], ["c", "d"], tmp_path / "np.png")
    save_attention_heatmap([[0.5, 0.5]], ["a", "b"], ["c"], tmp_path / "list.png", title="t")
    assert (tmp_path / "np.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "list.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "weights,src,tgt,match",
    [
        (np.ones(3), ["a", "b", "c"], ["x"], "2-D"),
        (np.ones((1, 2, 3)), ["a"], ["x"], "2-D"),
        (np.ones((2, 3)), ["a", "b"], ["x", "y"], "source tokens"),
        (np.ones((2, 3)), ["a", "b", "c"], ["x"], "target"),
        (np.zeros((0, 0)), [], [], "empty"),
        (np.array([[np.nan, 1.0]]), ["a", "b"], ["x"], "finite"),
        ([["a", "b"]], ["a", "b"], ["x"], "numeric"),
    ],
)
def test_heatmap_bad_input(tmp_path: Path, weights: object, src: list, tgt: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        save_attention_heatmap(weights, src, tgt, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_heatmap_of_a_seq2seq_alignment(tmp_path: Path) -> None:
    from seqlab.models.seq2seq import Seq2SeqConfig, Seq2SeqModule

    module = Seq2SeqModule(Seq2SeqConfig(d_model=8, hidden_size=8, dropout=0.0), 10, 10).eval()
    batch = {"src_ids": torch.tensor([[5, 6, 7], [8, 0, 0]]), "src_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]).bool(),
             "input_ids": torch.tensor([[2, 7, 6], [2, 0, 0]]), "mask": torch.tensor([[1, 1, 1], [1, 0, 0]]).bool()}
    w = module.alignment(batch, 1)
    assert w.shape == (1, 1) and w.item() == 1.0  # one real source token takes all the weight
    w0 = module.alignment(batch, 0)
    torch.testing.assert_close(w0.sum(-1), torch.ones(3))
    path = save_attention_heatmap(w0, ["a", "b", "c"], ["<bos>", "c", "b"], tmp_path / "align.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ConfigError, match="index"):
        module.alignment(batch, 2)
    with pytest.raises(ConfigError, match="none"):
        Seq2SeqModule(Seq2SeqConfig(attention="none", d_model=8, hidden_size=8), 10, 10).alignment(batch, 0)
