"""seqlab's bag-of-n-grams linear classifier vs scikit-learn's LogisticRegression on `tweets`.

Part 1 (``--part parity``): the same n-gram features (seqlab's featurizer, defaults: word 1-2,
character 2-5, binary, L2-normalised rows) for both, the same L2 objective at one C; seqlab's
L-BFGS (intercept profiled out) against scikit-learn's lbfgs. Prints test accuracy, macro-F1,
fit seconds (features excluded), the objective ``C * sum NLL + ||W||^2 / 2`` each reached, and
the ratio of fit times. Both run on one thread (the script sets OMP/MKL/torch to 1).

Part 3 (``--part ngram``): the ngram family's class-conditional LMs (orders 1-3, Kneser-Ney,
word tokens) on the same subsets, for reference.

Part 2 (``--part curve``): the learning-curve baseline of issue 18: the `linear` family with
its defaults (C chosen on the validation split) trained on seeded random subsets of 2,000,
4,000 and 8,000 training tweets and on the full training split; test accuracy and macro-F1.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/linear_sklearn.py --part parity --n 8000
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/linear_sklearn.py --part curve [--set nb=true]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import seqlab  # noqa: E402
from seqlab.metrics.classification import accuracy, macro_f1  # noqa: E402
from seqlab.models.classical.linear import LogisticProblem, softmax_rows  # noqa: E402
from seqlab.models.classical.optim import minimize_lbfgs  # noqa: E402


def subset(train: list[Any], n: int | None, seed: int) -> list[Any]:
    """A seeded random subset (the split is stored sorted by label, so never take a prefix)."""
    rows = list(train)
    random.Random(seed).shuffle(rows)
    return rows if n is None else rows[:n]


def objective(X: Any, y: np.ndarray, W: np.ndarray, b: np.ndarray, C: float) -> float:
    Z = np.asarray(X @ W) + b
    _, lse = softmax_rows(Z)
    return C * float(lse.sum() - Z[np.arange(len(y)), y].sum()) + 0.5 * float((W * W).sum())


def parity(n: int | None, C: float, seed: int) -> None:
    from sklearn.linear_model import LogisticRegression

    ds = seqlab.datasets.load("tweets")
    train = subset(ds.train, n, seed)
    m: Any = seqlab.build("linear", task=ds, C=C)
    m.task.fit(train)
    from seqlab.models.classical.linear_features import NgramFeaturizer

    t0 = time.perf_counter()
    m.featurizer_ = NgramFeaturizer(m.config.features()).fit(m._docs([ex["text"] for ex in train]))
    X, y = m._features(train), m._labels(train)
    Xt, yt = m._features(ds.test), m._labels(ds.test)
    feat_s = time.perf_counter() - t0
    K = len(m.classes)
    print(f"tweets: {len(train)} training / {len(ds.test)} test examples, {X.shape[1]} features, "
          f"{X.nnz} non-zeros; features {feat_s:.1f} s (shared, not timed below); C = {C}")
    rows = []
    t0 = time.perf_counter()
    prob = LogisticProblem(X, y, K, 1.0 / C)
    res = minimize_lbfgs(prob, np.zeros(X.shape[1] * K), m=10, max_iterations=1000, epsilon=1e-5, past=10, delta=1e-6)
    prob(res.x)
    W, b = res.x.reshape(-1, K), prob.b
    rows.append(("seqlab L-BFGS", time.perf_counter() - t0, W, b, f"{res.n_iterations} it, {res.status}"))
    for tol, max_iter in ((1e-4, 100), (1e-6, 2000)):
        t0 = time.perf_counter()
        sk = LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=max_iter).fit(X, y)
        rows.append((f"sklearn lbfgs tol={tol:g}", time.perf_counter() - t0, sk.coef_.T, sk.intercept_ - sk.intercept_.mean(),
                     f"{int(sk.n_iter_[0])} it"))
    base = rows[0][1]
    print("| fit | seconds | ratio to seqlab | objective | test accuracy | test macro-F1 | iterations |")
    print("|---|---|---|---|---|---|---|")
    for name, secs, W_, b_, note in rows:
        pred = softmax_rows(np.asarray(Xt @ W_) + b_)[0].argmax(1)
        labels = [m.classes[j] for j in pred]
        refs = [ex["label"] for ex in ds.test]
        print(f"| {name} | {secs:.1f} | {secs / base:.2f} | {objective(X, y, W_, b_, C):.4f} | "
              f"{accuracy(labels, refs):.4f} | {macro_f1(labels, refs):.4f} | {note} |")
    print(f"max |W_seqlab - W_sklearn(tol=1e-6)| = {np.abs(rows[0][2] - rows[2][2]).max():.2e}")
    del yt


def curve(sizes: list[int | None], seed: int, settings: dict[str, str]) -> None:
    ds = seqlab.datasets.load("tweets")
    if settings:
        print(f"linear settings: {settings}")
    print("| training tweets | test accuracy | test macro-F1 | C chosen on valid | fit seconds (features included) |")
    print("|---|---|---|---|---|")
    for n in sizes:
        train = subset(ds.train, n, seed)
        t0 = time.perf_counter()
        m: Any = seqlab.build("linear", task=ds, **settings).fit(train, valid=ds.valid)
        secs = time.perf_counter() - t0
        r = m.evaluate(ds.test)
        print(f"| {len(train)} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {m.C_:g} | {secs:.0f} |", flush=True)


def ngram(sizes: list[int | None], seed: int) -> None:
    """The ngram family's classifier (one word n-gram LM per class, Kneser-Ney) beside the curve."""
    ds = seqlab.datasets.load("tweets")
    print("| training tweets | order | test accuracy | test macro-F1 | fit seconds |")
    print("|---|---|---|---|---|")
    for n in sizes:
        train = subset(ds.train, n, seed)
        for order in (1, 2, 3):
            t0 = time.perf_counter()
            m: Any = seqlab.build("ngram", task=ds, order=order).fit(train)
            secs = time.perf_counter() - t0
            r = m.evaluate(ds.test)
            print(f"| {len(train)} | {order} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {secs:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["parity", "curve", "ngram"], default="parity")
    ap.add_argument("--n", type=int, default=8000, help="parity: training examples (0 = all)")
    ap.add_argument("--C", type=float, default=3.0)
    ap.add_argument("--sizes", default="2000,4000,8000,all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="curve: a linear-family setting (e.g. nb=true, char_ngrams=), repeatable")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.part == "parity":
        parity(a.n or None, a.C, a.seed)
    elif a.part == "ngram":
        ngram([None if s == "all" else int(s) for s in a.sizes.split(",")], a.seed)
    else:
        settings = dict(kv.split("=", 1) for kv in a.set)
        curve([None if s == "all" else int(s) for s in a.sizes.split(",")], a.seed, settings)


if __name__ == "__main__":
    main()
