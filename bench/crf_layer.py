"""seqlab's CRF layer against pytorch-crf: NLL forward+backward and Viterbi decoding.

Batch 64, lengths uniform in 20..100, 50 tags, float32, the same parameters copied into both.
Each measurement is ``--iters`` calls; the two libraries alternate for ``--repeats`` rounds,
and the best and median times and the ratio pytorch-crf / seqlab (> 1: seqlab faster) are
printed, with parity checks (NLL gap, emission-gradient gap, identical decodes). The CPU-time
ratio (process CPU seconds) is steadier than wall time on a shared machine.

    python bench/crf_layer.py [--batch 64] [--tags 50] [--iters 20] [--repeats 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torchcrf import CRF as PeerCRF

from seqlab.models.crf_layer import CRF


def per_call(fn: Callable[[], Any], iters: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per call, over ``iters`` calls."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters, (time.process_time() - c0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tags", type=int, default=50)
    ap.add_argument("--min-len", type=int, default=20)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    B, N = args.batch, args.tags
    lengths = torch.randint(args.min_len, args.max_len + 1, (B,), generator=g)
    T = int(lengths.max())
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    emissions = torch.randn(B, T, N, generator=g).requires_grad_(True)
    tags = torch.randint(0, N, (B, T), generator=g)
    ours = CRF(N)
    peer = PeerCRF(N, batch_first=True)
    with torch.no_grad():
        peer.transitions.copy_(ours.transitions)
        peer.start_transitions.copy_(ours.start)
        peer.end_transitions.copy_(ours.end)

    def ours_nll() -> torch.Tensor:
        emissions.grad = None
        loss = ours.nll(emissions, tags, mask, reduction="sum")
        loss.backward()
        return loss

    def peer_nll() -> torch.Tensor:
        emissions.grad = None
        loss = -peer(emissions, tags, mask, reduction="sum")
        loss.backward()
        return loss

    def ours_decode() -> list[list[int]]:
        with torch.no_grad():
            paths = ours.decode(emissions, mask)
        return [row[:n] for row, n in zip(paths.tolist(), lengths.tolist())]

    def peer_decode() -> list[list[int]]:
        with torch.no_grad():
            out: list[list[int]] = peer.decode(emissions, mask)
        return out

    print(f"batch {B}, lengths {args.min_len}..{args.max_len}, {N} tags, float32, torch {torch.__version__} "
          f"threads={torch.get_num_threads()}")
    l1 = ours_nll()
    g1 = emissions.grad.clone()
    l2 = peer_nll()
    g2 = emissions.grad.clone()
    print(f"parity: |NLL seqlab - pytorch-crf| = {abs(float(l1.detach()) - float(l2.detach())):.3g} (NLL {float(l2.detach()):.6g}); "
          f"max |grad gap| = {float((g1 - g2).abs().max()):.3g}; identical decodes: {ours_decode() == peer_decode()}")
    print(f"{'job':22s} {'seqlab best':>11s} {'pytorch-crf best':>16s} {'ratio best':>10s} {'ratio median':>12s}"
          f" {'CPU-time ratio best':>20s}")
    for name, a, b in (("NLL forward+backward", ours_nll, peer_nll), ("Viterbi decode", ours_decode, peer_decode)):
        ta, tb, ca, cb = [], [], [], []
        for _ in range(args.repeats):
            wall, cpu = per_call(a, args.iters)
            ta.append(wall)
            ca.append(cpu)
            wall, cpu = per_call(b, args.iters)
            tb.append(wall)
            cb.append(cpu)
        print(f"{name:22s} {min(ta) * 1e3:9.2f}ms {min(tb) * 1e3:14.2f}ms {min(tb) / min(ta):9.2f}x "
              f"{statistics.median(tb) / statistics.median(ta):11.2f}x {min(cb) / min(ca):19.2f}x")


if __name__ == "__main__":
    main()
