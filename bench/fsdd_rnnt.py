"""RNN-T against CTC on FSDD connected digits (issue 17, target 3): the same encoder (2 x BiLSTM(128)
over 4x frame-stacked log-mel), the same data, seed, optimiser and step budget; only the head
differs. CTC: a linear layer and the CTC loss, greedy decoding. RNN-T (``head="rnnt"``): an LSTM
prediction network and a joiner (``--pred-dim``, ``--joint-dim``) and seqlab's RNN-T loss; test
digit error with greedy decoding and with the prefix beam search (``--beam``).

Split: the seen-speaker split of bench/fsdd_ctc.py (upstream recordings 0-4 of each speaker
tested). Step-budgeted; each run checkpoints into ``--run-root`` and ``--chunk-seconds`` cuts a
session (the same command resumes it, with identical steps).

    OMP_NUM_THREADS=1 python bench/fsdd_rnnt.py --heads ctc,rnnt --max-steps 1000 --chunk-seconds 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import seqlab

ENCODER: dict[str, Any] = {"d_model": 128, "hidden_size": 128, "num_layers": 2, "bidirectional": True, "dropout": 0.1}


def run(head: str, args: argparse.Namespace) -> dict[str, Any] | None:
    ds = seqlab.datasets.load("fsdd_digits")
    train = {"max_steps": args.max_steps, "epochs": 10_000, "batch_size": args.batch_size, "lr": args.lr, "patience": None,
             "progress": False, "seed": args.seed, "warmup_steps": min(200, args.max_steps // 10),
             "max_time": args.chunk_seconds}
    opts: dict[str, Any] = {"subsampling_kind": "stack"}
    if head == "rnnt":
        opts.update(rnnt_pred_dim=args.pred_dim, rnnt_joint_dim=args.joint_dim)
    model = seqlab.build("lstm", task=ds, task_options=opts, train=train, head=head, **{**ENCODER, "seed": args.seed})
    out = Path(args.run_root) / f"lstm-{head}-seen-{args.max_steps}-lr={args.lr:g}"
    model.fit(ds.train, run_dir=out)
    result = model.result_
    if result.steps < args.max_steps:
        print(f"[bench] {out}: step {result.steps} of {args.max_steps} after {result.train_time:.0f} s; run again to continue",
              file=sys.stderr)
        return None
    row: dict[str, Any] = {"head": head, "steps": args.max_steps, "parameters": model.n_parameters,
                           "train_s": round(result.train_time, 1), "test_digits": sum(len(e["text"].split()) for e in ds.test)}
    decoders = [("greedy", 1)] + ([("beam", args.beam)] if head == "rnnt" else [])
    for name, beam in decoders:
        if head == "rnnt":
            model.task.config = dataclasses.replace(model.task.config, rnnt_beam=beam)
        t0 = time.process_time()
        m = model.evaluate(ds.test)
        row[f"digit_error_{name}"] = round(100 * m["wer"], 2)
        row[f"decode_cpu_s_{name}"] = round(time.process_time() - t0, 2)
        row["test_loss"] = round(m["loss"], 4)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", default="ctc,rnnt")
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pred-dim", type=int, default=128)
    p.add_argument("--joint-dim", type=int, default=256)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--run-root", default="runs/bench/fsdd_rnnt")
    p.add_argument("--chunk-seconds", type=float, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for head in args.heads.split(","):
        row = run(head, args)
        if row is None:
            break
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| head | params | steps | train s (wall, 1 thread) | test digits | digit error % greedy | digit error % beam "
          "| decode CPU s greedy / beam |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['head']} | {r['parameters']:,} | {r['steps']} | {r['train_s']} | {r['test_digits']} | "
              f"{r['digit_error_greedy']} | {r.get('digit_error_beam', '-')} | {r['decode_cpu_s_greedy']} / "
              f"{r.get('decode_cpu_s_beam', '-')} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
