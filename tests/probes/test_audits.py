"""Padding and truncation audits against hand counts and independent recomputation."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import seqlab
from seqlab.errors import ConfigError
from seqlab.probes.audits import padding_audit, truncation_audit
from seqlab.probes.examples import minimal_pairs, sense_pairs, short_and_long
from seqlab.tasks import make_task
from tests_support import ner_data, reversal_pairs

NER = ner_data(12)
CLS = [{"tokens": ex["tokens"], "label": "loc" if "B-LOC" in ex["tags"] else "no"} for ex in NER]
LM = [{"tokens": ex["tokens"]} for ex in NER]
DATA = {"classification": CLS, "labeling": NER, "lm": LM}
TINY = {
    "lstm": {"hidden_size": 8, "d_model": 8}, "gru": {"hidden_size": 8, "d_model": 8},
    "elman": {"hidden_size": 8, "d_model": 8},
    "transformer": {"d_model": 8, "n_heads": 2, "num_layers": 1, "d_ff": 16},
    "mamba": {"d_model": 8, "num_layers": 1}, "hybrid": {"d_model": 8, "num_layers": 2},
}
INPUTS = [ex["tokens"] for ex in NER[:4]]


def _untrained(family: str, task: str, data: list, head: str | None = None, **extra: object) -> object:
    """A built network with random weights (padding invariance must hold for any weights)."""
    opts = {**TINY[family], **extra}
    if task == "lm" and family in ("lstm", "gru", "elman"):
        opts["bidirectional"] = False
    return seqlab.build(family, task, head=head, **opts).prepare(data)


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("task", ["classification", "labeling", "lm"])
def test_every_neural_family_is_padding_invariant(family: str, task: str) -> None:
    model = _untrained(family, task, DATA[task])
    audit = padding_audit(model, INPUTS, extra=(1, 5), fill=6)  # padding ids are a real token: the mask decides
    assert audit.method == "module" and audit.sides == ("left", "right")
    assert audit.passed, str(audit)
    assert all(0 <= c <= 1e-5 for row in audit.max_change for c in row)


def test_crf_head_and_encoder_decoders_are_padding_invariant() -> None:
    crf = _untrained("lstm", "labeling", NER, head="crf")
    audit = padding_audit(crf, INPUTS)  # posterior marginals; the chain DP refuses left-padded rows
    assert audit.passed and audit.max_change[1][0] <= 1e-5, str(audit)
    assert [r.split(":")[0] for r in audit.refused] == ["left +1", "left +4", "left +16"]
    pairs = reversal_pairs(8)
    for family, opts in (("seq2seq", {"hidden_size": 8, "d_model": 8}), ("transformer", TINY["transformer"])):
        model = seqlab.build(family, "generation", **opts).prepare(pairs)
        audit = padding_audit(model, pairs[:3], extra=(2, 7))
        assert audit.passed, str(audit)


class MeanPoolAll(nn.Module):
    """Deliberately broken: averages the embeddings of every position, padding included."""

    def __init__(self, vocab: int, classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, 6)
        self.head = nn.Linear(6, classes)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.embed(batch["input_ids"]).mean(1))  # (B, C), mask ignored

    def probabilities(self, output: torch.Tensor, batch: dict, differentiable: bool = False) -> torch.Tensor:
        return output.float().softmax(-1)  # the network protocol's probabilities: (B, C)


def test_broken_module_is_reported_with_its_size() -> None:
    model = _untrained("lstm", "classification", CLS)
    broken = MeanPoolAll(model.task.input_size, model.task.output_size)
    model.module_ = broken
    extra = (1, 4, 16)
    audit = padding_audit(model, INPUTS, extra=extra)
    # the oracle: softmax(W mean(E x)) against softmax(W (sum E x + e E[pad]) / (L + e)), by hand
    E, W = broken.embed.weight.detach(), broken.head
    expected, worst = [], []
    for e in extra:
        diffs: list[float] = []
        for item in model.task.encode_inputs(INPUTS):
            ids = torch.tensor(item["input_ids"])
            p0 = W(E[ids].mean(0)).softmax(-1)
            p1 = W((E[ids].sum(0) + e * E[model.task.pad_id]) / (len(ids) + e)).softmax(-1)
            diffs.append(float((p0 - p1).abs().max().detach()))
        expected.append(max(diffs))
        worst.append(diffs.index(max(diffs)))
    assert not audit.passed
    assert len(audit.defects) == 6 and all(d.startswith("DEFECT: lstm") for d in audit.defects)
    for side_changes, side_worst in zip(audit.max_change, audit.worst_input):
        assert side_changes == pytest.approx(expected, abs=1e-6)
        assert list(side_worst) == worst
    assert "DEFECT" in str(audit) and audit.to_dict()["passed"] is False


def test_classical_models_are_audited_through_batched_distributions(tmp_path) -> None:
    ngram = seqlab.build("ngram", "lm", task_options={"tokenizer": "word"}, order=3).fit(LM)
    hmm = seqlab.build("hmm", "lm", task_options={"tokenizer": "word"}, n_states=4, n_iter=3).fit(LM)
    crf = seqlab.build("crf", "labeling").fit(NER)
    for model in (ngram, hmm, crf):
        audit = padding_audit(model, INPUTS, extra=(1, 3))
        assert audit.method == "distributions" and audit.sides == ("batch",)
        assert audit.passed, str(audit)
    assert padding_audit(ngram, INPUTS).save_plot(tmp_path / "pad.png").stat().st_size > 0


def test_padding_audit_rejects_bad_arguments() -> None:
    model = _untrained("gru", "classification", CLS)
    with pytest.raises(ConfigError):
        padding_audit(model, [])
    with pytest.raises(ConfigError):
        padding_audit(model, INPUTS, extra=(0,))
    with pytest.raises(ConfigError):
        padding_audit(model, INPUTS, sides=("top",))


# --- truncation: models whose prediction is known by hand -------------------------------------------
def _fake(task: str, rule) -> SimpleNamespace:
    return SimpleNamespace(family=f"fake-{task}", task=make_task(task),  # an unfitted task: its declarations
                           predict=lambda inputs: [rule(list(x)) for x in inputs])


# max_len 3; A is not longer; cut_head keeps the last 3, cut_tail the first 3, cut_middle 2 first + 1 last
A, B, C, D, E = list("xab"), list("xabc"), list("yyyyy"), list("zqzqz"), list("pqrst")
HAND = [  # (task, rule, changed inputs per mode (cut_head, cut_tail, cut_middle)), counted by hand
    ("classification", lambda t: t[0], ((1, 4), (), ())),       # B: a != x, E: r != p; D: z == z
    ("classification", lambda t: t[-1], ((), (1, 4), ())),      # tail B: b != c, E: r != t; D: z == z
    ("classification", lambda t: t[-2], ((), (1, 4), (1, 4))),  # B: a != b, E: q != s
    ("lm", lambda t: t[0], ((1, 4), (), ())),                   # vs the prefix ending at the last kept token
    ("labeling", lambda t: ["F" if w == t[0] else "O" for w in t], ((1, 4), (), ())),   # D: [z q z] keeps F O F
    ("labeling", lambda t: ["F" if w == t[-1] else "O" for w in t], ((), (1, 4), ())),
    # parity of the distance to the end: only B (even length) shifts, when its end is cut
    ("labeling", lambda t: ["E" if (len(t) - 1 - i) % 2 == 0 else "O" for i in range(len(t))], ((), (1,), (1,))),
]


@pytest.mark.parametrize(("task", "rule", "changed"), HAND)
def test_truncation_fractions_equal_the_hand_count(task, rule, changed) -> None:
    audit = truncation_audit(_fake(task, rule), [A, B, C, D, E], max_len=3)
    assert audit.n_examples == 5 and audit.n_longer == 4
    assert audit.modes == ("cut_head", "cut_tail", "cut_middle")
    assert audit.changed_inputs == changed
    assert audit.fractions == tuple(len(c) / 4 for c in changed)


def test_truncation_of_a_bigram_lm_never_changes_the_last_token_prediction() -> None:
    # a bigram model predicts from the last token only, and cut_head / cut_middle keep it
    model = seqlab.build("ngram", "lm", task_options={"tokenizer": "word"}, order=2).fit(LM)
    audit = truncation_audit(model, [ex["tokens"] for ex in NER], max_len=2)
    assert audit.n_longer == sum(len(ex["tokens"]) > 2 for ex in NER)
    assert audit.changed == (0, 0, 0)


def test_truncation_audit_report_and_errors(tmp_path) -> None:
    audit = truncation_audit(_fake("classification", lambda t: t[0]), [B, E], max_len=3)
    assert "cut_head" in str(audit) and audit.to_dict()["fractions"] == [1.0, 0.0, 0.0]
    assert audit.save_plot(tmp_path / "t.png").stat().st_size > 0
    with pytest.raises(ConfigError):
        truncation_audit(_fake("mlm", lambda t: t[0]), [B], max_len=3)
    with pytest.raises(ConfigError):
        truncation_audit(_fake("classification", lambda t: t[0]), [B], max_len=0)


def test_example_sets() -> None:
    pairs = minimal_pairs()
    assert len(pairs) == 90
    for p in pairs:  # same words, other order, swapped roles
        assert sorted(p["first"].split()) == sorted(p["second"].split()) and p["first"] != p["second"]
        agent, patient = p["first_label"].split(">")
        assert p["first"] == f"the {agent} {p['verb']} the {patient}" and p["second_label"] == f"{patient}>{agent}"
    for s in sense_pairs():
        assert s["first"].split()[s["first_index"]] == s["word"] == s["second"].split()[s["second_index"]]
        assert s["first_sense"] != s["second_sense"]
    sl = short_and_long(5, short=(2, 3), long=(9, 10), alphabet="ab", seed=3)
    assert sl == short_and_long(5, short=(2, 3), long=(9, 10), alphabet="ab", seed=3)
    assert all(2 <= len(t) <= 3 for t in sl["short"]) and all(9 <= len(t) <= 10 for t in sl["long"])
    assert {w for t in sl["short"] + sl["long"] for w in t} <= {"a", "b"}
    with pytest.raises(ConfigError):
        short_and_long(2, short=(3, 2))
