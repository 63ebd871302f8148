"""seqlab's n-gram estimator against KenLM's ``lmplz`` on the same real corpus: same discounts,
same probabilities.

Corpus: the bundled word-level Shakespeare (``shakespeare_word``), one sentence per non-empty
line, whitespace tokens; the train split trains both, every line of the test split is scored.
For each order this prints, with the number of test sentences and the largest |difference| of
their log10 probabilities:

* ``fit``:    seqlab fitted on the token lists vs kenlm reading lmplz's ARPA;
* ``import``: seqlab reading lmplz's ARPA vs kenlm reading the same file;
* ``export``: kenlm reading seqlab's ARPA vs seqlab itself;
* the discounts lmplz reports (D1, D2, D3+ per order) vs seqlab's.

Exits 1 if any difference exceeds ``--tol`` (1e-4). lmplz is not part of seqlab: build it from
KenLM's source (cmake; needs Boost) and pass its path.

    python bench/ngram_kenlm_parity.py --lmplz /tmp/kenlm-build/bin/lmplz [--orders 3 5] [--dataset shakespeare_word]
    LMPLZ=/path/to/lmplz python bench/ngram_kenlm_parity.py
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import kenlm
import numpy as np

import seqlab
from seqlab.models.classical.ngram import NGramLM


def lines_of(split: list[dict]) -> list[str]:
    out = []
    for ex in split:
        for line in ex["text"].split("\n"):
            words = line.split()
            if words:
                out.append(" ".join(words))
    return out


def lmplz_discounts(stderr: str) -> list[list[float]]:
    rows = re.findall(r"^\d+ \d+ D1=(\S+) D2=(\S+) D3\+=(\S+)$", stderr, flags=re.M)
    return [[float(x) for x in row] for row in rows]


def kenlm_scores(path: Path, sents: list[str]) -> np.ndarray:
    model = kenlm.Model(str(path))
    return np.array([model.score(s, bos=True, eos=True) for s in sents])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lmplz", default=os.environ.get("LMPLZ"), help="path to KenLM's lmplz (or $LMPLZ)")
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--dataset", default="shakespeare_word")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if not args.lmplz or not Path(args.lmplz).exists():
        print("lmplz not found: pass --lmplz PATH or set LMPLZ (build KenLM from source)", file=sys.stderr)
        return 2
    ds = seqlab.datasets.load(args.dataset)
    train, test = lines_of(ds.train), lines_of(ds.test)
    print(f"{args.dataset}: {len(train)} training sentences ({sum(len(s.split()) for s in train)} tokens), "
          f"{len(test)} test sentences ({sum(len(s.split()) for s in test)} tokens)")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        corpus.write_text("\n".join(train) + "\n")
        tokens = [s.split() for s in train]
        test_tokens = [s.split() for s in test]
        print(f"{'order':>5} {'check':>8} {'sentences':>9} {'max |diff| log10':>17}")
        for order in args.orders:
            theirs = Path(tmp) / f"lmplz{order}.arpa"
            with open(corpus) as fin, open(theirs, "w") as fout:
                run = subprocess.run([args.lmplz, "-o", str(order), "-S", "1G"], stdin=fin, stdout=fout,
                                     stderr=subprocess.PIPE, text=True, check=True)
            ours = NGramLM(order).fit_counts(tokens)
            ref = kenlm_scores(theirs, test)
            mine = Path(tmp) / f"seqlab{order}.arpa"
            ours.to_arpa(str(mine))
            checks = {
                "fit": np.abs(ours.score_sentences(test_tokens) - ref),
                "import": np.abs(NGramLM.from_arpa(str(theirs)).score_sentences(test_tokens) - ref),
                "export": np.abs(kenlm_scores(mine, test) - ours.score_sentences(test_tokens)),
            }
            for name, diff in checks.items():
                print(f"{order:>5} {name:>8} {len(diff):>9} {diff.max():>17.3g}")
                worst = max(worst, float(diff.max()))
            theirs_d = lmplz_discounts(run.stderr)
            ours_d = [d[1:].tolist() for d in ours.discounts_]
            gap = max(abs(a - b) for x, y in zip(theirs_d, ours_d) for a, b in zip(x, y))
            print(f"{order:>5} {'discount':>8} {len(theirs_d):>9} {gap:>17.3g}   (lmplz prints 6 digits)")
    ok = worst <= args.tol
    print(f"largest sentence difference {worst:.3g} ({'within' if ok else 'OVER'} {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
