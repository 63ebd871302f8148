"""``seqlab compare`` and ``seqlab report``: argument parsing only (the work is in
:mod:`seqlab.compare.core` and :mod:`seqlab.compare.single`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "DEFAULT_BUDGET_STEPS"]

DEFAULT_BUDGET_STEPS = 1000  # the neural families' step cap when --budget-steps is not given (0: the recipe's own)


def cmd_compare(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.compare.core import compare, parse_sizes
    from seqlab.errors import SeqlabError

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise SeqlabError("--models needs at least one family, e.g. --models hmm,crf,lstm")
    out = Path(args.out or f"reports/{Path(args.dataset).stem}")
    res = compare(args.dataset, models, budget_steps=args.budget_steps or None, sizes=parse_sizes(args.sizes),
                  out=out, seed=args.seed, task=args.task, n_boot=args.n_boot, probe=not args.no_probe)
    _print_summary(res)
    print(f"[seqlab] report: {out / 'report.html'} (and report.md, results.json)", file=sys.stderr)
    return 0


def _print_summary(res: dict[str, Any]) -> None:
    from seqlab.compare.render import fmt
    from seqlab.formatting import format_table

    main = res["main_metric"]
    rows = [(r["family"], f"{fmt(r['metrics'][main])} [{fmt(r['ci'][main][0])}, {fmt(r['ci'][main][1])}]"
             if main in r["ci"] else fmt(r["metrics"].get(main)), fmt(r["p_value_vs_best"]), fmt(r["parameters"]),
             fmt(r["train_seconds"]), fmt(r["predict_examples_per_s"])) for r in res["families"]]
    print(format_table(rows, ("family", f"{main} [95% CI]", "p vs best", "parameters", "train s", "predict ex/s")))


def cmd_report(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.compare.single import report_run

    out = Path(args.out) if args.out else Path(args.run) / "report"
    report_run(args.run, out, split=args.split, n_boot=args.n_boot, worst=args.worst)
    print(f"[seqlab] report: {out / 'report.html'} (and report.md, results.json)", file=sys.stderr)
    return 0


def add_parsers(sub: Any, tasks: str) -> None:
    """Add the ``compare`` and ``report`` verbs to the CLI's sub-parsers."""
    c = sub.add_parser("compare", help="train several families on one dataset and write a report comparing them",
                       description="Each family with its defaults on the same splits; metrics with bootstrap 95% "
                                   "intervals and a paired test, costs, learning curves, breakdowns, sensitivity "
                                   "heatmaps and a recommendation, in report.md, report.html and results.json.")
    c.add_argument("dataset", help="bundled dataset name (see `seqlab datasets`) or a data file (with --task)")
    c.add_argument("--models", required=True, help="comma-separated families, e.g. hmm,crf,lstm,transformer")
    c.add_argument("--budget-steps", type=int, default=DEFAULT_BUDGET_STEPS,
                   help=f"optimizer-step cap for every neural family (default {DEFAULT_BUDGET_STEPS}; 0: the "
                        "recipe's own epochs and early stopping)")
    c.add_argument("--sizes", help="training sizes for a learning curve, e.g. 500,1000,all (refits each family)")
    c.add_argument("--task", help=f"task of a data file ({tasks})")
    c.add_argument("--out", help="report directory (default reports/DATASET)")
    c.add_argument("--seed", type=int, default=0, help="data split, resampling and subset seed")
    c.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    c.add_argument("--no-probe", action="store_true", help="skip the sensitivity heatmaps")
    c.set_defaults(fn=cmd_compare)
    r = sub.add_parser("report", help="render one run (a `seqlab train` directory): curves, metrics, errors",
                       description="Loss, metric, learning-rate and gradient-norm curves from the run's metrics "
                                   "log; test metrics with 95% intervals; a confusion matrix or per-label table; "
                                   "the worst-predicted examples.")
    r.add_argument("run", help="run directory written by `seqlab train`")
    r.add_argument("--out", help="report directory (default RUN/report)")
    r.add_argument("--split", choices=("train", "valid", "test"), default="test", help="the split scored (default test)")
    r.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    r.add_argument("--worst", type=int, default=10, help="how many worst-predicted examples to list (default 10)")
    r.set_defaults(fn=cmd_report)
