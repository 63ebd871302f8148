"""Every registry entry x every task it serves: build, fit (neural: loss falls), save, load, same
predictions and metrics."""

import math
import random
from pathlib import Path

import pytest

import seqlab
from seqlab.models.registry import FAMILIES

TINY = {"embedding_dim": 16, "hidden_size": 16, "dropout": 0.0}
TRAIN = {"epochs": 6, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False, "clip_norm": 1.0}


def _data(task: str) -> tuple[list, list]:
    rng = random.Random(0)
    words = ["red", "blue", "green", "cat", "dog", "sun", "moon"]
    if task == "classification":
        data = []
        for _ in range(48):
            toks = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            data.append({"tokens": toks, "label": "cat" if "cat" in toks else "other"})
        return data, ["red cat sun".split(), "blue moon".split()]
    if task == "labeling":
        data = []
        for _ in range(48):
            toks = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            data.append({"tokens": toks, "tags": ["B-A" if t in ("cat", "dog") else "O" for t in toks]})
        return data, [["red", "cat"], ["dog", "sun", "moon"]]
    if task == "generation":  # reverse a short word, letter by letter
        data = []
        for _ in range(48):
            letters = [rng.choice("abcde") for _ in range(rng.randint(1, 4))]
            data.append({"source": letters, "target": letters[::-1]})
        return data, [list("ab"), list("cde")]
    text = " ".join(rng.choice(words) for _ in range(300))
    return [{"text": text[i : i + 200]} for i in range(0, len(text), 200)], ["red ", "the cat"]


CASES = [(name, task) for name, fam in FAMILIES.items() for task in fam.tasks]


@pytest.mark.parametrize("family,task", CASES)
def test_contract(family: str, task: str, tmp_path: Path) -> None:
    train, inputs = _data(task)
    opts = {"tokenizer": "word", "block_size": 16} if task in ("lm", "mlm") else {}
    neural = FAMILIES[family].kind == "neural"
    settings = {"train": TRAIN, **TINY} if neural else {}
    model = seqlab.build(family, task=task, task_options=opts, **settings)
    assert model.fit(train, run_dir=tmp_path / "run") is model
    if neural:
        losses = [h["train_loss"] for h in model.result_.history]
        assert losses[-1] < losses[0], f"{family}/{task}: loss did not fall ({losses[0]:.3f} -> {losses[-1]:.3f})"
    before = model.predict(inputs)
    assert len(before) == len(inputs)
    metrics = model.evaluate(train)
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "bits_per_char"), metrics
    if not neural:  # fitted in closed form or to convergence: it must have learned the toy rule
        if task == "labeling":
            assert metrics["token_accuracy"] > 0.95, metrics
        if task == "lm":
            assert metrics["perplexity"] < model.task.output_size, metrics  # beats uniform
    model.save(tmp_path / "saved")
    again = seqlab.load(tmp_path / "saved")
    assert again.predict(inputs) == before
    assert again.evaluate(train) == pytest.approx(metrics)


PROBE_CASES = [(name, task) for name, fam in FAMILIES.items() for task in fam.tasks
               if task in ("lm", "labeling", "classification")]


@pytest.mark.parametrize("family,task", PROBE_CASES)
def test_contract_sensitivity_probe(family: str, task: str) -> None:
    """Every family serving lm, labeling or classification gives ``distributions`` (rows are
    probability distributions, one per token or one per sequence) and so an influence matrix
    (seqlab.probes); every LM is causal: an edit never moves an earlier prediction."""
    from seqlab.probes import influence_matrix

    train, inputs = _data(task)
    opts = {"tokenizer": "word", "block_size": 16} if task == "lm" else {}
    neural = FAMILIES[family].kind == "neural"
    settings = {"train": {**TRAIN, "epochs": 1}, **TINY} if neural else {}
    model = seqlab.build(family, task=task, task_options=opts, **settings).fit(train)
    x = inputs[-1]
    toks = model.tokenize(x)
    (p,) = model.distributions([x])
    rows = 1 if task == "classification" else len(toks)
    assert tuple(p.shape) == (rows, len(model.output_labels()))
    assert bool((p >= 0).all()) and p.double().sum(-1).sub(1).abs().max() < 1e-5
    inf = influence_matrix(model, x, replacements=2)
    assert tuple(inf.kl.shape) == (len(toks), rows) and bool((inf.kl >= 0).all())
    if task == "lm":
        assert float(inf.kl.tril(-1).max()) < 1e-6, inf.kl
