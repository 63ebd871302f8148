"""Span constraints: constrained Viterbi / n-best equal brute force over valid paths only."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import ConfigError
from seqlab.inference import Constraints, nbest, score, span_constraints, viterbi

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def valid(tags: list[str], scheme: str) -> bool:
    """Well-formedness written from the scheme definitions, independently of span_constraints."""
    open_type = None  # the type of the span still open after the previous tag
    for tag in tags:
        prefix, _, kind = tag.partition("-")
        if scheme == "IOB2":
            if prefix == "I" and open_type != kind:
                return False
            open_type = kind if prefix in ("B", "I") else None
        else:
            if open_type is not None and not (prefix in ("I", "E") and kind == open_type):
                return False
            if open_type is None and prefix in ("I", "E"):
                return False
            open_type = kind if prefix in ("B", "I") else None
    return scheme == "IOB2" or open_type is None


@pytest.mark.parametrize("tags,scheme", [(IOB2, "IOB2"), (IOBES, "IOBES")])
def test_span_constraints_accept_exactly_the_valid_sequences(tags: list[str], scheme: str) -> None:
    c = span_constraints(tags, scheme)
    for L in range(1, 4):
        for ys in itertools.product(range(len(tags)), repeat=L):
            ok = bool(c.start[ys[0]]) and bool(c.end[ys[-1]]) and all(bool(c.transitions[i, j]) for i, j in zip(ys, ys[1:]))
            assert ok == valid([tags[y] for y in ys], scheme), [tags[y] for y in ys]


@pytest.mark.parametrize("tags,scheme", [(IOB2, "IOB2"), (IOBES, "IOBES")])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), L=st.integers(1, 4))
def test_constrained_decoding_is_brute_force_over_valid_paths(tags: list[str], scheme: str, seed: int, L: int) -> None:
    g = torch.Generator().manual_seed(seed)
    N = len(tags)
    e = torch.randn(2, 4, N, generator=g, dtype=torch.float64) * 3
    tr, s, en = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((N, N), (N,), (N,)))
    mask = torch.tensor([[True] * L + [False] * (4 - L), [True] * 4])
    c = span_constraints(tags, scheme)
    paths, best = viterbi(e, tr, s, en, mask, constraints=c)
    kp, ks = nbest(e, tr, s, en, mask, k=3, constraints=c)
    for b, n in enumerate([L, 4]):
        ys = torch.tensor(list(itertools.product(range(N), repeat=n)))
        ok = torch.tensor([valid([tags[y] for y in row], scheme) for row in ys.tolist()])
        full = torch.zeros(len(ys), 4, dtype=torch.long)
        full[:, :n] = ys
        sc = score(e[b : b + 1].expand(len(ys), -1, -1), tr, s, en, full, mask[b : b + 1].expand(len(ys), -1))
        ranked = sc[ok].sort(descending=True).values
        assert torch.allclose(best[b], ranked[0]) and torch.allclose(ks[b], ranked[:3])
        assert valid([tags[y] for y in paths[b, :n].tolist()], scheme)
        assert all(valid([tags[y] for y in kp[b, r, :n].tolist()], scheme) for r in range(3))


def test_unconstrained_decoding_can_be_invalid_and_constrained_never_is() -> None:
    g = torch.Generator().manual_seed(0)
    N = len(IOB2)
    e = torch.randn(200, 6, N, generator=g)
    e[:, :, 2] += 1.0  # I-PER likes to appear anywhere
    z = torch.zeros(N)
    mask = torch.ones(200, 6, dtype=torch.bool)
    free, _ = viterbi(e, torch.zeros(N, N), z, z, mask)
    fixed, _ = viterbi(e, torch.zeros(N, N), z, z, mask, constraints=span_constraints(IOB2, "IOB2"))
    assert sum(not valid([IOB2[y] for y in row], "IOB2") for row in free.tolist()) > 50
    assert all(valid([IOB2[y] for y in row], "IOB2") for row in fixed.tolist())


def test_bad_constraints_raise() -> None:
    with pytest.raises(ConfigError, match="not an IOB2 tag"):
        span_constraints(["O", "S-PER"], "IOB2")
    with pytest.raises(ConfigError, match="scheme"):
        span_constraints(["O"], "BIO")
    with pytest.raises(Exception, match="bool tensor"):
        Constraints(torch.ones(2, 2), torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
