"""The encoder-decoder Transformer (generation): cached greedy and beam decoding equal full
recomputation token for token for every position scheme; padding (source and target, left or
right) never changes real outputs; padded source positions are never attended; it learns a
small transduction through the model API, saves and loads; sampling is reproducible."""

from pathlib import Path

import pytest
import torch

import seqlab
from seqlab.errors import ConfigError
from seqlab.inference.decoding import beam_search, greedy, sample
from seqlab.models.transformer import TransformerConfig, TransformerSeq2Seq, cross_attention_mask
from tests_support import reversal_pairs

SCHEMES = ["none", "sinusoidal", "learned", "rope", "alibi"]


def _module(positions: str, **kw: object) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, n_heads=2, num_layers=2, decoder_layers=kw.pop("decoder_layers", 1),  # type: ignore[arg-type]
                            d_ff=24, dropout=0.0, positions=positions, **kw)  # type: ignore[arg-type]
    return TransformerSeq2Seq(cfg, src_vocab_size=11, tgt_vocab_size=13).eval()


def _batch(left: bool = False) -> dict[str, torch.Tensor]:
    src = [[5, 6, 7, 8], [9, 5], [6]]
    s = max(map(len, src))
    ids = torch.zeros(len(src), s, dtype=torch.long)
    mask = torch.zeros(len(src), s, dtype=torch.bool)
    for i, row in enumerate(src):
        sl = slice(s - len(row), s) if left else slice(0, len(row))
        ids[i, sl] = torch.tensor(row)
        mask[i, sl] = True
    return {"src_ids": ids, "src_mask": mask}


class _FullStepper:
    """Recomputes the decoder over the whole prefix at every step (no cache): the oracle."""

    def __init__(self, module: TransformerSeq2Seq) -> None:
        self.m = module

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        prefix = torch.cat([state["prefix"], tokens[:, None]], 1)  # (N, t)
        mask = torch.ones_like(prefix, dtype=torch.bool)
        h = self.m.decoder(self.m.tgt_embed(prefix), mask, state["memory"], state["src_mask"])  # (N, t, D)
        return torch.log_softmax(self.m.out(h[:, -1]), -1), {**state, "prefix": prefix}

    def reorder(self, state: dict, index: torch.Tensor) -> dict:
        return {k: v.index_select(0, index) for k, v in state.items()}


def _full_state(module: TransformerSeq2Seq, batch: dict) -> dict:
    st = module.start(batch)
    return {"memory": st["memory"], "src_mask": st["src_mask"],
            "prefix": torch.zeros(batch["src_ids"].shape[0], 0, dtype=torch.long)}


@pytest.mark.parametrize("positions", SCHEMES)
def test_cached_greedy_and_beam_equal_full_recomputation(positions: str) -> None:
    module = _module(positions)
    batch = _batch()
    start = torch.full((3,), 2, dtype=torch.long)
    with torch.no_grad():
        cached = greedy(module, start, module.start(batch), 10, eos=None)
        full = greedy(_FullStepper(module), start, _full_state(module, batch), 10, eos=None)
        assert [h.tokens for h in cached] == [h.tokens for h in full]
        for hc, hf in zip(cached, full):
            assert hc.log_prob == pytest.approx(hf.log_prob, abs=1e-4)
        bc = beam_search(module, start, module.start(batch), 8, 3, beam=3, n_best=3)
        bf = beam_search(_FullStepper(module), start, _full_state(module, batch), 8, 3, beam=3, n_best=3)
    for row_c, row_f in zip(bc, bf):
        assert [h.tokens for h in row_c] == [h.tokens for h in row_f]
        for hc, hf in zip(row_c, row_f):
            assert hc.score == pytest.approx(hf.score, abs=1e-4)


@pytest.mark.parametrize("positions", SCHEMES)
def test_padding_never_changes_real_outputs(positions: str) -> None:
    """Each row of a padded batch (source padded right or left, targets of different lengths)
    gives the logits that row gives alone."""
    module = _module(positions, decoder_layers=2)
    tgts = [[3, 4, 5], [6], [7, 8]]
    t = max(map(len, tgts))
    for left in (False, True):
        batch = _batch(left)
        batch["input_ids"] = torch.zeros(3, t, dtype=torch.long)
        batch["mask"] = torch.zeros(3, t, dtype=torch.bool)
        for i, row in enumerate(tgts):
            batch["input_ids"][i, : len(row)] = torch.tensor(row)
            batch["mask"][i, : len(row)] = True
        with torch.no_grad():
            out = module(batch)  # (3, T, V)
            for i, row in enumerate(tgts):
                sm = batch["src_mask"][i]
                alone = {"src_ids": batch["src_ids"][i : i + 1, sm], "src_mask": sm[sm][None],
                         "input_ids": torch.tensor([row]), "mask": torch.ones(1, len(row), dtype=torch.bool)}
                torch.testing.assert_close(out[i, : len(row)], module(alone)[0], rtol=1e-5, atol=1e-5)


def test_padded_source_positions_are_never_attended() -> None:
    module = _module("rope")
    batch = {**_batch(), "input_ids": torch.tensor([[2, 5], [2, 6], [2, 7]]), "mask": torch.ones(3, 2, dtype=torch.bool)}
    with torch.no_grad():
        out = module(batch)
        changed = dict(batch)
        changed["src_ids"] = batch["src_ids"].masked_fill(~batch["src_mask"], 9)  # real ids where padding was
        torch.testing.assert_close(module(changed), out)
    # a source with no real token attends everywhere rather than producing NaN
    m = cross_attention_mask(torch.tensor([[True, False], [False, False]]))
    assert m.allowed is not None and m.allowed[1].all() and not m.allowed[0, 0, 0, 1]


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    m = seqlab.build("transformer", task="generation", d_model=32, n_heads=4, num_layers=2, decoder_layers=2,
                     d_ff=64, dropout=0.0, positions="learned",
                     train={"epochs": 15, "batch_size": 16, "lr": 5e-3, "progress": False, "patience": None})
    return m.fit(reversal_pairs(400, 0))


def test_learns_to_reverse_through_the_model_api(model, tmp_path: Path) -> None:
    metrics = model.evaluate(reversal_pairs(40, 1))
    assert metrics["exact_match"] >= 0.8, metrics
    inputs = [list("abc"), list("fed")]
    greedy_out = model.predict(inputs, decoding={"method": "greedy"})
    beam_out = model.predict(inputs, decoding={"method": "beam", "beam": 4, "n_best": 2})
    assert [row[0] for row in beam_out] == greedy_out == [list("cba"), list("def")]
    loaded = seqlab.load(model.save(tmp_path / "m"))
    assert loaded.predict(inputs, decoding={"method": "greedy"}) == greedy_out
    assert loaded.evaluate(reversal_pairs(40, 1)) == pytest.approx(model.evaluate(reversal_pairs(40, 1), decoding={"method": "greedy"}))


def test_sampling_is_reproducible_and_temperature_zero_is_greedy(model) -> None:
    inputs = [list("abcde"), list("ffa")]
    greedy_out = model.predict(inputs, decoding={"method": "greedy"})
    assert model.predict(inputs, decoding={"method": "sample", "temperature": 0.0}) == greedy_out
    a = model.predict(inputs * 4, decoding={"method": "sample", "temperature": 2.0, "seed": 3})
    b = model.predict(inputs * 4, decoding={"method": "sample", "temperature": 2.0, "seed": 3})
    c = model.predict(inputs * 4, decoding={"method": "sample", "temperature": 2.0, "seed": 4})
    assert a == b and a != c  # the seed decides the draws
    batch = model.task.collate(model.task.encode_inputs(inputs))
    module = model.module.eval()
    start = torch.full((2,), model.task.bos_id)
    with torch.no_grad():  # top_k=1 sampling is greedy whatever the temperature
        hyps = sample(module, start, module.start(batch), 12, model.task.eos_id, temperature=5.0, top_k=1)
    assert model.task.decode_ids([h.tokens for h in hyps]) == greedy_out


def test_default_decoding_is_saved_with_the_model(tmp_path) -> None:
    """build(decoding=...) sets the model's default, which save/load keeps; a call may override it."""
    model = seqlab.build("transformer", task="generation", decoding={"method": "beam", "beam": 3, "n_best": 2},
                         d_model=16, n_heads=2, num_layers=1, train={"epochs": 1, "progress": False})
    model.fit(reversal_pairs(16, 0))
    inputs = [list("abc")]
    loaded = seqlab.load(model.save(tmp_path / "m"))
    assert loaded.decoding == model.decoding and loaded.decoding.beam == 3
    assert len(loaded.predict(inputs)[0]) == 2  # n_best = 2 from the saved default
    assert loaded.predict(inputs, decoding={"method": "greedy", "n_best": 1}) == model.predict(inputs, decoding={"n_best": 1, "method": "greedy"})


def test_mixture_of_experts_loss_covers_both_stacks() -> None:
    module = _module("none", moe_experts=3, moe_top_k=1).train()
    batch = {**_batch(), "input_ids": torch.tensor([[2, 5], [2, 6], [2, 7]]), "mask": torch.ones(3, 2, dtype=torch.bool)}
    module(batch)
    assert module.aux_loss is not None and module.encoder.aux_loss is not None and module.decoder.aux_loss is not None
    torch.testing.assert_close(module.aux_loss, module.encoder.aux_loss + module.decoder.aux_loss)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="share_embeddings"):
        TransformerSeq2Seq(TransformerConfig(d_model=8, n_heads=2, share_embeddings=True), 10, 12)
    with pytest.raises(ConfigError, match="memory"):
        _module("none").decoder(torch.randn(1, 2, 16), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="decoder_layers"):
        TransformerConfig(decoder_layers=-1)


def test_cross_attention_alignment_equals_the_attention_computed_by_hand(model, tmp_path: Path) -> None:
    """The alignment is the last decoder block's cross-attention softmax(q k^T / sqrt(Dh)) over the
    real source tokens, averaged over heads, recomputed here from the block's own projections."""
    import math

    batch = model.task.collate(model.task.encode([{"source": list("abcde"), "target": list("edcba")},
                                                  {"source": list("ab"), "target": list("ba")}]).items)
    module = model.module.eval()
    cross = module.decoder.blocks[-1].cross_attn
    seen: dict = {}
    hook = cross.register_forward_hook(lambda mod, args, kwargs, out: seen.update(x=args[0], memory=kwargs["memory"]),
                                       with_kwargs=True)
    try:
        with torch.no_grad():
            module(batch)
    finally:
        hook.remove()
    h, d = cross.n_heads, seen["x"].shape[-1]
    with torch.no_grad():
        q = cross.q(seen["x"]).view(2, -1, h, d // h).transpose(1, 2)  # (B, H, T, Dh)
        k = cross.kv(seen["memory"]).chunk(2, -1)[0].view(2, -1, h, d // h).transpose(1, 2)  # (B, H, S, Dh)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(d // h)).masked_fill(~batch["src_mask"][:, None, None], -math.inf)
        want = scores.softmax(-1).mean(1)  # (B, T, S)
    for i, (t, s) in enumerate([(6, 5), (3, 2)]):  # target letters + <eos>, real source letters
        w = module.alignment(batch, i)
        assert w.shape == (t, s)
        torch.testing.assert_close(w, want[i][batch["mask"][i]][:, batch["src_mask"][i]])
    path = model.save_alignment(list("abcd"), tmp_path / "a.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="index"):
        module.alignment(batch, 2)
