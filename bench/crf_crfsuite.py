"""seqlab's feature CRF vs CRFsuite (sklearn-crfsuite) on WNUT-16: training time and span F1.

Both libraries get exactly the same feature strings per token (seqlab's templates, turned into
sklearn-crfsuite's list-of-dicts input by ``token_features_ref``), the same c1 / c2 and the same
iteration cap, and train the same model: CRFsuite with ``all_possible_states`` and
``all_possible_transitions`` (a weight for every attribute x label and label x label pair),
seqlab with ``boundary=False`` (CRFsuite has no start/end scores). Both run L-BFGS with
CRFsuite's defaults (OWL-QN when c1 > 0). Runs are interleaved (seqlab, CRFsuite, CRFsuite,
seqlab, ...) in one process; the script prints every time, the best and median of each, their
ratio, the final objectives, iterations and test F1 (seqeval strict, IOB2).

Times: "fit" is the whole ``fit`` call from token lists (seqlab: feature extraction and
indexing included) or from feature dicts (sklearn-crfsuite: its conversion to CRFsuite's
format included); "optimiser" is seqlab's fit minus its feature extraction.

    /tmp/venv/bin/python bench/crf_crfsuite.py --iterations 100 --repeats 3

``--scipy`` (pure L2, c1 = 0) also times seqlab's own L-BFGS against scipy's L-BFGS-B on the
very same CRF objective and iteration cap, to decide which one serves c1 = 0.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import scipy.optimize
import sklearn_crfsuite

import seqlab
from seqlab.metrics.spans import span_scores
from seqlab.models.classical.crf import (
    ChainData,
    CRFConfig,
    CRFModel,
    CRFParams,
    crf_objective,
    single_threaded,
)
from seqlab.models.classical.features import FeatureExtractor, token_features_ref
from seqlab.models.classical.optim import minimize_lbfgs
from seqlab.tasks import make_task


def _dicts(split: list[dict[str, Any]], cfg: CRFConfig) -> list[list[dict[str, float]]]:
    fc = cfg.features()
    return [[dict(f) for f in token_features_ref(ex["tokens"], fc)] for ex in split]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--c1", type=float, default=0.1)
    ap.add_argument("--c2", type=float, default=0.01)
    ap.add_argument("--scipy", action="store_true", help="c1 = 0: also time scipy's L-BFGS-B on the same objective")
    args = ap.parse_args()
    if args.scipy:
        _scipy_vs_ours(args)
        return

    ds = seqlab.datasets.load("wnut16")
    cfg = CRFConfig(c1=args.c1, c2=args.c2, max_iterations=args.iterations, boundary=False)
    x_train, y_train = _dicts(ds.train, cfg), [ex["tags"] for ex in ds.train]
    x_test, gold = _dicts(ds.test, cfg), [ex["tags"] for ex in ds.test]
    n_tok = sum(len(ex["tokens"]) for ex in ds.train)
    print(f"WNUT-16 train: {len(ds.train)} sentences, {n_tok} tokens; c1={args.c1} c2={args.c2} "
          f"max_iterations={args.iterations}")

    t_ours: list[float] = []
    t_extract: list[float] = []
    t_peer: list[float] = []
    ours: CRFModel | None = None
    peer: Any = None
    for r in range(args.repeats):
        for who in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            if who == "ours":
                t0 = time.perf_counter()
                FeatureExtractor(cfg.features()).fit([ex["tokens"] for ex in ds.train]).transform(
                    [ex["tokens"] for ex in ds.train])
                t_extract.append(time.perf_counter() - t0)
                ours = CRFModel("crf", make_task("labeling", {"scheme": "IOB2"}), cfg)
                t0 = time.perf_counter()
                ours.fit(ds.train)
                t_ours.append(time.perf_counter() - t0)
            else:
                peer = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=args.c1, c2=args.c2, max_iterations=args.iterations,
                                            all_possible_states=True, all_possible_transitions=True)
                t0 = time.perf_counter()
                peer.fit(x_train, y_train)
                t_peer.append(time.perf_counter() - t0)
        print(f"repeat {r}: seqlab {t_ours[-1]:.2f}s (extraction {t_extract[-1]:.2f}s)  crfsuite {t_peer[-1]:.2f}s")
    assert ours is not None and ours.result_ is not None and peer is not None
    opt = [a - b for a, b in zip(t_ours, t_extract)]
    last = peer.training_log_.last_iteration
    f_ours = span_scores(ours.predict([ex["tokens"] for ex in ds.test]), gold)["f1"]
    f_peer = span_scores(peer.predict(x_test), gold)["f1"]
    print()
    print("| | seqlab | CRFsuite | ratio seqlab/CRFsuite |")
    print("|---|---|---|---|")
    print(f"| fit time, best (s) | {min(t_ours):.2f} | {min(t_peer):.2f} | {min(t_ours) / min(t_peer):.3f} |")
    print(f"| fit time, median (s) | {statistics.median(t_ours):.2f} | {statistics.median(t_peer):.2f} | "
          f"{statistics.median(t_ours) / statistics.median(t_peer):.3f} |")
    print(f"| optimiser only, best (s) | {min(opt):.2f} | | {min(opt) / min(t_peer):.3f} |")
    print(f"| iterations | {ours.n_iterations_} | {last['num']} | |")
    print(f"| final objective | {ours.result_.history[-1]['objective']:.6f} | {last['loss']:.6f} | |")
    print(f"| test span F1 (strict) | {100 * f_ours:.2f} | {100 * f_peer:.2f} | diff {100 * (f_ours - f_peer):+.2f} pts |")


def _scipy_vs_ours(args: argparse.Namespace) -> None:
    ds = seqlab.datasets.load("wnut16")
    cfg = CRFConfig(c1=0.0, c2=args.c2, boundary=False)
    toks = [ex["tokens"] for ex in ds.train]
    ext = FeatureExtractor(cfg.features()).fit(toks)
    tags = sorted({t for ex in ds.train for t in ex["tags"]})
    stoi = {t: i for i, t in enumerate(tags)}
    gold = np.array([stoi[t] for ex in ds.train for t in ex["tags"]])
    data = ChainData(ext.transform(toks), gold, cfg.chunk_size)
    N, F = len(tags), ext.n_features
    observed = data.observed(N, False)
    theta0 = np.zeros(CRFParams.size(F, N, False))

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return crf_objective(theta, data, observed, N, False, args.c2)

    print(f"pure L2 (c2={args.c2}), {args.iterations} iterations, {len(theta0)} parameters")
    t_ours: list[float] = []
    t_scipy: list[float] = []
    with single_threaded():
        for r in range(args.repeats):
            for who in (("ours", "scipy") if r % 2 == 0 else ("scipy", "ours")):
                t0 = time.perf_counter()
                if who == "ours":
                    res = minimize_lbfgs(fg, theta0, max_iterations=args.iterations, epsilon=0.0, delta=0.0)
                    t_ours.append(time.perf_counter() - t0)
                    f_ours, n_ours, e_ours = res.fun, res.n_iterations, res.n_evaluations
                else:
                    ref = scipy.optimize.minimize(fg, theta0, jac=True, method="L-BFGS-B",
                                                  options={"maxiter": args.iterations, "maxcor": 6, "gtol": 0.0, "ftol": 0.0})
                    t_scipy.append(time.perf_counter() - t0)
                    f_scipy, n_scipy, e_scipy = float(ref.fun), int(ref.nit), int(ref.nfev)
            print(f"repeat {r}: seqlab L-BFGS {t_ours[-1]:.2f}s  scipy L-BFGS-B {t_scipy[-1]:.2f}s")
    print(f"seqlab: objective {f_ours:.6f} after {n_ours} iterations ({e_ours} evaluations), best {min(t_ours):.2f}s")
    print(f"scipy:  objective {f_scipy:.6f} after {n_scipy} iterations ({e_scipy} evaluations), best {min(t_scipy):.2f}s")
    print(f"ratio seqlab/scipy (best): {min(t_ours) / min(t_scipy):.3f}")


if __name__ == "__main__":
    main()
