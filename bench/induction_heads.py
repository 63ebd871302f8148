"""Induction heads (Gu & Dao 2023, Sec. 4.1.2, Table 11): train at 256, test up to 4096.

``seqlab.data.synthetic.induction_heads`` draws random tokens (vocabulary ``--vocab``, trigger
included), writes the trigger once somewhere and again at the end; the answer is the token that
followed the first trigger. It is classification-shaped: every model is causal and classifies
its state at the last token (``pooling="last"``), trained through the public API
(``seqlab.build(family, task="classification", ...).fit(train, valid)``) at ``--train-length``
with early stopping on a validation set of that length, then evaluated once on test sets drawn
with other seeds at each ``--test-lengths`` (chance: ``1 / (vocab - 1)``). Long test sequences
are evaluated in small batches so memory stays bounded.

The paper (2 layers, d_model 64, trained at 256): Mamba 100% up to 2^20; MHA-RoPE 83.6 / 31.3 /
8.6 at 2^9 / 2^10 / 2^12. Sinusoidal positions are expected to break first past the training
length, RoPE to decay, ALiBi to hold better.

Each test length is also scored by how far back the first trigger is, which tells a model
that forgets with distance from one that breaks with length. ``--fresh`` draws new training
sequences every epoch, as the paper does (a fixed set of random sequences can be memorized).

Trained at 256 (lr 1e-3, one CPU thread) every model first sits on a chance plateau: Mamba for
~4,100 steps, the ALiBi Transformer (``--fresh``) for ~12,000. Trained at 64 every model learns
within 3,840 steps (a few minutes). ``bench/README.md`` has both tables. At lr 3e-3 the RoPE
and ALiBi Transformers stayed at chance even at 64.

    python bench/induction_heads.py --quick        # smoke run, about a minute
    python bench/induction_heads.py --train-length 64 --test-lengths 64,128,256,512,1024,2048,4096 \
        --n-test 256 --epochs 15 --patience 15 --threads 1    # the table in bench/README.md
    python bench/induction_heads.py --fresh --n-train 16384 --epochs 30 --patience 30 --threads 1
                                                   # trained at 256, as in the paper (about an hour a model)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch

from _common import add_synthetic_args, causal_model, fit_synthetic, train_split
from seqlab.data.synthetic import induction_heads

MODELS = ("mamba", "sinusoidal", "rope", "alibi")


def eval_batch_size(length: int, train_length: int, batch_size: int) -> int:
    """Fewer sequences per batch as they grow: about ``batch_size * train_length`` tokens."""
    return max(1, batch_size * train_length // length)


def distance_bands(train_length: int, longest: int) -> list[tuple[int, int]]:
    """(lo, hi] bands of the first trigger's distance from the end: up to the training length,
    then doubling up to the longest test length."""
    edges = [0, train_length]
    while edges[-1] < longest:
        edges.append(2 * edges[-1])
    return list(zip(edges, edges[1:]))


def score(model: Any, test: list, batch_size: int, bands: list[tuple[int, int]]) -> tuple[float, dict]:
    """Accuracy, and accuracy by the distance of the first trigger from the end (band -> (acc, n)):
    tells a model that forgets with distance from one that breaks with length."""
    preds: list[Any] = []
    for i in range(0, len(test), batch_size):  # small batches: long sequences stay within memory
        preds += model.predict([ex["tokens"] for ex in test[i : i + batch_size]])
    right = [p == ex["label"] for p, ex in zip(preds, test)]
    trigger = test[0]["tokens"][-1]
    dist = [len(ex["tokens"]) - 1 - ex["tokens"].index(trigger) for ex in test]
    by_band = {}
    for lo, hi in bands:
        hits = [r for r, d in zip(right, dist) if lo < d <= hi]
        if hits:
            by_band[(lo, hi)] = (sum(hits) / len(hits), len(hits))
    return sum(right) / len(right), by_band


def run_one(name: str, args: argparse.Namespace, train: Sequence[Any], valid: list, tests: dict[int, list],
            bands: list[tuple[int, int]]) -> dict[str, Any]:
    family, config = causal_model(name, args.width, args.layers)
    config["pooling"] = "last"  # classify the state after the second trigger
    model, seconds = fit_synthetic(name, family, "classification", config, args, train, valid,
                                   task_options={"max_len": None, "lowercase": False})
    acc, by_distance = {}, {}
    for length, test in tests.items():
        acc[length], by_distance[length] = score(model, test, eval_batch_size(length, args.train_length,
                                                                               args.batch_size), bands)
        cells = ", ".join(f"({lo}, {hi}]: {a:.3f} of {n}" for (lo, hi), (a, n) in by_distance[length].items())
        print(f"    {name} @ {length}: {acc[length]:.3f}   by trigger distance {cells}", flush=True)
    return {"model": name, "params": model.n_parameters, "steps": model.result_.steps, "seconds": seconds,
            "acc": acc, "by_distance": by_distance[max(tests)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-length", type=int, default=256)
    ap.add_argument("--test-lengths", default="256,512,1024,2048,4096")
    ap.add_argument("--vocab", type=int, default=16, help="alphabet incl. the trigger")
    add_synthetic_args(ap, models=",".join(MODELS), n_test=256, epochs=10, lr=1e-3, patience=3)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (train at 32, test at 32 and 64)")
    args = ap.parse_args()
    if args.quick:
        args.train_length, args.test_lengths = 32, "32,64"
        args.n_train, args.n_valid, args.n_test, args.epochs, args.warmup = 512, 64, 64, 2, 10
    torch.set_num_threads(args.threads)
    lengths = [int(v) for v in args.test_lengths.split(",")]
    train = train_split(induction_heads, args, 1, L=args.train_length, vocab=args.vocab)
    valid = induction_heads(args.n_valid, args.train_length, args.vocab, seed=2)
    tests = {length: induction_heads(args.n_test, length, args.vocab, seed=100 + i) for i, length in enumerate(lengths)}
    bands = distance_bands(args.train_length, max(lengths))
    print(f"induction heads: trained at {args.train_length}, vocabulary {args.vocab}; train/valid {args.n_train}"
          f"{' drawn afresh every epoch' if args.fresh else ''}/"
          f"{args.n_valid}, {args.n_test} test sequences per length; width {args.width}, {args.layers} layers; "
          f"chance {1 / (args.vocab - 1):.3f}", flush=True)
    rows = []
    for name in args.models.split(","):
        row = run_one(name.strip(), args, train, valid, tests, bands)
        rows.append(row)
        print(f"  {row['model']}: trained {row['steps']} steps in {row['seconds']:.0f} s", flush=True)
    print("\n| model | parameters | steps | train s | " + " | ".join(f"acc @ {n}" for n in lengths) + " |")
    print("|---|---|---|---|" + "---|" * len(lengths))
    for r in rows:
        cells = " | ".join(f"{100 * r['acc'][n]:.1f}%" for n in lengths)
        print(f"| {r['model']} | {r['params']:,} | {r['steps']} | {r['seconds']:.0f} | {cells} |")
    print(f"\naccuracy at {max(lengths)} by the first trigger's distance from the end:\n")
    print("| model | " + " | ".join(f"({lo}, {hi}]" for lo, hi in bands) + " |")
    print("|---|" + "---|" * len(bands))
    for r in rows:
        cells = " | ".join(f"{100 * r['by_distance'][b][0]:.1f}%" if b in r["by_distance"] else "-" for b in bands)
        print(f"| {r['model']} | {cells} |")


if __name__ == "__main__":
    main()
