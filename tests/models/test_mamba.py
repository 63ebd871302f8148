"""Mamba family: padding never changes a real token's output (causal and bidirectional); causality;
step-by-step decoding equals the full pass token for token; the reversed pass against an explicit
flip; the LTI ablation against the convolution it is (S4D); paper initialisation; build/CLI."""

import json
from pathlib import Path
from typing import Any, cast

import pytest
import torch

import seqlab
from seqlab.cli import main
from seqlab.data.readers import write_conll
from seqlab.errors import ConfigError
from seqlab.models.mamba import (
    MambaConfig,
    MambaEncoder,
    MambaLayer,
    MambaMixer,
    reverse_within_length,
)
from seqlab.models.network import EndsConfig, build_network
from seqlab.tasks import make_task
from tests_support import assert_padding_invariant, assert_step_matches_forward

DOCS = [{"text": "the cat sat on the mat"}, {"text": "a dog ran"}]
CLS = [{"text": "the cat sat", "label": "a"}, {"text": "a dog ran far away", "label": "b"}]
TAGS = [{"tokens": ["the", "cat", "sat"], "tags": ["O", "B-X", "O"]}, {"tokens": ["a", "dog"], "tags": ["O", "B-Y"]}]
TINY: dict[str, Any] = {"d_model": 8, "d_state": 4, "num_layers": 2, "dropout": 0.0}


@pytest.mark.parametrize("selective", [True, False])
@pytest.mark.parametrize("task_name,data", [("classification", CLS), ("labeling", TAGS), ("mlm", DOCS), ("lm", DOCS)])
def test_padding_never_changes_real_outputs(selective: bool, task_name: str, data: list) -> None:
    task = make_task(task_name, {"tokenizer": "word"} if task_name in ("lm", "mlm") else None).fit(data)
    cfg = MambaConfig(**TINY, selective=selective, causal=task.causal)
    torch.manual_seed(0)
    module = build_network(task, cfg, EndsConfig(), MambaEncoder).eval()
    items = task.encode(data).items
    batch = task.collate(items, torch.Generator().manual_seed(0))
    assert task_name in ("lm", "mlm") or not batch["mask"].all()  # rows of different lengths
    assert_padding_invariant(module, batch)


def test_causal_does_not_see_the_future_and_bidirectional_does() -> None:
    x = torch.randn(1, 10, 8)
    mask = torch.ones(1, 10, dtype=torch.bool)
    x2 = x.clone()
    x2[0, 6:] = torch.randn(4, 8)
    for causal in (True, False):
        torch.manual_seed(0)
        enc = MambaEncoder(MambaConfig(**TINY, causal=causal), 8).eval()
        a, b = enc(x, mask), enc(x2, mask)
        assert torch.allclose(a[:, :6], b[:, :6]) == causal
        assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_bidirectional_layer_is_forward_plus_flipped_backward() -> None:
    """One row, no padding: the reversed pass is torch.flip, written out by hand."""
    torch.manual_seed(0)
    enc = MambaEncoder(MambaConfig(**{**TINY, "num_layers": 1}, causal=False), 8).eval()
    x = torch.randn(1, 7, 8)
    layer = cast(MambaLayer, enc.layers[0])
    assert layer.backward_mixer is not None
    xn = layer.norm(x)
    want = x + layer.mixer(xn)[0] + layer.backward_mixer(xn.flip(1))[0].flip(1)
    torch.testing.assert_close(enc(x, torch.ones(1, 7, dtype=torch.bool)), enc.norm(want))


def test_reverse_within_length_brute_force() -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    idx = reverse_within_length(mask)
    for row, m in zip(idx.tolist(), mask.tolist()):
        n = sum(m)
        assert row == list(range(n - 1, -1, -1)) + list(range(n, len(m)))
    assert torch.equal(torch.gather(idx, 1, idx), torch.arange(5).expand(4, 5))  # its own inverse


@pytest.mark.parametrize("selective", [True, False])
@pytest.mark.parametrize("d_conv", [1, 4])
def test_step_equals_full_forward_token_for_token(selective: bool, d_conv: int) -> None:
    torch.manual_seed(0)
    enc = MambaEncoder(MambaConfig(**TINY, selective=selective, d_conv=d_conv, causal=True), 8).eval()
    state, _ = assert_step_matches_forward(enc, torch.randn(2, 9, 8), (0, 1, 2, 6))  # prompt, then one at a time
    assert state is not None and all(s[1].shape == (2, 16, 4) for s in state)  # (B, I, N): O(1) per token


def test_step_refuses_a_bidirectional_encoder() -> None:
    enc = MambaEncoder(MambaConfig(**TINY, causal=False), 8)
    with pytest.raises(ConfigError, match="bidirectional"):
        enc.step(torch.randn(1, 1, 8), None)


def test_lti_ablation_is_a_convolution() -> None:
    """With Δ, B, C fixed, y = K * u + D u with K_j = Σ_n C_n exp(j Δ A_n) Δ B_n (S4D's kernel)."""
    torch.manual_seed(0)
    mixer = MambaMixer(MambaConfig(**TINY, selective=False, dt_min=0.05, dt_max=0.5), 4).double()
    u = torch.rand(2, 12, mixer.inner, dtype=torch.float64)
    delta, bm, cm = mixer._ssm_inputs(u)
    assert torch.equal(delta, delta[:1, :1].expand_as(delta)) and torch.equal(bm, bm[:1, :1].expand_as(bm))
    a = -torch.exp(mixer.A_log)  # (I, N)
    dt = delta[0, 0]  # (I,)
    j = torch.arange(12, dtype=torch.float64)
    kernel = torch.einsum("n,ijn,n->ij", cm[0, 0], torch.exp(j[None, :, None] * dt[:, None, None] * a[:, None, :]),
                          bm[0, 0]) * dt[:, None]  # (I, J)
    want = torch.zeros_like(u)
    for t in range(12):
        for s in range(t + 1):
            want[:, t] += kernel[:, t - s] * u[:, s]
    want += mixer.D * u
    from seqlab.models.layers.scan import selective_scan

    got, _ = selective_scan(u, delta, a, bm, cm, mixer.D)
    torch.testing.assert_close(got, want)


def test_paper_initialisation() -> None:
    torch.manual_seed(0)
    mixer = MambaMixer(MambaConfig(d_model=32, d_state=16), 32)
    assert mixer.rank == 2 and mixer.inner == 64  # ceil(32 / 16), expand 2
    torch.testing.assert_close(-torch.exp(mixer.A_log), -torch.arange(1.0, 17.0).expand(64, 16))
    dt = torch.nn.functional.softplus(mixer.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-3 - 1e-6 and float(dt.max()) <= 1e-1 + 1e-6
    assert float(dt.max()) / float(dt.min()) > 10  # spread log-uniformly, not constant


def test_config_errors_and_build() -> None:
    with pytest.raises(ConfigError, match="d_state"):
        MambaConfig(d_state=0)
    with pytest.raises(ConfigError, match="dt_min"):
        MambaConfig(dt_min=0.5, dt_max=0.1)
    with pytest.raises(ConfigError, match="d_stat"):
        seqlab.build("mamba", task="lm", d_stat=4)
    model = seqlab.build("mamba", task="lm", task_options={"tokenizer": "char", "block_size": 16},
                         selective=False, **TINY, train={"epochs": 1, "progress": False})
    model.fit(DOCS)
    assert model.module.encoder.causal and not model.module.encoder.layers[0].mixer.selective
    assert model.config.causal is None  # resolved per task when the module is built, saved unresolved
    greedy = model.generate(["the "], max_new_tokens=6, temperature=0.0)[0]
    ids = model.task.codec.encode("the ")  # the same greedy decoding by full recomputation
    module = model.module.eval()
    for _ in range(6):
        x = torch.tensor([ids])
        ids.append(int(module({"input_ids": x, "mask": torch.ones_like(x, dtype=torch.bool)})[0, -1].argmax()))
    assert greedy == model.task.codec.detokenize(model.task.codec.decode(ids[-6:]))


def test_cli_trains_a_bidirectional_mamba_tagger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["Ann", "Bob", "Cid"]
    sents = [{"tokens": [names[i % 3], "visited", "Rome", "today"], "tags": ["B-PER", "O", "B-LOC", "O"]} for i in range(40)]
    data = tmp_path / "ner.conll"
    write_conll(data, sents)
    out = tmp_path / "run"
    code = main(["train", str(data), "--task", "labeling", "--model", "mamba", "--model.d_model", "8",
                 "--model.d_state", "4", "--model.num_layers", "1", "--model.selective", "false", "--model.dropout", "0",
                 "--train.epochs", "10", "--train.lr", "0.02", "--train.batch_size", "4", "--train.progress", "false", "--out", str(out)])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["test"]["f1"] == 1.0
    assert main(["predict", str(out), "--text", "Bob visited Rome today"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["prediction"] == ["B-PER", "O", "B-LOC", "O"]
    loaded = seqlab.load(out)
    assert loaded.family == "mamba" and loaded.config.selective is False
    assert not loaded.module.encoder.causal and loaded.module.encoder.layers[0].backward_mixer is not None
