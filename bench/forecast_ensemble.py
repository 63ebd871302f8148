"""M3 (all 3,003 series): seqlab's statistical median ensemble and its members (issue 16, target 4).

    OMP_NUM_THREADS=1 .venv/bin/python bench/forecast_ensemble.py \\
        --methods ets,arima,theta,dotm,ensemble --members ets,arima,theta,dotm

Each member's forecasts are cached per frequency and chunk of 50 series under ``--cache``
(default ``runs/forecast_m3_cache``, git-ignored), so the ensemble combines the members' stored
forecasts instead of refitting them, and a run that stops after ``--max-seconds`` (checked between
chunks; default 540, so that one command stays under 10 minutes) resumes when run again. Exit
status 3 means "not finished yet: run the same command again". The engine is
:mod:`seqlab.forecast.m3bench`, the same as ``seqlab benchmark forecasting m3``.
"""

from __future__ import annotations

import argparse
import sys

from seqlab.forecast.m3bench import DEFAULT_MEMBERS, KINDS, format_table, run_benchmark


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="ets,arima,theta,dotm,ensemble")
    ap.add_argument("--members", default=",".join(DEFAULT_MEMBERS))
    ap.add_argument("--freq", default=",".join(KINDS))
    ap.add_argument("--limit", type=int, default=0, help="first N series of each frequency (0 = all)")
    ap.add_argument("--cache", default="runs/forecast_m3_cache")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--max-seconds", type=float, default=540.0)
    args = ap.parse_args()
    kinds = args.freq.split(",")
    rows = run_benchmark(args.methods.split(","), kinds, args.limit, args.members.split(","), args.cache,
                         args.chunk, args.max_seconds, log=lambda s: print("#", s, file=sys.stderr, flush=True))
    if rows is None:
        print("# not finished within --max-seconds; the finished chunks are cached: run the same command again",
              file=sys.stderr)
        return 3
    print(format_table(rows, kinds, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
