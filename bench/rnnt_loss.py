"""seqlab's RNN-T loss against warprnnt-numba on the same CPU inputs: loss + gradient time and
agreement.

Both get the same unnormalised joiner outputs (B, T, U+1, V) float32 with random lengths and
targets; each run is forward + backward to the logits (warprnnt-numba's CPU path takes the
log-softmax in PyTorch first, seqlab fuses it). Prints per size the largest |loss difference|
(relative), the largest |gradient difference|, best-of-N seconds of each and the ratio
peer / seqlab (> 1: seqlab faster). The first peer call (numba compilation) is not timed.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/rnnt_loss.py [--repeats 5]

warprnnt-numba is in the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import time

import torch

from seqlab.inference.rnnt import rnnt_loss

SIZES = [(8, 100, 20, 30), (8, 200, 40, 30), (4, 300, 60, 128), (16, 150, 30, 500)]  # B, T, U, V


def problem(B: int, T: int, U: int, V: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g)
    targets = torch.randint(1, V, (B, U), generator=g, dtype=torch.int32)
    tl = torch.randint(T // 2, T + 1, (B,), generator=g, dtype=torch.int32)
    tl[0] = T
    yl = torch.randint(U // 2, U + 1, (B,), generator=g, dtype=torch.int32)
    yl[0] = U
    return logits, targets, tl, yl


def run(fn, logits: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_(True)
    t0 = time.perf_counter()
    loss = fn(x)
    loss.sum().backward()
    return time.perf_counter() - t0, loss.detach(), x.grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from warprnnt_numba.rnnt_loss.rnnt_pytorch import rnnt_loss as numba_loss

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| B, T, U, V | max rel. loss diff | max grad diff | seqlab s | warprnnt-numba s | ratio |")
    print("|---|---|---|---|---|---|")
    for B, T, U, V in SIZES:
        logits, targets, tl, yl = problem(B, T, U, V)

        def ours(x: torch.Tensor, y: torch.Tensor = targets, tl: torch.Tensor = tl, yl: torch.Tensor = yl) -> torch.Tensor:
            return rnnt_loss(x, y.long(), tl.long(), yl.long(), blank=0, reduction="none")

        def peer(x: torch.Tensor, y: torch.Tensor = targets, tl: torch.Tensor = tl, yl: torch.Tensor = yl) -> torch.Tensor:
            return numba_loss(x, y, tl, yl, blank=0, reduction="none")

        run(peer, logits)  # numba compiles on first use
        run(ours, logits)
        ts, tp = [], []
        for _ in range(args.repeats):  # interleaved
            t, l1, g1 = run(ours, logits)
            ts.append(t)
            t, l2, g2 = run(peer, logits)
            tp.append(t)
        rel = float(((l1 - l2).abs() / l2.abs()).max())
        gd = float((g1 - g2).abs().max())
        print(f"| {B}, {T}, {U}, {V} | {rel:.1e} | {gd:.1e} | {min(ts):.4f} | {min(tp):.4f} | {min(tp) / min(ts):.1f} |")


if __name__ == "__main__":
    main()
