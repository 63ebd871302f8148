"""Every registry entry x every task it serves: build, fit (neural: loss falls), save, load, same
predictions and metrics."""

import dataclasses
import math
from pathlib import Path

import pytest

import seqlab
from seqlab.models.registry import FAMILIES, SequenceModel
from seqlab.tasks import TASKS

TINY = {"d_model": 16, "dropout": 0.0}
TRAIN = {"epochs": 6, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False, "clip_norm": 1.0}


def _data(task: str) -> tuple[list, list, dict]:
    """The task's own toy problem: no branch per task here."""
    return TASKS[task][0].toy_examples(0)


def _settings(family: str) -> dict:
    """Tiny widths: d_model for every neural family, and the family's own second width if it has one."""
    fam = FAMILIES[family]
    if fam.kind != "neural":
        return {}
    own = {f.name for f in dataclasses.fields(fam.config_class())}
    return {**TINY, **({"hidden_size": 16} if "hidden_size" in own else {}), **({"d_ff": 32} if "d_ff" in own else {})}


CASES = [(name, task) for name, fam in FAMILIES.items() for task in fam.tasks]


@pytest.mark.parametrize("family,task", CASES)
def test_contract(family: str, task: str, tmp_path: Path) -> None:
    train, inputs, opts = _data(task)
    neural = FAMILIES[family].kind == "neural"
    settings = {"train": TRAIN, **_settings(family)} if neural else {}
    model = seqlab.build(family, task=task, task_options=opts, **settings)
    assert isinstance(model, SequenceModel)  # one API, classical or neural
    assert model.fit(train, run_dir=tmp_path / "run") is model
    if neural:
        losses = [h["train_loss"] for h in model.result_.history]
        assert losses[-1] < losses[0], f"{family}/{task}: loss did not fall ({losses[0]:.3f} -> {losses[-1]:.3f})"
    before = model.predict(inputs)
    assert len(before) == len(inputs)
    metrics = model.evaluate(train)
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "bits_per_char"), metrics
    assert set(model.task.metric_names) - {"cer", "per", "wer"} <= set(metrics) | {"bits_per_char"}, metrics
    if not neural:  # fitted in closed form or to convergence: it must have learned the toy rule
        if "token_accuracy" in metrics:
            assert metrics["token_accuracy"] > 0.95, metrics
        if "perplexity" in metrics:
            assert metrics["perplexity"] < model.task.output_size, metrics  # beats uniform
    model.save(tmp_path / "saved")
    again = seqlab.load(tmp_path / "saved")
    assert again.predict(inputs) == before
    assert again.evaluate(train) == pytest.approx(metrics)


PROBE_CASES = [(name, task) for name, fam in FAMILIES.items() for task in fam.tasks if TASKS[task][0].probe_rows]


@pytest.mark.parametrize("family,task", PROBE_CASES)
def test_contract_sensitivity_probe(family: str, task: str) -> None:
    """Every family serving lm, labeling or classification gives ``distributions`` (rows are
    probability distributions, one per token or one per sequence) and so an influence matrix
    (seqlab.probes); every LM is causal: an edit never moves an earlier prediction."""
    from seqlab.probes import influence_matrix

    train, inputs, opts = _data(task)
    neural = FAMILIES[family].kind == "neural"
    settings = {"train": {**TRAIN, "epochs": 1}, **_settings(family)} if neural else {}
    model = seqlab.build(family, task=task, task_options=opts, **settings).fit(train)
    x = inputs[-1]
    toks = model.tokenize(x)
    (p,) = model.distributions([x])
    rows = 1 if model.task.probe_rows == "sequence" else len(toks)
    assert tuple(p.shape) == (rows, len(model.output_labels()))
    assert bool((p >= 0).all()) and p.double().sum(-1).sub(1).abs().max() < 1e-5
    inf = influence_matrix(model, x, replacements=2)
    assert tuple(inf.kl.shape) == (len(toks), rows) and bool((inf.kl >= 0).all())
    if model.task.causal:
        assert float(inf.kl.tril(-1).max()) < 1e-6, inf.kl


@pytest.mark.parametrize("family", ["gru", "crf", "hmm"])
def test_a_string_where_a_list_belongs_is_refused_clearly(family: str) -> None:
    """predict("a string") would be one prediction per character; fit(["a string"]) a crash. Both
    are refused with a message."""
    from seqlab.errors import DataError, SeqlabError

    train, _, _ = TASKS["labeling"][0].toy_examples(0)
    settings = {"train": {**TRAIN, "epochs": 1}, **_settings(family)} if FAMILIES[family].kind == "neural" else {}
    with pytest.raises(DataError, match="a record with 'tokens' and 'tags'"):
        seqlab.build(family, task="labeling", **settings).fit(["a string"])
    model = seqlab.build(family, task="labeling", **settings).fit(train)
    with pytest.raises(SeqlabError, match="list of inputs"):
        model.predict("red cat")
