"""Recurrent family: padding never changes a real token's output; causality; heads."""

import pytest
import torch

from seqlab.models.heads import masked_max, masked_mean
from seqlab.models.network import EndsConfig, build_network
from seqlab.models.rnn import RNNConfig, RNNEncoder
from seqlab.tasks import make_task
from tests_support import assert_padding_invariant, pad_batch, real_rows

DOCS = [{"text": "the cat sat on the mat"}, {"text": "a dog ran"}]
CLS = [{"text": "the cat sat", "label": "a"}, {"text": "a dog ran far away", "label": "b"}]
TAGS = [{"tokens": ["the", "cat", "sat"], "tags": ["O", "B-X", "O"]}, {"tokens": ["a", "dog"], "tags": ["O", "B-Y"]}]






CASES = [(cell, bi, layers) for cell in ("lstm", "gru", "elman") for bi in (False, True) for layers in (1, 2)]


@pytest.mark.parametrize("cell,bi,layers", CASES)
@pytest.mark.parametrize("task_name,data", [("classification", CLS), ("labeling", TAGS), ("mlm", DOCS)])
def test_padding_never_changes_real_outputs(cell: str, bi: bool, layers: int, task_name: str, data: list) -> None:
    task = make_task(task_name).fit(data)
    for pooling in (("last", "mean", "max", "attention") if task_name == "classification" else ("last",)):
        cfg = RNNConfig(cell=cell, bidirectional=bi, num_layers=layers, d_model=8, hidden_size=6)
        torch.manual_seed(0)
        module = build_network(task, cfg, EndsConfig(pooling=pooling), RNNEncoder).eval()
        batch = task.collate(task.encode(data).items, torch.Generator().manual_seed(0))
        assert_padding_invariant(module, batch)


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_causal_lm_does_not_see_the_future(cell: str) -> None:
    task = make_task("lm", {"tokenizer": "char"}).fit(DOCS)
    torch.manual_seed(0)
    module = build_network(task, RNNConfig(cell=cell, d_model=8, hidden_size=8), EndsConfig(), RNNEncoder).eval()
    ids = torch.randint(5, task.input_size, (1, 10))
    mask = torch.ones_like(ids, dtype=torch.bool)
    out = module({"input_ids": ids, "mask": mask})
    ids2 = ids.clone()
    ids2[0, 6:] = 5
    out2 = module({"input_ids": ids2, "mask": mask})
    torch.testing.assert_close(out[:, :6], out2[:, :6])
    assert not torch.allclose(out[:, 6:], out2[:, 6:])


def test_lm_head_is_tied_and_step_matches_forward() -> None:
    task = make_task("lm", {"tokenizer": "char"}).fit(DOCS)
    module = build_network(task, RNNConfig(d_model=8, hidden_size=12), EndsConfig(), RNNEncoder).eval()
    assert module.head.out.weight is module.frontend.embed.weight
    ids = torch.randint(5, task.input_size, (2, 7))
    mask = torch.ones_like(ids, dtype=torch.bool)
    full = module.encoder(module.frontend.embed(ids), mask)
    state = None
    steps = []
    for t in range(7):
        h, state = module.encoder.step(module.frontend.embed(ids[:, t : t + 1]), state)
        steps.append(h)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-6)


def test_bidirectional_last_uses_both_ends() -> None:
    enc = RNNEncoder(RNNConfig(bidirectional=True, hidden_size=4), 3)
    h = torch.arange(2 * 5 * 8, dtype=torch.float).view(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    got = enc.last(h, mask)
    torch.testing.assert_close(got[0], torch.cat([h[0, 2, :4], h[0, 0, 4:]]))
    torch.testing.assert_close(got[1], torch.cat([h[1, 4, :4], h[1, 0, 4:]]))


def test_masked_pooling() -> None:
    h = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_mean(h, mask).item() == 2.0
    assert masked_max(h, mask).item() == 3.0


def test_char_features_padding_invariant_and_saved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import seqlab

    model = seqlab.build("lstm", task="labeling", bidirectional=True, d_model=8, hidden_size=8,
                         char_filters=6, char_dim=5, train={"epochs": 2, "batch_size": 2, "progress": False})
    model.fit(TAGS)
    task = model.task
    assert task.char_vocab_size > 0
    batch = task.collate(task.encode(TAGS).items)
    assert batch["chars"].shape[:2] == batch["input_ids"].shape
    module = model.module.eval()
    base = module(batch)
    padded = pad_batch(batch, 2, "right")
    padded["chars"] = torch.cat([batch["chars"], torch.zeros(2, 2, batch["chars"].shape[2], dtype=torch.long)], 1)
    got = module(padded)
    for a, b in zip(real_rows(base, batch["mask"]), real_rows(got, padded["mask"])):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    words = [["the", "zebra", "sat"]]  # "zebra" is unseen: only its characters speak
    assert again.predict(words) == model.predict(words)


def test_char_filters_need_a_task_with_characters() -> None:
    import seqlab
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="char_filters"):  # refused when built, before any training
        seqlab.build("lstm", task="regression", char_filters=4, train={"progress": False})


def test_settings_a_task_or_family_ignores_are_refused() -> None:
    """Nothing is silently dropped: an end setting the task does not read, decoding for a task that
    does not decode, train settings for a classical family, and an old key name each fail clearly."""
    import seqlab
    from seqlab.errors import ConfigError, SeqlabError

    with pytest.raises(ConfigError, match="pooling='max'.*frontend_dim"):
        seqlab.build("gru", task="labeling", pooling="max")
    with pytest.raises(ConfigError, match="patch"):
        seqlab.build("gru", task="lm", patch=4)
    with pytest.raises(ConfigError, match="does not decode"):
        seqlab.build("gru", task="classification", decoding={"method": "beam"})
    with pytest.raises(ConfigError, match="train"):
        seqlab.build("crf", task="labeling", train={"epochs": 2})
    with pytest.raises(ConfigError, match="now d_model"):
        seqlab.build("gru", task="classification", embedding_dim=8)
    model = seqlab.build("gru", task="classification", d_model=8, hidden_size=8, train={"epochs": 1, "progress": False})
    model.fit(CLS)
    with pytest.raises(ConfigError, match="predicts without decoding"):
        model.predict([CLS[0]["text"]], decoding={"method": "beam"})
    with pytest.raises(SeqlabError, match="list of inputs"):
        model.predict("a string")
