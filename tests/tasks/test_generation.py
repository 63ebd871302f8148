"""The generation task against hand computations: the batch format, the masked teacher-forced
loss, truncation reports, vocabularies, decoding of generated ids, metrics against
sacrebleu/jiwer directly, save/load, and a replayed oracle decoder through the decoding module."""

from typing import Any

import jiwer
import pytest
import sacrebleu
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ConfigError, DataError
from seqlab.inference.decoding import beam_search, greedy
from seqlab.tasks import make_task, task_from_state
from seqlab.tasks.generation import GenerationTask

G2P = [
    {"source": list("cat"), "target": ["K", "AE1", "T"]},
    {"source": list("dog"), "target": ["D", "AO1", "G"]},
    {"source": list("a"), "target": ["AH0"]},
]
MT = [
    {"source": "ein haus", "target": "a house"},
    {"source": "das haus ist klein", "target": "the house is small"},
    {"source": "klein", "target": "small"},
]


def _task(data: list[dict[str, Any]], **opts: Any) -> GenerationTask:
    task = make_task("generation", opts)
    assert isinstance(task, GenerationTask)
    return task.fit(data)


def test_batch_format_by_hand() -> None:
    task = _task(G2P)
    enc = task.encode(G2P)
    batch = task.collate([enc.items[0], enc.items[2]])
    s, t = task.source_codec.fitted_vocab, task.target_codec.fitted_vocab
    bos, eos = t.bos_id, t.eos_id
    assert batch["src_ids"].tolist() == [s.encode(list("cat")), [s.stoi["a"], 0, 0]]
    assert batch["src_mask"].tolist() == [[True] * 3, [True, False, False]]
    k, ae, tt, ah = (t.stoi[x] for x in ("K", "AE1", "T", "AH0"))
    assert batch["input_ids"].tolist() == [[bos, k, ae, tt], [bos, ah, 0, 0]]
    assert batch["labels"].tolist() == [[k, ae, tt, eos], [ah, eos, -100, -100]]
    assert batch["mask"].tolist() == [[True] * 4, [True, True, False, False]]
    assert batch["index"].tolist() == [0, 2]
    assert enc.references == [ex["target"] for ex in G2P]


def test_loss_is_masked_summed_cross_entropy_with_eos_units() -> None:
    task = _task(MT, source_tokenizer="word", target_tokenizer="word")
    batch = task.collate(task.encode(MT).items)
    logits = torch.randn(3, batch["labels"].shape[1], task.output_size)
    total, units = task.loss(logits, batch)
    want = sum(
        F.cross_entropy(logits[i, : n], batch["labels"][i, : n], reduction="sum")
        for i, n in enumerate([3, 5, 2])  # target words + <eos>
    )
    assert int(units) == 10 and float(total) == pytest.approx(float(want), rel=1e-6)
    noisy = logits.masked_fill(~batch["mask"][..., None], 50.0)  # padding cannot matter
    assert float(task.loss(noisy, batch)[0]) == pytest.approx(float(total), rel=1e-6)


def test_truncation_reports_both_sides() -> None:
    task = _task(MT, source_tokenizer="word", target_tokenizer="word", max_source_len=2, max_target_len=3)
    enc = task.encode(MT)
    r = enc.report
    assert r.n_truncated == 1 and r.longest == 4 and r.target is not None  # type: ignore[attr-defined]
    assert r.target.n_truncated == 1 and r.target.longest == 4  # type: ignore[attr-defined]
    assert "source: truncated 1 of 3" in str(r) and "target: truncated 1 of 3" in str(r)
    assert task.target_codec.decode(enc.items[1]["tgt"]) == ["the", "house", "is"]
    assert enc.references[1] == "the house is small"  # scored against the full reference
    with pytest.raises(DataError, match="at most 2"):
        _task(MT, source_tokenizer="word", max_source_len=2, truncation="error").encode(MT)


def test_vocabularies_shared_or_separate() -> None:
    sep = _task(MT, source_tokenizer="word", target_tokenizer="word")
    assert "haus" in sep.source_codec.fitted_vocab and "haus" not in sep.target_codec.fitted_vocab
    shared = _task(MT, source_tokenizer="word", target_tokenizer="word", shared_vocab=True)
    assert shared.source_codec is shared.target_codec and shared.input_size == shared.output_size
    assert {"haus", "house"} <= set(shared.target_codec.fitted_vocab.itos)
    with pytest.raises(ConfigError, match="one tokenizer"):
        make_task("generation", {"shared_vocab": True, "source_tokenizer": "word", "target_tokenizer": "char"})
    with pytest.raises(ConfigError, match="main_metric"):
        make_task("generation", {"main_metric": "rouge"})
    with pytest.raises(DataError, match="'target'"):
        _task([{"source": "x"}])


def test_decode_ids_cuts_at_eos_and_drops_specials() -> None:
    g2p = _task(G2P)
    t = g2p.target_codec.fitted_vocab
    row = [t.stoi["K"], t.bos_id, t.stoi["T"], t.eos_id, t.stoi["G"]]
    assert g2p.decode_ids([row, []]) == [["K", "T"], []]
    mt = _task(MT, source_tokenizer="word", target_tokenizer="word")
    v = mt.target_codec.fitted_vocab
    assert mt.decode(torch.tensor([[v.stoi["a"], v.stoi["house"], v.eos_id]]), {}) == ["a house"]
    logits = F.one_hot(torch.tensor([[v.stoi["small"], v.eos_id, v.stoi["a"]]]), len(v)).float()
    assert mt.decode(logits, {}) == ["small"]


def test_metrics_token_lists_and_text() -> None:
    g2p = _task(G2P)
    assert g2p.main_metric == "wer" and not g2p.greater_is_better
    preds = [["K", "AE1", "T"], ["D", "AO2", "G"], []]
    refs = [ex["target"] for ex in G2P]
    m = g2p.metrics(preds, refs, nll_sum=7.0, n_units=10)
    assert m["loss"] == pytest.approx(0.7) and m["exact_match"] == pytest.approx(1 / 3)
    assert m["wer"] == pytest.approx(2 / 3)  # G2P word error rate: words not exactly right
    assert m["per"] == pytest.approx(2 / 7)  # one substitution, one deletion, 7 phonemes
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu([" ".join(p) for p in preds], [[" ".join(r) for r in refs]], tokenize="none").score)
    mt = _task(MT, source_tokenizer="word", target_tokenizer="word")
    assert mt.main_metric == "bleu" and mt.greater_is_better
    hyps = ["a house", "the house is tiny", "small"]
    refs_t = [ex["target"] for ex in MT]
    m = mt.metrics(hyps, refs_t, 1.0, 1)
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs_t]).score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs_t]).score)
    assert m["wer"] == pytest.approx(jiwer.wer(refs_t, hyps)) and m["cer"] == pytest.approx(jiwer.cer(refs_t, hyps))
    sig = mt.metric_signatures()
    assert "tok:13a" in sig["bleu"] and "nc:6" in sig["chrf"]
    assert "tok:none" in g2p.metric_signatures()["bleu"]
    assert _task(G2P, main_metric="per").main_metric == "per"


def test_state_round_trip() -> None:
    for task in (_task(G2P, lowercase=True), _task(MT, source_tokenizer="word", target_tokenizer="bpe", vocab_size=300),
                 _task(MT, source_tokenizer="word", target_tokenizer="word", shared_vocab=True)):
        again = task_from_state("generation", task.state())
        assert isinstance(again, GenerationTask)
        data = G2P if task.token_targets else MT
        a, b = task.encode(data), again.encode(data)
        assert a.items == b.items and a.references == b.references
        assert again.main_metric == task.main_metric and again.token_targets == task.token_targets
        assert (again.source_codec is again.target_codec) == task.config.shared_vocab


class Replay:
    """An oracle decoder: at step t it puts all mass on row r's gold label t (the batch's
    ``labels``), so free-running decoding must reproduce the references."""

    def __init__(self, labels: Tensor, vocab: int) -> None:
        self.labels, self.vocab = labels.clamp(min=0), vocab

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        t = int(state[0, 1])
        gold = self.labels[state[:, 0], min(t, self.labels.shape[1] - 1)]  # (N,)
        logits = torch.full((tokens.shape[0], self.vocab), -10.0)
        logits[torch.arange(tokens.shape[0]), gold] = 10.0
        return logits, state + torch.tensor([0, 1])

    def reorder(self, state: Tensor, index: Tensor) -> Tensor:
        return state[index]


@pytest.mark.parametrize("data", [G2P, MT])
def test_replayed_decoder_reproduces_references(data: list[dict[str, Any]]) -> None:
    task = _task(data, target_tokenizer="word") if data is MT else _task(data)
    enc = task.encode(data)
    batch = task.collate(enc.items)
    b = len(enc.items)
    start = torch.full((b,), task.bos_id)
    state = torch.stack([torch.arange(b), torch.zeros(b, dtype=torch.long)], 1)  # (B, 2) row, step
    stepper = Replay(batch["labels"], task.output_size)
    hyps = greedy(stepper, start, state, 10, task.eos_id)
    preds = task.decode_ids([h.tokens for h in hyps])
    assert preds == enc.references and all(h.finished for h in hyps)
    beams = beam_search(stepper, start, state, 10, task.eos_id, beam=3)
    assert task.decode_ids([r[0].tokens for r in beams]) == enc.references
    m = task.metrics(preds, enc.references, 0.0, 1)
    assert m["exact_match"] == 1.0 and m["wer"] == 0.0 and m["chrf"] == pytest.approx(100.0)
    # BLEU needs 4-grams: the 3-phoneme G2P corpus has none, so even a perfect output scores 0
    assert m["bleu"] == pytest.approx(100.0 if data is MT else 0.0)
