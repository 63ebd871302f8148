"""Learning curves of the defaults: the metric against training size, one line per family, with
every family at its defaults (neural families with their data-dependent recipe, nothing set).

Issue 18's targets: on WNUT-16 (500, 1,000 sentences and all), the default BiLSTM tagger reaches
at least the HMM's span F1 and 0.95 of the feature CRF's; on `tweets` (2,000, 4,000, 8,000
examples and all) the default neural classifier reaches at least the bag-of-n-grams baseline.
Subsets are the first N of one seeded shuffle of the training split; valid and test are whole.

    python bench/learning_curves.py                 # both corpora, every size
    python bench/learning_curves.py --corpus wnut16 --sizes 500,1000
    python bench/learning_curves.py --from a.jsonl b.jsonl   # tables and plots from saved results

Prints one table per corpus (with the target ratios) and writes bench/learning_curves_<corpus>.png.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import seqlab
from seqlab.formatting import format_table
from seqlab.models.registry import FAMILIES
from seqlab.plots import save_line_plot

CORPORA: dict[str, dict[str, Any]] = {
    "wnut16": {"metric": "f1", "sizes": (500, 1000, 0), "families": ("hmm", "crf", "lstm"),
               "targets": [("lstm", "hmm", 1.0), ("lstm", "crf", 0.95)]},
    "tweets": {"metric": "accuracy", "sizes": (2000, 4000, 8000, 0), "families": ("linear", "gru", "transformer"),
               "targets": [("gru", "linear", 1.0), ("transformer", "linear", 1.0)]},
}


def run_one(corpus: str, family: str, size: int, seed: int) -> dict[str, Any]:
    ds = seqlab.datasets.load(corpus)
    train = list(ds.train)
    random.Random(seed).shuffle(train)
    if size:
        train = train[:size]
    neural = FAMILIES[family].kind == "neural"
    model: Any = seqlab.build(family, task=ds, train={"progress": False, "seed": seed} if neural else None)
    t0 = time.perf_counter()
    model.fit(train, valid=ds.valid)
    seconds = time.perf_counter() - t0
    metrics = model.evaluate(ds.test)
    return {"corpus": corpus, "family": family, "size": len(train), "test": metrics[CORPORA[corpus]["metric"]],
            "seconds": seconds, "steps": getattr(getattr(model, "result_", None), "steps", None),
            "recipe": getattr(model, "recipe_", None)}


def report(corpus: str, rows: dict[tuple[str, int], dict[str, Any]], sizes: list[int], fams: list[str]) -> None:
    """Print the corpus's table (with the target ratios) and write its plot."""
    spec = CORPORA[corpus]
    table = []
    for size in sizes:
        line = [str(rows[(fams[0], size)]["size"])] + [f"{rows[(f, size)]['test']:.4f}" for f in fams]
        for a, b, need in spec["targets"]:
            if (a, size) in rows and (b, size) in rows and rows[(b, size)]["test"] > 0:
                ratio = rows[(a, size)]["test"] / rows[(b, size)]["test"]
                line.append(f"{ratio:.3f} ({'met' if ratio >= need else 'missed'}, >= {need:g})")
        table.append(tuple(line))
    header = ("train size", *fams, *[f"{a}/{b}" for a, b, _ in spec["targets"] if a in fams and b in fams])
    print(f"\n{corpus}: test {spec['metric']}, defaults\n" + format_table(table, header))
    curves = {f: ([rows[(f, s)]["size"] for s in sizes], [rows[(f, s)]["test"] for s in sizes]) for f in fams}
    path = save_line_plot(curves, Path(f"bench/learning_curves_{corpus}.png"), xlabel="training examples",
                          ylabel=f"test {spec['metric']}", logx=True, title=f"{corpus}: defaults, by training size")
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    ap.add_argument("--sizes", help="comma-separated training sizes (0 = all); default: the corpus's")
    ap.add_argument("--families", help="comma-separated families; default: the corpus's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/learning_curves.jsonl", help="append each result here (JSON lines)")
    ap.add_argument("--from", dest="from_files", nargs="+", metavar="JSONL",
                    help="train nothing: print the tables and draw the plots from these results files "
                         "(e.g. one run per size in parallel, then --from their files)")
    args = ap.parse_args()
    saved: dict[tuple[str, str, int], dict[str, Any]] = {}
    for name in args.from_files or ():
        for line in Path(name).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                saved[(r["corpus"], r["family"], r["size"])] = r
    for corpus in (CORPORA if args.corpus == "all" else [args.corpus]):
        spec = CORPORA[corpus]
        fams = [f for f in (args.families.split(",") if args.families else spec["families"]) if f in FAMILIES]
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        if args.from_files:
            sizes = sorted({size for (c, _, size) in saved if c == corpus})
            if not sizes:
                continue
            fams = [f for f in fams if all((corpus, f, s) in saved for s in sizes)]
            rows = {(f, s): saved[(corpus, f, s)] for f in fams for s in sizes}
        else:
            sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(spec["sizes"])
            for size in sizes:
                for fam in fams:
                    r = run_one(corpus, fam, size, args.seed)
                    rows[(fam, size)] = r
                    print(json.dumps({k: v for k, v in r.items() if k != "recipe"}), flush=True)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(r) + "\n")
        report(corpus, rows, sizes, fams)


if __name__ == "__main__":
    main()
