"""Tasks against hand computations: losses, decoding, truncation reports, LM blocks, MLM masks."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import DataError
from seqlab.tasks import make_task, task_from_state
from seqlab.tasks.labeling import detect_scheme
from seqlab.tasks.lm import stream_blocks
from seqlab.tasks.mlm import mask_tokens

CLS = [{"text": "good movie", "label": "pos"}, {"text": "bad bad film", "label": "neg"}, {"text": "fine", "label": "pos"}]
TAGS = [
    {"tokens": ["John", "lives", "in", "New", "York"], "tags": ["B-PER", "O", "O", "B-LOC", "I-LOC"]},
    {"tokens": ["Hi"], "tags": ["O"]},
]


def test_classification_loss_is_summed_cross_entropy() -> None:
    task = make_task("classification").fit(CLS)
    enc = task.encode(CLS)
    batch = task.collate(enc.items)
    logits = torch.randn(3, task.output_size)
    total, n = task.loss(logits, batch)
    assert int(n) == 3
    assert float(total) == pytest.approx(float(F.cross_entropy(logits, batch["labels"], reduction="sum")), rel=1e-6)
    assert batch["mask"].sum(-1).tolist() == [2, 3, 1]
    assert task.decode(torch.eye(2)[[1, 0]], batch) == [task.label_vocab.itos[1], task.label_vocab.itos[0]]


def test_classification_truncation_is_reported() -> None:
    task = make_task("classification", {"max_len": 2, "truncation": "tail"}).fit(CLS)
    enc = task.encode(CLS)
    assert enc.report.n_truncated == 1 and enc.report.longest == 3
    assert task.codec.decode(enc.items[1]["input_ids"]) == ["bad", "film"]


def test_labeling_loss_skips_padding_and_decode_restores_length() -> None:
    task = make_task("labeling", {"max_len": 4}).fit(TAGS)
    assert task.scheme == "IOB2" and task.main_metric == "f1"
    enc = task.encode(TAGS)
    assert enc.report.n_truncated == 1
    batch = task.collate(enc.items)
    logits = torch.randn(2, 4, task.output_size)
    total, n = task.loss(logits, batch)
    assert int(n) == 5  # 4 kept tokens + 1
    want = sum(
        F.cross_entropy(logits[b, t : t + 1], batch["labels"][b, t : t + 1], reduction="sum")
        for b in range(2) for t in range(4) if batch["mask"][b, t]
    )
    assert float(total) == pytest.approx(float(want), rel=1e-5)
    preds = task.decode(logits, batch)
    assert [len(p) for p in preds] == [5, 1] and preds[0][-1] == "O"
    m = task.metrics([ex["tags"] for ex in TAGS], [ex["tags"] for ex in TAGS], 1.0, 1)
    assert m["f1"] == 1.0 and m["token_accuracy"] == 1.0


def test_labeling_rejects_unequal_lengths() -> None:
    task = make_task("labeling")
    with pytest.raises(DataError):
        task.fit([{"tokens": ["a", "b"], "tags": ["O"]}])


def test_detect_scheme() -> None:
    assert detect_scheme([["B-X", "I-X", "O"]]) == "IOB2"
    assert detect_scheme([["S-X", "O", "B-Y", "E-Y"]]) == "IOBES"
    assert detect_scheme([["NN", "VB"]]) == "none"


@pytest.mark.parametrize("n,block", [(10, 3), (11, 5), (2, 4), (7, 1)])
def test_lm_blocks_predict_every_next_token_once(n: int, block: int) -> None:
    targets = []
    for a, b in stream_blocks(list(range(n)), block, 1):
        assert b - a <= block + 1
        targets.extend(range(a + 1, b))
    assert targets == list(range(1, n))


def test_lm_bits_per_char_for_char_tokens() -> None:
    docs = [{"text": "abcab"}, {"text": "ba"}]
    task = make_task("lm", {"tokenizer": "char", "block_size": 4}).fit(docs)
    enc = task.encode(docs)
    batch = task.collate(enc.items)
    logits = torch.zeros(*batch["input_ids"].shape, task.output_size)  # uniform
    total, n = task.loss(logits, batch)
    assert int(n) == 5 + 1 + 2 + 1 - 1  # stream of 9 ids -> 8 predictions
    assert float(total) / int(n) == pytest.approx(math.log(task.output_size), rel=1e-6)
    m = task.metrics(task.tally(None, logits, batch, task.default_decoding()), enc.references, float(total), int(n))
    assert m["bits_per_char"] == pytest.approx(math.log2(task.output_size), rel=1e-6)
    assert m["perplexity"] == pytest.approx(task.output_size, rel=1e-5)


def test_mlm_masking_rates_and_determinism() -> None:
    ids = torch.randint(5, 100, (64, 128))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[:, 100:] = False
    g1 = torch.Generator().manual_seed(3)
    inp, lab = mask_tokens(ids, mask, 4, 100, 0.15, g1)
    inp2, lab2 = mask_tokens(ids, mask, 4, 100, 0.15, torch.Generator().manual_seed(3))
    assert torch.equal(inp, inp2) and torch.equal(lab, lab2)
    hidden = lab != -100
    assert not (hidden & ~mask).any()
    assert hidden.float()[mask].mean().item() == pytest.approx(0.15, abs=0.01)
    assert ((inp == 4) & hidden).sum().item() / hidden.sum().item() == pytest.approx(0.8, abs=0.03)
    assert torch.equal(lab[hidden], ids[hidden])
    short = torch.zeros(3, 4, dtype=torch.bool)
    short[:, 0] = True
    _, lab3 = mask_tokens(ids[:3, :4], short, 4, 100, 0.01, g1)
    assert ((lab3 != -100).sum(-1) == 1).all()  # at least one hole per row


@pytest.mark.parametrize("name,data", [("classification", CLS), ("labeling", TAGS), ("lm", [{"text": "to be or not"}]),
                                       ("mlm", [{"text": "to be or not"}])])
def test_task_state_round_trip(name: str, data: list) -> None:
    task = make_task(name).fit(data)
    again = task_from_state(name, task.state())
    a, b = task.encode(data), again.encode(data)
    assert a.items == b.items and a.references == b.references


def test_text_field_takes_the_first_key_present_and_names_the_missing_ones() -> None:
    from seqlab.errors import DataError
    from seqlab.tasks.text import text_field

    ex = {"text": "a b", "tokens": ["x", "y"]}
    assert text_field(ex, 0) == ["x", "y"]  # classification: tokens first
    assert text_field(ex, 0, ("text", "tokens")) == "a b"  # lm: text first
    with pytest.raises(DataError, match="example 3: a 'source' field"):
        text_field({"target": "t"}, 3, ("source",))


@pytest.mark.parametrize("family,task", [("gru", "classification"), ("gru", "labeling"), ("crf", "labeling"),
                                         ("hmm", "labeling")])
def test_labels_never_seen_in_training_get_one_warning(family: str, task: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every family warns once, naming the labels the test split has and training never showed."""
    import seqlab

    if task == "classification":
        train = [{"tokens": ["a", "b"], "label": "pos"}, {"tokens": ["c"], "label": "neg"}] * 4
        test = [{"tokens": ["a"], "label": "mixed"}, {"tokens": ["c"], "label": "neg"}]
    else:
        train = [{"tokens": ["Ann", "ran"], "tags": ["B-PER", "O"]}] * 4
        test = [{"tokens": ["Rome", "ran"], "tags": ["B-LOC", "O"]}]
    neural = {"d_model": 8, "hidden_size": 8, "train": {"epochs": 1, "progress": False}} if family == "gru" else {}
    model = seqlab.build(family, task=task, **neural).fit(train)
    capsys.readouterr()
    metrics = model.evaluate(test)
    err = capsys.readouterr().err
    missing = "'mixed'" if task == "classification" else "'B-LOC'"
    assert err.count("never seen in training") == 1 and missing in err
    assert all(v is None or v == v for v in metrics.values())
