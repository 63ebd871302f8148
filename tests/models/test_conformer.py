"""Conformer encoder: padding never reaches real frames, the causal option looks back only, and
the relative-position attention equals its definition written out pair by pair."""

from __future__ import annotations

import math

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.models.conformer import (
    ConformerConfig,
    ConformerEncoder,
    MaskedBatchNorm,
    RelativeAttention,
)

KINDS = [("rope", "batch"), ("relative", "batch"), ("rope", "layer"), ("relative", "layer")]


def encoder(positions: str, norm: str, causal: bool = False, train: bool = False) -> ConformerEncoder:
    torch.manual_seed(0)
    c = ConformerConfig(d_model=16, num_layers=2, n_heads=2, conv_kernel=5, positions=positions,  # type: ignore[arg-type]
                        conv_norm=norm, dropout=0.0, causal=causal)  # type: ignore[arg-type]
    enc = ConformerEncoder(c, input_dim=6).double()
    for mod in enc.modules():  # non-trivial batch-norm running statistics
        if isinstance(mod, MaskedBatchNorm):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return enc.train(train)


@pytest.mark.parametrize(("positions", "norm"), KINDS)
def test_padding_does_not_change_real_frames(positions: str, norm: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 9, 6, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True] * 9, [True] * 5 + [False] * 4, [True] * 2 + [False] * 7])
    junk = torch.where(mask.unsqueeze(-1), x, torch.randn(x.shape, generator=g, dtype=torch.float64) * 50)
    for train in (False, True):  # training mode: batch statistics over real frames only
        enc = encoder(positions, norm, train=train)
        a, b = enc(x, mask), enc(junk, mask)
        assert torch.allclose(a[mask], b[mask], atol=1e-10)
        assert bool((b[~mask] == 0).all())
    enc = encoder(positions, norm)
    alone = enc(x[1:2, :5], mask[1:2, :5])  # the same row without padding, in eval mode
    assert torch.allclose(alone[0], enc(x, mask)[1, :5], atol=1e-10)


@pytest.mark.parametrize(("positions", "norm"), KINDS[:2])
def test_causal_encoder_looks_back_only(positions: str, norm: str) -> None:
    enc = encoder(positions, norm, causal=True)
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    y = x.clone()
    y[:, 5] += 3.0
    mask = torch.ones(2, 8, dtype=torch.bool)
    a, b = enc(x, mask), enc(y, mask)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-10)
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    bi = encoder(positions, norm)
    assert not torch.allclose(bi(x, mask)[:, :5], bi(y, mask)[:, :5])


def test_relative_attention_equals_its_definition() -> None:
    torch.manual_seed(3)
    att = RelativeAttention(8, 2, 0.0).double()
    with torch.no_grad():
        att.u.normal_()
        att.v.normal_()
    B, T, H, Dh = 2, 5, 2, 4
    x = torch.randn(B, T, 8, dtype=torch.float64)
    key_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    got = att(x, key_mask, causal=False)
    q, k, v = (t.view(B, T, H, Dh) for t in att.qkv(x).chunk(3, -1))
    out = torch.zeros(B, T, H, Dh, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                scores = []
                for j in range(T):
                    d = i - j  # R_{i-j}: sin/cos of the offset, as Transformer-XL
                    inv = 10000 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
                    r = torch.stack([torch.sin(d * inv), torch.cos(d * inv)], -1).flatten()
                    wr = att.pos(r.float().double()).view(H, Dh)[h]
                    s = ((q[b, i, h] + att.u[h]) @ k[b, j, h] + (q[b, i, h] + att.v[h]) @ wr) / math.sqrt(Dh)
                    scores.append(s if key_mask[b, j] or i == j else torch.tensor(float("-inf"), dtype=torch.float64))
                w = torch.stack(scores).softmax(0)
                out[b, i, h] = w @ v[b, :, h]
    want = att.out(out.reshape(B, T, 8))
    assert torch.allclose(got, want, atol=1e-6)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="conv_kernel"):
        ConformerConfig(conv_kernel=4)
    with pytest.raises(ConfigError, match="n_heads"):
        ConformerConfig(d_model=10, n_heads=4)
    with pytest.raises(ConfigError, match="positions"):
        ConformerConfig(positions="alibi")  # type: ignore[arg-type]
