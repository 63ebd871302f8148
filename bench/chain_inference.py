"""seqlab.inference against hmmlearn (implementation="scaling") on one discrete HMM.

Same random HMM (50 states, 100 symbols) and the same 10,000 sequences of length 100 for both.
seqlab's time includes building the (B, T, N) log emissions by indexing log B with the
symbols. Three jobs: forward scoring (total log-likelihood), Viterbi decoding, and one
Baum-Welch E-step (posteriors + the sufficient statistics hmmlearn accumulates: start counts,
transition counts, emission counts). Runs alternate seqlab / hmmlearn; best and median of
``--repeats`` are printed with the ratio hmmlearn / seqlab (> 1: seqlab is faster), and parity
checks (log-likelihood difference, fraction of identical Viterbi paths, largest statistic gap).

    python bench/chain_inference.py [--n-seq 10000] [--length 100] [--states 50] [--symbols 100] [--repeats 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hmmlearn.hmm import CategoricalHMM

from seqlab.inference import forward_backward, log_partition, viterbi


def random_hmm(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pi = rng.dirichlet(np.ones(n))
    A = rng.dirichlet(np.ones(n) * 0.5, size=n)
    B = rng.dirichlet(np.ones(m) * 0.5, size=n)
    return pi, A, B


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-seq", type=int, default=10000)
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--states", type=int, default=50)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pi, A, Bm = random_hmm(args.states, args.symbols, rng)
    obs = rng.integers(0, args.symbols, size=(args.n_seq, args.length))
    X = obs.reshape(-1, 1)
    lengths = np.full(args.n_seq, args.length)

    hmm = CategoricalHMM(n_components=args.states, implementation="scaling")
    hmm.startprob_, hmm.transmat_, hmm.emissionprob_ = pi, A, Bm
    hmm.n_features = args.symbols

    dt = getattr(torch, args.dtype)
    log_pi, log_A, log_B = (torch.from_numpy(np.log(x)).to(dt) for x in (pi, A, Bm))
    log_Bt = log_B.t().contiguous()  # (M, N)
    sym = torch.from_numpy(obs)  # (B, T)
    mask = torch.ones(sym.shape, dtype=torch.bool)
    end = torch.zeros(args.states, dtype=dt)

    def emissions() -> torch.Tensor:
        return log_Bt[sym]  # (B, T, N)

    def sl_score() -> float:
        return float(log_partition(emissions(), log_A, log_pi, end, mask).sum())

    def sl_viterbi() -> tuple[torch.Tensor, torch.Tensor]:
        return viterbi(emissions(), log_A, log_pi, end, mask)

    def sl_estep() -> dict[str, torch.Tensor]:
        post = forward_backward(emissions(), log_A, log_pi, end, mask)
        obs_counts = torch.zeros(args.symbols, args.states, dtype=dt)
        obs_counts.index_add_(0, sym.reshape(-1), post.node.reshape(-1, args.states))
        return {"start": post.node[:, 0].sum(0), "trans": post.edge.sum(0), "obs": obs_counts.t(),
                "logprob": post.log_z.sum()}

    def hl_estep() -> dict[str, Any]:
        stats, logprob = hmm._do_estep(X, lengths)
        return {"start": stats["start"], "trans": stats["trans"], "obs": stats["obs"], "logprob": logprob}

    jobs = {
        "forward score": (sl_score, lambda: hmm.score(X, lengths)),
        "viterbi": (sl_viterbi, lambda: hmm.decode(X, lengths, algorithm="viterbi")),
        "E-step (forward-backward + stats)": (sl_estep, hl_estep),
    }
    print(f"{args.n_seq} sequences x {args.length}, {args.states} states, {args.symbols} symbols, "
          f"seqlab {args.dtype}, torch {torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'job':36s} {'seqlab best':>12s} {'hmmlearn best':>14s} {'ratio best':>11s} {'ratio median':>13s}")
    for name, (ours, theirs) in jobs.items():
        ts, th = [], []
        for _ in range(args.repeats):
            t, out_s = timed(ours)
            ts.append(t)
            t, out_h = timed(theirs)
            th.append(t)
        print(f"{name:36s} {min(ts):11.3f}s {min(th):13.3f}s {min(th) / min(ts):10.2f}x "
              f"{statistics.median(th) / statistics.median(ts):12.2f}x")
        if name == "forward score":
            print(f"    parity: |logL seqlab - logL hmmlearn| = {abs(out_s - out_h):.3g} (logL = {out_h:.6g})")
        elif name == "viterbi":
            paths, best = out_s
            same = (paths.numpy().reshape(-1) == out_h[1]).reshape(args.n_seq, args.length).all(1).mean()
            print(f"    parity: identical paths {same:.4f}; |sum best - hmmlearn logprob| = {abs(float(best.sum()) - out_h[0]):.3g}")
        else:
            gaps = {k: float(np.abs(np.asarray(out_s[k]) - np.asarray(out_h[k])).max()) for k in out_h}
            print("    parity: max |seqlab - hmmlearn| " + ", ".join(f"{k} {v:.2g}" for k, v in gaps.items()))


if __name__ == "__main__":
    main()
