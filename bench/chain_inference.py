"""seqlab.inference against hmmlearn (implementation="scaling") on one discrete HMM.

Same random HMM (50 states, 100 symbols) and the same 10,000 sequences of length 100 for both.
seqlab's time includes building the (B, T, N) log emissions by indexing log B with the
symbols, streamed ``--chunk`` sequences per call (as a user scores a large set). Three jobs: forward scoring (total log-likelihood), Viterbi decoding, and one
Baum-Welch E-step (posteriors + the sufficient statistics hmmlearn accumulates: start counts,
transition counts, emission counts). Runs alternate seqlab / hmmlearn; best and median of
``--repeats`` are printed with the ratio hmmlearn / seqlab (> 1: seqlab is faster), and parity
checks (log-likelihood difference, fraction of identical Viterbi paths, largest statistic gap).
On a shared machine the wall-clock ratio swings with other load; the CPU-time ratio (process
CPU seconds, comparable at ``--threads 1`` since hmmlearn is single-threaded) is steadier.

    python bench/chain_inference.py [--n-seq 10000] [--length 100] [--states 50] [--symbols 100] [--repeats 3] [--threads 0] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np
import torch
from hmmlearn.hmm import CategoricalHMM

from _common import add_hmm_args, random_hmm, timed
from seqlab.inference import forward_backward, log_partition, viterbi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_hmm_args(ap)
    ap.add_argument("--chunk", type=int, default=1000, help="sequences per seqlab call (gather + inference)")
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

    chunks = [slice(lo, lo + args.chunk) for lo in range(0, args.n_seq, args.chunk)]

    def emissions(sl: slice) -> torch.Tensor:
        return log_Bt[sym[sl]]  # (b, T, N)

    def sl_score() -> float:
        return sum(float(log_partition(emissions(sl), log_A, log_pi, end, mask[sl]).sum()) for sl in chunks)

    def sl_viterbi() -> tuple[torch.Tensor, torch.Tensor]:
        outs = [viterbi(emissions(sl), log_A, log_pi, end, mask[sl]) for sl in chunks]
        return torch.cat([p for p, _ in outs]), torch.cat([s for _, s in outs])

    def sl_estep() -> dict[str, torch.Tensor]:
        N = args.states
        stats = {"start": torch.zeros(N, dtype=dt), "trans": torch.zeros(N, N, dtype=dt),
                 "obs": torch.zeros(args.symbols, N, dtype=dt), "logprob": torch.zeros((), dtype=dt)}
        for sl in chunks:
            post = forward_backward(emissions(sl), log_A, log_pi, end, mask[sl])
            stats["obs"].index_add_(0, sym[sl].reshape(-1), post.node.reshape(-1, N))
            stats["start"] += post.node[:, 0].sum(0)
            stats["trans"] += post.edge.sum(0)
            stats["logprob"] += post.log_z.sum()
        stats["obs"] = stats["obs"].t()
        return stats

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
    print(f"{'job':34s} {'seqlab best':>11s} {'hmmlearn best':>13s} {'ratio best':>10s} {'ratio median':>12s}"
          f" {'CPU-time ratio best':>20s}")
    for name, (ours, theirs) in jobs.items():
        ts, th, cs, ch = [], [], [], []
        for _ in range(args.repeats):
            t, c, out_s = timed(ours)
            ts.append(t)
            cs.append(c)
            t, c, out_h = timed(theirs)
            th.append(t)
            ch.append(c)
        print(f"{name:34s} {min(ts):10.3f}s {min(th):12.3f}s {min(th) / min(ts):9.2f}x "
              f"{statistics.median(th) / statistics.median(ts):11.2f}x {min(ch) / min(cs):19.2f}x")
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
