"""The context-sensitivity probe: distributions against per-family oracles, KL by hand, the
structure each family must show (n-gram window, causality, bidirectionality, HMM decay), saliency
against a Jacobian, every registry family, and the command line."""

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seqlab
from seqlab.errors import ConfigError, SeqlabError
from seqlab.models.registry import FAMILIES
from seqlab.probes import influence_matrix, saliency, sensitivity

WORDS = ["the", "man", "bit", "dog", "cat", "saw", "a", "red"]
TRAIN = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "patience": None, "progress": False}
NET = {"d_model": 8, "hidden_size": 8, "dropout": 0.0}
NETS = {  # tiny, per family (transformer/mamba/hybrid widths must suit their heads and scans)
    "lstm": NET, "gru": NET, "elman": NET,
    "transformer": {"d_model": 8, "n_heads": 2, "num_layers": 1, "dropout": 0.0},
    "mamba": {"d_model": 8, "num_layers": 1, "d_state": 4, "dropout": 0.0},
    "hybrid": {"d_model": 8, "num_layers": 2, "d_state": 4, "n_heads": 2, "dropout": 0.0},
    "conformer": {"d_model": 8, "num_layers": 1, "n_heads": 2, "conv_kernel": 3, "dropout": 0.0},
}
LM_OPTS = {"tokenizer": "word", "block_size": 16}


def _data(task: str, n: int = 24) -> list[dict]:
    rng = random.Random(0)
    out = []
    for _ in range(n):
        toks = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        if task == "labeling":
            out.append({"tokens": toks, "tags": ["B-A" if t in ("dog", "cat") else "O" for t in toks]})
        elif task == "classification":
            out.append({"tokens": toks, "label": "pet" if "dog" in toks else "other"})
        else:
            out.append({"text": " ".join(toks)})
    return out


def _model(family: str, task: str, fit: bool = False, **kw: Any) -> Any:
    """A tiny model; neural ones are built untrained (``prepare``) unless ``fit``."""
    opts = LM_OPTS if task in ("lm", "mlm") else {}
    data = _data(task)
    if FAMILIES[family].kind == "classical":
        small = {"hmm": {"n_states": 4, "n_iter": 5} if task == "lm" else {}, "crf": {"max_iterations": 30}}
        return seqlab.build(family, task=task, task_options=opts, **{**small.get(family, {}), **kw}).fit(data)
    m = seqlab.build(family, task=task, task_options=opts, train=TRAIN, **{**NETS[family], **kw})
    return m.fit(data) if fit else m.prepare(data)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row, written out: sum_k p_k log(p_k / q_k) over p_k > 0."""
    out = []
    for pr, qr in zip(p.double().tolist(), q.double().tolist()):
        out.append(sum(a * math.log(a / b) for a, b in zip(pr, qr) if a > 0))
    return torch.tensor(out, dtype=torch.float64)


# --- distributions against independent oracles ----------------------------------------------------
@pytest.mark.parametrize("family,task,head", [("lstm", "lm", None), ("transformer", "labeling", None),
                                              ("gru", "classification", None), ("mamba", "lm", None)])
def test_neural_distributions_are_the_softmax_of_the_logits(family: str, task: str, head: Any) -> None:
    m = _model(family, task, head=head)
    x = "the man bit the dog"
    batch = m.task.collate(m.task.encode_inputs([x]))
    m.module.eval()
    with torch.no_grad():
        logits = m.module(batch)  # (1, T, K) or (1, K)
    e = logits.double().exp()
    want = (e / e.sum(-1, keepdim=True))[0]  # softmax by hand
    want = want[None] if task == "classification" else want
    got = m.distributions([x])[0]
    assert got.shape == (1 if task == "classification" else 5, len(m.output_labels()))
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def _chain_marginals_bruteforce(em: torch.Tensor, tr: torch.Tensor, st: torch.Tensor, en: torch.Tensor) -> torch.Tensor:
    """p(y_t = k) by enumerating every tag path of one sequence: em (T, N) -> (T, N); differentiable."""
    T, N = em.shape
    scores, paths = [], list(itertools.product(range(N), repeat=T))
    for y in paths:
        s = st[y[0]] + en[y[-1]] + sum(em[t, y[t]] for t in range(T)) + sum(tr[y[t], y[t + 1]] for t in range(T - 1))
        scores.append(s)
    w = torch.stack(scores).softmax(0)  # (paths,)
    onehot = torch.zeros(len(paths), T, N, dtype=em.dtype)
    for i, y in enumerate(paths):
        onehot[i, range(T), list(y)] = 1.0
    return torch.einsum("p,ptn->tn", w, onehot)


def test_crf_head_distributions_are_marginals_by_enumeration() -> None:
    m = _model("lstm", "labeling", head="crf", bidirectional=True)
    with torch.no_grad():  # give the transitions something to say
        m.module.head.crf.transitions.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.3]]))
    x = "the dog bit"
    batch = m.task.collate(m.task.encode_inputs([x]))
    m.module.eval()
    with torch.no_grad():
        em = m.module(batch)[0].double()  # (T, N) emissions
    crf = m.module.head.crf
    want = _chain_marginals_bruteforce(em, crf.transitions.double(), crf.start.double(), crf.end.double())
    torch.testing.assert_close(m.distributions([x])[0].double(), want, rtol=1e-4, atol=1e-5)


def test_hmm_tagger_distributions_are_marginals_by_enumeration() -> None:
    m = _model("hmm", "labeling")
    words = ["the", "dog", "zebra", "cat"]  # "zebra": the unknown-word model
    tg = m._tagger()
    em, _ = tg.potentials([words])
    want = _chain_marginals_bruteforce(em[0], tg.log_trans_, tg.log_start_, tg.log_end_)
    torch.testing.assert_close(m.distributions([words])[0], want, rtol=1e-6, atol=1e-9)


def test_hmm_lm_distributions_by_enumerating_states() -> None:
    m = _model("hmm", "lm", n_states=3, n_iter=2)
    hmm = m._lm()
    pi, A, B = hmm.startprob_.double(), hmm.transmat_.double(), hmm.emissionprob_.double()
    x = "the man bit"
    ids = m.task.codec.encode(m.tokenize(x))

    def joint(seq: list[int]) -> float:  # p(x_1..x_n) summing over every state path
        total = 0.0
        for s in itertools.product(range(3), repeat=len(seq)):
            p = pi[s[0]] * B[s[0], seq[0]]
            for t in range(1, len(seq)):
                p = p * A[s[t - 1], s[t]] * B[s[t], seq[t]]
            total += float(p)
        return total

    got = m.distributions([x])[0]
    V = len(m.output_labels())
    for j in range(len(ids)):
        prefix = joint(ids[: j + 1])
        want = torch.tensor([joint(ids[: j + 1] + [v]) / prefix for v in range(V)], dtype=torch.float64)
        torch.testing.assert_close(got[j], want, rtol=1e-8, atol=1e-12)


def test_ngram_distributions_are_its_own_scores() -> None:
    from seqlab.models.classical.ngram import score_stream_ref, sentence_stream

    m = _model("ngram", "lm", order=3)
    x = "the man bit the"
    hist = m._history(x, 0)  # model ids
    got = m.distributions([x])[0]  # (J, K) over task ids
    Vm = m.tables_.vocab_size
    to_task = m._to_task(np.arange(Vm))
    for j in range(len(hist)):
        cands = [w for w in range(Vm) if w != 1]  # every next word but <s>
        tokens, offset = sentence_stream([hist[: j + 1] + [w] for w in cands])
        lp = score_stream_ref(m.tables_, tokens, offset)
        at = np.flatnonzero(offset == j + 2)  # the candidate's position in each sentence
        want = torch.zeros(got.shape[1], dtype=torch.float64)
        want[torch.from_numpy(to_task[cands])] = torch.from_numpy(10.0 ** lp[at])
        torch.testing.assert_close(got[j], want, rtol=1e-9, atol=1e-12)
        assert float(got[j].sum()) == pytest.approx(1.0)


def test_feature_crf_distributions_are_marginals_by_enumeration() -> None:
    m = _model("crf", "labeling", max_iterations=20)
    toks = ["the", "dog", "saw"]
    p = m.params_
    data = m._data([toks], None)
    em = torch.from_numpy(np.asarray(data.X @ p.weights.numpy()))  # (T, N), one sentence: no reordering
    want = _chain_marginals_bruteforce(em, p.transitions, p.start, p.end)
    torch.testing.assert_close(m.distributions([toks])[0], want, rtol=1e-8, atol=1e-10)


# --- sensitivity = KL by hand from two separate calls ----------------------------------------------------
@pytest.mark.parametrize("family,task", [("lstm", "lm"), ("transformer", "classification"), ("hmm", "labeling"),
                                         ("ngram", "lm"), ("crf", "labeling"), ("gru", "labeling")])
def test_sensitivity_is_kl_of_two_separate_calls(family: str, task: str) -> None:
    m = _model(family, task)
    x = "the man bit the dog"
    res = sensitivity(m, x, position=1, replacement="cat")
    p = m.distributions([x])[0]
    q = m.distributions(["the cat bit the dog"])[0]
    # float32 networks: a batch of two and two batches of one may differ in the last bits
    torch.testing.assert_close(torch.tensor(res.kl, dtype=torch.float64), _kl(p, q), rtol=1e-4, atol=1e-6)
    tv = [0.5 * sum(abs(a - b) for a, b in zip(pr, qr)) for pr, qr in zip(p.tolist(), q.tolist())]
    assert res.tv == pytest.approx(tv, abs=1e-6)
    labels = m.output_labels()
    assert list(res.top_before) == [labels[i] for i in p.argmax(-1).tolist()]
    assert list(res.flipped) == (p.argmax(-1) != q.argmax(-1)).tolist()
    assert res.edited == ("the", "cat", "bit", "the", "dog")
    json.dumps(res.to_dict())
    text = str(res)
    assert "KL (nats)" in text and "'man' -> 'cat'" in text and len(text.splitlines()) == 5 + len(res.kl)


def test_influence_matrix_is_the_mean_of_single_edits_and_is_seeded() -> None:
    m = _model("lstm", "labeling", bidirectional=True)
    x = "the man bit the dog"
    inf = influence_matrix(m, x, replacements=3, seed=7)
    assert inf.kl.shape == (5, 5) and all(len(r) == 3 for r in inf.replacements)
    for i, reps in enumerate(inf.replacements):
        assert x.split()[i] not in reps and len(set(reps)) == 3
        if i not in (0, 3):  # two positions checked edit by edit keep the test fast
            continue
        want = torch.stack([torch.tensor(sensitivity(m, x, i, r).kl, dtype=torch.float64) for r in reps]).mean(0)
        torch.testing.assert_close(inf.kl[i], want, rtol=1e-6, atol=1e-9)
    again = influence_matrix(m, x, replacements=3, seed=7)
    assert again.replacements == inf.replacements and torch.equal(again.kl, inf.kl)
    assert influence_matrix(m, x, replacements=3, seed=8).replacements != inf.replacements
    named = influence_matrix(m, x, replacements="<unk>")
    assert named.replacements == (("<unk>",),) * 5
    json.dumps(inf.to_dict())


# --- the structure each family must show -------------------------------------------------------------------
def test_ngram_influence_is_exactly_zero_outside_its_window() -> None:
    for order in (2, 3):
        m = _model("ngram", "lm", order=order)
        inf = influence_matrix(m, "the man bit the dog saw a cat", replacements=3)
        T = len(inf.tokens)
        for i in range(T):
            for j in range(T):
                inside = i <= j <= i + order - 2  # row j sees tokens j - n + 2 .. j
                assert (inf.kl[i, j] > 0) if inside else (inf.kl[i, j] == 0.0), (order, i, j, float(inf.kl[i, j]))


@pytest.mark.parametrize("family", ["lstm", "transformer", "mamba", "hybrid"])
def test_causal_lms_ignore_later_edits(family: str) -> None:
    m = _model(family, "lm")
    inf = influence_matrix(m, "the man bit the dog saw a cat", replacements=2)
    T = len(inf.tokens)
    before = torch.tensor([[j < i for j in range(T)] for i in range(T)])
    assert float(inf.kl[before].abs().max()) < 1e-6
    assert bool((inf.kl.diagonal() > 1e-8).all())  # the edited token's own next-token row moves


def test_bidirectional_lstm_labeler_sees_later_tokens() -> None:
    m = _model("lstm", "labeling", bidirectional=True)
    inf = influence_matrix(m, "the man bit the dog saw a cat", replacements=2)
    T = len(inf.tokens)
    assert all(float(inf.kl[i, :i].max()) > 1e-8 for i in range(1, T))


def test_transformer_reaches_as_far_as_the_input_goes() -> None:
    x = " ".join(WORDS * 2)  # 16 tokens
    lm = influence_matrix(_model("transformer", "lm"), x, replacements=2)
    assert float(lm.kl[0, -1]) > 1e-8  # the first token still moves the last prediction
    tagger = influence_matrix(_model("transformer", "labeling"), x, replacements=2)
    assert float(tagger.kl[0, -1]) > 1e-8 and float(tagger.kl[-1, 0]) > 1e-8


def test_hmm_influence_decays_with_distance() -> None:
    """A 2-state chain that stays with probability 0.8 (mixing rate 0.6 per step) and emits
    "the"/"dog" 0.7/0.3 or 0.3/0.7: the effect of the first token on every later next-token
    prediction (lm) and on every tag marginal (an HMM labeler) shrinks step by step."""
    m = _model("hmm", "lm", n_states=2, n_iter=1)
    hmm = m._lm()
    V = len(m.output_labels())
    the, dog = m.task.codec.fitted_vocab.stoi["the"], m.task.codec.fitted_vocab.stoi["dog"]
    emis = torch.full((2, V), 1e-9, dtype=torch.float64)
    emis[0, the], emis[0, dog], emis[1, the], emis[1, dog] = 0.7, 0.3, 0.3, 0.7
    hmm.startprob_ = torch.tensor([0.5, 0.5], dtype=torch.float64)
    hmm.transmat_ = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)
    hmm.emissionprob_ = emis / emis.sum(-1, keepdim=True)
    kl = torch.tensor(sensitivity(m, ["the"] * 8, position=0, replacement="dog").kl)
    assert bool((kl[1:] < kl[:-1]).all()) and float(kl[-1]) > 0, kl
    tagger = _model("hmm", "labeling")  # tags B-A, O; now the same chain, emissions set by hand
    tg = tagger._tagger()
    tg.log_start_ = tg.log_end_ = torch.tensor([0.5, 0.5], dtype=torch.float64).log()
    tg.log_trans_ = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64).log()
    index = tg._counts().word_index
    tg.log_known_ = torch.full_like(tg.log_known_, math.log(0.1))  # "a": says nothing
    tg.log_known_[:, index["the"]] = torch.tensor([0.03, 0.07], dtype=torch.float64).log()
    tg.log_known_[:, index["dog"]] = torch.tensor([0.07, 0.03], dtype=torch.float64).log()
    kl = torch.tensor(sensitivity(tagger, ["the"] * 4 + ["a"] + ["the"] * 4, position=4, replacement="dog").kl)
    assert bool((kl[5:] < kl[4:-1]).all()) and bool((kl[:4] < kl[1:5]).all()), kl  # both directions


# --- saliency -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", [None, "crf"])
def test_saliency_matches_the_jacobian(head: Any) -> None:
    m = _model("lstm", "labeling", head=head, bidirectional=True, char_filters=0)  # the frontend is the embedding
    x = "the dog bit"
    sal = saliency(m, x)  # (J, T)
    mod = m.module.eval()
    batch = m.task.collate(m.task.encode_inputs([x]))
    mask = batch["mask"]
    with torch.no_grad():
        e0 = mod.frontend.embed(batch["input_ids"])  # (1, T, E)

    def probs(e: torch.Tensor) -> torch.Tensor:  # (1, T, E) -> (T, K), the model's rows, by hand
        s = mod.head(mod.encoder(e, mask), mask)[0]  # (T, K)
        if head is None:
            return s.softmax(-1)
        crf = mod.head.crf
        return _chain_marginals_bruteforce(s, crf.transitions, crf.start, crf.end)

    top = probs(e0).argmax(-1).detach()
    jac = torch.autograd.functional.jacobian(lambda e: probs(e)[range(3), top].log(), e0)  # (J, 1, T, E)
    want = jac[:, 0].norm(dim=-1)  # (J, T)
    torch.testing.assert_close(sal, want, rtol=1e-3, atol=1e-5)
    assert float(sal.min()) >= 0 and float(sal.max()) > 0


def test_saliency_of_a_causal_lm_is_zero_on_later_tokens_and_classical_raises() -> None:
    sal = saliency(_model("gru", "lm"), "the man bit the dog")
    assert sal.shape == (5, 5) and float(sal.triu(1).abs().max()) == 0.0
    assert saliency(_model("gru", "classification"), "the man bit").shape == (1, 3)
    with pytest.raises(SeqlabError, match="saliency needs a neural family"):
        saliency(_model("ngram", "lm"), "the man")


# --- validation ---------------------------------------------------------------------------------------------
def test_clear_errors() -> None:
    m = _model("lstm", "lm")
    with pytest.raises(ConfigError, match=r"position must be an int in \[0, 3\)"):
        sensitivity(m, "the man bit", position=3, replacement="dog")
    with pytest.raises(ConfigError, match=r"vocabulary of \d+ tokens.*'dog'"):
        sensitivity(m, "the man bit", position=1, replacement="dogg")
    with pytest.raises(ConfigError, match="empty"):
        sensitivity(m, "  ", position=0, replacement="dog")
    with pytest.raises(ConfigError, match="one token"):
        sensitivity(m, "the man bit", position=0, replacement="the dog")
    mlm = seqlab.build("lstm", task="mlm", task_options=LM_OPTS, train=TRAIN, **NET).prepare(_data("lm"))
    with pytest.raises(SeqlabError, match="class distributions per token or per sequence"):
        mlm.distributions(["the man"])


# --- every registry family that serves lm, labeling or classification -----------------------------------------
PROBE_CASES = [(f, t) for f, fam in FAMILIES.items() for t in fam.tasks if t in ("lm", "labeling", "classification")]


@pytest.mark.parametrize("family,task", PROBE_CASES)
def test_every_family_gives_distributions_and_an_influence_matrix(family: str, task: str) -> None:
    m = _model(family, task)
    x = "the man bit the dog"
    toks = m.tokenize(x)
    (p,) = m.distributions([x])
    assert p.shape == (1 if task == "classification" else len(toks), len(m.output_labels()))
    torch.testing.assert_close(p.double().sum(-1), torch.ones(p.shape[0], dtype=torch.float64), rtol=1e-5, atol=1e-5)
    inf = influence_matrix(m, x, replacements=2)
    assert inf.kl.shape == (len(toks), p.shape[0]) and bool((inf.kl >= -1e-9).all())
    if task == "lm":  # every LM, classical or neural, is causal
        assert float(inf.kl.tril(-1).abs().max()) < 1e-6


# --- command line --------------------------------------------------------------------------------------------------
def test_cli_probe_sensitivity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seqlab.cli import main

    data = tmp_path / "text.txt"
    data.write_text("\n".join(["the man bit the dog", "the dog bit the man"] * 10) + "\n")
    run = tmp_path / "run"
    assert main(["train", str(data), "--task", "lm", "--model", "gru", "--task.tokenizer", "word",
                 "--model.hidden_size", "8", "--model.d_model", "8", "--train.epochs", "1",
                 "--train.progress", "false", "--out", str(run)]) == 0
    capsys.readouterr()
    png = tmp_path / "bars.png"
    assert main(["probe", "sensitivity", str(run), "--text", "the man bit the dog", "--position", "1",
                 "--with", "dog", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "token 1 'man' -> 'dog'" in out and "KL (nats)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heat = tmp_path / "heat.png"
    assert main(["probe", "sensitivity", str(run), "--text", "the man bit the dog", "--matrix", "--saliency",
                 "--out", str(heat)]) == 0
    out = capsys.readouterr().out
    assert "rows = changed token i" in out and "saliency" in out
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["probe", "sensitivity", str(run), "--text", "the man", "--position", "1", "--with", "zebra"]) == 2
    assert "not in the model's vocabulary" in capsys.readouterr().err
