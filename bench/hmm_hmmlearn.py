"""seqlab's HMM estimator against hmmlearn's CategoricalHMM (implementation="scaling").

Same random HMM (50 states, 100 symbols) and the same 10,000 sequences of length 100 for both,
through each library's public estimator API: seqlab gets a list of sequences, hmmlearn the
concatenation plus lengths (its API). Three jobs: forward scoring (``score``), Viterbi
(``predict``) and one Baum-Welch iteration (``fit`` with ``n_iter=1`` from the same parameters:
E-step + M-step). Runs alternate seqlab / hmmlearn; best and median of ``--repeats`` are printed
with the ratio hmmlearn / seqlab (> 1: seqlab is faster), plus parity checks.

    python bench/hmm_hmmlearn.py [--n-seq 10000] [--length 100] [--states 50] [--symbols 100] [--repeats 3] [--dtype float64] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hmmlearn.hmm import CategoricalHMM as PeerHMM

from _common import add_hmm_args, random_hmm, timed
from seqlab.models.classical.hmm import CategoricalHMM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_hmm_args(ap)
    ap.add_argument("--batch-size", type=int, default=2048)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, v = args.states, args.symbols
    pi, trans, emit = random_hmm(n, v, rng)
    obs = rng.integers(0, v, size=(args.n_seq, args.length))
    seqs = list(obs)  # seqlab: a list of sequences
    x, lengths = obs.reshape(-1, 1), np.full(args.n_seq, args.length)  # hmmlearn: concatenation + lengths
    dtype = getattr(torch, args.dtype)

    def peer(n_iter: int = 1) -> PeerHMM:
        m = PeerHMM(n_components=n, n_features=v, implementation="scaling", init_params="", n_iter=n_iter, tol=-np.inf)
        m.startprob_, m.transmat_, m.emissionprob_ = pi, trans, emit
        return m

    def ours() -> CategoricalHMM:
        m = CategoricalHMM(n, v, n_iter=1, tol=-np.inf, batch_size=args.batch_size, dtype=dtype)
        m.startprob_, m.transmat_ = torch.tensor(pi, dtype=dtype), torch.tensor(trans, dtype=dtype)
        m.emissionprob_ = torch.tensor(emit, dtype=dtype)
        return m

    jobs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "forward score": (lambda: ours().score(seqs), lambda: peer().score(x, lengths)),
        "viterbi": (lambda: ours().predict(seqs), lambda: peer().predict(x, lengths)),
        "baum-welch iteration": (lambda: ours().fit(seqs, init=False), lambda: peer().fit(x, lengths)),
    }
    print(f"{args.n_seq} sequences x {args.length} steps, {n} states, {v} symbols, seqlab {args.dtype}, "
          f"torch threads {torch.get_num_threads()}, best / median of {args.repeats}")
    print(f"{'job':<22}{'seqlab s':>18}{'hmmlearn s':>18}{'ratio':>16}")
    results: dict[str, tuple[Any, Any]] = {}
    for name, (sl, pe) in jobs.items():
        ts, tp = [], []
        for _ in range(args.repeats):
            t, _, out_s = timed(sl)
            ts.append(t)
            t, _, out_p = timed(pe)
            tp.append(t)
        results[name] = (out_s, out_p)
        bs, bp, ms, mp = min(ts), min(tp), statistics.median(ts), statistics.median(tp)
        print(f"{name:<22}{bs:>9.3f} /{ms:>7.3f}{bp:>9.3f} /{mp:>7.3f}{bp / bs:>8.2f} /{mp / ms:>6.2f}")

    s_ll, p_ll = results["forward score"]
    s_path, p_path = results["viterbi"]
    same = np.mean(np.concatenate([p.numpy() for p in s_path]) == p_path)
    s_fit, p_fit = results["baum-welch iteration"]
    gap = max(np.abs(s_fit.transmat_.double().numpy() - p_fit.transmat_).max(), np.abs(s_fit.emissionprob_.double().numpy() - p_fit.emissionprob_).max())
    print(f"parity: |log-lik diff| {abs(s_ll - p_ll):.2e} (of {abs(p_ll):.3e}); identical Viterbi states {same:.6f}; "
          f"largest parameter gap after one iteration {gap:.2e}")


if __name__ == "__main__":
    main()
