"""BiLSTM-CTC (or any encoder family) on FSDD connected digits: digit error rate on seen speakers
(upstream recordings 0-4 held out) and with leave-one-speaker-out (train on three speakers, test on
the fourth, averaged over the four).

Step-budgeted (``--max-steps``), so every machine trains the same model; the training time (all
sessions of a resumed run, one thread) is printed beside it. Digit error rate = word error rate over
the digit words. Runs checkpoint into ``--run-root``; ``--chunk-seconds 500`` cuts each session
(the same command resumes it, with identical steps), for machines where a command must be short.

    OMP_NUM_THREADS=1 python bench/fsdd_ctc.py --split seen --max-steps 3000
    OMP_NUM_THREADS=1 python bench/fsdd_ctc.py --split loso --max-steps 3000
    OMP_NUM_THREADS=1 python bench/fsdd_ctc.py --model conformer --split seen

Targets (issue 17): seen <= 2%, leave-one-speaker-out <= 10%, training within 20 CPU-minutes.
Published context (DATASETS.md): a 0.67M-parameter BiLSTM-CTC, 5 minutes on one core: 2.9% seen,
18.5% unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

import seqlab
from seqlab.audio.datasets import FSDD_SPEAKERS

MODELS: dict[str, dict[str, Any]] = {
    # about 0.7M parameters: 2 x BiLSTM(128) over a 4x-subsampled log-mel front end
    "lstm": {"d_model": 128, "hidden_size": 128, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    "gru": {"d_model": 128, "hidden_size": 128, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
    "conformer": {"d_model": 144, "num_layers": 4, "dropout": 0.1},
    "transformer": {"d_model": 144, "num_layers": 4, "dropout": 0.1},
}


def boundary_errors(model: Any, test: list[dict[str, Any]]) -> dict[str, Any]:
    """Forced alignment against the gold joins: for each pair of neighbouring digits, the predicted
    boundary is the midpoint between the end of the first digit's aligned frames and the start of the
    next's; the gold join is the silence between the two recordings. Returns the mean distance (ms)
    to the middle of that silence, and to the silence itself (0 when inside it)."""
    from seqlab.audio.align import align

    to_mid, to_gap = [], []
    for ex in test:
        words = align(model, ex["audio"], ex["text"])
        gold = ex["words"]
        for (a, b), (ga, gb) in zip(zip(words, words[1:]), zip(gold, gold[1:])):
            pred = (a.end + b.start) / 2
            lo, hi = ga[2], gb[1]  # the silence between the two recordings
            to_mid.append(abs(pred - (lo + hi) / 2))
            to_gap.append(max(lo - pred, pred - hi, 0.0))
    n = max(len(to_mid), 1)
    return {"boundaries": len(to_mid), "boundary_mid_ms": round(1000 * sum(to_mid) / n, 1),
            "boundary_gap_ms": round(1000 * sum(to_gap) / n, 1)}


def run(model_name: str, held_out: str | None, max_steps: int, batch_size: int, lr: float, seed: int,
        task_options: dict[str, Any], run_root: Path, chunk_seconds: float | None) -> dict[str, Any] | None:
    """Train (resuming ``run_root/NAME`` when a checkpoint is there) up to ``max_steps``; with
    ``chunk_seconds`` this session stops after that long and returns None (run the same command again
    to continue: the resumed run reproduces the same steps). Then the test metrics."""
    ds = seqlab.datasets.load("fsdd_digits", **({"held_out_speaker": held_out} if held_out else {}))
    train = {"max_steps": max_steps, "epochs": 10_000, "batch_size": batch_size, "lr": lr, "patience": None,
             "progress": False, "seed": seed, "warmup_steps": min(200, max_steps // 10), "max_time": chunk_seconds}
    model = seqlab.build(model_name, task=ds, task_options=task_options, train=train,
                         **{**MODELS.get(model_name, {}), "seed": seed})
    variant = "".join(f"-{k}={v}" for k, v in sorted(task_options.items())) + (f"-lr={lr:g}" if lr != 2e-3 else "")
    out = run_root / f"{model_name}-{held_out or 'seen'}-{max_steps}{variant}"
    model.fit(ds.train, run_dir=out)
    result = model.result_
    if result.steps < max_steps:
        print(f"[bench] {out}: step {result.steps} of {max_steps} after {result.train_time:.0f} s; run again to continue",
              file=sys.stderr)
        return None
    test = model.evaluate(ds.test)
    bound = boundary_errors(model, ds.test)
    return {"model": model_name + variant, "held_out": held_out or "(seen speakers)", "steps": max_steps,
            "parameters": sum(p.numel() for p in model.module.parameters()), "train_s": round(result.train_time, 1),
            "test_utterances": len(ds.test), "test_digits": sum(len(e["text"].split()) for e in ds.test),
            "digit_error": round(100 * test["wer"], 2), **bound, "metrics": {k: round(v, 4) for k, v in test.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lstm")
    p.add_argument("--split", choices=("seen", "loso", "both"), default="both")
    p.add_argument("--speakers", nargs="*", default=list(FSDD_SPEAKERS), help="leave-one-out: the speakers to hold out")
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--speed-perturb", action="store_true", help="train with speed factors 0.9, 1.0, 1.1")
    p.add_argument("--stack", action="store_true", help="subsample by stacking frames instead of convolutions")
    p.add_argument("--run-root", default="runs/bench/fsdd_ctc", help="where the runs (and their checkpoints) go")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="stop each session after this long; the same command then continues (shared machines)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    opts: dict[str, Any] = {"speed_factors": (0.9, 1.0, 1.1)} if args.speed_perturb else {}
    if args.stack:
        opts["subsampling_kind"] = "stack"
    rows = []
    held = ([None] if args.split in ("seen", "both") else []) + (args.speakers if args.split in ("loso", "both") else [])
    for h in held:
        row = run(args.model, h, args.max_steps, args.batch_size, args.lr, args.seed, opts, Path(args.run_root),
                  args.chunk_seconds)
        if row is None:
            break
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | test set | steps | params | train s (1 thread) | digits | digit error % "
          "| boundary error ms (to gap middle / to gap) |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['model']} | {r['held_out']} | {r['steps']} | {r['parameters']:,} | {r['train_s']} | "
              f"{r['test_digits']} | {r['digit_error']} | {r['boundary_mid_ms']} / {r['boundary_gap_ms']} |", file=sys.stderr)
    loso = [r["digit_error"] for r in rows if r["held_out"] != "(seen speakers)"]
    if loso:
        print(f"leave-one-speaker-out mean digit error: {sum(loso) / len(loso):.2f}%", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
