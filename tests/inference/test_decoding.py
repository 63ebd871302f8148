"""Decoding against oracles: exhaustive beam search equals brute-force enumeration of every
sequence (best and n-best in order, with and without length normalisation), beam 1 equals
greedy, batched equals row by row, state reordering over nested states, top-k/top-p support
by hand, and sampling frequencies against the exact distribution."""

import itertools
import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from seqlab.errors import ConfigError
from seqlab.inference.decoding import (
    FunctionStepper,
    beam_search,
    filter_logits,
    greedy,
    length_penalty,
    reorder_state,
    sample,
)


class PrefixModel:
    """Next-token log-probs depend on the whole prefix (start token included): a fixed random
    table, drawn lazily per prefix from a seeded generator. State: (N, t) prefix ids."""

    def __init__(self, vocab: int, seed: int, sharp: float = 2.0) -> None:
        self.vocab, self.seed, self.sharp = vocab, seed, sharp
        self.table: dict[tuple[int, ...], Tensor] = {}

    def logp(self, prefix: tuple[int, ...]) -> Tensor:
        if prefix not in self.table:
            g = torch.Generator().manual_seed(hash((self.seed, prefix)) % (2**31))
            self.table[prefix] = torch.log_softmax(self.sharp * torch.randn(self.vocab, generator=g, dtype=torch.float64), -1)
        return self.table[prefix]

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        prefix = torch.cat([state, tokens[:, None]], dim=1)  # (N, t + 1)
        return torch.stack([self.logp(tuple(r)) for r in prefix.tolist()]), prefix

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        return reorder_state(state, index)

    def init(self, b: int) -> Tensor:
        return torch.zeros(b, 0, dtype=torch.long)


def enumerate_all(m: PrefixModel, start: int, max_len: int, eos: int, min_len: int) -> list[tuple[list[int], float, bool]]:
    """Every sequence the decoders can produce: w + <eos> (len(w) >= min_len, < max_len) and
    unfinished w of max_len tokens, with its log-probability."""
    words = [w for w in range(m.vocab) if w != eos]
    out = []
    for n in range(0, max_len + 1):
        for w in itertools.product(words, repeat=n):
            prefix, lp = (start,), 0.0
            for tok in w:
                lp += float(m.logp(prefix)[tok])
                prefix = (*prefix, tok)
            if n == max_len:
                out.append((list(w), lp, False))
            elif n >= min_len:
                out.append((list(w), lp + float(m.logp(prefix)[eos]), True))
    return out


def ranked(cands: list[tuple[list[int], float, bool]], penalty: Any, alpha: float) -> list[tuple[list[int], float]]:
    scored = [(w, lp / length_penalty(len(w) + int(f), penalty, alpha)) for w, lp, f in cands]
    return sorted(scored, key=lambda x: -x[1])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000), vocab=st.integers(2, 4), max_len=st.integers(1, 3),
    penalty=st.sampled_from(["none", "gnmt", "power"]), alpha=st.sampled_from([0.0, 0.6, 1.0, 2.0]),
    n_best=st.integers(1, 4), min_len=st.integers(0, 1),
)
def test_exhaustive_beam_equals_enumeration(
    seed: int, vocab: int, max_len: int, penalty: Any, alpha: float, n_best: int, min_len: int
) -> None:
    m = PrefixModel(vocab, seed)
    eos = vocab - 1
    min_len = min(min_len, max_len)
    beam = vocab**max_len
    starts = [0, vocab - 1]  # two rows in one batch, different prefixes
    got = beam_search(m, torch.tensor(starts), m.init(2), max_len, eos, beam=beam, n_best=n_best, penalty=penalty, alpha=alpha, min_len=min_len)
    for row, s in zip(got, starts):
        want = ranked(enumerate_all(m, s, max_len, eos, min_len), penalty, alpha)[:n_best]
        assert [h.tokens for h in row] == [w for w, _ in want]
        assert [h.score for h in row] == pytest.approx([sc for _, sc in want], abs=1e-9)
        for h in row:
            assert h.score == pytest.approx(h.log_prob / length_penalty(h.length, penalty, alpha))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 6), max_len=st.integers(1, 6))
def test_beam_one_is_greedy(seed: int, vocab: int, max_len: int) -> None:
    m = PrefixModel(vocab, seed)
    start = torch.arange(vocab)
    g = greedy(m, start, m.init(vocab), max_len, eos=0)
    b = beam_search(m, start, m.init(vocab), max_len, eos=0, beam=1)
    assert [h.tokens for h in g] == [r[0].tokens for r in b]
    assert [h.finished for h in g] == [r[0].finished for r in b]
    assert [h.log_prob for h in g] == pytest.approx([r[0].log_prob for r in b])


def test_greedy_follows_argmax_and_scores_by_hand() -> None:
    m = PrefixModel(5, 3)
    (h,) = greedy(m, torch.tensor([2]), m.init(1), 6, eos=4)
    prefix, lp, toks = (2,), 0.0, []
    for _ in range(6):
        nxt = int(m.logp(prefix).argmax())
        lp += float(m.logp(prefix)[nxt])
        if nxt == 4:
            break
        toks.append(nxt)
        prefix = (*prefix, nxt)
    assert h.tokens == toks and h.log_prob == pytest.approx(lp)
    assert h.finished == (len(toks) < 6 or nxt == 4)


def test_batched_equals_one_by_one() -> None:
    m = PrefixModel(4, 11, sharp=0.7)
    starts = [0, 1, 2, 3, 1]
    both = beam_search(m, torch.tensor(starts), m.init(5), 5, eos=3, beam=3, n_best=3, penalty="gnmt", alpha=0.6)
    for s, row in zip(starts, both):
        (alone,) = beam_search(m, torch.tensor([s]), m.init(1), 5, eos=3, beam=3, n_best=3, penalty="gnmt", alpha=0.6)
        assert [h.tokens for h in row] == [h.tokens for h in alone]
        assert [h.score for h in row] == pytest.approx([h.score for h in alone])
    g = greedy(m, torch.tensor(starts), m.init(5), 5, eos=3)
    assert g == [greedy(m, torch.tensor([s]), m.init(1), 5, eos=3)[0] for s in starts]


class ConstantModel:
    """Same next-token distribution at every step (state: None)."""

    def __init__(self, probs: list[float]) -> None:
        self.logp = torch.tensor(probs).log()

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.logp.expand(tokens.shape[0], -1), state

    def reorder(self, state: Any, index: Tensor) -> Any:
        return state


def test_eos_handling_min_len_and_no_eos() -> None:
    m = ConstantModel([0.2, 0.1, 0.7])  # eos = 2 is the most likely token
    (h,) = greedy(m, torch.tensor([0]), None, 5, eos=2)
    assert h.tokens == [] and h.finished and h.log_prob == pytest.approx(math.log(0.7))
    (h,) = greedy(m, torch.tensor([0]), None, 5, eos=2, min_len=2)
    assert h.tokens == [0, 0] and h.finished
    assert h.log_prob == pytest.approx(2 * math.log(0.2) + math.log(0.7))  # not renormalised
    (h,) = greedy(m, torch.tensor([0]), None, 4, eos=None)
    assert h.tokens == [2, 2, 2, 2] and not h.finished
    (row,) = beam_search(m, torch.tensor([0]), None, 3, eos=2, beam=4, n_best=3)
    assert [x.tokens for x in row] == [[], [0], [1]]  # finished ones set aside, best first
    assert all(x.finished for x in row)
    # unfinished hypotheses at max_len are returned when nothing better finished
    (row,) = beam_search(ConstantModel([0.9, 0.05, 0.05]), torch.tensor([0]), None, 2, eos=2, beam=2)
    assert row[0].tokens == [0, 0] and not row[0].finished


def test_length_penalty_changes_the_winner() -> None:
    # one long likely path vs a short one: normalisation favours the long hypothesis
    m = ConstantModel([0.6, 0.05, 0.35])
    (raw,) = beam_search(m, torch.tensor([0]), None, 6, eos=2, beam=4)
    (norm,) = beam_search(m, torch.tensor([0]), None, 6, eos=2, beam=4, penalty="power", alpha=1.0)
    assert raw[0].tokens == []
    # per token: log .35 = -1.05 for [], (k log .6 + log .35) / (k + 1) for k zeros then <eos>,
    # log .6 = -0.51 for the six zeros left unfinished at max_len: the best
    assert norm[0].tokens == [0] * 6 and not norm[0].finished
    assert length_penalty(3, "gnmt", 1.0) == pytest.approx(8 / 6)


def test_reorder_state_on_nested_states() -> None:
    h = torch.arange(2 * 3 * 2).view(2, 3, 2)  # (L, N, H) an RNN state
    kv = torch.arange(3 * 4).view(3, 1, 4, 1)  # (N, heads, T, D) a KV cache
    idx = torch.tensor([2, 2, 0])
    out = reorder_state({"rnn": (h, h + 1), "t": 7, "none": None}, idx, dim=1)
    assert torch.equal(out["rnn"][0], h[:, [2, 2, 0]]) and torch.equal(out["rnn"][1], h[:, [2, 2, 0]] + 1)
    assert out["t"] == 7 and out["none"] is None
    assert torch.equal(reorder_state([kv], idx)[0], kv[[2, 2, 0]])
    stepper = FunctionStepper(lambda tok, s: (torch.zeros(tok.shape[0], 3), s), batch_dim=1)
    assert torch.equal(stepper.reorder(h, idx), h[:, [2, 2, 0]])


def test_filter_logits_support_by_hand() -> None:
    probs = torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.15]])
    logits = probs.log()
    keep = lambda out: (out > float("-inf"))[0].tolist()  # noqa: E731
    assert keep(filter_logits(logits, top_k=2)) == [False, True, False, True, False]
    # sorted: .4 .3 .15 .1 .05; mass before each: 0 .4 .7 .85 .95
    assert keep(filter_logits(logits, top_p=0.5)) == [False, True, False, True, False]
    assert keep(filter_logits(logits, top_p=0.7)) == [False, True, False, True, False]
    assert keep(filter_logits(logits, top_p=0.71)) == [False, True, False, True, True]
    assert keep(filter_logits(logits, top_p=0.1)) == [False, True, False, False, False]
    assert keep(filter_logits(logits, top_p=1.0)) == [True] * 5
    assert keep(filter_logits(logits, top_k=4, top_p=0.9)) == [False, True, True, True, True]
    with pytest.raises(ConfigError):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ConfigError):
        filter_logits(logits, top_k=0)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"), [(1.0, None, None), (0.5, None, None), (1.0, 2, None), (2.0, None, 0.75)]
)
def test_sampling_frequencies_match_the_distribution(temperature: float, top_k: int | None, top_p: float | None) -> None:
    p = torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15], dtype=torch.float64)
    m = ConstantModel(p.tolist())
    n = 20000
    hyps = sample(m, torch.zeros(n, dtype=torch.long), None, 1, None, temperature=temperature, top_k=top_k, top_p=top_p, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(torch.tensor([h.tokens[0] for h in hyps]), minlength=5).double() / n
    want = p ** (1 / temperature)  # tempered, then truncated by hand, then renormalised
    want = want / want.sum()
    if top_k == 2:
        want = want * torch.tensor([0, 1, 0, 1, 0])
    if top_p == 0.75:  # tempered: sorted probs .285 .247 .175 .156 .126 -> keep 3 (mass before 3rd: .532)
        order = want.argsort(descending=True)
        before = want[order].cumsum(0) - want[order]
        drop = torch.zeros(5, dtype=torch.bool)
        drop[order[before >= 0.75]] = True
        want = want.masked_fill(drop, 0.0)
    want = want / want.sum()
    assert counts.tolist() == pytest.approx(want.tolist(), abs=0.015)
    assert hyps[0].log_prob == pytest.approx(math.log(p[hyps[0].tokens[0]]))  # the model's own


def test_temperature_zero_is_greedy_and_seeds_repeat() -> None:
    m = PrefixModel(5, 7, sharp=0.5)
    start = torch.tensor([0, 1, 2])
    assert sample(m, start, m.init(3), 6, eos=4, temperature=0.0) == greedy(m, start, m.init(3), 6, eos=4)
    a = sample(m, start, m.init(3), 6, eos=4, generator=torch.Generator().manual_seed(5))
    b = sample(m, start, m.init(3), 6, eos=4, generator=torch.Generator().manual_seed(5))
    assert a == b


def test_bad_arguments_are_config_errors() -> None:
    m = ConstantModel([0.5, 0.5])
    with pytest.raises(ConfigError, match="max_len"):
        greedy(m, torch.tensor([0]), None, 0, eos=1)
    with pytest.raises(ConfigError, match="min_len"):
        greedy(m, torch.tensor([0]), None, 2, eos=None, min_len=1)
    with pytest.raises(ConfigError, match="beam"):
        beam_search(m, torch.tensor([0]), None, 2, eos=1, beam=0)
    with pytest.raises(ConfigError, match="length penalty"):
        beam_search(m, torch.tensor([0]), None, 2, eos=1, penalty="bad")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="temperature"):
        sample(m, torch.tensor([0]), None, 2, eos=1, temperature=-1.0)


# ------------------------------------------------------------------ LM steppers (models/sampling.py)

LM_DOCS = [{"text": "abba"}, {"text": "ba"}]


def _rnn_lm(cell: str = "lstm", **opts: Any) -> Any:
    import seqlab

    model = seqlab.build(cell if cell != "gru" else "gru", task="lm", task_options={"tokenizer": "char", "block_size": 16},
                         d_model=8, hidden_size=8, num_layers=2, dropout=0.0, **opts)
    model.task.fit(LM_DOCS)
    model.module_ = model._build_module()
    with torch.no_grad():  # sharper random distributions: fewer near-ties
        for p in model.module.parameters():
            p.mul_(3.0)
    return model


def _lm_enumeration(module: Any, prompt: list[int], vocab: int, max_len: int, eos: int) -> list[tuple[list[int], float, bool]]:
    """Every continuation scored by full forward passes over prompt + continuation."""

    def logp(seq: list[int]) -> Tensor:
        ids = torch.tensor([seq])
        with torch.no_grad():
            return torch.log_softmax(module({"input_ids": ids, "mask": torch.ones_like(ids, dtype=torch.bool)})[0, -1].double(), -1)

    out = []
    words = [w for w in range(vocab) if w != eos]
    for n in range(max_len + 1):
        for w in itertools.product(words, repeat=n):
            lp = sum(float(logp(prompt + list(w[:i]))[w[i]]) for i in range(n))
            if n == max_len:
                out.append((list(w), lp, False))
            else:
                out.append((list(w), lp + float(logp(prompt + list(w))[eos]), True))
    return out


def test_rnn_and_window_steppers_equal_enumeration() -> None:
    from seqlab.models.sampling import RecurrentStepper, WindowStepper

    model = _rnn_lm()
    module = model.module.eval()
    vocab, eos = model.task.output_size, model.task.codec.fitted_vocab.eos_id
    prompt = model.task.codec.encode("ab")
    want = ranked(_lm_enumeration(module, prompt, vocab, 2, eos), "gnmt", 1.0)[:4]
    for stepper in (RecurrentStepper(module), WindowStepper(module, 16)):
        start, state = stepper.prime(prompt)
        with torch.no_grad():
            (row,) = beam_search(stepper, start, state, 2, eos, beam=vocab**2, n_best=4, penalty="gnmt", alpha=1.0)
        assert [h.tokens for h in row] == [w for w, _ in want]
        assert [h.score for h in row] == pytest.approx([s for _, s in want], abs=1e-4)


def test_ngram_stepper_equals_the_backoff_tables() -> None:
    import seqlab
    from seqlab.models.classical.ngram import BOS, EOS, next_log10
    from seqlab.models.classical.ngram_stepper import NGramStepper

    model = seqlab.build("ngram", task="lm", task_options={"tokenizer": "char"}, order=3)
    model.fit(LM_DOCS * 3)
    tables = model.tables_  # type: ignore[attr-defined]
    stepper = NGramStepper(tables)
    history = [3, 4]  # model ids of two letters
    start, state = stepper.prime(history)
    logits, state = stepper.step(start, state)
    assert torch.allclose(logits[0], torch.from_numpy(next_log10(tables, history) * math.log(10)))
    logits, _ = stepper.step(torch.tensor([EOS]), state)  # </s>: a new sentence starts
    assert torch.allclose(logits[0], torch.from_numpy(next_log10(tables, []) * math.log(10)))
    # greedy through the decoding module equals iterating argmax of next_log10 (resets after </s>)
    hist, want = list(history), []
    for _ in range(8):
        nxt = int(next_log10(tables, hist).argmax())
        want.append(nxt)
        hist = [] if nxt in (EOS, BOS) else [*hist, nxt][-3:]
    start, state = stepper.prime(history)
    assert greedy(stepper, start, state, 8, None)[0].tokens == want


@pytest.mark.parametrize("family", ["lstm", "ngram"])
def test_generate_methods(family: str) -> None:
    import seqlab

    if family == "ngram":
        model = seqlab.build("ngram", task="lm", task_options={"tokenizer": "char"}, order=3).fit(LM_DOCS * 3)
    else:
        model = _rnn_lm()
    g = model.generate(["ab"], 6, method="greedy")
    assert g == model.generate(["ab"], 6, temperature=0.0)
    assert model.generate(["ab"], 6, seed=4, top_p=0.9) == model.generate(["ab"], 6, seed=4, top_p=0.9)
    beam = model.generate(["ab", "b"], 6, method="beam", beam=3, stop_at_eos=True)
    assert len(beam) == 2 and all(set(s) <= set("ab") for s in beam)
    if family == "lstm":  # a beam as wide as the search space returns the enumeration's best continuation
        module, codec = model.module.eval(), model.task.codec
        vocab, eos = model.task.output_size, codec.fitted_vocab.eos_id
        best = ranked(_lm_enumeration(module, codec.encode("ab"), vocab, 2, eos), "none", 1.0)[0][0]
        wide = model.generate(["ab"], 2, method="beam", beam=vocab**2, stop_at_eos=True)
        assert wide == [codec.detokenize(codec.decode(best))]
    with pytest.raises(ConfigError, match="method"):
        model.generate(["ab"], 3, method="nucleus")
