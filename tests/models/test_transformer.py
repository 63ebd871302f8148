"""Transformer family: fast == reference path (outputs, gradients) for every position scheme;
padding invariance; causality; cached decoding == full recomputation token for token; MoE
loss reaches the gradients; mlm pretraining transfers into a classifier."""

import pytest
import torch

import seqlab
from seqlab.errors import ConfigError, SeqlabError
from seqlab.inference.decoding import sample_logits
from seqlab.models.layers.attention import AttentionMask, make_attention_mask
from seqlab.models.layers.moe import MoEFeedForward
from seqlab.models.network import EndsConfig, Network, build_network
from seqlab.models.neural import NeuralModel
from seqlab.models.transformer import (
    TransformerConfig,
    TransformerDecoderBlock,
    TransformerEncoder,
    transfer_encoder,
)
from seqlab.tasks import make_task
from tests_support import assert_padding_invariant

SCHEMES = ["none", "sinusoidal", "learned", "rope", "alibi"]
DOCS = [{"text": "the cat sat on the mat"}, {"text": "a dog ran far away from the cat"}]
CLS = [{"text": "the cat sat", "label": "a"}, {"text": "a dog ran far away", "label": "b"}, {"text": "cat", "label": "a"}]
TAGS = [{"tokens": ["the", "cat", "sat"], "tags": ["O", "B-X", "O"]}, {"tokens": ["a", "dog"], "tags": ["O", "B-Y"]}]


def _cfg(**kw: object) -> TransformerConfig:
    base: dict = {"d_model": 8, "n_heads": 2, "num_layers": 2, "d_ff": 12, "dropout": 0.0}
    return TransformerConfig(**{**base, **kw})






def _use_ref(module: torch.nn.Module, flag: bool) -> None:
    for m in module.modules():
        if hasattr(m, "use_ref"):
            m.use_ref = flag


@pytest.mark.parametrize("positions", SCHEMES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("moe", [0, 3])
def test_fast_path_equals_reference(positions: str, causal: bool, moe: int) -> None:
    torch.manual_seed(0)
    enc = TransformerEncoder(_cfg(positions=positions, causal=causal, moe_experts=moe, moe_top_k=2), 6).double()
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    for mask in (torch.ones(3, 7, dtype=torch.bool), torch.arange(7)[None] < torch.tensor([[7], [4], [1]])):
        outs, grads = [], []
        for ref in (False, True):
            _use_ref(enc, ref)
            y = enc(x, mask)
            loss = (y**2).sum() + (enc.aux_loss if enc.aux_loss is not None else 0.0)
            params = [p for p in enc.parameters() if p.requires_grad]
            grads.append(torch.autograd.grad(loss, params, allow_unused=True))
            outs.append(y)
        torch.testing.assert_close(outs[0], outs[1])
        for a, r, p in zip(*grads, params):
            z = torch.zeros_like(p)
            torch.testing.assert_close(z if a is None else a, z if r is None else r)


@pytest.mark.parametrize("positions", SCHEMES)
@pytest.mark.parametrize("task_name,data", [("classification", CLS), ("labeling", TAGS), ("mlm", DOCS), ("lm", DOCS)])
def test_padding_never_changes_real_outputs(positions: str, task_name: str, data: list) -> None:
    task = make_task(task_name, {"block_size": 8} if task_name in ("lm", "mlm") else None).fit(data)
    torch.manual_seed(0)
    cfg = _cfg(positions=positions, causal=None, moe_experts=2)
    module = build_network(task, cfg, EndsConfig(pooling="mean"), TransformerEncoder).eval()
    batch = task.collate(task.encode(data).items, torch.Generator().manual_seed(0))
    assert_padding_invariant(module, batch, fills=(0, 7), atol=1e-5)  # <pad>, or a real token id


@pytest.mark.parametrize("positions", SCHEMES)
def test_encoder_padded_keys_never_leak(positions: str) -> None:
    torch.manual_seed(0)
    enc = TransformerEncoder(_cfg(positions=positions, causal=False), 8).eval()
    x = torch.randn(2, 6, 8)
    mask = torch.arange(6)[None] < torch.tensor([[4], [6]])
    y = enc(x, mask)
    x2 = x.clone()
    x2[0, 4:] = 50 * torch.randn(2, 8)
    y2 = enc(x2, mask)
    torch.testing.assert_close(y[0, :4], y2[0, :4])
    assert (y2[0, 4:] == 0).all()
    # and a bidirectional encoder does look at later real tokens
    x3 = x.clone()
    x3[1, 5] = torch.randn(8)  # (a constant shift would vanish in the LayerNorms)
    assert not torch.allclose(enc(x3, mask)[1, 0], y[1, 0])


@pytest.mark.parametrize("positions", SCHEMES)
def test_causal_encoder_does_not_see_the_future(positions: str) -> None:
    torch.manual_seed(0)
    enc = TransformerEncoder(_cfg(positions=positions, causal=True), 8).eval()
    x = torch.randn(1, 9, 8)
    mask = torch.ones(1, 9, dtype=torch.bool)
    y = enc(x, mask)
    x2 = x.clone()
    x2[0, 5:] = torch.randn(4, 8)
    y2 = enc(x2, mask)
    torch.testing.assert_close(y[:, :5], y2[:, :5])
    assert not torch.allclose(y[:, 5:], y2[:, 5:])


def _lm_model(positions: str, moe: int = 0) -> seqlab.models.neural.NeuralModel:
    model = seqlab.build("transformer", task="lm", task_options={"tokenizer": "char", "block_size": 16},
                         d_model=16, n_heads=2, num_layers=2, d_ff=24, dropout=0.0,
                         positions=positions, max_len=64, moe_experts=moe, moe_top_k=min(2, moe) or 1)
    model.task.fit(DOCS)
    model.module_ = model._build_module()
    with torch.no_grad():  # random weights large enough that decoding is not one repeated token
        for p in model.module.parameters():
            if p.dim() > 1:
                p.mul_(4.0)
    return model.module.eval()


def _pick(logits: torch.Tensor, last: int, temperature: float, gen: torch.Generator) -> int:
    """Greedy or sampled next token, never the previous one (so random weights cannot settle
    into repeating one token, which would make the comparison weak)."""
    logits = logits.clone()
    logits[:, last] = float("-inf")
    return int(sample_logits(logits, temperature, None, gen))


@pytest.mark.parametrize("positions", SCHEMES)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cached_decoding_equals_full_recomputation(positions: str, temperature: float) -> None:
    module = _lm_model(positions, moe=2 if positions == "rope" else 0)
    prompt = [5, 9, 7]
    n = 30
    # full recomputation over the whole sequence at each step
    gen = torch.Generator().manual_seed(3)
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids = torch.tensor([seq])
            logits = module({"input_ids": ids, "mask": torch.ones_like(ids, dtype=torch.bool)})
            seq.append(_pick(logits[:, -1], seq[-1], temperature, gen))
        # cached: prefill the prompt, then one token at a time
        gen = torch.Generator().manual_seed(3)
        h, state = module.encoder.step(module.frontend.embed(torch.tensor([prompt])), None)
        cached = list(prompt)
        hs = [h]
        for _ in range(n):
            cached.append(_pick(module.head(h[:, -1:], None)[:, -1], cached[-1], temperature, gen))
            h, state = module.encoder.step(module.frontend.embed(torch.tensor([cached[-1:]])), state)
            hs.append(h)
        full_h = module.encoder(module.frontend.embed(torch.tensor([cached])), torch.ones(1, len(cached), dtype=torch.bool))
    assert cached == seq
    assert len(set(seq[len(prompt):])) > 2, "decoding degenerated; the test would be too weak"
    torch.testing.assert_close(torch.cat(hs, 1)[:, : len(cached)], full_h, rtol=1e-4, atol=1e-4)


class _CachedStepper:
    """Beam-search stepper over the KV cache: one new token per row and step."""

    def __init__(self, module: Network) -> None:
        self.module = module

    def step(self, tokens: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        h, state = self.module.encoder.step(self.module.frontend.embed(tokens[:, None]), state)  # (N, 1, D)
        return self.module.head(h, None)[:, -1], state

    def reorder(self, state: object, index: torch.Tensor) -> object:
        return self.module.encoder.reorder(state, index)


class _FullStepper(_CachedStepper):
    """The same decoder recomputed over each row's whole history at every step (no cache)."""

    def step(self, tokens: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        assert isinstance(state, torch.Tensor)
        seq = torch.cat([state, tokens[:, None]], dim=1)  # (N, t)
        out = self.module({"input_ids": seq, "mask": torch.ones_like(seq, dtype=torch.bool)})  # (N, t, V)
        return out[:, -1], seq

    def reorder(self, state: object, index: torch.Tensor) -> object:
        assert isinstance(state, torch.Tensor)
        return state.index_select(0, index)


@pytest.mark.parametrize("positions", SCHEMES)
def test_cached_beam_search_equals_full_recomputation(positions: str) -> None:
    from seqlab.inference.decoding import beam_search

    module = _lm_model(positions)
    prompts = torch.tensor([[5, 9, 7], [6, 6, 8]])
    with torch.no_grad():
        _, state = module.encoder.step(module.frontend.embed(prompts[:, :-1]), None)
        cached = beam_search(_CachedStepper(module), prompts[:, -1], state, 12, None, beam=3, n_best=3)
        full = beam_search(_FullStepper(module), prompts[:, -1], prompts[:, :-1], 12, None, beam=3, n_best=3)
    for row_c, row_f in zip(cached, full):
        assert [h.tokens for h in row_c] == [h.tokens for h in row_f]
        for hc, hf in zip(row_c, row_f):
            assert hc.score == pytest.approx(hf.score, abs=1e-4)
    assert len({tuple(h.tokens) for h in cached[0]}) == 3


def test_generate_uses_the_cache_and_learned_positions_stop_at_max_len() -> None:
    model = seqlab.build("transformer", task="lm", task_options={"tokenizer": "char", "block_size": 16},
                         d_model=8, n_heads=2, num_layers=1, positions="learned", max_len=12, dropout=0.0)
    model.task.fit(DOCS)
    model.module_ = model._build_module()
    assert len(model.generate(["the"], max_new_tokens=5, temperature=0.0)) == 1
    with pytest.raises(ConfigError, match="max_len=12"):
        model.generate(["the"], max_new_tokens=20)


def test_bidirectional_encoder_cannot_step() -> None:
    enc = TransformerEncoder(_cfg(causal=False), 8)
    with pytest.raises(ConfigError, match="bidirectional"):
        enc.step(torch.randn(1, 1, 8), None)


def test_decoder_block_with_cross_attention_caches() -> None:
    torch.manual_seed(0)
    cfg = _cfg(positions="none")
    block = TransformerDecoderBlock(cfg).eval()
    x, memory = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    mem_mask = torch.tensor([[True, True, False], [True, True, True]])
    mem_attn = make_attention_mask(mem_mask, 5, 3, causal=False)
    ones = torch.ones(2, 5, dtype=torch.bool)
    full, _, _ = block(x, ones, make_attention_mask(None, 5, 5, causal=True), memory=memory, memory_attn=mem_attn)
    cache = None
    steps = []
    for t in range(5):
        m1 = make_attention_mask(mem_mask, 1, 3, causal=False)
        y, cache, _ = block(x[:, t : t + 1], ones[:, :1], AttentionMask(None, None, None, False), cache=cache,
                            memory=memory, memory_attn=m1)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    memory2 = memory.clone()
    memory2[0, 2] = 99.0  # a padded memory position is never attended
    again, _, _ = block(x, ones, make_attention_mask(None, 5, 5, causal=True), memory=memory2, memory_attn=mem_attn)
    torch.testing.assert_close(again, full)


def test_moe_loss_is_set_and_reaches_the_gradients() -> None:
    task = make_task("lm", {"tokenizer": "char", "block_size": 8}).fit(DOCS)
    batch = task.collate(task.encode(DOCS).items)
    grads = []
    for weight in (0.0, 1.0):
        cfg = _cfg(causal=None, moe_experts=3, moe_top_k=1, moe_loss_weight=weight)
        torch.manual_seed(0)
        module = build_network(task, cfg, EndsConfig(), TransformerEncoder)
        total, _ = NeuralModel._loss(module, batch)
        aux = module.encoder.aux_loss
        assert aux is not None and aux.item() == pytest.approx(
            weight * sum(_block_aux(b, module, batch) for b in range(cfg.num_layers)), rel=1e-5)
        router = module.encoder.blocks[0].ffn.router.weight
        grads.append(torch.autograd.grad(total, router)[0])
    assert not torch.allclose(grads[0], grads[1])


def _block_aux(i: int, module: Network, batch: dict) -> float:
    """Balancing loss of block i recomputed from its router's choices on the block's input."""
    captured: dict = {}
    ffn = module.encoder.blocks[i].ffn
    assert isinstance(ffn, MoEFeedForward)
    handle = ffn.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0], mask=inp[1]))
    with torch.no_grad():
        module(batch)
    handle.remove()
    probs = torch.softmax(ffn.router(captured["x"][captured["mask"]]), -1)  # (N, E)
    e = probs.shape[1]
    top1 = probs.argmax(-1)
    frac = torch.tensor([(top1 == j).float().mean().item() for j in range(e)])
    return (e * (frac * probs.mean(0)).sum()).item()


def test_tiny_moe_model_trains() -> None:
    text = [{"text": "abcabcabcabc abcabc abcabcabc " * 2}]
    model = seqlab.build("transformer", task="lm", task_options={"tokenizer": "char", "block_size": 16},
                         d_model=16, n_heads=2, num_layers=1, moe_experts=4, moe_top_k=2, dropout=0.0,
                         train={"epochs": 30, "batch_size": 4, "lr": 1e-2, "progress": False, "patience": None})
    model.fit(text)
    losses = [h["train_loss"] for h in model.result_.history]
    assert losses[-1] < 0.6 * losses[0]
    assert model.module.encoder.aux_loss is not None


def test_mlm_pretraining_transfers_into_a_classifier() -> None:
    train = {"epochs": 2, "batch_size": 4, "progress": False}
    shape = {"d_model": 16, "n_heads": 2, "num_layers": 1, "d_ff": 16, "positions": "learned", "max_len": 32}
    pre = seqlab.build("transformer", task="mlm", task_options={"block_size": 8}, train=train, **shape)
    pre.fit(DOCS)
    clf = seqlab.build("transformer", task="classification", train=train, **shape)
    data = CLS + [{"text": "zebra cat", "label": "b"}]
    transfer_encoder(pre, clf, data)
    src_vocab, dst_vocab = pre.task.codec.fitted_vocab, clf.task.codec.fitted_vocab
    assert dst_vocab.itos != src_vocab.itos  # different vocabularies: rows are matched by token
    # same words -> same encoder states in both models
    words = "the cat sat".split()
    pre.module.eval()
    clf.module.eval()
    a = pre.module.encoder(pre.module.frontend.embed(torch.tensor([src_vocab.encode(words)])), torch.ones(1, 3, dtype=torch.bool))
    b = clf.module.encoder(clf.module.frontend.embed(torch.tensor([dst_vocab.encode(words)])), torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(a, b)
    zebra = dst_vocab.stoi["zebra"]  # unseen in pretraining: keeps its fresh row
    assert not any(torch.equal(clf.module.frontend.embed.weight[zebra], r) for r in pre.module.frontend.embed.weight)
    before = {k: v.clone() for k, v in clf.module.encoder.state_dict().items()}
    clf.fit(data)  # fine-tunes from the transferred weights (no rebuild)
    assert any(not torch.equal(before[k], v) for k, v in clf.module.encoder.state_dict().items())
    other = seqlab.build("transformer", task="classification", train=train, d_model=16, n_heads=2,
                         num_layers=2, d_ff=16)
    with pytest.raises(ConfigError, match="encoders differ"):
        transfer_encoder(pre, other, data)
    with pytest.raises(SeqlabError, match="train="):
        transfer_encoder(pre, seqlab.build("transformer", task="classification", **shape))


@pytest.mark.parametrize("kw,match", [
    ({"positions": "relative"}, "positions"), ({"d_model": 10, "n_heads": 4}, "multiple"),
    ({"d_model": 6, "n_heads": 2, "positions": "rope"}, "even"), ({"hidden_size": 9}, "now d_ff"), ({"embedding_dim": 8}, "now d_model"),
    ({"moe_experts": 2, "moe_top_k": 3}, "moe_top_k"), ({"dropout": 1.0}, "dropout"), ({"n_head": 2}, "n_head"),
])
def test_bad_configuration_is_a_clear_error(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        seqlab.build("transformer", task="classification", **kw)


def test_feed_forward_width() -> None:
    assert TransformerConfig(d_model=8).ff_width == 32
    assert TransformerConfig(d_ff=7).ff_width == 7


def test_blocks_without_biases() -> None:
    """bias=False (GPT-2 variants, nanoGPT): no bias in any block; decoding still equals recomputation."""
    with_b = TransformerEncoder(_cfg(causal=True, positions="rope"), 8)
    without = TransformerEncoder(_cfg(causal=True, positions="rope", bias=False), 8).eval()
    n_bias = sum(p.numel() for n, p in with_b.named_parameters() if n.endswith("bias"))
    assert not [n for n, _ in without.named_parameters() if n.endswith("bias")] and n_bias > 0
    assert sum(p.numel() for p in with_b.parameters()) - n_bias == sum(p.numel() for p in without.parameters())
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        full = without(x, torch.ones(2, 6, dtype=torch.bool))
        state, outs = None, []
        for t in range(6):
            y, state = without.step(x[:, t : t + 1], state)
            outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-5, atol=1e-5)
