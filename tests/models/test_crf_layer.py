"""CRF layer: parity with pytorch-crf (NLL, gradients, decodes) and constrained decoding."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchcrf import CRF as PeerCRF

from seqlab.errors import ConfigError
from seqlab.inference import span_constraints
from seqlab.models.crf_layer import CRF
from tests_support import valid_iob2

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def batch(seed: int, lengths: list[int], N: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    e = torch.randn(len(lengths), T, N, generator=g, dtype=dtype)
    tags = torch.randint(0, N, (len(lengths), T), generator=g)
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return e, tags, mask


def pair(N: int, seed: int) -> tuple[CRF, PeerCRF]:
    torch.manual_seed(seed)
    ours = CRF(N).double()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    peer = PeerCRF(N, batch_first=True).double()
    with torch.no_grad():
        peer.transitions.copy_(ours.transitions)
        peer.start_transitions.copy_(ours.start)
        peer.end_transitions.copy_(ours.end)
    return ours, peer


lengths_st = st.lists(st.integers(1, 9), min_size=1, max_size=6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), lengths=lengths_st, N=st.integers(1, 6))
def test_nll_and_gradients_match_pytorch_crf(seed: int, lengths: list[int], N: int) -> None:
    e, tags, mask = batch(seed, lengths, N)
    ours, peer = pair(N, seed)
    e1, e2 = e.clone().requires_grad_(True), e.clone().requires_grad_(True)
    nll = ours.nll(e1, tags, mask, reduction="sum")
    peer_nll = -peer(e2, tags, mask, reduction="sum")
    assert abs(float(nll.detach()) - float(peer_nll.detach())) < 1e-5 * max(1.0, abs(float(peer_nll.detach())))
    nll.backward()
    peer_nll.backward()
    assert torch.allclose(e1.grad, e2.grad, atol=1e-5)
    for a, b in ((ours.transitions, peer.transitions), (ours.start, peer.start_transitions), (ours.end, peer.end_transitions)):
        theirs = b.grad if b.grad is not None else torch.zeros_like(b)  # unused when every length is 1
        assert torch.allclose(a.grad, theirs, atol=1e-5)
    for red, theirs in (("mean", "mean"), ("token_mean", "token_mean"), ("none", "none")):
        assert torch.allclose(ours.nll(e, tags, mask, red), -peer(e, tags, mask, reduction=theirs), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), lengths=lengths_st, N=st.integers(1, 6))
def test_decodes_match_pytorch_crf(seed: int, lengths: list[int], N: int) -> None:
    e, _, mask = batch(seed, lengths, N)
    ours, peer = pair(N, seed)
    got = ours.decode(e, mask)
    theirs = peer.decode(e, mask)
    assert [row[:n] for row, n in zip(got.tolist(), lengths)] == theirs
    assert int(got.masked_select(~mask).abs().sum()) == 0


def test_first_row_shorter_or_empty_needs_no_special_case() -> None:
    """pytorch-crf needs mask[:, 0] on; ours takes any prefix mask, rows in any order."""
    e, tags, mask = batch(5, [2, 7, 4], 4)
    ours, peer = pair(4, 5)
    e0 = torch.cat([torch.randn(1, 7, 4, dtype=torch.float64), e])
    tags0 = torch.cat([torch.zeros(1, 7, dtype=torch.long), tags])
    mask0 = torch.cat([torch.zeros(1, 7, dtype=torch.bool), mask])
    nll = ours.nll(e0, tags0, mask0, reduction="none")
    assert float(nll[0].detach()) == 0.0
    assert torch.allclose(nll[1:], -peer(e, tags, mask, reduction="none"))
    assert ours.decode(e0, mask0)[0].tolist() == [0] * 7


def test_marginals_sum_to_one_and_match_brute_force() -> None:
    e, _, mask = batch(2, [3, 1], 3)
    crf, _ = pair(3, 2)
    m = crf.marginals(e, mask)
    for b, L in enumerate([3, 1]):
        probs = torch.zeros(3, 3, dtype=torch.float64)
        ys = list(itertools.product(range(3), repeat=L))
        tags = torch.zeros(len(ys), 3, dtype=torch.long)
        tags[:, :L] = torch.tensor(ys)
        lp = -crf.nll(e[b : b + 1].expand(len(ys), -1, -1), tags, mask[b : b + 1].expand(len(ys), -1), "none").detach()
        for y, p in zip(ys, lp.exp().tolist()):
            for t, j in enumerate(y):
                probs[t, j] += p
        assert torch.allclose(m[b], probs, atol=1e-9)


def test_constrained_decoding_is_always_valid() -> None:
    c = span_constraints(TAGS, "IOB2")
    crf = CRF(len(TAGS), constraints=c)
    e, _, mask = batch(0, [6] * 100, len(TAGS), torch.float32)
    e[:, :, 2] += 2.0  # I-PER everywhere is tempting
    paths = crf.decode(e, mask)
    for row in paths.tolist():
        prev = "O"
        for t in (TAGS[j] for j in row):
            assert not t.startswith("I-") or prev[2:] == t[2:], row
            prev = t
    kp, ks = crf.nbest(e[:3], mask[:3], k=4)
    assert kp.shape == (3, 4, 6) and bool((ks[:, :-1] >= ks[:, 1:]).all())
    assert torch.equal(kp[:, 0], paths[:3])


def test_constraints_are_not_saved_with_the_weights() -> None:
    crf = CRF(len(TAGS), constraints=span_constraints(TAGS, "IOB2"))
    assert set(crf.state_dict()) == {"transitions", "start", "end"}
    with pytest.raises(ConfigError):
        CRF(3, constraints=span_constraints(TAGS, "IOB2"))
    with pytest.raises(ConfigError):
        crf.nll(torch.zeros(1, 2, 5), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool), "avg")  # type: ignore[arg-type]


def test_float32_matches_float64() -> None:
    e, tags, mask = batch(9, [8, 3, 5, 1], 6)
    crf, _ = pair(6, 9)
    ref = crf.nll(e, tags, mask, "none")
    got = crf.float().nll(e.float(), tags, mask, "none")
    assert got.dtype == torch.float32 and torch.allclose(got.double(), ref, rtol=1e-5)


def test_unknown_labels_are_summed_out() -> None:
    """-100 at a real position: the NLL marginalises it, = -log sum over its tag of p(path)."""
    e, tags, mask = batch(4, [4, 3], 3)
    crf, _ = pair(3, 4)
    partial = tags.clone()
    partial[0, 1] = -100
    partial[1, 0] = -100
    partial[1, 2] = -100
    got = crf.nll(e, partial, mask, "none")
    for b, holes in ((0, [1]), (1, [0, 2])):
        total = torch.tensor(0.0, dtype=torch.float64)
        for fill in itertools.product(range(3), repeat=len(holes)):
            y = tags[b : b + 1].clone()
            y[0, holes] = torch.tensor(fill)
            total = total + torch.exp(-crf.nll(e[b : b + 1], y, mask[b : b + 1], "none")[0])
        assert torch.allclose(got[b], -torch.log(total))
    fully_unknown = torch.full_like(tags, -100)
    assert torch.allclose(crf.nll(e, fully_unknown, mask, "none"), torch.zeros(2, dtype=torch.float64), atol=1e-9)


# --- BiLSTM-CRF through the public API -----------------------------------------------------------

FIRST = ["anna", "omar", "li", "sven", "maria"]
LAST = ["smith", "khan", "wei", "berg"]
PLACES = [["paris"], ["new", "york"], ["rio", "de", "janeiro"], ["oslo"]]
FILLER = ["the", "met", "in", "at", "today", "said", "and", "went", "to", "a", "visit"]


def ner_set(n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks: list[str] = []
        tags: list[str] = []
        for _ in range(rng.randint(2, 5)):
            r = rng.random()
            if r < 0.3:
                name = [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.6 else [])
                toks += name
                tags += ["B-PER"] + ["I-PER"] * (len(name) - 1)
            elif r < 0.5:
                place = rng.choice(PLACES)
                toks += place
                tags += ["B-LOC"] + ["I-LOC"] * (len(place) - 1)
            else:
                toks.append(rng.choice(FILLER))
                tags.append("O")
        out.append({"tokens": toks, "tags": tags})
    return out




def test_bilstm_crf_learns_ner_and_round_trips(tmp_path) -> None:
    import seqlab

    train, test = ner_set(150, 0), ner_set(40, 1)
    model = seqlab.build(
        "lstm", task="labeling", bidirectional=True, head="crf", d_model=16, hidden_size=16,
        train={"epochs": 6, "batch_size": 16, "lr": 0.02, "progress": False, "patience": None},
    )
    model.fit(train)
    losses = [h["train_loss"] for h in model.result_.history]
    assert losses[-1] < 0.5 * losses[0], losses
    metrics = model.evaluate(test)
    assert metrics["f1"] > 0.8, metrics
    inputs = [ex["tokens"] for ex in test] + [["maria", "went", "to", "rio", "de", "janeiro"]]
    preds = model.predict(inputs)
    assert all(len(p) == len(x) and valid_iob2(p) for p, x in zip(preds, inputs))
    model.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert again.head == "crf" and again.predict(inputs) == preds
    assert again.evaluate(test) == metrics


def test_crf_head_is_rejected_where_it_does_not_apply() -> None:
    import seqlab
    from seqlab.errors import ConfigError

    with pytest.raises(ConfigError, match="crf"):
        seqlab.build("lstm", task="classification", head="crf")
    with pytest.raises(ConfigError, match="crf"):
        seqlab.build("gru", task="lm", head="crf")
