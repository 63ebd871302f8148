"""seqlab's training loop against a hand-written PyTorch loop: same model, data, batch size.

Both train a bidirectional LSTM tagger (embedding 100, hidden 128) on the same sentences
(WNUT-16 when `seqlab[data]` is installed, else a synthetic corpus of the same shape) for the
same number of optimizer steps, in one process, alternating runs so neither gets a warmer
machine. The raw loop is what a careful user writes by hand: pad, pack, AdamW, clip, step.
It prints tokens/s for each and the ratio (goal >= 0.95).

    python bench/train_step.py [--steps 150] [--repeats 3] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import seqlab
from seqlab.data.batching import BucketBatchSampler
from seqlab.train.trainer import TrainConfig


def corpus() -> tuple[str, list[dict]]:
    try:
        ds = seqlab.datasets.load("wnut16")
        return "wnut16", ds.train
    except Exception:
        rng = random.Random(0)
        words = [f"w{i}" for i in range(5000)]
        data = []
        for _ in range(1900):
            toks = [rng.choice(words) for _ in range(rng.randint(5, 35))]
            data.append({"tokens": toks, "tags": [rng.choice(["O", "O", "O", "B-X", "I-X"]) for _ in toks]})
        return "synthetic", data


class RawTagger(nn.Module):
    def __init__(self, vocab: int, tags: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 100, padding_idx=0)
        self.lstm = nn.LSTM(100, 128, batch_first=True, bidirectional=True)
        self.out = nn.Linear(256, tags)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        return self.out(h)


def raw_loop(items: list[dict], n_tags: int, vocab: int, steps: int, bs: int) -> float:
    """The hand-written loop, fed exactly the batches seqlab's unbucketed sampler draws."""
    torch.manual_seed(0)
    model = RawTagger(vocab, n_tags)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    sampler = BucketBatchSampler([len(it["input_ids"]) for it in items], bs, shuffle=True, bucket=False, seed=0)
    tokens, step, epoch, start = 0, 0, 0, time.perf_counter()
    while step < steps:
        for batch in sampler.batches(epoch):
            chunk = [items[j] for j in batch]
            bs = len(chunk)
            lengths = torch.tensor([len(c["input_ids"]) for c in chunk])
            t = int(lengths.max())
            ids = torch.zeros(bs, t, dtype=torch.long)
            labels = torch.full((bs, t), -100, dtype=torch.long)
            for r, c in enumerate(chunk):
                ids[r, : len(c["input_ids"])] = torch.tensor(c["input_ids"])
                labels[r, : len(c["labels"])] = torch.tensor(c["labels"])
            loss = loss_fn(model(ids, lengths).flatten(0, 1), labels.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tokens += int(lengths.sum())
            step += 1
            if step == steps:
                break
        epoch += 1
    return tokens / (time.perf_counter() - start)


def seqlab_loop(train: list[dict], steps: int, bs: int, bucket: bool) -> float:
    cfg = TrainConfig(epochs=1000, max_steps=steps, batch_size=bs, lr=1e-3, weight_decay=0.01, schedule="constant",
                      clip_norm=1.0, patience=None, progress=False, bucket=bucket)
    model = seqlab.build("lstm", task="labeling", train=cfg, bidirectional=True, d_model=100, hidden_size=128, recipe=False,
                         dropout=0.0)
    model.fit(train)
    assert model.result_ is not None
    return model.result_.units_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    name, train = corpus()
    probe = seqlab.build("lstm", task="labeling")
    probe.task.fit(train)
    enc = probe.task.encode(train)
    raw: list[float] = []
    same: list[float] = []
    bucketed: list[float] = []
    for _ in range(args.repeats):
        raw.append(raw_loop(enc.items, probe.task.output_size, probe.task.input_size, args.steps, args.batch_size))
        same.append(seqlab_loop(train, args.steps, args.batch_size, bucket=False))
        bucketed.append(seqlab_loop(train, args.steps, args.batch_size, bucket=True))
    print(f"data: {name}, {len(train)} sentences; batch {args.batch_size}; {args.steps} steps x {args.repeats} repeats; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of the repeats")
    for label, runs in (("raw PyTorch loop", raw), ("seqlab, random batches", same), ("seqlab, length-bucketed", bucketed)):
        print(f"{label:24s}: {max(runs):8.0f} tokens/s  (runs: {', '.join(f'{x:.0f}' for x in runs)})")
    med = statistics.median
    print(f"ratio seqlab/raw, same random batches : best {max(same) / max(raw):.3f}, median {med(same) / med(raw):.3f}"
          "  (goal >= 0.95)")
    print(f"ratio seqlab/raw, seqlab's bucketing  : best {max(bucketed) / max(raw):.3f}, median {med(bucketed) / med(raw):.3f}")


if __name__ == "__main__":
    main()
