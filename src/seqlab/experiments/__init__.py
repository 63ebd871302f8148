"""Experiments that reproduce the field's claims: ``seqlab experiment list | run NAME``.

Each registry line names the experiment, states the claim in one sentence, lists the families
it needs and the decision rule; ``EXPERIMENTS[name].run(size, out_dir, seed)`` trains what it
needs through the public API, saves a PNG and returns a :class:`Verdict` whose ``held`` follows
from its numbers by that rule (``None`` when a family it needs has not landed).

    from seqlab.experiments import EXPERIMENTS
    print(EXPERIMENTS["word_order"].run("quick", "runs/experiments"))
"""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import ConfigError
from seqlab.experiments.base import SIZES, Experiment, Size, Verdict

__all__ = ["EXPERIMENTS", "Experiment", "Verdict", "Size", "SIZES", "run", "get_experiment"]

_R, _L, _S = "seqlab.experiments.recurrent", "seqlab.experiments.longrange", "seqlab.experiments.structured"

_LINES = (
    Experiment("word_order", "A model that sees word order separates 'dog bites man' from 'man bites dog'; a bag of "
               "words cannot.", ("lstm", "linear"), "lstm_acc - bow_acc >= 0.2", f"{_R}:run_word_order"),
    Experiment("vanishing_gradients", "An Elman RNN fails the adding problem at a length where LSTM and GRU "
               "succeed, its input gradients decaying with distance.", ("elman", "lstm", "gru"),
               "min(lstm_r2, gru_r2) - elman_r2 >= 0.5 (R^2 = 1 - MSE / (1/6))", f"{_R}:run_vanishing_gradients"),
    Experiment("exploding_gradients", "Without gradient clipping an RNN with large recurrent weights diverges; with "
               "clipping it trains stably.", ("elman",), "no_clip diverged and clip did not",
               f"{_R}:run_exploding_gradients"),
    Experiment("bidirectional_labeling", "Bidirectional context beats causal context when a token's tag depends on "
               "a later token.", ("lstm",), "bidirectional_acc - causal_acc >= 0.2",
               f"{_R}:run_bidirectional_labeling"),
    Experiment("attention_bottleneck", "Without attention, seq2seq quality falls with source length; with "
               "attention it holds up.", ("seq2seq",),
               "bahdanau_long - none_long >= 0.15 and drop_none > drop_attention", f"{_L}:run_attention_bottleneck"),
    Experiment("position_extrapolation", "ALiBi LMs extrapolate to longer contexts than trained; sinusoidal and "
               "RoPE degrade.", ("transformer",),
               "alibi_ratio <= 1.1 and alibi_ratio < min(sinusoidal_ratio, rope_ratio) (ratio = ppl(4n)/ppl(n))",
               f"{_L}:run_position_extrapolation"),
    Experiment("cost_scaling", "Attention's cost grows quadratically with length, Mamba's linearly.",
               ("transformer", "mamba"), "attention_time_slope >= 1.6 and mamba_time_slope <= 1.3",
               f"{_L}:run_cost_scaling"),
    Experiment("selective_copying", "Selective (input-dependent) Mamba solves selective copying; its LTI "
               "ablation does not.", ("mamba",), "mamba_acc - lti_acc >= 0.2", f"{_L}:run_selective_copying"),
    Experiment("crf_transitions", "A softmax tagger predicts invalid BIO transitions; a constrained CRF tagger "
               "never does.", ("lstm",), "crf_invalid == 0 and softmax_invalid > 0", f"{_S}:run_crf_transitions"),
    Experiment("kneser_ney", "Kneser-Ney beats add-k smoothing on held-out perplexity, by more on text with "
               "more unseen n-grams.", ("ngram",), "familiar_gap > 1 and novel_gap > familiar_gap "
               "(gap = ppl(add-k) / ppl(KN))", f"{_S}:run_kneser_ney"),
    Experiment("exposure_bias", "Scheduled sampling lowers the free-running error of a teacher-forced "
               "seq2seq model.", ("seq2seq",), "scheduled_sampling_fr_error < teacher_forcing_fr_error",
               f"{_S}:run_exposure_bias"),
)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in _LINES}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run(name: str, size: Size = "quick", out_dir: str | Path = "runs/experiments", seed: int = 0) -> Verdict:
    """Run experiment ``name``; see :meth:`Experiment.run`."""
    return get_experiment(name).run(size, out_dir, seed)
