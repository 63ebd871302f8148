"""Selective copying (Gu & Dao 2023, Sec. 4.1.1, Table 1): selective Mamba vs its LTI ablation.

``seqlab.data.synthetic.selective_copying`` scatters ``--n-copy`` data tokens (vocabulary
``--vocab``, blank and marker included) among blanks over ``--length`` positions, then asks for
them in order at ``--n-copy`` marker positions. Every model is causal (as in the paper: it reads
the markers after the data) and is trained through the public API, ``seqlab.build(family,
task="labeling", ...).fit(train, valid)``, with early stopping on a validation set; the score is
the per-token accuracy over the ``n_copy`` recalled tokens of a test set drawn with another seed
(chance: ``1 / (vocab - 2)``), measured once at the end. The paper (length 4096, 2 layers,
d_model 64): S4 18.3, H3 57.0, Hyena 30.1, Mamba 99.8; the LTI ablation must fall far below the
selective model.

    python bench/selective_copying.py --quick                     # smoke run, about a minute
    python bench/selective_copying.py                             # L = 256, mamba + lti
    python bench/selective_copying.py --models mamba,lti,transformer,lstm --length 512
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from _common import add_synthetic_args, causal_model, fit_synthetic, train_split
from seqlab.data.synthetic import selective_copying
from seqlab.experiments.longrange import copied_accuracy

SEEDS = {"train": 1, "valid": 2, "test": 3}  # fixed; the test split is never used for selection


def run_one(name: str, args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    family, config = causal_model(name, args.width, args.layers)
    model, seconds = fit_synthetic(name, family, "labeling", config, args, data["train"], data["valid"])
    acc, exact = copied_accuracy(model, data["test"], args.n_copy)
    result = model.result_
    return {"model": name, "params": model.n_parameters, "steps": result.steps, "epochs": result.epochs_run,
            "seconds": seconds, "acc": acc, "exact": exact}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--length", type=int, default=256, help="positions the data are scattered over")
    ap.add_argument("--n-copy", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=16, help="alphabet incl. blank and marker")
    add_synthetic_args(ap, models="mamba,lti", n_test=1000, epochs=12, lr=3e-3, patience=4)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (length 32, 4 tokens, 2 epochs)")
    args = ap.parse_args()
    if args.quick:
        args.length, args.n_copy, args.vocab = 32, 4, 6
        args.n_train, args.n_valid, args.n_test, args.epochs, args.warmup = 512, 64, 128, 2, 10
    torch.set_num_threads(args.threads)
    data = {split: selective_copying(n, args.length, args.n_copy, args.vocab, seed=SEEDS[split])
            for split, n in (("valid", args.n_valid), ("test", args.n_test))}
    data["train"] = train_split(selective_copying, args, SEEDS["train"], L=args.length, n_copy=args.n_copy,
                                vocab=args.vocab)
    print(f"selective copying: length {args.length} (+{args.n_copy} markers), {args.n_copy} tokens to copy, "
          f"vocabulary {args.vocab}; train/valid/test {args.n_train}{' (fresh every epoch)' if args.fresh else ''}/{args.n_valid}/{args.n_test}; "
          f"width {args.width}, {args.layers} layers; chance {1 / (args.vocab - 2):.3f}", flush=True)
    rows = []
    for name in args.models.split(","):
        row = run_one(name.strip(), args, data)
        rows.append(row)
        print(f"  {row['model']}: {row['acc']:.4f} ({row['steps']} steps, {row['seconds']:.0f} s)", flush=True)
    print("\n| model | parameters | steps | train s | copied-token accuracy | all 16 right |".replace(
        "16", str(args.n_copy)))
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['steps']} | {r['seconds']:.0f} | {100 * r['acc']:.1f}% "
              f"| {100 * r['exact']:.1f}% |")


if __name__ == "__main__":
    main()
