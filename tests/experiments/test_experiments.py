"""Experiments: every tiny run returns a Verdict whose ``held`` follows from its own numbers by the
stated rule (recomputed here), writes a PNG, and finishes in seconds; deterministic answers are
checked against oracles; the CLI lists and runs them; the formulation sheet matches the registry.
"""

from __future__ import annotations

import io
import math
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import seqlab
from seqlab.cli import main, serving_context
from seqlab.experiments import EXPERIMENTS, Experiment, Verdict
from seqlab.experiments.structured import KN_CORPUS, invalid_bio_transitions

PNG = b"\x89PNG\r\n\x1a\n"

# the decision rules, written again from the docstrings (not imported from the code under test)
RULES: dict[str, Any] = {
    "word_order": lambda n: n["lstm_acc"] - n["bow_acc"] >= 0.2,
    "vanishing_gradients": lambda n: (min(1 - 6 * n["lstm_mse"], 1 - 6 * n["gru_mse"]) - (1 - 6 * n["elman_mse"])
                                      >= 0.5 - 1e-12),
    "exploding_gradients": lambda n: n["no_clip_diverged"] == 1 and n["clip_diverged"] == 0,
    "bidirectional_labeling": lambda n: n["bidirectional_acc"] - n["causal_acc"] >= 0.2,
    "attention_bottleneck": lambda n: (n["bahdanau_long"] - n["none_long"] >= 0.15
                                       and n["none_short"] - n["none_long"] > n["bahdanau_short"] - n["bahdanau_long"]),
    "position_extrapolation": lambda n: (n["alibi_ppl_4n"] / n["alibi_ppl_1n"] <= 1.1 and n["alibi_ppl_4n"] / n["alibi_ppl_1n"]
                                         < min(n["sinusoidal_ppl_4n"] / n["sinusoidal_ppl_1n"],
                                               n["rope_ppl_4n"] / n["rope_ppl_1n"])),
    "cost_scaling": lambda n: n["attention_time_slope"] >= 1.6 and n["mamba_time_slope"] <= 1.3,
    "selective_copying": lambda n: n["mamba_acc"] - n["lti_acc"] >= 0.2,
    "crf_transitions": lambda n: n["crf_invalid"] == 0 and n["softmax_invalid"] > 0,
    "kneser_ney": lambda n: (n["familiar_addk_ppl"] / n["familiar_kn_ppl"] > 1
                             and n["novel_addk_ppl"] / n["novel_kn_ppl"] > n["familiar_addk_ppl"] / n["familiar_kn_ppl"]),
    "exposure_bias": lambda n: n["scheduled_sampling_fr_error"] < n["teacher_forcing_fr_error"],
}

_cache: dict[str, Verdict] = {}


def tiny(name: str, tmp_path_factory: pytest.TempPathFactory) -> Verdict:
    if name not in _cache:
        out = tmp_path_factory.mktemp(name)
        start = time.perf_counter()
        _cache[name] = EXPERIMENTS[name].run("tiny", out, seed=0)
        assert time.perf_counter() - start < 120, f"{name} tiny took too long"  # a guard on the suite, loose for busy machines
    return _cache[name]


def test_registry_has_the_eleven_experiments() -> None:
    assert set(EXPERIMENTS) == set(RULES)
    for e in EXPERIMENTS.values():
        assert e.claim.endswith(".") and e.rule and e.families


@pytest.mark.parametrize("name", list(RULES))
def test_tiny_verdict_follows_its_numbers(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    v = tiny(name, tmp_path_factory)
    assert v.name == name and v.size == "tiny" and v.claim == EXPERIMENTS[name].claim
    if v.held is None:  # only for a missing dependency, and it must say so
        assert v.note.startswith("not available:"), v.note
        assert "NOT AVAILABLE" in str(v)
        return
    assert all(isinstance(x, (int, float)) for x in v.numbers.values())
    assert v.held == RULES[name](v.numbers), str(v)
    assert v.plot is not None and v.plot.exists() and v.plot.read_bytes()[:8] == PNG
    assert ("HELD" if v.held else "NOT HELD on this run") in str(v)


def test_bag_of_words_is_exactly_at_chance_on_minimal_pairs(tmp_path_factory: pytest.TempPathFactory) -> None:
    # an order-blind model maps both members of a pair to one prediction: exactly half right
    assert tiny("word_order", tmp_path_factory).numbers["bow_acc"] == 0.5


def test_constrained_crf_never_predicts_an_invalid_transition(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert tiny("crf_transitions", tmp_path_factory).numbers["crf_invalid"] == 0


@pytest.mark.parametrize(("tags", "bad"), [
    (["O", "B-x", "I-x", "I-x", "O"], 0), (["I-x", "O"], 1), (["O", "I-x"], 1), (["B-x", "I-y"], 1),
    (["B-x", "I-x", "B-y", "I-y", "I-x"], 1), (["B-x", "O", "I-x", "I-x"], 1), ([], 0),
])
def test_invalid_bio_transitions_counts(tags: list[str], bad: int) -> None:
    assert invalid_bio_transitions(tags) == bad


def _unseen(train: list[str], text: str) -> float:
    seen = set()
    for s in train:
        w = ["<s>", "<s>", *s.split(), "</s>"]
        seen |= {tuple(w[i:i + 3]) for i in range(len(w) - 2)}
    w = ["<s>", "<s>", *text.split(), "</s>"]
    grams = [tuple(w[i:i + 3]) for i in range(len(w) - 2)]
    return sum(g not in seen for g in grams) / len(grams)


def test_kneser_ney_numbers_match_the_models_own_evaluate(tmp_path_factory: pytest.TempPathFactory) -> None:
    v = tiny("kneser_ney", tmp_path_factory)
    train_s, held_s = KN_CORPUS
    order = sorted(held_s, key=lambda s: _unseen(train_s, s))
    half = len(held_s) // 2
    train = [{"text": s} for s in train_s]
    for name, part in (("familiar", order[:half]), ("novel", order[half:])):
        ex = [{"text": s} for s in part]
        for key, opts in (("kn", {"smoothing": "kneser_ney"}), ("addk", {"smoothing": "add_k", "k": v.numbers["k"]})):
            m = seqlab.build("ngram", task="lm", task_options={"tokenizer": "word"}, order=3, **opts).fit(train)
            assert math.isclose(m.evaluate(ex)["perplexity"], v.numbers[f"{name}_{key}_ppl"], rel_tol=1e-9)


def test_missing_family_gives_a_none_verdict(tmp_path: Path) -> None:
    e = Experiment("ghost", "A claim.", ("no_such_family",), "never", "seqlab.experiments.recurrent:run_word_order")
    v = e.run("tiny", tmp_path)
    assert v.held is None and v.note == "not available: no_such_family has not landed" and v.plot is None


def test_cli_lists_and_runs(tmp_path: Path) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["experiment", "list"]) == 0
    for name in RULES:
        assert name in buf.getvalue()
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["experiment", "run", "word_order", "--size", "tiny", "--out", str(tmp_path)]) == 0
    first = buf.getvalue().splitlines()[0]
    assert first.startswith("word_order: ") and ("HELD" in first or "NOT HELD on this run" in first)
    assert (tmp_path / "word_order.png").exists()


# --- the formulation sheet -------------------------------------------------------------------------

def _tiny_data(task: str) -> list[dict[str, Any]]:
    if task == "classification":
        return [{"tokens": ["a", "b"], "label": "x"}, {"tokens": ["b", "a"], "label": "y"}]
    if task == "labeling":
        return [{"tokens": ["a", "b"], "tags": ["O", "O"]}]
    return [{"text": "a b a b"}]


def test_tasks_sheet_lists_each_familys_context_from_the_registry() -> None:
    from seqlab.models.registry import FAMILIES
    from seqlab.tasks import TASKS

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["tasks"]) == 0
    rows = {ln.split()[0]: ln for ln in buf.getvalue().splitlines()[2:]}
    assert set(rows) == set(TASKS)
    for task, line in rows.items():
        context = line[line.index("["):]  # the last column
        found: dict[str, str] = {}
        for group in context.split("; "):
            how, names = group[1:].split("] ")
            found.update({n: how for n in names.split()})
        served = [f for f in FAMILIES.values() if task in f.tasks]
        assert list(found) == [f.name for f in served] or sorted(found) == sorted(f.name for f in served)
        for f in served:
            assert found[f.name] == serving_context(f, task)


@pytest.mark.parametrize("task", ["classification", "labeling", "lm"])
def test_tasks_sheet_context_matches_the_built_encoder(task: str) -> None:
    """The default model the registry builds is causal exactly when the sheet says it starts causal."""
    from seqlab.models.registry import FAMILIES

    for f in FAMILIES.values():
        if task not in f.tasks or f.kind == "classical":
            continue
        word = serving_context(f, task)
        small: dict[str, Any] = {"d_model": 8, "num_layers": 2 if f.name == "hybrid" else 1}
        if f.name in ("lstm", "gru", "elman"):
            small["hidden_size"] = 8
        if f.name == "transformer":
            small["d_ff"] = 8
        if f.name in ("transformer", "hybrid"):
            small["n_heads"] = 2
        model = seqlab.build(f.name, task=task, **small).prepare(_tiny_data(task))
        assert bool(model.module.encoder.causal) == word.startswith("causal"), (f.name, task, word)
