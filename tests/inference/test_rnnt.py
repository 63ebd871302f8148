"""The RNN-T loss against brute-force enumeration of alignments, its gradients (gradcheck), the
fused (function-merging) variant against the plain one, and decoding against brute force."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.errors import DataError
from seqlab.inference.rnnt import (
    rnnt_beam_search,
    rnnt_greedy,
    rnnt_loss,
    rnnt_loss_fused,
    rnnt_loss_ref,
)
from seqlab.models.transducer import Transducer, TransducerConfig


def brute_nll(lp: torch.Tensor, y: list[int], T: int, blank: int = 0) -> float:
    """-log of the summed probability of every alignment: U labels placed among the first
    T + U - 1 moves, the other moves blanks, the last move a blank."""
    U = len(y)
    total = []
    for pos in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        s = 0.0
        for m in range(T + U):
            if m in pos:
                s += float(lp[t, u, y[u]])
                u += 1
            else:
                s += float(lp[t, u, blank])
                t += 1
        assert (t, u) == (T, U)
        total.append(s)
    return -float(torch.logsumexp(torch.tensor(total, dtype=torch.float64), 0))


def batch(seed: int, B: int = 3, T: int = 5, U: int = 3, V: int = 4) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(1, V, (B, U), generator=g)
    tl = torch.tensor([T, T - 2, 1][:B])
    yl = torch.tensor([U, 1, 0][:B])
    return logits, targets, tl, yl


@pytest.mark.parametrize("seed", range(3))
def test_loss_matches_enumeration_of_alignments(seed: int) -> None:
    logits, targets, tl, yl = batch(seed)
    got = rnnt_loss(logits, targets, tl, yl, reduction="none")
    lp = logits.log_softmax(-1)
    for b in range(3):
        want = brute_nll(lp[b], targets[b, : yl[b]].tolist(), int(tl[b]))
        assert float(got[b]) == pytest.approx(want, abs=1e-9)
    assert torch.allclose(got, rnnt_loss_ref(logits, targets, tl, yl), atol=1e-10)
    assert float(rnnt_loss(logits, targets, tl, yl)) == pytest.approx(float(got.mean()), abs=1e-12)


def test_gradients_pass_gradcheck() -> None:
    logits, targets, tl, yl = batch(5, T=4, U=2, V=3)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: rnnt_loss(x, targets, tl, yl, reduction="none"), (logits,))


def test_float32_follows_float64() -> None:
    logits, targets, tl, yl = batch(6, T=40, U=12, V=8)
    a = rnnt_loss(logits, targets, tl, yl, reduction="none")
    b = rnnt_loss(logits.float(), targets, tl, yl, reduction="none")
    assert b.dtype == torch.float32 and torch.allclose(a.float(), b, rtol=1e-5)


def test_fused_loss_equals_the_plain_one_with_gradients() -> None:
    torch.manual_seed(0)
    net = Transducer(6, 5, blank=0, config=TransducerConfig(pred_dim=8, joint_dim=8, dropout=0.0)).double()
    enc = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1, 2, 3], [4, 4, 0]])
    tl, yl = torch.tensor([9, 6]), torch.tensor([3, 2])
    pred = net.predictor(targets)
    plain = rnnt_loss(net.joiner(enc.unsqueeze(2), pred.unsqueeze(1)), targets, tl, yl, reduction="sum")
    g1 = torch.autograd.grad(plain, [enc, *net.parameters()])
    pred = net.predictor(targets)
    fused = rnnt_loss_fused(enc, pred, net.joiner, targets, tl, yl, reduction="sum", chunk=4)
    g2 = torch.autograd.grad(fused, [enc, *net.parameters()])
    assert float(fused.detach()) == pytest.approx(float(plain.detach()), abs=1e-10)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g1, g2))
    small = Transducer(6, 5, 0, TransducerConfig(pred_dim=8, joint_dim=8, dropout=0.0, fused_above=1)).double()
    small.load_state_dict(net.state_dict())
    assert float(small.loss(enc, tl, targets, yl, reduction="sum").detach()) == pytest.approx(float(plain.detach()), abs=1e-10)


def test_bad_shapes_are_named() -> None:
    logits, targets, tl, yl = batch(0)
    with pytest.raises(DataError, match="targets of shape"):
        rnnt_loss(logits, targets[:, :2], tl, yl)
    with pytest.raises(DataError, match="logit_lengths"):
        rnnt_loss(logits, targets, tl + 9, yl)


def tiny_net(seed: int = 0) -> Transducer:
    torch.manual_seed(seed)
    net = Transducer(4, 3, blank=0, config=TransducerConfig(pred_dim=6, joint_dim=6, dropout=0.0)).double().eval()
    with torch.no_grad():
        net.joiner.out.weight.mul_(3)  # sharper distributions, so labels get emitted
        net.joiner.out.bias[0] -= 1.0
    return net


def best_alignment(net: Transducer, enc: torch.Tensor, max_symbols: int) -> tuple[float, list[int]]:
    """The single best alignment, by enumerating every per-frame label run (<= max_symbols) then blank."""
    runs = [r for n in range(max_symbols + 1) for r in itertools.product([1, 2], repeat=n)]
    best: tuple[float, list[int]] = (float("-inf"), [])
    for choice in itertools.product(runs, repeat=enc.shape[0]):
        y: list[int] = []
        s = 0.0
        for t, run in enumerate(choice):
            for k in [*run, 0]:
                pred = net.predictor(torch.tensor([y], dtype=torch.long).view(1, -1))[0, -1]  # after the labels so far
                s += float(net.joiner(enc[t], pred).log_softmax(-1)[k])
                if k:
                    y.append(k)
        best = max(best, (s, y))
    return best


def test_beam_search_finds_the_best_alignment_and_greedy_agrees_batched() -> None:
    net = tiny_net()
    enc = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        score, labels = best_alignment(net, enc, max_symbols=2)
        hyp = net.beam_search(enc, beam=200, max_symbols=2)[0]
    assert hyp.tokens == labels and hyp.score == pytest.approx(score, abs=1e-9)
    encs = torch.randn(3, 5, 4, dtype=torch.float64)
    lengths = torch.tensor([5, 3, 0])
    batched = net.greedy(encs, lengths, max_symbols=3)
    for b in range(3):
        alone = rnnt_greedy(encs[b:b + 1, : lengths[b]], lengths[b:b + 1], net.predictor.step, net.joiner, 0, 3)
        assert batched[b] == alone[0]
    wide = rnnt_beam_search(encs[0], net.predictor.step, net.joiner, beam=8, max_symbols=3, nbest=3)
    assert len(wide) == 3 and wide[0].score >= wide[1].score >= wide[2].score


def test_a_transducer_learns_to_transcribe_a_toy_task() -> None:
    """End to end: encoder frames that spell their labels (each label over 2 frames, no label
    repeated back to back, so frames alone tell them apart); a small transducer trained on the
    loss must then decode every training pair, greedy and beam."""
    torch.manual_seed(0)
    V, U = 4, 3
    targets = torch.tensor([p for p in itertools.product(range(1, V), repeat=U) if p[0] != p[1] and p[1] != p[2]])  # (12, U)
    enc_in = torch.nn.functional.one_hot(targets.repeat_interleave(2, dim=1), V).double()  # (12, 6, V)
    enc = torch.nn.Linear(V, 8).double()
    net = Transducer(8, V, 0, TransducerConfig(pred_dim=8, joint_dim=16, dropout=0.0)).double()
    opt = torch.optim.Adam([*enc.parameters(), *net.parameters()], lr=0.05)
    n = len(targets)
    tl, yl = torch.full((n,), 2 * U), torch.full((n,), U)
    for _ in range(150):
        opt.zero_grad()
        loss = net.loss(enc(enc_in), tl, targets, yl)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        h = enc(enc_in)
        assert net.greedy(h, tl) == targets.tolist()
        assert [net.beam_search(h[b], beam=3)[0].tokens for b in range(n)] == targets.tolist()
