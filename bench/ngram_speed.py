"""n-gram training and query speed: seqlab vs KenLM (``lmplz``, the ``kenlm`` module) and NLTK.

Corpus: the bundled Shakespeare as characters (``shakespeare_char``, all splits, ~5M tokens): one
sentence per non-empty line, each character a token (a space becomes ``_``). Runs alternate
seqlab / peer, ``--repeats`` times; best and median are printed with the ratio peer time /
seqlab time (> 1: seqlab is faster).

* training, order 5: ``NGramLM(5).fit_counts(token lists)`` (and + ``to_arpa``) vs ``lmplz -o 5
  -S 1G`` on the same text as a file (its wall time: reading, estimating, writing the ARPA);
* query, order 5: ``score_sentences(all token lists)`` (vectorized over the whole corpus) vs the
  kenlm module scoring line by line from Python, as its users do (``Model.score`` and the
  ``full_scores`` generator), on the same model (lmplz's ARPA; seqlab's own fit gives the same
  probabilities, see ngram_kenlm_parity.py); seqlab's time includes mapping strings to ids;
* NLTK ``KneserNeyInterpolated`` (order 3) is far slower, so it runs on a prefix of the corpus
  (``--nltk-tokens``, 100k tokens to train; scoring ``--nltk-score`` tokens of it) and the
  comparison is in tokens per second against seqlab on the same prefix.

    python bench/ngram_speed.py --lmplz /tmp/kenlm-build/bin/lmplz [--repeats 3] [--nltk-tokens 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kenlm

import seqlab
from seqlab.models.classical.ngram import NGramLM


def char_lines() -> list[str]:
    ds = seqlab.datasets.load("shakespeare_char")
    out = []
    for split in (ds.train, ds.valid, ds.test):
        for ex in split:
            for line in ex["text"].split("\n"):
                if line.strip():
                    out.append(" ".join("_" if c == " " else c for c in line))
    return out


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def race(jobs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for name, fn in jobs.items():
            times[name].append(timed(fn))
    return times


def report(title: str, tokens: int, times: dict[str, list[float]], base: str) -> None:
    print(f"\n{title} ({tokens:,} tokens)")
    print(f"{'run':<34} {'best s':>8} {'median s':>9} {'Mtok/s (best)':>14} {'ratio best/median':>18}")
    b_best, b_med = min(times[base]), statistics.median(times[base])
    for name, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        ratio = f"{best / b_best:.2f} / {med / b_med:.2f}" if name != base else "1"
        print(f"{name:<34} {best:>8.3f} {med:>9.3f} {tokens / best / 1e6:>14.2f} {ratio:>18}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lmplz", default=os.environ.get("LMPLZ"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nltk-tokens", type=int, default=100_000)
    ap.add_argument("--nltk-score", type=int, default=5_000)
    args = ap.parse_args()
    lines = char_lines()
    sents = [s.split() for s in lines]
    n_tok = sum(len(s) + 1 for s in sents)  # words and </s>
    print(f"shakespeare_char: {len(lines):,} lines, {n_tok:,} tokens (characters + </s>), order 5; 2 cores, noisy machine")
    with tempfile.TemporaryDirectory() as tmp:
        corpus, arpa = Path(tmp) / "corpus.txt", Path(tmp) / "lmplz.arpa"
        corpus.write_text("\n".join(lines) + "\n")

        def lmplz() -> None:
            with open(corpus) as fin, open(arpa, "w") as fout:
                subprocess.run([args.lmplz, "-o", "5", "-S", "1G"], stdin=fin, stdout=fout, stderr=subprocess.DEVNULL, check=True)

        jobs: dict[str, Callable[[], Any]] = {
            "seqlab fit_counts": lambda: NGramLM(5).fit_counts(sents),
            "seqlab fit_counts + to_arpa": lambda: NGramLM(5).fit_counts(sents).to_arpa(str(Path(tmp) / "ours.arpa")),
        }
        if args.lmplz and Path(args.lmplz).exists():
            jobs["lmplz -o 5 -S 1G (wall)"] = lmplz
        else:
            print("(lmplz not given: training is compared with NLTK only; writing the query model with seqlab)")
        times = race(jobs, args.repeats)
        report("training, order 5", n_tok, times, "seqlab fit_counts")
        if not arpa.exists():
            NGramLM(5).fit_counts(sents).to_arpa(str(arpa))

        peer = kenlm.Model(str(arpa))
        ours = NGramLM.from_arpa(str(arpa))
        ours.score_sentences(sents[:1000])  # build the lookup indexes once, as kenlm's load does

        def kenlm_full() -> None:
            for line in lines:
                for _ in peer.full_scores(line):
                    pass

        times = race({
            "seqlab score_sentences (batch)": lambda: ours.score_sentences(sents),
            "kenlm Model.score, line by line": lambda: [peer.score(line, bos=True, eos=True) for line in lines],
            "kenlm full_scores, line by line": kenlm_full,
        }, args.repeats)
        report("query, order 5", n_tok, times, "seqlab score_sentences (batch)")
    nltk_compare(sents, args.nltk_tokens, args.nltk_score)
    return 0


def nltk_compare(sents: list[list[str]], n_train: int, n_score: int) -> None:
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    sub, total = [], 0
    for s in sents:
        if total >= n_train:
            break
        sub.append(s)
        total += len(s) + 1
    probe, k = [], 0
    for s in sub:
        if k >= n_score:
            break
        probe.append(s)
        k += len(s) + 1

    def nltk_fit() -> Any:
        grams, vocab = padded_everygram_pipeline(3, sub)
        model = KneserNeyInterpolated(3)
        model.fit(grams, vocab)
        return model

    t_nltk_fit = timed(nltk_fit)
    model = nltk_fit()
    t0 = time.perf_counter()
    for s in probe:
        padded = ["<s>", "<s>", *s, "</s>"]
        for i in range(2, len(padded)):
            model.logscore(padded[i], padded[i - 2 : i])
    t_nltk_score = time.perf_counter() - t0
    fallback = (0.5, 1.0, 1.5)  # a character corpus has no singleton unigrams: lmplz's --discount_fallback
    t_fit = min(timed(lambda: NGramLM(3, discount_fallback=fallback).fit_counts(sub)) for _ in range(3))
    lm = NGramLM(3, discount_fallback=fallback).fit_counts(sub)
    t_score = min(timed(lambda: lm.score_sentences(sub)) for _ in range(3))
    print(f"\nNLTK KneserNeyInterpolated(3): train on {total:,} tokens, score {k:,} of them (seqlab scores all {total:,})")
    print(f"{'':<10} {'NLTK tok/s':>12} {'seqlab tok/s':>14} {'ratio':>8}")
    fit_n, fit_s = total / t_nltk_fit, total / t_fit
    sc_n, sc_s = k / t_nltk_score, total / t_score
    print(f"{'training':<10} {fit_n:>12,.0f} {fit_s:>14,.0f} {fit_s / fit_n:>8.0f}x")
    print(f"{'scoring':<10} {sc_n:>12,.0f} {sc_s:>14,.0f} {sc_s / sc_n:>8.0f}x")


if __name__ == "__main__":
    sys.exit(main())
