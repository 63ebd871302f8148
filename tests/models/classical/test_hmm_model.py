"""The HMM family through seqlab.build: lm metrics against the forward algorithm, next-token
predictions against prefix scores, save/load round trips, configuration errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_hmm_tnt import synthetic_ner

import seqlab
from seqlab.errors import ConfigError
from seqlab.models.classical.hmm import HMMConfig, split_stream

TEXT = [{"text": t} for t in ["abab abba", "baba ab", "aabb ba ab", "abba abab b", "bb aa ab"]]


def _lm(**kw: Any) -> Any:
    return seqlab.build("hmm", task="lm", n_states=3, n_iter=15, block_size=6, **kw).fit(TEXT)


def test_split_stream_cuts_after_eos_and_at_block_size() -> None:
    assert split_stream([1, 2, 9, 3, 4, 5, 6, 7, 9, 9], eos=9, block=3) == [[1, 2, 9], [3, 4, 5], [6, 7, 9], [9]]


def test_lm_nll_and_hits_match_the_forward_algorithm_and_prefix_scores() -> None:
    model = _lm()
    hmm, task = model.hmm_, model.task
    pieces = split_stream(task.stream(TEXT), task.codec.fitted_vocab.eos_id, 6)
    metrics = model.evaluate(TEXT)
    n = sum(len(p) for p in pieces)
    nll = -hmm.score(pieces)  # log_partition, a different code path from the per-token filter
    assert metrics["loss"] == pytest.approx(nll / n, rel=1e-9)
    assert metrics["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-9)
    # top-1 next token from prefix scores: argmax_v p(prefix + v) for every position
    v = hmm.emissionprob_.shape[1]
    hits = 0
    for p in pieces:
        for t in range(len(p)):
            cands = [p[:t] + [s] for s in range(v)]
            hits += int(int(hmm.score_samples(cands).argmax()) == p[t])
    assert metrics["accuracy"] == pytest.approx(hits / n)
    chars = sum(int(task.char_lengths[i]) for p in pieces for i in p)
    assert metrics["bits_per_char"] == pytest.approx(nll / math.log(2) / chars, rel=1e-9)


def test_lm_em_trace_rises_and_predicts_next_tokens() -> None:
    model = _lm(smoothing=0.0, tol=-math.inf)
    trace = [h["log_likelihood"] for h in model.result_.history]
    assert len(trace) == 15 and all(b >= a - 1e-9 for a, b in zip(trace, trace[1:]))
    hmm, vocab = model.hmm_, model.task.codec.fitted_vocab
    prompts = ["abab", "bb a"]
    preds = model.predict(prompts)
    for prompt, pred in zip(prompts, preds):
        ids = model.task.codec.encode(prompt)
        scores = hmm.score_samples([ids + [s] for s in range(len(vocab))])
        assert pred == vocab.itos[int(scores.argmax())]


@pytest.mark.parametrize("task", ["lm", "labeling"])
def test_save_load_round_trip(task: str, tmp_path: Path) -> None:
    data: list[Any]
    inputs: list[Any]
    if task == "lm":
        model, data, inputs = _lm(), TEXT, ["ab", "ba b"]
    else:
        model = seqlab.build("hmm", task="labeling", smoothing=0.2).fit(synthetic_ner(60, 0))
        data, inputs = synthetic_ner(20, 1), [["@user", "walked", "with", "Zumi", "in", "Boston", "lol"]]
    before = model.evaluate(data)
    model.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    loaded = seqlab.load(tmp_path / "m")
    assert loaded.evaluate(data) == before
    assert loaded.predict(inputs) == model.predict(inputs)
    assert loaded.n_parameters == model.n_parameters
    if task == "labeling":  # the suffix tries came back too: an unseen word is tagged the same
        t0, t1 = model.tagger_, loaded.tagger_
        torch.testing.assert_close(t1.counts_.suffix_dist("Zorbaton"), t0.counts_.suffix_dist("Zorbaton"))


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="n_states"):
        HMMConfig(n_states=0)
    with pytest.raises(ConfigError, match="GaussianHMM"):
        seqlab.build("hmm", task="labeling", emission="gaussian")
    with pytest.raises(ConfigError, match="unknown|valid"):
        seqlab.build("hmm", task="labeling", n_stats=3)
