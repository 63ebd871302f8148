"""CTC forced alignment against brute-force enumeration of every frame path (tiny inputs) and
against torch's CTC loss."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import DataError
from seqlab.inference.align import ctc_align, ctc_log_likelihood, token_segments, word_segments


def collapse(path: tuple[int, ...], blank: int = 0) -> list[int]:
    return [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]


def log_probs(seed: int, T: int, V: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, V, generator=g, dtype=torch.float64).log_softmax(-1)


CASES = [(0, 5, 3, [1, 2]), (1, 6, 3, [1, 1]), (2, 6, 4, [2, 3, 2]), (3, 4, 3, [2]), (4, 5, 3, [])]


@pytest.mark.parametrize(("seed", "T", "V", "y"), CASES)
def test_best_path_and_likelihood_match_enumeration(seed: int, T: int, V: int, y: list[int]) -> None:
    lp = log_probs(seed, T, V)
    scored = [(sum(float(lp[t, c]) for t, c in enumerate(p)), p)
              for p in itertools.product(range(V), repeat=T) if collapse(p) == y]
    best, path = max(scored)
    al = ctc_align(lp, y, blank=0)
    assert al.score == pytest.approx(best, abs=1e-9)
    assert tuple(al.labels.tolist()) == path
    total = torch.logsumexp(torch.tensor([s for s, _ in scored], dtype=torch.float64), 0)
    assert float(ctc_log_likelihood(lp, y)) == pytest.approx(float(total), abs=1e-9)


def test_likelihood_and_gradient_match_torch_ctc_loss() -> None:
    lp = log_probs(7, 30, 5).requires_grad_(True)
    y = [1, 3, 3, 2, 4, 1]
    ours = -ctc_log_likelihood(lp, y)
    ref = F.ctc_loss(lp.unsqueeze(1), torch.tensor([y]), torch.tensor([30]), torch.tensor([len(y)]), reduction="sum")
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), abs=1e-9)
    g1, = torch.autograd.grad(ours, lp)
    g2, = torch.autograd.grad(ref, lp)
    # torch's CTC gradient is taken with respect to the logits behind a log-softmax; compare the
    # gradients after projecting out the per-frame constant each one leaves free
    p = lp.detach().exp()
    assert torch.allclose(g1 - p * g1.sum(-1, keepdim=True), g2 - p * g2.sum(-1, keepdim=True), atol=1e-8)


@pytest.mark.parametrize("chunk", [1, 3, 7, 16])
def test_checkpointed_alignment_equals_the_one_pass_one(chunk: int) -> None:
    lp = log_probs(11, 40, 6)
    y = [1, 2, 2, 5, 3, 1, 4]
    full = ctc_align(lp, y)
    part = ctc_align(lp, y, chunk=chunk)
    assert part.score == pytest.approx(full.score, abs=1e-9)
    assert torch.equal(part.states, full.states)


def test_segments_and_words_on_a_peaked_path() -> None:
    names = ["", "a", "b", " "]
    frames = [1, 1, 0, 3, 3, 0, 2, 2, 2, 1, 0]  # "a" [0,2), " " [3,5), "b" [6,9), "a" [9,10)
    lp = torch.full((11, 4), 0.01).log()
    lp[torch.arange(11), torch.tensor(frames)] = torch.tensor(0.97).log()
    al = ctc_align(lp, [1, 3, 2, 1])
    assert al.labels.tolist() == frames
    toks = token_segments(al, lp, names)
    assert [(s.label, s.start, s.end) for s in toks] == [("a", 0, 2), (" ", 3, 5), ("b", 6, 9), ("a", 9, 10)]
    words = word_segments(toks)
    assert [(w.label, w.start, w.end) for w in words] == [("a", 0, 2), ("ba", 6, 10)]
    assert words[0].score == pytest.approx(float(torch.tensor(0.97).log()), abs=1e-6)


def test_impossible_and_bad_transcripts_are_refused() -> None:
    lp = log_probs(0, 3, 3)
    with pytest.raises(DataError, match="at least 4 frames"):
        ctc_align(lp, [1, 1, 2])
    with pytest.raises(DataError, match="target ids"):
        ctc_align(lp, [0, 1])
