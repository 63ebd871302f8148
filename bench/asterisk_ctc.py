"""Character CTC on the Asterisk voice prompts: CER and WER on held-out prompts, greedy against
prefix beam search with shallow fusion of a seqlab n-gram LM (issue 17, target 2: fusion cuts WER
by >= 30% relative to greedy).

Data: ``asterisk_prompts`` (Debian asterisk-core-sounds-en + -en-wav: one speaker, 8 kHz), split
80/10/10 by whole prompt. The LMs are fitted on the training prompts' transcripts only: a word
3-gram and a character 6-gram, modified Kneser-Ney (seqlab's NGramLM). The decoder's settings
(which LM, its weight, the word bonus) are chosen on the validation prompts; the test prompts are
decoded once with that choice.

``--head rnnt`` trains the same encoder with an RNN transducer head instead (issue 17, target 3:
RNN-T against CTC on the same encoder and budget): an LSTM prediction network and a joiner,
seqlab's RNN-T loss (function merging where the joint tensor would be large), decoded greedily
and by the prefix beam search (``--rnnt-beam``); no LM.

Training is step-budgeted (``--max-steps``) and resumable: ``--chunk-seconds`` cuts a session,
and the same command continues it (same steps). The posteriors of valid and test are saved
beside the model, so decoding reruns cost no forward pass.

    OMP_NUM_THREADS=1 python bench/asterisk_ctc.py --max-steps 800 --chunk-seconds 540   # repeat until it prints
    OMP_NUM_THREADS=1 python bench/asterisk_ctc.py --head rnnt --max-steps 800 --chunk-seconds 540
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import seqlab
from seqlab.inference.ctc import ctc_beam_search, ctc_greedy, lm_space
from seqlab.metrics.transcription import error_rates
from seqlab.models.classical.ngram import NGramLM

MODEL = {"d_model": 160, "hidden_size": 160, "num_layers": 2, "bidirectional": True, "dropout": 0.15}
TASK = {"subsampling": 2, "speed_factors": (0.9, 1.0, 1.1)}
FALLBACK = (0.5, 1.0, 1.5)  # KenLM's discounts where counts of counts give none (the 28 characters have no singletons)


def train(args: argparse.Namespace, ds: Any) -> tuple[Any, Path] | None:
    """The trained model and its run directory, or None when this session was cut short."""
    train_cfg = {"max_steps": args.max_steps, "epochs": 10_000, "batch_size": args.batch_size, "lr": args.lr,
                 "patience": None, "progress": False, "seed": args.seed, "warmup_steps": min(200, args.max_steps // 10),
                 "max_time": args.chunk_seconds}
    opts: dict[str, Any] = dict(TASK)
    head: dict[str, Any] = {}  # CTC is the task's default head: naming it would be another setting for the run
    if args.head == "rnnt":
        opts.update(rnnt_pred_dim=args.pred_dim, rnnt_joint_dim=args.joint_dim)
        head = {"head": "rnnt"}
    model = seqlab.build(args.model, task=ds, task_options=opts, train=train_cfg, **head, **{**MODEL, "seed": args.seed})
    out = Path(args.run_root) / f"{'rnnt-' if head else ''}{args.model}-{args.max_steps}-lr={args.lr:g}"
    cpu0 = time.process_time()
    model.fit(ds.train, ds.valid, run_dir=out)
    result = model.result_
    log = out / "cpu_seconds.json"
    sessions = json.loads(log.read_text())["sessions"] if log.exists() else []
    if not sessions or result.steps > sessions[-1][0]:
        sessions.append([result.steps, round(time.process_time() - cpu0, 2)])
        log.with_suffix(".tmp").write_text(json.dumps({"sessions": sessions}))
        log.with_suffix(".tmp").replace(log)
    if result.steps < args.max_steps:
        print(f"[bench] {out}: step {result.steps} of {args.max_steps}; run again to continue", file=sys.stderr)
        return None
    return model, out


def train_cpu_seconds(out: Path) -> float:
    """The training CPU seconds of all recorded sessions of the run in ``out``."""
    return float(sum(s for _, s in json.loads((out / "cpu_seconds.json").read_text())["sessions"]))


def posteriors(model: Any, examples: list[dict[str, Any]], path: Path) -> list[np.ndarray]:
    """(T', V) float32 log posteriors per example, cached in ``path`` (.npz)."""
    if path.exists():
        with np.load(path) as z:
            return [z[f"u{i}"] for i in range(len(examples))]
    task = model.task
    items = task.encode_inputs(examples)
    out: list[np.ndarray] = [np.zeros(0)] * len(items)
    for output, batch in model.outputs(items, 8):
        logp = model.module.decide(output, batch)  # (B, T', V)
        n = task.output_lengths(batch).clamp(max=logp.shape[1])
        for b, idx in enumerate(batch["index"].tolist()):
            out[idx] = logp[b, : int(n[b])].float().numpy()
    np.savez_compressed(path, **{f"u{i}": x for i, x in enumerate(out)})
    return out


def decode(lps: list[np.ndarray], tokens: list[str], lm: Any = None, level: str = "word", weight: float = 0.5,
           bonus: float = 1.5, beam: int = 32) -> tuple[list[str], float]:
    """Texts and utterances per second (one process): greedy when ``beam`` is 0."""
    start = time.perf_counter()
    if beam == 0:
        texts = ["".join(tokens[i] for i in ids) for lp in lps for ids in ctc_greedy(lp)]
    else:
        texts = []
        for lp in lps:
            hyps = ctc_beam_search(lp, tokens=tokens, beam=beam, lm=lm, lm_level=level, lm_weight=weight,
                                   word_bonus=bonus)[0]
            texts.append(hyps[0].text if hyps else "")
    return [" ".join(t.split()) for t in texts], len(lps) / (time.perf_counter() - start)


def transducer_rows(model: Any, ds: Any, out: Path, args: argparse.Namespace) -> int:
    """The RNN-T run's table: greedy and prefix beam search, valid and test, through ``evaluate``."""
    rows = []
    for name, beam in (("greedy", 1), (f"prefix beam {args.rnnt_beam}", args.rnnt_beam)):
        model.task.config = dataclasses.replace(model.task.config, rnnt_beam=beam)
        row: dict[str, Any] = {"decoder": name}
        for split in ("valid", "test"):
            examples = getattr(ds, split)
            start = time.perf_counter()
            m = model.evaluate(examples)
            row[split] = {"wer": round(100 * m["wer"], 2), "cer": round(100 * m["cer"], 2), "loss": round(m["loss"], 4),
                          "utt_per_s": round(len(examples) / (time.perf_counter() - start), 1)}
        rows.append(row)
    cpu, params = train_cpu_seconds(out), model.n_parameters
    print(json.dumps({"run": str(out), "head": "rnnt", "parameters": params, "train_cpu_s": round(cpu, 1), "rows": rows}),
          flush=True)
    print(f"\nRNN-T {args.model} ({params:,} parameters), {args.max_steps} steps, {cpu / 60:.1f} CPU-minutes of training",
          file=sys.stderr)
    print("| decoder | valid CER % | valid WER % | test CER % | test WER % | test loss per char | test utt/s (with the forward pass) |",
          file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        v, t = r["valid"], r["test"]
        print(f"| {r['decoder']} | {v['cer']} | {v['wer']} | {t['cer']} | {t['wer']} | {t['loss']} | {t['utt_per_s']} |",
              file=sys.stderr)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lstm")
    p.add_argument("--head", choices=("ctc", "rnnt"), default="ctc")
    p.add_argument("--pred-dim", type=int, default=128, help="RNN-T prediction network width")
    p.add_argument("--joint-dim", type=int, default=256, help="RNN-T joiner width")
    p.add_argument("--rnnt-beam", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam", type=int, default=32)
    p.add_argument("--run-root", default="runs/bench/asterisk_ctc")
    p.add_argument("--chunk-seconds", type=float, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = seqlab.datasets.load("asterisk_prompts")
    trained = train(args, ds)
    if trained is None:
        return 0
    model, out = trained
    if args.head == "rnnt":
        return transducer_rows(model, ds, out, args)
    tokens = [" " if t == " " else ("" if i == 0 else t) for i, t in enumerate(model.task.labels)]
    texts = [e["text"] for e in ds.train]  # the LMs see the training transcripts only
    lms = {"word 3-gram": (NGramLM(3, discount_fallback=FALLBACK).fit_counts([t.split() for t in texts]), "word"),
           "char 6-gram": (NGramLM(6, discount_fallback=FALLBACK).fit_counts([[lm_space(c) for c in t] for t in texts]), "char")}
    lp = {s: posteriors(model, getattr(ds, s), out / f"posteriors-{s}.npz") for s in ("valid", "test")}
    refs = {s: [e["text"] for e in getattr(ds, s)] for s in ("valid", "test")}

    def score(split: str, **kw: Any) -> dict[str, Any]:
        hyp, ups = decode(lp[split], tokens, beam=kw.pop("beam", args.beam), **kw)
        r = error_rates(hyp, refs[split])
        return {"wer": round(100 * r["wer"], 2), "cer": round(100 * r["cer"], 2), "utt_per_s": round(ups, 1)}

    rows = [{"decoder": "greedy", **{s: score(s, beam=0) for s in ("valid", "test")}},
            {"decoder": f"prefix beam {args.beam}, no LM", **{s: score(s) for s in ("valid", "test")}}]
    grid = []
    for name, (lm, level) in lms.items():
        for weight in (0.3, 0.6, 1.0):
            for bonus in ((0.0, 1.5, 3.0) if level == "word" else (0.0, 1.0)):
                v = score("valid", lm=lm, level=level, weight=weight, bonus=bonus)
                grid.append((v["wer"], v["cer"], name, weight, bonus))
                print(json.dumps({"lm": name, "weight": weight, "bonus": bonus, "valid": v}), file=sys.stderr, flush=True)
    for name in lms:
        best = min(g for g in grid if g[2] == name)
        lm, level = lms[name]
        rows.append({"decoder": f"prefix beam {args.beam} + {name} (weight {best[3]}, bonus {best[4]}; chosen on valid)",
                     **{s: score(s, lm=lm, level=level, weight=best[3], bonus=best[4]) for s in ("valid", "test")}})
    cpu, params = train_cpu_seconds(out), model.n_parameters
    print(json.dumps({"run": str(out), "parameters": params, "train_cpu_s": round(cpu, 1), "rows": rows}), flush=True)
    print(f"\n{args.model} ({params:,} parameters), {args.max_steps} steps, {cpu / 60:.1f} CPU-minutes of training", file=sys.stderr)
    print("| decoder | valid CER % | valid WER % | test CER % | test WER % | test utt/s |", file=sys.stderr)
    print("|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        v, t = r["valid"], r["test"]
        print(f"| {r['decoder']} | {v['cer']} | {v['wer']} | {t['cer']} | {t['wer']} | {t['utt_per_s']} |", file=sys.stderr)
    g = rows[0]["test"]["wer"]
    best_lm = min(rows[2:], key=lambda r: r["valid"]["wer"])
    cut = 100 * (g - best_lm["test"]["wer"]) / max(g, 1e-9)
    print(f"fusion ({best_lm['decoder']}) cuts test WER by {cut:.1f}% relative to greedy (target >= 30%)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
