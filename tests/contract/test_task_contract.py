"""Every registered task, through a trivial encoder: the loss falls, predictions come one per
input, the metric keys are present, and the task's state survives a JSON round trip. New tasks
are covered by registering them (their ``toy_examples`` give the data); no branch per task here."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from seqlab.models.network import EndsConfig, build_network
from seqlab.tasks import TASKS, make_task, task_from_state


@dataclass(frozen=True)
class TrivialConfig:
    d_model: int = 16
    dropout: float = 0.0
    causal: bool | None = None
    seed: int = 0


class TrivialEncoder(nn.Module):
    """A per-position layer: sees no other position, so it is causal and bidirectional alike."""

    def __init__(self, config: TrivialConfig, input_dim: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(input_dim, config.d_model), nn.Tanh())
        self.output_dim = config.d_model
        self.causal = True

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.layer(x) * mask.unsqueeze(-1)  # (B, T, D), zeros on padding


def _network(task, name: str) -> nn.Module:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    if task.shape == "encoder_decoder":  # the task's generator is a whole network: the smallest one
        from seqlab.models.transformer import TransformerConfig, transformer_network

        cfg = TransformerConfig(d_model=16, n_heads=2, num_layers=1, dropout=0.0)
        return build_network(task, cfg, EndsConfig(), None, lambda c, t: transformer_network(c, t, EndsConfig()))
    return build_network(task, TrivialConfig(), EndsConfig(), TrivialEncoder)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_contract(name: str) -> None:
    cls = TASKS[name][0]
    train, inputs, options = cls.toy_examples(0)
    task = make_task(name, options).fit(train)
    enc = task.encode(train)
    assert len(enc.items) == len(enc.references) and len(task.lengths(enc.items)) == len(enc.items)
    net = _network(task, name)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    batch = task.collate(enc.items, torch.Generator().manual_seed(0))
    assert batch["mask"].dtype == torch.bool and batch["index"].tolist() == list(range(len(enc.items)))
    losses = []
    for _ in range(40):
        total, units = net(batch, loss=True)
        loss = total / units
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], (name, losses[0], losses[-1])
    # predictions: one per raw input
    net.eval()
    decoding = task.default_decoding()
    items = task.encode_inputs(inputs)
    pbatch = task.collate(items)
    with torch.no_grad():
        out = net(pbatch) if not task.decodes_free else torch.empty(0)
        preds = task.predictions(net, out, pbatch, decoding)
        assert len(preds) == len(inputs)
        # metrics: every declared key, finite loss
        out = net(batch)
        total, units = net(batch, loss=True)
        metrics = task.metrics(task.tally(net, out, batch, decoding), enc.references, float(total), int(units))
    assert math.isfinite(metrics["loss"])
    missing = set(task.metric_names) - set(metrics)
    assert missing <= {"wer", "cer", "per"}, missing  # generation reports either WER/CER (text) or PER (token lists)
    # state: a JSON round trip gives the same encoding
    again = task_from_state(name, json.loads(json.dumps(task.state())))
    assert again.encode(train).references == enc.references
    assert json.dumps(again.encode(train).items, default=_plain) == json.dumps(enc.items, default=_plain)


def _plain(x):  # type: ignore[no-untyped-def]
    return x.tolist() if hasattr(x, "tolist") else str(x)
