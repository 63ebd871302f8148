"""Character LM on Shakespeare: seqlab's decoder-only Transformer against nanoGPT's CPU "baby" GPT.

nanoGPT's README trains a "baby" GPT on CPU with ``config/train_shakespeare_char.py`` plus
``--n_layer=4 --n_head=4 --n_embd=128 --block_size=64 --batch_size=12 --dropout=0.0
--max_iters=2000 --lr_decay_iters=2000`` (and ``bias=False``, train.py's default). This script
imports nanoGPT's ``GPT`` from a checkout you fetch yourself (it is never copied here) and,
in one process, trains it and seqlab's Transformer under the same conditions:

* the same text: seqlab's bundled ``shakespeare_char`` (train split for training, valid split
  for evaluation), one token id per character, vocabulary fitted on train; both models see
  the same ids (nanoGPT's ``vocab_size`` is seqlab's vocabulary size);
* the same batches: random contiguous windows of ``block + 1`` characters (inputs and their
  next-character targets), drawn from one seeded generator, as nanoGPT's ``get_batch`` does;
* the same size: 4 layers, 4 heads, width 128, feed-forward 512, block 64, no dropout, tied
  input/output embeddings; seqlab with learned positions (GPT-2's), optionally RoPE too;
* the same optimiser: AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on tensors of 2+
  dims, linear warmup over 100 steps then cosine decay to 1e-4 at step 2000 (constant after),
  gradient clipping at norm 1.0;
* the same wall-clock budget: each model trains, one after another, until ``--budget``
  seconds of training have passed (evaluation is not counted), on ``--threads`` threads.

Validation loss is then measured identically for both: mean next-character cross-entropy
(nats) over one fixed set of validation windows (``--eval-batches`` x ``--batch-size``).
Before training, the script checks that each model's own training loss (nanoGPT's returned
``loss``, seqlab's ``task.loss`` sum / units) equals that plain cross-entropy on one batch.

A sequential timed run is at the mercy of load that changes while it runs, so the script
then also times ``--interleaved`` rounds in which the manually driven models take turns, one
training step each on the same batch, and reports the median step's tokens/s.

The ``seqlab-trainer`` row is the whole toolkit: ``model.fit`` through seqlab's Trainer
(its batches are shuffled non-overlapping 64-character blocks, not random windows; its
schedule is seqlab's warmup + cosine over ``--decay-iters`` steps, where it stops), with
``max_time = --budget``; its tokens/s is the Trainer's own count.

    python bench/nanogpt_char.py --nanogpt /tmp/nanogpt [--budget 180] [--threads 2]
        [--rows nanogpt,seqlab,seqlab-rope,seqlab-trainer] [--interleaved 100] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import seqlab
from seqlab.errors import ConfigError

ROWS = ("nanogpt", "seqlab", "seqlab-rope", "seqlab-trainer")

# step_fn(x (B, T) long, y (B, T) long) -> () mean training loss, with gradients
StepLoss = Callable[[Tensor, Tensor], Tensor]
# logits_fn(x (B, T) long) -> (B, T, V) logits
LogitsFn = Callable[[Tensor], Tensor]


@dataclass
class Row:
    name: str
    parameters: int
    steps: int
    train_seconds: float
    tokens_per_s: float
    val_loss: float
    first_loss: float
    last_loss: float


# ------------------------------------------------------------------------------------ data


def load_nanogpt(path: Path) -> ModuleType:
    """nanoGPT's ``model.py`` from the directory ``path``, imported under a private name."""
    file = path / "model.py"
    if not file.is_file():
        raise ConfigError(f"--nanogpt {path}: no model.py there; fetch nanoGPT and pass its directory")
    spec = importlib.util.spec_from_file_location("nanogpt_model", file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lm_options(block: int) -> dict[str, Any]:
    return {"tokenizer": "char", "block_size": block}


def build_seqlab(positions: str, args: argparse.Namespace, train: list[dict[str, Any]], budget: float | None = None) -> Any:
    """An unfitted-but-built seqlab Transformer LM (vocabulary fitted on ``train``)."""
    train_cfg = {
        "batch_size": args.batch_size, "lr": args.lr, "betas": (0.9, 0.99), "weight_decay": 0.1,
        "warmup_steps": args.warmup, "schedule": "cosine", "min_lr_ratio": args.min_lr / args.lr,
        "clip_norm": 1.0, "max_steps": args.decay_iters, "max_time": budget, "epochs": 1000,
        "patience": None, "progress": False, "seed": args.seed,
    }
    model = seqlab.build(
        "transformer", task="lm", task_options=lm_options(args.block), train=train_cfg,
        d_model=args.width, n_heads=args.heads, num_layers=args.layers, d_ff=4 * args.width,
        dropout=0.0, positions=positions, max_len=args.block, seed=args.seed,
        bias=args.nanogpt_bias,  # the same blocks: biases in both or in neither (nanoGPT's baby run: none)
        recipe=False,  # nanoGPT's settings, nothing derived
    )
    return model.prepare(train)


def windows(data: Tensor, block: int, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch`` random windows of ``block + 1`` ids of ``data`` (N,) -> inputs, targets (B, T)."""
    start = torch.randint(len(data) - block, (batch,), generator=gen)  # (B,)
    w = data[start.unsqueeze(1) + torch.arange(block + 1)]  # (B, T + 1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()  # contiguous, as nanoGPT's torch.stack gives


def lr_at(step: int, args: argparse.Namespace) -> float:
    """nanoGPT's schedule: warmup (step + 1) / (W + 1) of the peak, cosine to ``min_lr`` at
    ``decay_iters``, then constant."""
    if step < args.warmup:
        return args.lr * (step + 1) / (args.warmup + 1)
    if step > args.decay_iters:
        return args.min_lr
    progress = (step - args.warmup) / (args.decay_iters - args.warmup)
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (args.lr - args.min_lr)


def adamw(module: nn.Module, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW, weight decay 0.1 on tensors of 2+ dims (matrices, embeddings), none on the rest."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))


# ------------------------------------------------------------------------------- models


def nanogpt_fns(ng: ModuleType, vocab: int, args: argparse.Namespace) -> tuple[nn.Module, StepLoss, LogitsFn]:
    torch.manual_seed(args.seed)
    cfg = ng.GPTConfig(block_size=args.block, vocab_size=vocab, n_layer=args.layers, n_head=args.heads,
                       n_embd=args.width, dropout=0.0, bias=args.nanogpt_bias)
    model = ng.GPT(cfg)

    def step_loss(x: Tensor, y: Tensor) -> Tensor:
        _, loss = model(x, y)  # nanoGPT's own mean cross-entropy
        return loss

    def logits(x: Tensor) -> Tensor:
        out, _ = model(x, torch.zeros_like(x))  # with targets it returns every position's logits
        return out  # (B, T, V)

    return model, step_loss, logits


def seqlab_fns(model: Any) -> tuple[nn.Module, StepLoss, LogitsFn]:
    module, task = model.module, model.task

    def batch_of(x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"input_ids": x, "mask": torch.ones_like(x, dtype=torch.bool), "labels": y}

    def step_loss(x: Tensor, y: Tensor) -> Tensor:
        b = batch_of(x, y)
        total, units = task.loss(module(b), b)  # seqlab's own loss: sum over tokens, token count
        return total / units

    def logits(x: Tensor) -> Tensor:
        return module(batch_of(x, x))  # (B, T, V)

    return module, step_loss, logits


def check_loss(name: str, step_loss: StepLoss, logits: LogitsFn, x: Tensor, y: Tensor) -> float:
    """|the model's own training loss - plain mean cross-entropy| on one batch (must be ~0)."""
    with torch.no_grad():
        own = float(step_loss(x, y))
        plain = float(F.cross_entropy(logits(x).flatten(0, 1).float(), y.flatten()))
    diff = abs(own - plain)
    if diff > 1e-4 * max(1.0, abs(plain)):
        raise AssertionError(f"{name}: its loss {own} is not the mean cross-entropy {plain}")
    return diff


# ------------------------------------------------------------------------------ training


def train_for(module: nn.Module, step_loss: StepLoss, data: Tensor, args: argparse.Namespace) -> tuple[int, float, float, float]:
    """Train until ``args.budget`` seconds pass; -> steps, seconds, first and last loss."""
    gen = torch.Generator().manual_seed(args.seed)  # the same batches for every model
    opt = adamw(module, args)
    module.train()
    steps, first, last = 0, math.nan, math.nan
    start = time.perf_counter()
    while True:
        lr = lr_at(steps, args)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = windows(data, args.block, args.batch_size, gen)
        loss = step_loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps += 1
        if steps == 1 or steps % args.log_every == 0:
            last = loss.item()
            first = last if steps == 1 else first
            print(f"  step {steps}: loss {last:.4f}, lr {lr:.2e}, {time.perf_counter() - start:.1f}s", flush=True)
        elapsed = time.perf_counter() - start
        if elapsed >= args.budget or (args.max_iters and steps >= args.max_iters):
            return steps, elapsed, first, loss.item()


def val_loss(logits: LogitsFn, module: nn.Module, val_batches: list[tuple[Tensor, Tensor]]) -> float:
    """Mean cross-entropy (nats) over every target of the fixed validation windows."""
    module.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in val_batches:
            out = logits(x)  # (B, T, V)
            total += float(F.cross_entropy(out.flatten(0, 1).float(), y.flatten(), reduction="sum"))
            n += y.numel()
    module.train()
    return total / n


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())  # tied weights count once


def run_manual(name: str, module: nn.Module, step_loss: StepLoss, logits: LogitsFn, data: Tensor,
               val_batches: list[tuple[Tensor, Tensor]], args: argparse.Namespace) -> Row:
    print(f"[{name}] {n_params(module):,} parameters; training for {args.budget:.0f}s", flush=True)
    steps, seconds, first, last = train_for(module, step_loss, data, args)
    tps = steps * args.batch_size * args.block / seconds
    vl = val_loss(logits, module, val_batches)
    print(f"[{name}] {steps} steps in {seconds:.1f}s, {tps:,.0f} tokens/s, val loss {vl:.4f}", flush=True)
    return Row(name, n_params(module), steps, seconds, tps, vl, first, last)


def interleaved_speed(models: dict[str, tuple[nn.Module, StepLoss]], data: Tensor, args: argparse.Namespace) -> dict[str, float]:
    """Training tokens/s per model from ``args.interleaved`` rounds of one step each, the models
    taking turns on the same batch: the median step time, so load that drifts during a long
    sequential run affects every model alike."""
    gen = torch.Generator().manual_seed(args.seed + 2)
    opts = {k: adamw(m, args) for k, (m, _) in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.interleaved):
        x, y = windows(data, args.block, args.batch_size, gen)
        for k, (module, step_loss) in models.items():
            t0 = time.perf_counter()
            step_loss(x, y).backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opts[k].step()
            opts[k].zero_grad(set_to_none=True)
            times[k].append(time.perf_counter() - t0)
    return {k: args.batch_size * args.block / statistics.median(v) for k, v in times.items()}


def run_trainer(train: list[dict[str, Any]], val_batches: list[tuple[Tensor, Tensor]], args: argparse.Namespace) -> Row:
    """The whole toolkit: ``model.fit`` (seqlab's batching, Trainer and schedule), max_time = budget."""
    model = build_seqlab("learned", args, train, budget=args.budget)
    name = "seqlab-trainer"
    print(f"[{name}] {model.n_parameters:,} parameters; model.fit for {args.budget:.0f}s", flush=True)
    torch.manual_seed(args.seed)
    model.fit(train)
    res = model.result_
    module, _, logits = seqlab_fns(model)
    vl = val_loss(logits, module, val_batches)
    loss = res.history[-1]["train_loss"] if res.history else math.nan
    print(f"[{name}] {res.steps} steps in {res.train_time:.1f}s, {res.units_per_second:,.0f} tokens/s, "
          f"val loss {vl:.4f}", flush=True)
    return Row(name, model.n_parameters, res.steps, res.train_time, res.units_per_second, vl, math.nan, loss)


# --------------------------------------------------------------------------------- main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nanogpt", type=Path, required=True, help="directory holding nanoGPT's model.py")
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per model")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--decay-iters", type=int, default=2000, help="cosine decay ends here (nanoGPT's lr_decay_iters)")
    ap.add_argument("--max-iters", type=int, default=0, help="also stop after this many steps (0: budget only)")
    ap.add_argument("--nanogpt-bias", action="store_true", help="biases in both models' blocks (nanoGPT's baby run has bias=False)")
    ap.add_argument("--eval-batches", type=int, default=200)
    ap.add_argument("--interleaved", type=int, default=100,
                    help="then this many alternating steps per model for a load-robust tokens/s (0: skip)")
    ap.add_argument("--log-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--quick", action="store_true", help="10 s per model, 20 evaluation batches")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.budget, args.eval_batches, args.log_every, args.interleaved = 10.0, 20, 50, 10
    rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise ConfigError(f"--rows: unknown {unknown}; valid: {', '.join(ROWS)}")
    args.rows = rows
    return args


def table(rows: list[Row], ref: Row | None) -> str:
    head = "| row | parameters | steps | train s | tokens/s | tokens/s ratio | val loss (nats) | val loss ratio |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tr = f"{r.tokens_per_s / ref.tokens_per_s:.3f}" if ref else "-"
        lr = f"{r.val_loss / ref.val_loss:.3f}" if ref else "-"
        lines.append(f"| {r.name} | {r.parameters:,} | {r.steps} | {r.train_seconds:.1f} | {r.tokens_per_s:,.0f} | "
                     f"{tr} | {r.val_loss:.4f} | {lr} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ng = load_nanogpt(args.nanogpt)
    ds = seqlab.datasets.load("shakespeare_char")
    ref_model = build_seqlab("learned", args, ds.train)  # the task whose vocabulary both share
    task = ref_model.task
    train_ids = torch.tensor(task.stream(ds.train), dtype=torch.long)  # (N,) documents joined by <eos>
    valid_ids = torch.tensor(task.stream(ds.valid), dtype=torch.long)
    vocab = task.input_size
    val_gen = torch.Generator().manual_seed(args.seed + 1)
    val_batches = [windows(valid_ids, args.block, args.batch_size, val_gen) for _ in range(args.eval_batches)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; vocabulary {vocab}; "
          f"train {len(train_ids):,} chars, valid {len(valid_ids):,} chars; "
          f"validation: {args.eval_batches} x {args.batch_size} windows of {args.block}", flush=True)

    makers: dict[str, Callable[[], tuple[nn.Module, StepLoss, LogitsFn]]] = {
        "nanogpt": lambda: nanogpt_fns(ng, vocab, args),
        "seqlab": lambda: seqlab_fns(ref_model),
        "seqlab-rope": lambda: seqlab_fns(build_seqlab("rope", args, ds.train)),
    }
    x0, y0 = windows(train_ids, args.block, args.batch_size, torch.Generator().manual_seed(0))
    results: list[Row] = []
    makers_done: dict[str, tuple[nn.Module, StepLoss]] = {}
    for name in args.rows:
        if name == "seqlab-trainer":
            results.append(run_trainer(ds.train, val_batches, args))
            continue
        module, step_loss, logits = makers[name]()
        makers_done[name] = (module, step_loss)
        diff = check_loss(name, step_loss, logits, x0, y0)
        print(f"[{name}] own loss = mean cross-entropy on a batch (|diff| {diff:.1e})", flush=True)
        results.append(run_manual(name, module, step_loss, logits, train_ids, val_batches, args))

    trained = {r.name: makers_done[r.name] for r in results if r.name in makers_done}
    speed = interleaved_speed(trained, train_ids, args) if args.interleaved and trained else {}
    ref = next((r for r in results if r.name == "nanogpt"), None)
    print(f"\nbudget {args.budget:.0f}s per model, {torch.get_num_threads()} threads; ratios are row / nanogpt "
          "(tokens/s: higher is better; val loss: lower is better)\n")
    print(table(results, ref))
    if speed:
        base = speed.get("nanogpt")
        print(f"\ninterleaved: median of {args.interleaved} alternating steps on the same batches\n")
        print("| row | tokens/s | ratio to nanogpt |\n|---|---|---|")
        for k, v in speed.items():
            print(f"| {k} | {v:,.0f} | {v / base:.3f} |" if base else f"| {k} | {v:,.0f} | - |")
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": [asdict(r) for r in results], "interleaved_tokens_per_s": speed},
                                        indent=1))


if __name__ == "__main__":
    main()
