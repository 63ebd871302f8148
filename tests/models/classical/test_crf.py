"""Feature CRF: objective and gradient against brute force / autograd, decoding, save/load."""

import itertools
import math
import random

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import ConfigError, DataError, SeqlabError
from seqlab.inference import log_partition, score
from seqlab.models.classical.crf import ChainData, CRFConfig, CRFModel, CRFParams, crf_objective
from seqlab.models.classical.features import FeatureConfig, FeatureExtractor
from seqlab.tasks import make_task
from tests_support import valid_iob2

TINY = FeatureConfig(prefixes=(1,), suffixes=(), shape=False, window=1, window_shape=False)


def ner_like(n: int, seed: int) -> list[dict]:
    """Sentences of filler words with PER / LOC names (IOB2), names partly capitalised."""
    rng = random.Random(seed)
    filler = ["the", "a", "went", "to", "saw", "in", "and", "with", "from", "today", "big", "new"]
    per = [["John"], ["Mary", "Smith"], ["Bob"], ["ann", "Lee"], ["Ken", "Ito"]]
    loc = [["Paris"], ["New", "York"], ["rome"], ["Lake", "Tahoe"], ["Oslo"]]
    out = []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.randint(2, 9)):
            r = rng.random()
            if r < 0.15 or r < 0.3:
                kind, names = ("PER", per) if r < 0.15 else ("LOC", loc)
                name = rng.choice(names)
                toks += name
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                toks.append(rng.choice(filler))
                tags.append("O")
        out.append({"tokens": toks, "tags": tags})
    return out


def _problem(boundary: bool, seed: int = 0):
    sents = [["John", "saw", "Mary"], [], ["in", "Paris"], ["a"]]
    tags = [[0, 1, 0], [], [1, 2], [2]]
    ext = FeatureExtractor(TINY).fit(sents)
    data = ChainData(ext.transform(sents), np.array([t for s in tags for t in s]), chunk_size=2)
    N, F = 3, ext.n_features
    theta = np.random.default_rng(seed).normal(size=CRFParams.size(F, N, boundary))
    return sents, tags, ext, data, theta, N


@pytest.mark.parametrize("boundary", [True, False])
def test_objective_is_brute_force_nll_plus_l2(boundary: bool) -> None:
    sents, tags, ext, data, theta, N = _problem(boundary)
    X = ext.transform(sents)
    p = CRFParams.unpack(theta, ext.n_features, N, boundary)
    nll = 0.0
    for s, (a, b), gold in zip(sents, zip(X.offsets[:-1], X.offsets[1:]), tags):
        em = (X.matrix[a:b] @ p.weights.numpy()) if b > a else np.zeros((0, N))

        def path_score(path: tuple, em: np.ndarray = em) -> float:
            if not path:
                return 0.0
            v = sum(em[t, y] for t, y in enumerate(path))
            v += sum(p.transitions[i, j].item() for i, j in zip(path, path[1:]))
            return v + p.start[path[0]].item() + p.end[path[-1]].item()

        log_z = math.log(sum(math.exp(path_score(q)) for q in itertools.product(range(N), repeat=len(s))))
        nll += log_z - path_score(tuple(gold))
    f, _ = crf_objective(theta, data, data.observed(N, boundary), N, boundary, c2=0.3)
    assert f == pytest.approx(nll + 0.3 * float(theta @ theta), rel=1e-10)


@pytest.mark.parametrize("boundary", [True, False])
def test_gradient_matches_autograd_through_log_partition(boundary: bool) -> None:
    sents, tags, ext, data, theta, N = _problem(boundary, seed=1)
    _, grad = crf_objective(theta, data, data.observed(N, boundary), N, boundary, c2=0.25)
    t = torch.tensor(theta, requires_grad=True)
    p = CRFParams.unpack(t.detach().numpy(), ext.n_features, N, boundary)  # shapes only
    F = ext.n_features
    W = t[: F * N].view(F, N)
    trans = t[F * N: F * N + N * N].view(N, N)
    start = t[F * N + N * N: F * N + N * N + N] if boundary else torch.zeros(N, dtype=torch.float64)
    end = t[F * N + N * N + N:] if boundary else torch.zeros(N, dtype=torch.float64)
    X = torch.tensor(ext.transform(sents).matrix.toarray())
    T = max(len(s) for s in sents)
    em = torch.zeros(len(sents), T, N, dtype=torch.float64)
    mask = torch.zeros(len(sents), T, dtype=torch.bool)
    gold = torch.zeros(len(sents), T, dtype=torch.long)
    row = 0
    for b, s in enumerate(sents):
        em_b = X[row: row + len(s)] @ W
        em = em.index_put((torch.full((len(s),), b), torch.arange(len(s))), em_b)
        mask[b, : len(s)] = True
        gold[b, : len(s)] = torch.tensor(tags[b], dtype=torch.long)
        row += len(s)
    nll = (log_partition(em, trans, start, end, mask) - score(em, trans, start, end, gold, mask)).sum()
    (nll + 0.25 * (t * t).sum()).backward()
    assert p.weights.shape == (F, N)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-9)


def test_parity_with_sklearn_crfsuite_on_synthetic_ner() -> None:
    """Same features, c1/c2 and iterations: CRFsuite's own model (no start/end scores, every
    attribute x label and label x label feature) gives the same objective and decodes."""
    import sklearn_crfsuite

    from seqlab.metrics.spans import span_scores
    from seqlab.models.classical.features import token_features_ref

    train, test = ner_like(300, 0), ner_like(150, 1)
    cfg = CRFConfig(c1=0.1, c2=0.01, max_iterations=40, boundary=False, window=1, prefixes=(2,), suffixes=(2,))
    ours = CRFModel("crf", make_task("labeling"), cfg).fit(train)
    fc = cfg.features()

    def dicts(split: list[dict]) -> list[list[dict]]:
        return [[dict(f) for f in token_features_ref(ex["tokens"], fc)] for ex in split]

    peer = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.01, max_iterations=40,
                                all_possible_states=True, all_possible_transitions=True)
    peer.fit(dicts(train), [ex["tags"] for ex in train])
    assert ours.n_iterations_ == peer.training_log_.last_iteration["num"]
    assert ours.result_.history[-1]["objective"] == pytest.approx(peer.training_log_.last_iteration["loss"], rel=1e-5)
    gold = [ex["tags"] for ex in test]
    p_ours, p_peer = ours.predict([ex["tokens"] for ex in test]), peer.predict(dicts(test))
    f_ours, f_peer = span_scores(p_ours, gold)["f1"], span_scores(p_peer, gold)["f1"]
    assert abs(f_ours - f_peer) <= 0.005
    assert sum(a == b for a, b in zip(p_ours, p_peer)) >= 0.95 * len(test)


@pytest.mark.parametrize("ours_ls,peer_ls", [("morethuente", "MoreThuente"), ("backtracking", "Backtracking")])
def test_l2_only_follows_crfsuite_line_searches(ours_ls: str, peer_ls: str) -> None:
    """c1 = 0: both line searches of CRFsuite's L-BFGS, iteration for iteration."""
    import sklearn_crfsuite

    from seqlab.models.classical.features import token_features_ref

    train = ner_like(150, 2)
    cfg = CRFConfig(c1=0.0, c2=0.05, max_iterations=25, boundary=False, window=1, prefixes=(), suffixes=(2,),
                    linesearch=ours_ls)
    ours = CRFModel("crf", make_task("labeling"), cfg).fit(train)
    X = [[dict(f) for f in token_features_ref(ex["tokens"], cfg.features())] for ex in train]
    peer = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.0, c2=0.05, max_iterations=25, linesearch=peer_ls,
                                all_possible_states=True, all_possible_transitions=True)
    peer.fit(X, [ex["tags"] for ex in train])
    assert ours.n_iterations_ == peer.training_log_.last_iteration["num"]
    assert ours.result_.history[-1]["objective"] == pytest.approx(peer.training_log_.last_iteration["loss"], rel=1e-5)




def test_constrained_decoding_gives_valid_iob2_even_when_scores_favour_invalid_paths() -> None:
    train = ner_like(60, 3)
    model = seqlab.build("crf", task="labeling", c1=0.1, c2=0.01, max_iterations=15)
    assert isinstance(model, CRFModel)
    model.fit(train)
    assert model.params_ is not None
    itos = model.tags
    bias = model.feature_names_.index("bias")
    for j, t in enumerate(itos):  # push every I- tag far up everywhere
        model.params_.weights[bias, j] += 20.0 if t.startswith("I-") else 0.0
    inputs = [ex["tokens"] for ex in ner_like(40, 4)]
    preds = model.predict(inputs)
    assert all(valid_iob2(p) for p in preds)
    assert [len(p) for p in preds] == [len(x) for x in inputs]
    free = CRFModel("crf", model.task, CRFConfig(c1=0.1, c2=0.01, max_iterations=15, constrained=False))
    free._set_state(*model._get_state())
    free.fitted_ = True
    assert not all(valid_iob2(p) for p in free.predict(inputs))


def _shout(tokens, i):
    return [("upper", 1.0)] if tokens[i].isupper() else []


def test_save_load_round_trip_and_user_functions(tmp_path) -> None:
    train, test = ner_like(80, 5), ner_like(30, 6)
    model = CRFModel("crf", make_task("labeling"), CRFConfig(c2=0.1, max_iterations=20), feature_functions=(_shout,))
    model.fit(train)
    before = model.evaluate(test)
    model.save(tmp_path / "m")
    back = seqlab.load(tmp_path / "m")
    assert isinstance(back, CRFModel)
    with pytest.raises(SeqlabError, match="feature_functions"):
        back.predict([["a"]])
    back.feature_functions = (_shout,)
    assert back.evaluate(test) == before
    assert back.predict([ex["tokens"] for ex in test]) == model.predict([ex["tokens"] for ex in test])
    assert back.n_parameters == model.n_parameters


def test_evaluate_nll_is_the_chain_nll_and_units_are_tokens() -> None:
    train, test = ner_like(60, 7), ner_like(20, 8)
    model = CRFModel("crf", make_task("labeling"), CRFConfig(c2=0.1, max_iterations=10, chunk_size=7)).fit(train)
    preds, refs, nll, units = model._score(test)
    assert units == sum(len(ex["tokens"]) for ex in test) and refs == [ex["tags"] for ex in test]
    stoi = model.task.tag_vocab.stoi
    ext = model._extractor()
    data = ChainData(ext.transform([ex["tokens"] for ex in test]),
                     np.array([stoi[t] for ex in test for t in ex["tags"]]), 0)
    p = model.params_
    theta = torch.cat([p.weights.reshape(-1), p.transitions.reshape(-1), p.start, p.end]).numpy()
    f, _ = crf_objective(theta, data, data.observed(len(stoi), True), len(stoi), True, c2=0.0)
    assert nll == pytest.approx(f, rel=1e-10)
    assert model.evaluate(test)["loss"] == pytest.approx(f / units)


def test_hashing_adam_and_config_errors() -> None:
    train = ner_like(60, 9)
    hashed = CRFModel("crf", make_task("labeling"), CRFConfig(n_buckets=512, max_iterations=30)).fit(train)
    n = len(hashed.tags)
    assert hashed.n_parameters == 512 * n + n * n + 2 * n
    lb = CRFModel("crf", make_task("labeling"), CRFConfig(c2=0.1, max_iterations=100)).fit(train)
    adam = CRFModel("crf", make_task("labeling"), CRFConfig(c2=0.1, optimizer="adam", lr=0.1, max_iterations=100)).fit(train)
    f_lb, f_adam = lb.result_.history[-1]["objective"], adam.result_.history[-1]["objective"]
    f0 = adam.result_.history[0]["objective"]
    assert f_lb <= f_adam < f0 and (f_adam - f_lb) < 0.05 * (f0 - f_lb)
    with pytest.raises(ConfigError, match="c1"):
        CRFConfig(c1=-1)
    with pytest.raises(ConfigError, match="labeling"):
        CRFModel("crf", make_task("classification"), CRFConfig())
    with pytest.raises(DataError, match="one tag per token"):
        CRFModel("crf", make_task("labeling"), CRFConfig()).fit([{"tokens": ["a", "b"], "tags": []}])


def test_empty_sentences_unseen_words_and_unseen_tags() -> None:
    model = CRFModel("crf", make_task("labeling"), CRFConfig(c2=0.1, max_iterations=10)).fit(ner_like(40, 10))
    assert model.predict([[], ["zzz", "Qq"], "John went to Paris"])[:2] == [[], ["O", "O"]]
    with_new = [{"tokens": ["a", "b"], "tags": ["O", "B-NEW"]}, {"tokens": ["John"], "tags": ["B-PER"]}]
    preds, refs, nll, units = model._score(with_new)
    assert units == 1 and [len(p) for p in preds] == [2, 1]  # the sentence with an unseen tag has no NLL
    assert nll == pytest.approx(model._score(with_new[1:])[2])
