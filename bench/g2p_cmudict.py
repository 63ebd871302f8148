"""Grapheme-to-phoneme conversion on CMUdict: Transformer encoder-decoder, attention RNN and
the no-attention (fixed-vector) seq2seq, trained with seqlab's own API on one seeded split.

Data: ``seqlab.datasets.load("cmudict", seed=0)``: 90/5/5 split by unique word (all variant
pronunciations of a word in one split); every pronunciation is a training pair. Scoring, as in
the G2P literature (g2p-seq2seq, Phonetisaurus, Rao et al. 2015): one output per test word; the
word is right if the output equals any of its dictionary pronunciations (word error rate, WER);
the phoneme error rate (PER) counts edits against the nearest pronunciation
(:func:`seqlab.metrics.generation.multi_reference_rates`). WER is also broken down by word
length, which is where the fixed-vector bottleneck shows.

Stress: CMUdict marks each vowel's stress (``AH0``/``AH1``/``AH2``: 69 phoneme types). The
published numbers above are on stress-free pronunciations (39 phonemes; the PRONALSYL split,
see g2p-seq2seq issue #36 and shtoshni/g2p issue #4), so ``--stress strip`` (the default) trains
and scores without the digits; ``--stress keep`` is the harder task (Phonetisaurus: 24.4% WER
without stress, 33.9% on the current, stressed cmudict, per g2p-seq2seq #36).

Each model trains until ``--epochs`` or its ``--max-time`` budget (seconds of training, per
model) runs out; early stopping follows the validation WER. Models train one after another.

    python bench/g2p_cmudict.py [--models transformer,rnn_attention,rnn_fixed] [--max-time 3600]
        [--threads 2] [--beam 4] [--stress strip|keep] [--quick] [--out runs/g2p]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

import seqlab
from seqlab.metrics.generation import multi_reference_rates

# One entry per model: family, model settings, training settings. Sizes follow g2p-seq2seq's
# 2 x 256 Transformer (4 heads, feed-forward 512); the RNNs are a 2-layer bidirectional-GRU encoder of the same width.
# Absolute positions (sinusoidal) in the encoder-decoder: with RoPE alone neither stack's states
# carry absolute position, which a monotone alignment needs (RoPE learned reversal worse in tests).
MODELS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "transformer": ("transformer", dict(d_model=256, n_heads=4, num_layers=2, decoder_layers=2, d_ff=512,
                                        dropout=0.1, positions="sinusoidal"),
                    dict(lr=1.5e-3, warmup_steps=500, batch_size=128, betas=(0.9, 0.98))),
    "rnn_attention": ("seq2seq", dict(cell="gru", d_model=128, hidden_size=256, num_layers=2,
                                      attention="luong_general", input_feeding=False, dropout=0.2),
                      dict(lr=2e-3, batch_size=128)),
    "rnn_fixed": ("seq2seq", dict(cell="gru", d_model=128, hidden_size=256, num_layers=2,
                                  attention="none", dropout=0.2),
                  dict(lr=2e-3, batch_size=128)),
}
LENGTH_BUCKETS = ((1, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 99))


def by_word(examples: list[dict[str, Any]]) -> tuple[list[list[str]], list[list[list[str]]]]:
    """Unique source words (first-seen order) and each word's list of pronunciations."""
    refs: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for ex in examples:
        refs[tuple(ex["source"])].append(list(ex["target"]))
    return [list(w) for w in refs], list(refs.values())


def score(model: Any, examples: list[dict[str, Any]], beam: int) -> dict[str, Any]:
    words, refs = by_word(examples)
    dec = {"method": "beam", "beam": beam} if beam > 1 else {"method": "greedy"}
    t0 = time.perf_counter()
    hyps = model.predict(words, decoding=dec)
    decode_s = time.perf_counter() - t0
    wer, per = multi_reference_rates(hyps, refs)
    buckets = {}
    for lo, hi in LENGTH_BUCKETS:
        idx = [i for i, w in enumerate(words) if lo <= len(w) <= hi]
        if idx:
            buckets[f"{lo}-{hi}" if hi < 99 else f"{lo}+"] = (len(idx), multi_reference_rates(
                [hyps[i] for i in idx], [refs[i] for i in idx])[0])
    examples_out = [("".join(w), " ".join(h), " | ".join(" ".join(r) for r in rs))
                    for w, h, rs in list(zip(words, hyps, refs))[:8]]
    return {"words": len(words), "wer": wer, "per": per, "by_length": buckets, "decode_s": decode_s,
            "examples": examples_out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="transformer,rnn_attention,rnn_fixed")
    ap.add_argument("--epochs", type=int, default=12, help="the LR schedule's horizon (cosine over these epochs)")
    ap.add_argument("--max-time", type=float, default=3600.0, help="training seconds per model")
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--beam", type=int, default=4, help="test decoding beam (1: greedy)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the split's seed")
    ap.add_argument("--stress", choices=("strip", "keep"), default="strip",
                    help="strip the vowels' stress digits (the published numbers' setting) or keep them")
    ap.add_argument("--quick", action="store_true", help="2,000 training pairs, 1 epoch: checks the script runs")
    ap.add_argument("--out", default="runs/g2p", help="models and results.json go here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = seqlab.datasets.load("cmudict", seed=args.seed, stress=args.stress == "keep")
    train, valid, test = ds.train, ds.valid, ds.test
    if args.quick:
        train, valid, test = train[:2000], valid[:200], test[:200]
    print(f"cmudict (stress {args.stress}) split seed {args.seed}: {len(train):,} train / {len(valid):,} valid / {len(test):,} test pairs; "
          f"{len(by_word(test)[0]):,} test words; torch threads {torch.get_num_threads()}")
    out = Path(args.out)
    results: dict[str, Any] = {}
    for name in args.models.split(","):
        family, cfg, train_cfg = MODELS[name]
        epochs = 1 if args.quick else args.epochs
        model = seqlab.build(family, task=ds, recipe=False, **cfg, train={**train_cfg, "epochs": epochs, "max_time": args.max_time,
                                                            "patience": args.patience, "progress": False})
        t0 = time.perf_counter()
        model.fit(train, valid, run_dir=out / name / "run", resume=False)
        train_s = time.perf_counter() - t0
        model.save(out / name / "model")
        r = score(model, test, args.beam)
        r.update(stress=args.stress, family=family, config=cfg, train=train_cfg, train_s=train_s, params=model.n_parameters,
                 steps=model.result_.steps if model.result_ else None)
        results[name] = r
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))  # after every model
        print(f"\n{name}: {r['params']:,} parameters, {train_s / 60:.1f} min training, {r['steps']} steps; "
              f"test WER {100 * r['wer']:.2f}%  PER {100 * r['per']:.2f}%  (beam {args.beam}, {r['decode_s']:.0f} s)",
              flush=True)
        for w, h, refs in r["examples"]:
            print(f"  {w:<14} {h:<28} gold: {refs}")
    print("\n| model | parameters | training min | steps | test WER % | test PER % |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['params']:,} | {r['train_s'] / 60:.1f} | {r['steps']} | {100 * r['wer']:.2f} | "
              f"{100 * r['per']:.2f} |")
    lengths = [f"{lo}-{hi}" if hi < 99 else f"{lo}+" for lo, hi in LENGTH_BUCKETS]
    print("\nWER % by word length (letters; test words per bucket in brackets)\n")
    first = next(iter(results.values()), None)
    if first:
        print("| model | " + " | ".join(f"{b} ({first['by_length'].get(b, (0,))[0]})" for b in lengths) + " |")
        print("|---|" + "---|" * len(lengths))
        for name, r in results.items():
            print(f"| {name} | " + " | ".join(f"{100 * r['by_length'][b][1]:.1f}" if b in r["by_length"] else "-"
                                             for b in lengths) + " |")


if __name__ == "__main__":
    main()
