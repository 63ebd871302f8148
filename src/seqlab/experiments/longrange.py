"""Experiments on long-range context: selective copying (Mamba vs its LTI ablation), the
attention bottleneck of seq2seq, position extrapolation of Transformer LMs, and the cost of
attention vs Mamba against length. Also the causal-model recipes and the fit/score helpers the
synthetic benchmarks in ``bench/`` share (``bench/_common.py`` imports them from here).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data.synthetic import selective_copying
from seqlab.errors import ConfigError
from seqlab.experiments.base import Size, Verdict, fit, train_cfg
from seqlab.plots import save_bar_plot, save_line_plot

__all__ = ["CAUSAL_MODELS", "causal_model", "fit_synthetic", "copied_accuracy", "run_selective_copying",
           "run_attention_bottleneck", "run_position_extrapolation", "run_cost_scaling", "window_perplexity",
           "reversal_pairs"]

CAUSAL_MODELS = ("mamba", "lti", "transformer", "sinusoidal", "rope", "alibi", "lstm")


def causal_model(name: str, width: int, layers: int) -> tuple[str, dict[str, Any]]:
    """(family, config) of a causal model of width ``width`` with ``layers`` layers: ``mamba``
    (selective), ``lti`` (its ablation), a Transformer (``transformer`` = RoPE, or its position
    scheme by name) or ``lstm``. Raises ConfigError for another name."""
    if name in ("mamba", "lti"):
        return "mamba", {"d_model": width, "num_layers": layers, "d_state": 16, "expand": 2,
                         "selective": name == "mamba", "causal": True, "dropout": 0.0}
    if name in ("transformer", "sinusoidal", "rope", "alibi"):
        return "transformer", {"d_model": width, "num_layers": layers, "n_heads": 4, "causal": True,
                               "positions": "rope" if name == "transformer" else name, "dropout": 0.0}
    if name == "lstm":
        return "lstm", {"d_model": width, "hidden_size": 2 * width, "num_layers": layers,
                        "bidirectional": False, "dropout": 0.0}
    raise ConfigError(f"unknown model {name!r}; valid: {', '.join(CAUSAL_MODELS)}")


def fit_synthetic(family: str, task: str, config: Mapping[str, Any], train: Sequence[Any], valid: Sequence[Any], *,
                  epochs: int, batch_size: int, lr: float, warmup: int, patience: int | None,
                  max_time: float | None = None, run_dir: str | None = None,
                  task_options: Mapping[str, Any] | None = None, resume: bool = False) -> tuple[Any, float]:
    """Build and fit one model through seqlab's API (early stopping on ``valid``); returns it and
    its training seconds. ``resume``: continue from the checkpoint in ``run_dir`` (``epochs``
    counts from the first run, and a larger value stretches the schedule; ``max_time`` counts
    this run)."""
    import seqlab

    train_settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "warmup_steps": warmup,
                      "weight_decay": 0.0, "patience": patience, "progress": False, "seed": 0, "max_time": max_time}
    model = seqlab.build(family, task=task, task_options=task_options, train=train_settings, recipe=False, **config)
    start = time.perf_counter()
    model.fit(train, valid, run_dir=run_dir, resume=resume)
    return model, time.perf_counter() - start


def copied_accuracy(model: Any, test: Sequence[Mapping[str, Any]], n_copy: int) -> tuple[float, float]:
    """Per-token accuracy over the last ``n_copy`` tags, and the fraction of examples all right."""
    preds = model.predict([ex["tokens"] for ex in test])
    right = [sum(p == g for p, g in zip(pred[-n_copy:], ex["tags"][-n_copy:])) for pred, ex in zip(preds, test)]
    return sum(right) / (n_copy * len(test)), sum(r == n_copy for r in right) / len(test)


def run_selective_copying(size: Size, out_dir: Path, seed: int) -> Verdict:
    """Selective Mamba vs its LTI ablation (``selective=False``) on selective copying
    (Gu & Dao 2023, Sec. 4.1.1) at a small length, both causal, 2 layers, the same step budget
    (no early stopping: both sit on a chance plateau before they learn); score: accuracy on the
    recalled tokens of a test set (chance ``1/(vocab-2)``). Rule: **held if selective accuracy -
    LTI accuracy >= 0.2**.

    The full size is L = 64 with 8 tokens, not the paper's L = 4096 or the bench's L = 256: at
    L = 256 the selective model needs about 18k steps to reach 90% (``bench/selective_copying.py``,
    two CPU-hours) and was still leaving the chance plateau after the 3k steps an experiment can
    afford (accuracy 0.20 against the ablation's 0.07, chance 0.07)."""
    L, n_copy, vocab, n, epochs, width = {"tiny": (12, 2, 6, 64, 1, 16), "quick": (32, 4, 8, 2048, 6, 32),
                                          "full": (64, 8, 10, 8192, 16, 64)}[size]
    data = {s: selective_copying(k, L, n_copy, vocab, seed=seed + i)
            for i, (s, k) in enumerate((("train", n), ("valid", max(n // 16, 16)), ("test", max(n // 8, 32))))}
    nums: dict[str, float] = {"L": L, "chance": 1.0 / (vocab - 2)}
    for name in ("mamba", "lti"):
        family, config = causal_model(name, width, 2)
        model, secs = fit_synthetic(family, "labeling", config, data["train"], data["valid"], epochs=epochs,
                                    batch_size=32, lr=3e-3, warmup=10, patience=None,
                                    task_options={"scheme": "none"})
        nums[f"{name}_acc"], nums[f"{name}_exact"] = copied_accuracy(model, data["test"], n_copy)
    nums["gap"] = nums["mamba_acc"] - nums["lti_acc"]
    plot = save_bar_plot({"Mamba (selective)": nums["mamba_acc"], "LTI ablation": nums["lti_acc"]},
                         out_dir / "selective_copying.png", ylabel="copied-token accuracy",
                         title=f"selective copying, L={L}, {n_copy} tokens", hline=(nums["chance"], "chance"))
    return Verdict("selective_copying", "", nums["gap"] >= 0.2, nums, plot)


# --- attention bottleneck ------------------------------------------------------------------------


def reversal_pairs(n: int, lo: int, hi: int, seed: int, alphabet: str = "abcdefghij") -> list[dict[str, Any]]:
    """String reversal: a random string of length uniform in ``[lo, hi]`` and its reverse."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=int(rng.integers(lo, hi + 1))))
        out.append({"source": s, "target": s[::-1]})
    return out


def _char_accuracy(pred: str, gold: str) -> float:
    """Position-wise matches over the longer of the two strings."""
    return sum(a == b for a, b in zip(pred, gold)) / max(len(pred), len(gold), 1)


def run_attention_bottleneck(size: Size, out_dir: Path, seed: int) -> Verdict:
    """GRU encoder-decoder with and without (Bahdanau) attention on string reversal of lengths
    4..Lmax; quality = mean position-wise character accuracy of greedy outputs, per source length.
    Rule: **held if, on the longest third of lengths, attention accuracy - no-attention accuracy
    >= 0.15, and no-attention loses more from the shortest third to the longest than attention**
    (Bahdanau et al. 2015, Fig. 2: the fixed vector degrades with length)."""
    hi, n, epochs, hid = {"tiny": (6, 64, 1, 16), "quick": (20, 3000, 8, 64), "full": (30, 8000, 15, 128)}[size]
    lo = 4
    train, test = reversal_pairs(n, lo, hi, seed), reversal_pairs(max(n // 6, 40), lo, hi, seed + 1)
    ts = train_cfg(epochs, lr=3e-3, batch_size=32, seed=seed)
    lengths = list(range(lo, hi + 1))
    curves, acc = {}, {}
    for att in ("none", "bahdanau"):
        model = fit("seq2seq", "generation", train, task_options={"main_metric": "exact_match"}, train_settings=ts,
                    attention=att, d_model=16, hidden_size=hid, dropout=0.0, seed=seed)
        preds = model.predict([ex["source"] for ex in test])
        by_len: dict[int, list[float]] = {k: [] for k in lengths}
        for p, ex in zip(preds, test):
            by_len[len(ex["source"])].append(_char_accuracy(p, ex["target"]))
        ys = [float(np.mean(by_len[k])) if by_len[k] else math.nan for k in lengths]
        curves[f"attention={att}"] = (lengths, ys)
        acc[att] = ys
    third = max(len(lengths) // 3, 1)

    def band(ys: list[float], part: slice) -> float:
        return float(np.nanmean(ys[part]))

    nums: dict[str, float] = {"max_len": hi}
    for att in acc:
        nums[f"{att}_short"] = band(acc[att], slice(None, third))
        nums[f"{att}_long"] = band(acc[att], slice(-third, None))
    nums["long_gap"] = nums["bahdanau_long"] - nums["none_long"]
    nums["drop_none"] = nums["none_short"] - nums["none_long"]
    nums["drop_attention"] = nums["bahdanau_short"] - nums["bahdanau_long"]
    held = nums["long_gap"] >= 0.15 and nums["drop_none"] > nums["drop_attention"]
    plot = save_line_plot(curves, out_dir / "attention_bottleneck.png", xlabel="source length",
                          ylabel="character accuracy", title="string reversal: seq2seq with / without attention")
    return Verdict("attention_bottleneck", "", held, nums, plot)


# --- position extrapolation ----------------------------------------------------------------------


def window_perplexity(model: Any, examples: Sequence[Any], length: int, max_windows: int = 64) -> float:
    """Perplexity of a causal LM on non-overlapping windows of ``length`` next-token predictions
    cut from the task's id stream of ``examples`` (each window read from its own start, so the
    model sees contexts up to ``length``): exp of the mean cross-entropy."""
    module, task = model.module, model.task
    ids = torch.tensor(task.stream(examples), dtype=torch.long)  # (S,)
    n_win = min((len(ids) - 1) // length, max_windows)
    if n_win < 1:
        raise ConfigError(f"the held-out stream ({len(ids)} ids) is shorter than one window of {length}")
    x = ids[: n_win * length].view(n_win, length)  # (W, L)
    y = ids[1 : n_win * length + 1].view(n_win, length)  # (W, L)
    was = module.training
    module.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for i in range(0, n_win, 8):
                xb, yb = x[i : i + 8], y[i : i + 8]
                logits = module({"input_ids": xb, "mask": torch.ones_like(xb, dtype=torch.bool)})  # (b, L, V)
                total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="sum"))
    finally:
        module.train(was)
    return math.exp(total / (n_win * length))


def _lm_texts(size: Size, seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Train and held-out texts: pydoc topics (characters) for quick/full, seeded synthetic
    text for tiny."""
    if size == "tiny":
        rng = np.random.default_rng(seed)
        words = ["ab", "cab", "bad", "dab", "acd"]
        text = [{"text": " ".join(words[i] for i in rng.integers(0, 5, size=200))} for _ in range(4)]
        return text[:3], text[3:]
    import seqlab

    ds = seqlab.datasets.load("pydoc", seed=seed)
    return list(ds.train), list(ds.valid) + list(ds.test)


def run_position_extrapolation(size: Size, out_dir: Path, seed: int) -> Verdict:
    """Causal Transformer character LMs with sinusoidal, RoPE and ALiBi positions, trained on
    windows of n characters and scored on windows of n, 2n and 4n (:func:`window_perplexity`).
    ratio(s) = ppl(4n) / ppl(n). Rule (Press et al. 2022): **held if ratio(alibi) <= 1.1 and
    ratio(alibi) < min(ratio(sinusoidal), ratio(rope))**."""
    n, steps, width = {"tiny": (8, 4, 16), "quick": (32, 500, 64), "full": (64, 2000, 128)}[size]
    train, held_out = _lm_texts(size, seed)
    ts = train_cfg(1000, lr=2e-3, batch_size=16, seed=seed, max_steps=steps, warmup_steps=min(50, steps))
    curves: dict[str, tuple[list[int], list[float]]] = {}
    nums: dict[str, float] = {"n": n}
    for pos in ("sinusoidal", "rope", "alibi"):
        model = fit("transformer", "lm", train, task_options={"tokenizer": "char", "block_size": n},
                    train_settings=ts, d_model=width, n_heads=4, num_layers=2, positions=pos, causal=True,
                    dropout=0.0, max_len=4 * n, seed=seed)
        ppl = [window_perplexity(model, held_out, k * n) for k in (1, 2, 4)]
        curves[pos] = ([n, 2 * n, 4 * n], ppl)
        for k, p in zip((1, 2, 4), ppl):
            nums[f"{pos}_ppl_{k}n"] = p
        nums[f"{pos}_ratio"] = ppl[2] / ppl[0]
    held = nums["alibi_ratio"] <= 1.1 and nums["alibi_ratio"] < min(nums["sinusoidal_ratio"], nums["rope_ratio"])
    plot = save_line_plot(curves, out_dir / "position_extrapolation.png", xlabel="evaluation length",
                          ylabel="perplexity", logx=True, logy=True, title=f"trained at n={n}")
    return Verdict("position_extrapolation", "", held, nums, plot)


# --- cost scaling ----------------------------------------------------------------------------


def _cost_point(name: str, length: int, dim: int, layers: int, repeats: int, fresh: bool = True) -> dict[str, Any]:
    """One (model, L) point: in a fresh process (``fresh``), or in this one (the tiny run: no
    process start-up, memory numbers then include this process's allocator state)."""
    from seqlab.experiments.cost import one_point, point_args, run_point

    args = point_args(one=name, lengths=[length], dim=dim, layers=layers, repeats=repeats)
    if not fresh:
        return one_point(args)
    point = run_point(name, length, args, timeout=600)
    if "skipped" in point:
        raise ConfigError(f"cost point {name} L={length} failed: {point['skipped']}")
    return point


def run_cost_scaling(size: Size, out_dir: Path, seed: int) -> Verdict:
    """Time and peak memory of one forward + backward step of causal attention (RoPE
    Transformer) vs Mamba against length, each point in a fresh process (the measuring core of
    ``bench/cost_vs_length.py``, :mod:`seqlab.experiments.cost`); log-log slopes fitted over the
    upper half of the lengths. Rule: **held if attention's time slope >= 1.6 and Mamba's time
    slope <= 1.3** (textbook: 2 and 1; at short lengths attention's linear layers dominate)."""
    from seqlab.experiments.cost import loglog_slope

    # quick reaches L = 8192 and fits over 2048..8192: up to 4096 (its old top) attention's
    # linear layers and kernel overheads still hid the quadratic term (slope 1.19 where the
    # full run measured 1.79); with D = 32 the L^2 D term dominates from a few thousand steps
    lengths, dim, layers, repeats = {"tiny": ((32, 64), 16, 1, 1), "quick": ((512, 1024, 2048, 4096, 8192), 32, 1, 2),
                                     "full": ((1024, 2048, 4096, 8192, 16384), 64, 2, 3)}[size]
    nums: dict[str, float] = {}
    t_curves = {}
    for name in ("attention", "mamba"):
        pts = [_cost_point(name, k, dim, layers, repeats, fresh=size != "tiny") for k in lengths]
        secs = [min(p["seconds"]) for p in pts]
        mibs = [max(p["peak_mib"], 1e-3) for p in pts]
        t_curves[name] = (list(lengths), secs)
        nums[f"{name}_time_slope"] = loglog_slope(list(lengths), secs) or math.nan
        nums[f"{name}_memory_slope"] = loglog_slope(list(lengths), mibs) or math.nan
        nums[f"{name}_s_at_{lengths[-1]}"] = secs[-1]
    held = nums["attention_time_slope"] >= 1.6 and nums["mamba_time_slope"] <= 1.3
    plot = save_line_plot({f"{k} (s)": v for k, v in t_curves.items()}, out_dir / "cost_scaling.png",
                          xlabel="sequence length L", ylabel="seconds per forward + backward", logx=True, logy=True,
                          title=f"D={dim}, {layers} layer(s); memory slopes: attention "
                                f"{nums['attention_memory_slope']:.2f}, mamba {nums['mamba_memory_slope']:.2f}")
    return Verdict("cost_scaling", "", held, nums, plot, note="CPU timings under load are noisy")
