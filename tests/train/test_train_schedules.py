"""Learning-rate schedules against closed-form values, and the optimizer helpers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from seqlab.errors import ConfigError
from seqlab.train.schedules import (
    build_optimizer,
    clip_gradients,
    lr_factor,
    make_scheduler,
    scale_gradients,
    total_steps,
)


def test_warmup_is_linear_and_reaches_one() -> None:
    # 4 warmup steps: 1/4, 2/4, 3/4, 4/4, then decay starts from 1.
    got = [lr_factor(s, 20, 4, "cosine", 0.1) for s in range(5)]
    assert got == [0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (2, 1.0),  # first step after warmup
        (4, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25))),  # progress 2/8
        (6, 0.55),  # progress 1/2: cos(pi/2) = 0
        (8, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.75))),
        (10, 0.1),  # progress 1
        (25, 0.1),  # past the end: stays at min_ratio
    ],
)
def test_cosine_closed_form(step: int, expected: float) -> None:
    assert lr_factor(step, 10, 2, "cosine", 0.1) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (5, 0.6), (8, 0.36), (10, 0.2)])
def test_linear_closed_form(step: int, expected: float) -> None:
    # no warmup, 10 steps, min 0.2: 1 - 0.8 * step / 10
    assert lr_factor(step, 10, 0, "linear", 0.2) == pytest.approx(expected, abs=1e-15)


def test_constant_after_warmup() -> None:
    assert [lr_factor(s, 5, 2, "constant", 0.1) for s in range(6)] == [0.5, 1, 1, 1, 1, 1]


@given(
    total=st.integers(1, 200),
    warmup=st.integers(0, 50),
    kind=st.sampled_from(["cosine", "linear", "constant"]),
    min_ratio=st.floats(0, 1),
)
def test_factor_bounded_and_monotone_after_warmup(
    total: int, warmup: int, kind: str, min_ratio: float
) -> None:
    after = [lr_factor(s, total, warmup, kind, min_ratio) for s in range(warmup, total + 3)]
    assert all(min_ratio - 1e-12 <= f <= 1 + 1e-12 for f in after)
    assert all(a >= b - 1e-12 for a, b in zip(after, after[1:]))


def test_scheduler_drives_the_optimizer() -> None:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.5)
    sched = make_scheduler(opt, total_steps=8, warmup=3, kind="linear", min_ratio=0.0)
    for s in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * lr_factor(s, 8, 3, "linear", 0.0))
        opt.step()
        sched.step()


@pytest.mark.parametrize(
    "args",
    [
        (0, 10, 0, "cubic", 0.1),
        (0, 0, 0, "cosine", 0.1),
        (0, 10, -1, "cosine", 0.1),
        (0, 10, 0, "cosine", 1.5),
        (-1, 10, 0, "cosine", 0.1),
    ],
)
def test_invalid_schedule_arguments(args: tuple[int, int, int, str, float]) -> None:
    with pytest.raises(ConfigError):
        lr_factor(*args)


def test_total_steps() -> None:
    assert total_steps(3, 7, 2) == 12  # ceil(7 / 2) = 4 steps per epoch
    assert total_steps(3, 7, 2, max_steps=5) == 5
    assert total_steps(3, 7, 2, max_steps=100) == 12


def test_build_optimizer_groups_decay_by_dimension() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    net[2].bias.requires_grad_(False)
    opt = build_optimizer(net, lr=0.1, weight_decay=0.3, betas=(0.8, 0.9))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.3 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in no_decay["params"]} == {
        id(net[0].bias),
        id(net[1].weight),
        id(net[1].bias),
    }
    assert decay["betas"] == (0.8, 0.9)
    with pytest.raises(ConfigError, match="no trainable"):
        build_optimizer(nn.ReLU(), lr=0.1, weight_decay=0.0)


def test_clip_gradients_reports_norm_before_clipping() -> None:
    a, b, unused = (nn.Parameter(torch.zeros(2)) for _ in range(3))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])
    assert clip_gradients([a, b, unused], None) == pytest.approx(5.0)
    assert torch.equal(a.grad, torch.tensor([3.0, 0.0]))
    assert clip_gradients([a, b, unused], 1.0) == pytest.approx(5.0)
    assert torch.allclose(a.grad, torch.tensor([0.6, 0.0])) and torch.allclose(
        b.grad, torch.tensor([0.0, 0.8])
    )
    scale_gradients([a, b, unused], 10.0)
    assert torch.allclose(b.grad, torch.tensor([0.0, 8.0])) and unused.grad is None
    assert clip_gradients([unused], 1.0) == 0.0
