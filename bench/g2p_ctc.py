"""Grapheme-to-phoneme conversion as CTC on CMUdict (issue 17, target 4): a BiLSTM over the letters,
each letter repeated ``--repeat`` times so that pronunciations longer than their spelling fit
(Rao et al. 2015: BiLSTM-CTC 25.8% WER), trained as a ``transcription`` task over one-hot letter
frames (the task's ``symbols`` input, :mod:`seqlab.data.symbol_frames`) with phoneme outputs and the CTC head; greedy decoding.

Data and scoring as in bench/g2p_cmudict.py (the attention RNN's 24.5% there): ``cmudict`` split
seed 0 (90/5/5 by unique word), stress digits stripped (39 phonemes), one output per test word,
right if it equals any of the word's pronunciations (WER); PER against the nearest one.

Step-budgeted (``--max-steps``); the run checkpoints into ``--run-root`` and ``--chunk-seconds``
cuts a session (the same command resumes it, with identical steps).

    OMP_NUM_THREADS=1 python bench/g2p_ctc.py --max-steps 3000 --chunk-seconds 480
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import seqlab
from seqlab.data.symbol_frames import as_transcription
from seqlab.metrics.generation import multi_reference_rates


def by_word(examples: list[dict[str, Any]]) -> tuple[list[list[str]], list[list[list[str]]]]:
    refs: dict[tuple[str, ...], list[list[str]]] = {}
    for ex in examples:
        refs.setdefault(tuple(ex["source"]), []).append(list(ex["target"]))
    return [list(w) for w in refs], list(refs.values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-root", default="runs/bench/g2p_ctc")
    p.add_argument("--chunk-seconds", type=float, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = seqlab.datasets.load("cmudict", seed=0, stress=False)
    train = as_transcription(ds.train)
    opts = {"output": "phonemes", "subsampling": 1, "normalize": False, "spec_augment": False, "symbol_repeat": args.repeat}
    cfg = {"d_model": args.hidden, "hidden_size": args.hidden, "num_layers": args.layers, "bidirectional": True,
           "dropout": args.dropout, "seed": args.seed}
    tc = {"max_steps": args.max_steps, "epochs": 10_000, "batch_size": args.batch_size, "lr": args.lr, "patience": None,
          "progress": False, "seed": args.seed, "warmup_steps": min(200, args.max_steps // 10), "max_time": args.chunk_seconds}
    model = seqlab.build("lstm", task="transcription", task_options=opts, train=tc, **cfg)
    out = Path(args.run_root) / f"bilstm{args.layers}x{args.hidden}-r{args.repeat}-{args.max_steps}-b{args.batch_size}-lr{args.lr:g}"
    model.fit(train, run_dir=out)
    result = model.result_
    if result.steps < args.max_steps:
        print(f"[bench] {out}: step {result.steps} of {args.max_steps} after {result.train_time:.0f} s; run again to continue",
              file=sys.stderr)
        return 0
    words, refs = by_word(ds.test)
    t0 = time.process_time()
    hyps = [h.split() for h in model.predict(words)]
    decode_s = time.process_time() - t0
    wer, per = multi_reference_rates(hyps, refs)
    row = {"model": f"BiLSTM-CTC {args.layers}x{args.hidden}, letters x{args.repeat}", "parameters": model.n_parameters,
           "steps": args.max_steps, "batch": args.batch_size, "epochs": round(args.max_steps * args.batch_size / len(train), 2),
           "train_s": round(result.train_time, 1), "test_words": len(words), "wer": round(100 * wer, 2),
           "per": round(100 * per, 2), "decode_cpu_s": round(decode_s, 1),
           "examples": [("".join(w), " ".join(h)) for w, h in list(zip(words, hyps))[:6]]}
    print(json.dumps(row), flush=True)
    print("\n| model | params | steps (epochs) | train s (wall, 1 thread) | test words | WER % | PER % |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    print(f"| {row['model']} | {row['parameters']:,} | {row['steps']} ({row['epochs']}) | {row['train_s']} | "
          f"{row['test_words']} | {row['wer']} | {row['per']} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
