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
import time
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


RULES = ("mid", "next_start", "prev_end")


def boundary_errors(model: Any, test: list[dict[str, Any]]) -> dict[str, Any]:
    """Forced alignment against the gold joins. Between two neighbouring digits the gold boundary
    is the silence between their recordings, ``[end of the first, start of the next]`` (FSDD
    recordings are trimmed to the word, so the two joins are the first word's offset and the
    next word's onset). A predicted boundary inside that silence separates the words correctly;
    its error is the distance to the silence (0 inside), and, for comparison, to the silence's
    middle. Predicted boundaries, from the aligned label frames of the two digits (CTC spikes):

    - ``mid``: the midpoint between the end of the first digit's frames and the start of the next's;
    - ``next_start``: the start of the next digit's first frame (its onset as the model places it);
    - ``prev_end``: the end of the first digit's last frame.

    Also the mean onset and offset errors of the aligned words (``|start - gold start|``,
    ``|end - gold end|``), the usual forced-alignment measure, which a CTC spike (a frame or two
    inside the word) cannot meet for the word's far edge. Milliseconds, means over boundaries."""
    from seqlab.audio.align import align

    errs: dict[str, list[float]] = {f"{r}_{m}": [] for r in RULES for m in ("gap", "mid")}
    inside = {r: 0 for r in RULES}
    onset, offset = [], []
    for ex in test:
        words = align(model, ex["audio"], ex["text"])
        gold = ex["words"]
        for w, g in zip(words, gold):
            onset.append(abs(w.start - g[1]))
            offset.append(abs(w.end - g[2]))
        for (a, b), (ga, gb) in zip(zip(words, words[1:]), zip(gold, gold[1:])):
            lo, hi = ga[2], gb[1]  # the silence between the two recordings
            for rule, pred in zip(RULES, ((a.end + b.start) / 2, b.start, a.end)):
                errs[f"{rule}_mid"].append(abs(pred - (lo + hi) / 2))
                errs[f"{rule}_gap"].append(max(lo - pred, pred - hi, 0.0))
                inside[rule] += int(lo <= pred <= hi)
    n = max(len(errs["mid_gap"]), 1)
    out: dict[str, Any] = {"boundaries": len(errs["mid_gap"])}
    out |= {f"boundary_{k}_ms": round(1000 * sum(v) / n, 1) for k, v in errs.items()}
    out |= {f"boundary_{r}_inside_%": round(100 * inside[r] / n, 1) for r in RULES}
    out["boundary_mid_ms"], out["boundary_gap_ms"] = out["boundary_mid_mid_ms"], out["boundary_mid_gap_ms"]
    out["word_onset_ms"] = round(1000 * sum(onset) / max(len(onset), 1), 1)
    out["word_offset_ms"] = round(1000 * sum(offset) / max(len(offset), 1), 1)
    return out


def _value(text: str) -> Any:
    """A command-line option value: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _cpu_seconds(out: Path, session: float, steps: int) -> float:
    """Record this session's training CPU seconds (``[step reached, seconds]``) in
    ``out/cpu_seconds.json`` and return the total of every session of the run (a resumed run's
    earlier ones included); a session that trained no step (the run was done) adds nothing."""
    path = out / "cpu_seconds.json"
    done = json.loads(path.read_text())["sessions"] if path.exists() else []
    if not done or steps > done[-1][0]:
        done = [*done, [steps, round(session, 2)]]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sessions": done}))
    tmp.replace(path)
    return float(sum(sec for _, sec in done))


def run(model_name: str, held_out: str | None, max_steps: int, batch_size: int, lr: float, seed: int,
        task_options: dict[str, Any], run_root: Path, chunk_seconds: float | None,
        data_options: dict[str, Any] | None = None, model_options: dict[str, Any] | None = None,
        ) -> dict[str, Any] | None:
    """Train (resuming ``run_root/NAME`` when a checkpoint is there) up to ``max_steps``; with
    ``chunk_seconds`` this session stops after that long and returns None (run the same command again
    to continue: the resumed run reproduces the same steps). The validation split's digit error is
    the early-stopping metric (the weights kept are those of the best epoch on it). Then the test
    metrics."""
    data_options = data_options or {}
    ds = seqlab.datasets.load("fsdd_digits", **({"held_out_speaker": held_out} if held_out else {}), **data_options)
    train = {"max_steps": max_steps, "epochs": 10_000, "batch_size": batch_size, "lr": lr, "patience": None,
             "progress": False, "seed": seed, "warmup_steps": min(200, max_steps // 10), "max_time": chunk_seconds}
    settings = {**MODELS.get(model_name, {}), **(model_options or {})}
    model = seqlab.build(model_name, task=ds, task_options=task_options, train=train, **{**settings, "seed": seed})
    variant = "".join(f"-{k}={v}" for k, v in sorted({**task_options, **data_options, **(model_options or {})}.items()))
    variant = (variant + (f"-lr={lr:g}" if lr != 2e-3 else "")).replace(" ", "").replace("(", "").replace(")", "")
    out = run_root / f"{model_name}-{held_out or 'seen'}-{max_steps}{variant}"
    cpu0 = time.process_time()
    model.fit(ds.train, ds.valid, run_dir=out)
    result = model.result_
    cpu = _cpu_seconds(out, time.process_time() - cpu0, result.steps)
    if result.steps < max_steps:
        print(f"[bench] {out}: step {result.steps} of {max_steps} after {result.train_time:.0f} s; run again to continue",
              file=sys.stderr)
        return None
    if not (out / "model").exists():
        model.save(out / "model")  # for later analysis: seqlab.load(out / "model")
    valid = model.evaluate(ds.valid)
    test = model.evaluate(ds.test)
    bound = boundary_errors(model, ds.test)
    valid_bound = boundary_errors(model, ds.valid)
    rule = min(RULES, key=lambda r: valid_bound[f"boundary_{r}_gap_ms"])  # chosen on the validation split
    return {"model": model_name + variant, "held_out": held_out or "(seen speakers)", "steps": max_steps,
            "parameters": sum(p.numel() for p in model.module.parameters()), "train_s": round(result.train_time, 1),
            "train_cpu_s": round(cpu, 1), "best_epoch": result.best_epoch,
            "valid_digit_error": round(100 * valid["wer"], 2),
            "test_utterances": len(ds.test), "test_digits": sum(len(e["text"].split()) for e in ds.test),
            "digit_error": round(100 * test["wer"], 2), **bound, "boundary_rule": rule,
            "boundary_ms": bound[f"boundary_{rule}_gap_ms"], "valid_boundary_ms": valid_bound[f"boundary_{rule}_gap_ms"],
            "metrics": {k: round(v, 4) for k, v in test.items()}}


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
    p.add_argument("--train-passes", type=int, default=1,
                   help="join the training recordings this many times, in new orders (more distinct utterances)")
    p.add_argument("--keep-dc", action="store_true", help="keep each recording's DC offset (the data before the fix)")
    p.add_argument("--task", nargs="*", default=[], metavar="KEY=VALUE", help="more task options (e.g. time_masks=4)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more model options (e.g. num_layers=3)")
    p.add_argument("--run-root", default="runs/bench/fsdd_ctc", help="where the runs (and their checkpoints) go")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="stop each session after this long; the same command then continues (shared machines)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    opts: dict[str, Any] = {"speed_factors": (0.9, 1.0, 1.1)} if args.speed_perturb else {}
    if args.stack:
        opts["subsampling_kind"] = "stack"
    opts.update({k: _value(v) for k, v in (o.split("=", 1) for o in args.task)})
    data = ({"train_passes": args.train_passes} if args.train_passes != 1 else {}) | ({"remove_dc": False} if args.keep_dc else {})
    sets = {k: _value(v) for k, v in (o.split("=", 1) for o in args.set)}
    rows = []
    held = ([None] if args.split in ("seen", "both") else []) + (args.speakers if args.split in ("loso", "both") else [])
    for h in held:
        row = run(args.model, h, args.max_steps, args.batch_size, args.lr, args.seed, opts, Path(args.run_root),
                  args.chunk_seconds, data, sets)
        if row is None:
            break
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | test set | steps | params | train CPU s (wall s) | digits | valid / test digit error % "
          "| boundary error ms: spike midpoint (to gap middle / to gap) | rule chosen on valid: to gap ms |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(f"| {r['model']} | {r['held_out']} | {r['steps']} | {r['parameters']:,} | {r['train_cpu_s']} ({r['train_s']}) | "
              f"{r['test_digits']} | {r['valid_digit_error']} / {r['digit_error']} | {r['boundary_mid_ms']} / "
              f"{r['boundary_gap_ms']} | {r['boundary_rule']}: {r['boundary_ms']} |", file=sys.stderr)
    loso = [r["digit_error"] for r in rows if r["held_out"] != "(seen speakers)"]
    if loso:
        print(f"leave-one-speaker-out mean digit error: {sum(loso) / len(loso):.2f}%", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
