"""``seqlab probe forecast-sensitivity | fan-chart | horizon-errors | components RUN ...``: the
forecasting probes and plots on a saved forecasting run (see :data:`seqlab.probes.commands.COMMANDS`).

Each reads the run's own dataset (bundled or its data file, split as in training) unless
``--dataset`` names another; ``--split`` picks the examples (default ``test``: each series'
history without its last h values, which are the actuals).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import SeqlabError

__all__ = ["COMMANDS"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `seqlab train` with a forecasting model")
    p.add_argument("--dataset", help="bundled dataset or data file (default: the run's own)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="which examples (default test)")
    p.add_argument("--seed", type=int, default=0)


def _load(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from seqlab.config import to_dict
    from seqlab.data import datasets
    from seqlab.models.registry import load

    model = load(Path(args.run))
    if not hasattr(model.task, "h"):
        raise SeqlabError(f"{args.run}: these probes are for forecasting runs; this run's task is {model.task.name!r}")
    ns = argparse.Namespace(dataset=args.dataset, seed=args.seed, valid=None, test=None, format=None)
    reader = None
    if not args.dataset:
        recorded = datasets.recorded_data(args.run)
        reader = recorded.pop("reader")
        vars(ns).update(recorded)
    cfg = getattr(model.task, "config", None)
    task_options = to_dict(cfg) if dataclasses.is_dataclass(cfg) else None
    if Path(ns.dataset).exists():  # a data file, read and split as in training
        ds = datasets.load_files(model.task.name, ns.dataset, ns.valid, ns.test, ns.format, seed=ns.seed,
                                 reader_options=reader, task_options=task_options)
    else:
        ds = datasets.load(ns.dataset, seed=ns.seed, task=model.task.name)
    examples = list(getattr(ds, args.split))
    if not examples:
        raise SeqlabError(f"the {args.split} split of {ns.dataset} holds no examples")
    return model, examples


def _pick(model: Any, examples: list[Any], wanted: str | None) -> tuple[Any, np.ndarray]:
    """(the history as a record, the actuals) of the series named ``wanted`` (default the first)."""
    for i, ex in enumerate(examples):
        hist, target = model.task.split_series(ex, i)
        if wanted is None or hist.id == wanted:
            return {"id": hist.id, "y": hist.y.tolist(), "m": hist.m}, target
    ids = [model.task.series(ex, i).id for i, ex in enumerate(examples[:5])]
    raise SeqlabError(f"no series {wanted!r} in these {len(examples)} examples (the first: {', '.join(ids)})")


def add_sensitivity_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--series", help="the series id (default: the first)")
    p.add_argument("--max-lag", type=int, default=None, help="probe the last L values only (default: all)")
    p.add_argument("--delta", type=float, default=None, help="size of the change (default: 0.1 x the std of the differences)")
    p.add_argument("--refit", action="store_true", help="refit a local model to each edited series (default: estimates fixed)")
    p.add_argument("--out", metavar="PNG", help="save the heatmap (forecast step by lag)")


def run_sensitivity(args: argparse.Namespace) -> int:
    """Change one past value of a series and see how each forecast step moves: the lags a model uses."""
    from seqlab.forecast.probes import forecast_sensitivity, save_sensitivity_heatmap

    model, examples = _load(args)
    series, _ = _pick(model, examples, args.series)
    res = forecast_sensitivity(model, series, max_lag=args.max_lag, delta=args.delta, refit=args.refit)
    print(res)
    if args.out:
        print(f"[seqlab] figure: {save_sensitivity_heatmap(res, args.out)}", file=sys.stderr)
    return 0


def _one_series_figure(p: argparse.ArgumentParser, what: str) -> None:
    """The arguments of a command that draws one series of a run: ``--series`` and ``--out``."""
    _common(p)
    p.add_argument("--series", help="the series id (default: the first)")
    p.add_argument("--out", metavar="PNG", required=True, help=f"where to save the {what}")


def add_fan_args(p: argparse.ArgumentParser) -> None:
    _one_series_figure(p, "chart")


def run_fan(args: argparse.Namespace) -> int:
    """A fan chart of one series: history, forecast, its intervals, and the actual values."""
    from seqlab.forecast.backtest import save_fan_chart

    model, examples = _load(args)
    series, actual = _pick(model, examples, args.series)
    fc = model.forecast([series])[0]
    print(f"series {series['id']}: forecast {np.round(fc.mean, 4).tolist()}")
    for level, (lo, hi) in sorted(fc.intervals.items()):
        print(f"  {level:g}%: [{', '.join(f'{a:.4g}..{b:.4g}' for a, b in zip(lo, hi))}]")
    path = save_fan_chart(series["y"], fc, args.out, actual=actual.tolist(), title=f"{model.family}: {series['id']}")
    print(f"[seqlab] figure: {path}", file=sys.stderr)
    return 0


def add_horizon_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--metric", default="smape", help="the metric to plot (default smape)")
    p.add_argument("--out", metavar="PNG", help="save the line plot")


def run_horizon(args: argparse.Namespace) -> int:
    """Error by forecast step over a split: each metric at t+1..t+h."""
    from seqlab.forecast.backtest import save_error_by_horizon
    from seqlab.formatting import format_table
    from seqlab.metrics.forecasting import SeriesForecast, per_horizon

    model, examples = _load(args)
    pairs = [model.task.split_series(ex, i) for i, ex in enumerate(examples)]
    fcs = model.forecast([{"id": hist.id, "y": hist.y.tolist(), "m": hist.m} for hist, _ in pairs])
    steps = per_horizon([SeriesForecast(t, fc.mean, hist.y, hist.m, fc.intervals) for (hist, t), fc in zip(pairs, fcs)])
    keys = [k for k in ("smape", "mase", "mae", "rmse", "coverage_80", "coverage_95") if k in steps[0]]
    print(format_table([(f"t+{k}", *(f"{row[key]:.4g}" for key in keys)) for k, row in enumerate(steps, 1)], ("step", *keys)))
    if args.out:
        path = save_error_by_horizon({model.family: steps}, args.out, metric=args.metric)
        print(f"[seqlab] figure: {path}", file=sys.stderr)
    return 0


def add_components_args(p: argparse.ArgumentParser) -> None:
    _one_series_figure(p, "components plot")


def run_components(args: argparse.Namespace) -> int:
    """A structural run's smoothed components of one series: observed, level, trend, season, irregular."""
    from seqlab.forecast.conformal import Conformal
    from seqlab.forecast.structural import Structural, save_components_plot

    model, examples = _load(args)
    method: Any = getattr(model, "method", None)
    wrapped = isinstance(method, Conformal)
    base = method.method if wrapped else method
    if not isinstance(base, Structural):
        raise SeqlabError(f"{args.run}: components are for a structural run (seqlab train --model structural); "
                          f"this run's model is {model.family!r}")
    record, _ = _pick(model, examples, args.series)
    hist = model.task.series(record, 0)
    y = np.asarray(hist.y, dtype=np.float64)
    params = model.stored_params(hist)  # the run's own fit of this history, if it is the fitted one
    if params is not None:
        fit = base.from_params(y, hist.m, params["base"] if wrapped else params)
    else:
        fit = base.fit(y, hist.m)
    comps = fit.components()
    names = fit.params()["names"]
    print(f"series {hist.id}: {len(y)} values, m = {hist.m}; variances "
          + ", ".join(f"{n} {v:.4g}" for n, v in zip(names, fit.variances)))
    for name, values in comps.items():
        print(f"  {name}: last {np.round(values[-min(len(values), 4):], 4).tolist()}")
    path = save_components_plot(y, comps, args.out, title=f"{model.family}: {hist.id}")
    print(f"[seqlab] figure: {path}", file=sys.stderr)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "forecast-sensitivity": (add_sensitivity_args, run_sensitivity),
    "fan-chart": (add_fan_args, run_fan),
    "horizon-errors": (add_horizon_args, run_horizon),
    "components": (add_components_args, run_components),
}
