"""RNN encoder-decoder: padding invariance, attention against hand computations, the stepper
protocol against the full forward, scheduled sampling against Bengio et al.'s formulas, and a
tiny reversal task that attention learns."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from seqlab.errors import ConfigError
from seqlab.inference.decoding import beam_search, greedy
from seqlab.models.layers.seq2seq_attention import SourceAttention, masked_softmax
from seqlab.models.seq2seq import Seq2SeqConfig, Seq2SeqModule, teacher_forcing_schedule

BOS, EOS = 2, 3
ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general")
VARIANTS = [(a, c) for a in ATTENTIONS for c in ("gru", "lstm")]
PAIRS = [([5, 6, 7, 8, 9], [7, 8, 9]), ([6, 5], [5, 6, 6, 7]), ([9, 8, 7], [8])]


def _module(attention: str, cell: str = "gru", **kw: Any) -> Seq2SeqModule:
    cfg = Seq2SeqConfig(cell=cell, attention=attention, d_model=8, hidden_size=6, num_layers=2,
                        dropout=0.0, **kw)
    return Seq2SeqModule(cfg, 11, 12).eval()


def _batch(pairs: list[tuple[list[int], list[int]]], src_pad: int = 0, tgt_pad: int = 0, left: bool = False) -> dict[str, torch.Tensor]:
    """The generation task's batch: src_ids/src_mask, input_ids = BOS + target, labels = target + EOS."""
    s = max(len(p[0]) for p in pairs) + src_pad
    t = max(len(p[1]) for p in pairs) + 1 + tgt_pad
    b = len(pairs)
    out = {"src_ids": torch.zeros(b, s, dtype=torch.long), "src_mask": torch.zeros(b, s, dtype=torch.bool),
           "input_ids": torch.zeros(b, t, dtype=torch.long), "labels": torch.full((b, t), -100),
           "mask": torch.zeros(b, t, dtype=torch.bool), "index": torch.arange(b)}
    for i, (src, tgt) in enumerate(pairs):
        lo = s - len(src) if left else 0  # left: source padded on the left (the model must not care)
        out["src_ids"][i, lo : lo + len(src)] = torch.tensor(src)
        out["src_mask"][i, lo : lo + len(src)] = True
        out["input_ids"][i, : len(tgt) + 1] = torch.tensor([BOS, *tgt])
        out["labels"][i, : len(tgt) + 1] = torch.tensor([*tgt, EOS])
        out["mask"][i, : len(tgt) + 1] = True
    return out


# --- scheduled sampling -------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(i=st.integers(0, 10**6), k=st.floats(0.0, 1.0), c=st.floats(0.0, 1e-2), eps=st.floats(0.0, 1.0))
def test_linear_schedule(i: int, k: float, c: float, eps: float) -> None:
    got = teacher_forcing_schedule("linear", i, k=k, c=c, epsilon=eps)
    assert got == pytest.approx(max(eps, k - c * i))


@settings(max_examples=50, deadline=None)
@given(i=st.integers(0, 10**5), k=st.floats(0.5, 0.99999), ks=st.floats(1.0, 1e4))
def test_exponential_and_inverse_sigmoid_schedules(i: int, k: float, ks: float) -> None:
    assert teacher_forcing_schedule("exponential", i, k=k) == pytest.approx(k**i)
    assume(i / ks < 700)  # beyond, exp overflows in the oracle (the schedule returns ~0 there)
    assert teacher_forcing_schedule("inverse_sigmoid", i, k=ks) == pytest.approx(ks / (ks + math.exp(i / ks)))


def test_schedule_textbook_values_and_hook() -> None:
    assert teacher_forcing_schedule("inverse_sigmoid", 0, k=10) == pytest.approx(10 / 11)
    assert 0.0 <= teacher_forcing_schedule("inverse_sigmoid", 10**9, k=10) < 1e-300  # no overflow
    assert teacher_forcing_schedule("linear", 5000, k=1.0, c=1e-4, epsilon=0.2) == pytest.approx(0.5)
    assert teacher_forcing_schedule("linear", 50000, k=1.0, c=1e-4, epsilon=0.2) == pytest.approx(0.2)
    assert teacher_forcing_schedule("none", 123, ratio=0.7) == 0.7
    module = _module("luong_dot", scheduled_sampling="exponential", schedule_k=0.5)
    assert module.teacher_forcing_ratio == 1.0
    module.set_step(3)
    assert module.teacher_forcing_ratio == pytest.approx(0.125)
    with pytest.raises(ConfigError, match="step"):
        teacher_forcing_schedule("linear", -1)
    with pytest.raises(ConfigError, match="schedule"):
        teacher_forcing_schedule("cosine", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw,match", [
    ({"attention": "global"}, "attention"), ({"cell": "elman"}, "cell"), ({"teacher_forcing": 1.5}, "teacher_forcing"),
    ({"scheduled_sampling": "exponential", "schedule_k": 1.2}, "0 < schedule_k"),
    ({"scheduled_sampling": "inverse_sigmoid", "schedule_k": 0.5}, "schedule_k >= 1"),
    ({"hidden_size": 0}, "hidden_size"), ({"dropout": 1.0}, "dropout"), ({"own_prediction": "beam"}, "own_prediction"),
])
def test_bad_config(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Seq2SeqConfig(**kw)


def test_bad_module_arguments() -> None:
    with pytest.raises(ConfigError, match="share_embeddings"):
        Seq2SeqModule(Seq2SeqConfig(share_embeddings=True), 10, 12)
    with pytest.raises(ConfigError, match="teacher_forcing_ratio"):
        _module("none")(_batch(PAIRS), teacher_forcing_ratio=-0.1)


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = _module("bahdanau", seed=4), _module("bahdanau", seed=4)
    assert torch.rand(1).item() == before.item()
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), na
    c = _module("bahdanau", seed=5)
    assert not torch.equal(a.bridge.weight, c.bridge.weight)


# --- padding invariance and attention weights ----------------------------------------------
@pytest.mark.parametrize("attention,cell", VARIANTS)
@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_padding_never_changes_real_outputs(attention: str, cell: str, ratio: float) -> None:
    module = _module(attention, cell)
    alone, alone_w = [], []
    for p in PAIRS:
        alone.append(module(_batch([p]), teacher_forcing_ratio=ratio)[0])  # (T_i, V)
        alone_w.append(module.attention)  # (1, T_i, S_i) or None
    for src_pad, tgt_pad, left in ((0, 0, False), (3, 0, False), (2, 2, True), (0, 3, False)):
        batch = _batch(PAIRS, src_pad, tgt_pad, left)
        logits = module(batch, teacher_forcing_ratio=ratio)  # (B, T, V)
        weights = module.attention
        for i, (_, tgt) in enumerate(PAIRS):
            n = len(tgt) + 1
            torch.testing.assert_close(logits[i, :n], alone[i][:n], rtol=1e-5, atol=1e-6)
            if attention == "none":
                assert weights is None
                continue
            assert weights is not None
            real = weights[i, :n][:, batch["src_mask"][i]]  # (n, len(src))
            ref = alone_w[i]
            assert ref is not None
            torch.testing.assert_close(real, ref[0, :n], rtol=1e-5, atol=1e-6)


_MODULES = {v: _module(*v) for v in VARIANTS}
_SEQ = st.lists(st.integers(5, 10), min_size=1, max_size=4)


@settings(max_examples=30, deadline=None)
@given(variant=st.sampled_from(VARIANTS), pairs=st.lists(st.tuples(_SEQ, _SEQ), min_size=1, max_size=3),
       src_pad=st.integers(0, 2), left=st.booleans(), ratio=st.sampled_from([0.0, 1.0]))
def test_padding_invariance_property(variant: tuple[str, str], pairs: list, src_pad: int, left: bool, ratio: float) -> None:
    """Any tiny batch, any extra source padding on either side: each row's logits are those of the
    pair alone (free-running with argmax feeding, or teacher-forced)."""
    module = _MODULES[variant]
    logits = module(_batch(pairs, src_pad, 1, left), teacher_forcing_ratio=ratio)
    for i, pair in enumerate(pairs):
        alone = module(_batch([pair]), teacher_forcing_ratio=ratio)[0]  # (T_i, V)
        torch.testing.assert_close(logits[i, : alone.shape[0]], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS[1:])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_attention_is_a_distribution_over_real_source_positions(attention: str, input_feeding: bool) -> None:
    module = _module(attention, input_feeding=input_feeding)
    batch = _batch(PAIRS, src_pad=2, left=True)
    module(batch)
    w = module.attention
    assert w is not None and w.shape == (3, batch["input_ids"].shape[1], batch["src_ids"].shape[1])
    assert (w >= 0).all()
    assert torch.equal(w * ~batch["src_mask"][:, None], torch.zeros_like(w))
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))


def test_masked_softmax_by_hand() -> None:
    scores = torch.tensor([[[1.0, 2.0, 30.0]], [[0.5, 0.5, 0.5]]])  # (B=2, T=1, S=3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    w = masked_softmax(scores, mask)
    e1, e2 = math.exp(1.0), math.exp(2.0)
    torch.testing.assert_close(w[0, 0], torch.tensor([e1 / (e1 + e2), e2 / (e1 + e2), 0.0]))
    assert torch.equal(w[1], torch.zeros(1, 3))  # no real position: zeros, not NaN


def test_bahdanau_scores_by_hand() -> None:
    torch.manual_seed(0)
    att = SourceAttention("bahdanau", query_dim=3, memory_dim=4, attention_dim=2)
    q, mem = torch.randn(1, 2, 3), torch.randn(1, 3, 4)  # (B, T, Q), (B, S, M)
    got = att.scores(q, att.keys(mem))
    wq, bq, wk, v = att.query_proj.weight, att.query_proj.bias, att.key_proj.weight, att.v  # type: ignore[union-attr]
    for t in range(2):
        for s in range(3):
            hidden = [math.tanh(sum(wq[a, i].item() * q[0, t, i].item() for i in range(3)) + bq[a].item()
                                + sum(wk[a, j].item() * mem[0, s, j].item() for j in range(4))) for a in range(2)]
            assert got[0, t, s].item() == pytest.approx(sum(v[a].item() * hidden[a] for a in range(2)), abs=1e-5)


def test_luong_scores_and_context_by_hand() -> None:
    torch.manual_seed(0)
    q, mem = torch.randn(1, 1, 3), torch.randn(1, 2, 3)
    dot = SourceAttention("luong_dot", 3, 3)
    ctx, w = dot(q, dot.keys(mem), mem, torch.tensor([[True, True]]))
    sc = [sum(q[0, 0, i].item() * mem[0, s, i].item() for i in range(3)) for s in range(2)]
    z = math.exp(sc[0]) + math.exp(sc[1])
    assert w[0, 0].tolist() == pytest.approx([math.exp(sc[0]) / z, math.exp(sc[1]) / z], abs=1e-6)
    assert ctx[0, 0].tolist() == pytest.approx((w[0, 0, 0] * mem[0, 0] + w[0, 0, 1] * mem[0, 1]).tolist(), abs=1e-6)
    gen = SourceAttention("luong_general", 3, 4)
    mem4 = torch.randn(1, 2, 4)
    wa = gen.key_proj.weight  # type: ignore[union-attr]  # (Q, M)
    got = gen.scores(q, gen.keys(mem4))
    for s in range(2):
        ref = sum(q[0, 0, i].item() * wa[i, j].item() * mem4[0, s, j].item() for i in range(3) for j in range(4))
        assert got[0, 0, s].item() == pytest.approx(ref, abs=1e-5)


def test_without_attention_the_decoder_never_reads_the_memory() -> None:
    """Only the encoder summary reaches the decoder: NaN memory changes nothing."""
    module = _module("none", "lstm")
    batch = _batch(PAIRS)
    encode = module.encode

    def poisoned(*args: Any) -> Any:  # NaN per-position memory, the real final states
        memory, hn, cn = encode(*args)
        return torch.full_like(memory, float("nan")), hn, cn

    base_tf, base_free = module(batch), module(batch, teacher_forcing_ratio=0.0)
    module.encode = poisoned  # type: ignore[method-assign]
    torch.testing.assert_close(module(batch), base_tf)
    torch.testing.assert_close(module(batch, teacher_forcing_ratio=0.0), base_free)
    hyps = beam_search(module, torch.full((3,), BOS), module.start(batch), 6, None, beam=2)
    assert all(math.isfinite(h[0].score) for h in hyps)
    attended = _module("bahdanau")
    state = attended.start(batch)
    poisoned_logp, _ = attended.step(torch.full((3,), BOS), {**state, "memory": state["memory"] * float("nan")})
    assert torch.isnan(poisoned_logp).all()  # the check above can fail: attention does read it


# --- stepper protocol ---------------------------------------------------------------------
@pytest.mark.parametrize("attention,cell", VARIANTS)
def test_step_decoding_equals_free_running_forward(attention: str, cell: str) -> None:
    module = _module(attention, cell)
    batch = _batch(PAIRS, src_pad=1, left=True)
    t = batch["input_ids"].shape[1]
    logits = module(batch, teacher_forcing_ratio=0.0)  # argmax fed back at every step
    hyps = greedy(module, torch.full((3,), BOS), module.start(batch), max_len=t)
    assert [h.tokens for h in hyps] == logits.argmax(-1).tolist()
    state, tok, steps = module.start(batch), torch.full((3,), BOS), []
    for _ in range(t):
        step_logits, state = module.step(tok, state)
        steps.append(step_logits)
        tok = step_logits.argmax(-1)
    torch.testing.assert_close(torch.stack(steps, 1), logits, rtol=1e-5, atol=1e-6)
    beam1 = beam_search(module, torch.full((3,), BOS), module.start(batch), beam=1, max_len=t)
    assert [b[0].tokens for b in beam1] == [h.tokens for h in hyps]


@pytest.mark.parametrize("attention,cell", VARIANTS)
def test_reorder_selects_rows(attention: str, cell: str) -> None:
    module = _module(attention, cell)
    batch = _batch(PAIRS)
    state = module.start(batch)
    _, state = module.step(torch.tensor([BOS, 5, 6]), state)
    index = torch.tensor([2, 0, 0])
    tokens = torch.tensor([7, 8, 9])
    got, _ = module.step(tokens[index], module.reorder(state, index))
    full, _ = module.step(tokens, state)
    torch.testing.assert_close(got, full[index])
    assert ("src_mask" in state) == (attention != "none")  # the fixed-vector decoder carries no memory
    assert attention == "none" or torch.equal(state["src_mask"], batch["src_mask"])  # not mutated


@pytest.mark.parametrize("attention", ["none", "luong_dot", "luong_general"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_parallel_fast_path_matches_step_reference(attention: str, cell: str) -> None:
    """Under full teacher forcing, variants without input feeding run the decoder once over
    (B, T): pinned to the step-by-step reference on outputs and gradients."""
    module = _module(attention, cell, input_feeding=False)
    assert module.parallel
    batch = _batch(PAIRS, src_pad=1)
    fast = module._forward_parallel(batch["input_ids"], module.start(batch))
    w_fast = module.attention
    grads_fast = torch.autograd.grad(fast.sin().sum(), list(module.parameters()), allow_unused=True)
    ref = module._forward_steps(batch["input_ids"], module.start(batch), 1.0, None)
    grads_ref = torch.autograd.grad(ref.sin().sum(), list(module.parameters()), allow_unused=True)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    if w_fast is not None:
        torch.testing.assert_close(w_fast, module.attention)
    for gf, gr in zip(grads_fast, grads_ref):
        assert (gf is None) == (gr is None)
        if gf is not None:
            torch.testing.assert_close(gf, gr, rtol=1e-4, atol=1e-6)


# --- teacher forcing < 1 --------------------------------------------------------------------
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("own", ["argmax", "sample"])
def test_scheduled_sampling_gradients_and_seeding(attention: str, own: str) -> None:
    module = _module(attention, "lstm", own_prediction=own, teacher_forcing=0.5).train()
    batch = _batch(PAIRS)
    logits = module(batch)  # the module's ratio (0.5) in training mode
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=-100)
    loss.backward()
    grads = [p.grad for p in module.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    a = module(batch, generator=torch.Generator().manual_seed(7))
    b = module(batch, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("own", ["argmax", "sample"])
def test_ratio_mixes_gold_and_own_tokens(own: str) -> None:
    """Teacher forcing at ratio 0.5 equals a replay through the public ``step``: per row and step,
    draw the model's own token (argmax, or a sample from its softmax) and a coin from the same
    seeded generator, and feed the own token where the coin is >= the ratio, else the gold one."""
    module = _module("bahdanau", own_prediction=own)
    batch = _batch([([5, 6, 7], [8, 9, 10, 8, 9, 10, 8])] * 8)
    ids = batch["input_ids"]
    mixed = module(batch, teacher_forcing_ratio=0.5, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        state, prev, replay = module.start(batch), ids[:, 0], []
        for t in range(ids.shape[1]):
            if t > 0:
                last = replay[-1]
                mine = last.argmax(-1) if own == "argmax" else torch.multinomial(last.softmax(-1), 1, generator=gen)[:, 0]
                coin = torch.rand(ids.shape[0], generator=gen) >= 0.5
                prev = torch.where(coin, mine, ids[:, t])
            step_logits, state = module.step(prev, state)
            replay.append(step_logits)
    torch.testing.assert_close(mixed, torch.stack(replay, 1))
    gold = module(batch, teacher_forcing_ratio=1.0)
    assert not all(torch.allclose(mixed[i], gold[i]) for i in range(8))  # some row fed its own token


# --- learning -------------------------------------------------------------------------------
def _reverse_data(n: int, lo: int, hi: int, gen: torch.Generator) -> list[tuple[list[int], list[int]]]:
    out = []
    for _ in range(n):
        length = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        src = (torch.randint(5, 11, (length,), generator=gen)).tolist()
        out.append((src, src[::-1]))
    return out


def _train_reverse(attention: str, steps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    cfg = Seq2SeqConfig(attention=attention, d_model=16, hidden_size=32, dropout=0.0, input_feeding=False)
    module = Seq2SeqModule(cfg, 11, 11)
    opt = torch.optim.Adam(module.parameters(), lr=5e-3)
    for _ in range(steps):
        batch = _batch(_reverse_data(32, 3, 7, gen))
        logits = module(batch)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()
    test = _reverse_data(100, 3, 7, torch.Generator().manual_seed(1))
    batch = _batch(test)
    with torch.no_grad():
        hyps = greedy(module, torch.full((len(test),), BOS), module.start(batch), max_len=9, eos=EOS)
    return sum(h.tokens == tgt for h, (_, tgt) in zip(hyps, test)) / len(test)


def test_attention_learns_to_reverse_and_the_fixed_vector_lags() -> None:
    """Exact-match greedy reversal of 3-7 tokens after 250 steps (a few seconds): attention
    solves it; one fixed vector (Sutskever et al. 2014) is clearly behind at the same budget."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention on a busy machine
    try:
        with_attention = _train_reverse("luong_general", 250)
        without = _train_reverse("none", 250)
    finally:
        torch.set_num_threads(threads)
    assert with_attention >= 0.95
    assert without <= with_attention - 0.15


def test_trains_on_the_generation_task_batches() -> None:
    """The generation task's own collate, loss and decode_ids drive the module end to end."""
    from seqlab.tasks import make_task

    gen = torch.Generator().manual_seed(0)
    words = ["".join("abcdef"[i] for i in torch.randint(0, 6, (int(torch.randint(2, 5, (1,), generator=gen)),),
                                                     generator=gen).tolist()) for _ in range(64)]
    data = [{"source": list(w), "target": list(w[::-1])} for w in words]
    task = make_task("generation").fit(data)
    cfg = Seq2SeqConfig(attention="bahdanau", cell="lstm", d_model=16, hidden_size=32, dropout=0.0)
    module = Seq2SeqModule(cfg, task.input_size, task.output_size)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    items = task.encode(data).items
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(60):
            batch = task.collate(items[(step % 4) * 16 : (step % 4 + 1) * 16])
            total, units = task.loss(module(batch), batch)
            opt.zero_grad()
            (total / units).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    module.eval()
    batch = task.collate(items)
    with torch.no_grad():
        hyps = greedy(module, torch.full((len(items),), task.bos_id), module.start(batch), max_len=6, eos=task.eos_id)
    predictions = task.decode_ids([h.tokens for h in hyps])
    accuracy = sum(p == d["target"] for p, d in zip(predictions, data)) / len(data)
    assert accuracy >= 0.9, accuracy
