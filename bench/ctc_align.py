"""CTC forced alignment on a long input: one Viterbi pass against the checkpointed one, peak
memory and time, and the same path.

Synthetic posteriors (``--frames`` frames, ``--labels`` labels from 28, peaked on a random
transcript with random durations). Each mode runs in a fresh subprocess so its peak resident
memory (``ru_maxrss``) is its own; the path digests must agree.

    OMP_NUM_THREADS=1 python bench/ctc_align.py [--frames 20000] [--labels 400]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import subprocess
import sys
import time


def child(frames: int, labels: int, chunk: int | None) -> None:
    import numpy as np
    import torch

    from seqlab.inference.align import ctc_align

    rng = np.random.default_rng(0)
    y = rng.integers(1, 29, labels)
    cuts = np.sort(rng.choice(np.arange(1, frames), labels * 2, replace=False))
    path = np.zeros(frames, dtype=np.int64)
    for k in range(labels):
        path[cuts[2 * k]:cuts[2 * k + 1]] = y[k]
    x = rng.normal(0, 1, (frames, 29))
    x[np.arange(frames), path] += 6
    lp = torch.from_numpy(x).log_softmax(-1)
    ctc_align(lp[:50], y[:5].tolist(), blank=0, chunk=chunk and 7)  # compile the Viterbi kernel first
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    al = ctc_align(lp, y.tolist(), blank=0, chunk=chunk)
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = hashlib.sha1(al.states.numpy().tobytes()).hexdigest()[:12]
    print(json.dumps({"seconds": sec, "rss_mb": peak / 1024, "grew_mb": (peak - base) / 1024, "digest": digest, "score": al.score}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--labels", type=int, default=400)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.frames, args.labels, args.chunk or None)
        return
    S = 2 * args.labels + 1
    print(f"T = {args.frames} frames, L = {args.labels} labels, S = {S} CTC states")
    print("| mode | seconds | peak RSS MB | RSS growth during the alignment MB | path digest | score |")
    print("|---|---|---|---|---|---|")
    for chunk in (0, int(math.isqrt(args.frames))):
        cmd = [sys.executable, __file__, "--child", "--frames", str(args.frames), "--labels", str(args.labels), "--chunk", str(chunk)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        name = "one pass" if not chunk else f"checkpointed, chunk {chunk}"
        print(f"| {name} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {r['grew_mb']:.0f} | {r['digest']} | {r['score']:.4f} |")


if __name__ == "__main__":
    main()
