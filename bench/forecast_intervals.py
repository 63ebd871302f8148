"""Interval calibration on M3 monthly: seqlab's Theta with model-based, per-series conformal and
panel conformal intervals, beside statsforecast's AutoETS intervals, on the official test set.

    OMP_NUM_THREADS=1 python bench/forecast_intervals.py [--peer PYTHON] [--no-peer]

seqlab's rows are ``seqlab.build("theta", task=m3_monthly, intervals=...)`` fitted on the train
split (the official training part less its last 18 values, which calibrate the conformal
intervals) and evaluated on the test split, as ``seqlab train`` does. statsforecast (its own venv,
default /work/peerenvs/statsforecast/bin/python) runs AutoETS(season_length=12) with
level=[80, 95] on each series' official training part; its intervals are scored by the same code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def as_peer(path: str) -> None:
    from statsforecast.models import AutoETS

    data = json.loads(Path(path).read_text())
    out = []
    for s in data:
        fc = AutoETS(season_length=s["m"]).forecast(y=np.asarray(s["x"], dtype=np.float64), h=s["h"], level=[80, 95])
        out.append({k: np.asarray(fc[k]).tolist() for k in ("mean", "lo-80", "hi-80", "lo-95", "hi-95")})
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", default="/work/peerenvs/statsforecast/bin/python")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--as-peer", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.as_peer:
        as_peer(args.as_peer)
        return
    import seqlab
    from seqlab.metrics import forecasting as fm

    ds = seqlab.datasets.load("m3_monthly")
    keys = ("smape", "mase", "coverage_80", "coverage_95", "msis")
    print("| library | method | intervals | " + " | ".join(keys) + " | seconds |")
    print("|---" * (len(keys) + 4) + "|")
    for mode in ("model", "conformal", "panel"):
        start = time.perf_counter()
        metrics = seqlab.build("theta", task=ds, intervals=mode).fit(ds.train).evaluate(ds.test)
        cells = " | ".join(f"{metrics[k]:.3f}" for k in keys)
        print(f"| seqlab | theta | {mode} | {cells} | {time.perf_counter() - start:.1f} |", flush=True)
    peer = Path(args.peer)
    if args.no_peer or not peer.exists():
        return
    data = [{"x": ex["y"][:-18], "xx": ex["y"][-18:], "m": ex["m"], "h": 18} for ex in ds.test]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(data, fh)
    start = time.perf_counter()
    got = json.loads(subprocess.run([str(peer), __file__, "--as-peer", fh.name], capture_output=True, text=True,
                                    check=True).stdout)
    seconds = time.perf_counter() - start
    series = [fm.SeriesForecast(np.asarray(s["xx"]), np.asarray(g["mean"]), np.asarray(s["x"]), s["m"],
                                {80.0: (np.asarray(g["lo-80"]), np.asarray(g["hi-80"])),
                                 95.0: (np.asarray(g["lo-95"]), np.asarray(g["hi-95"]))}) for s, g in zip(data, got)]
    metrics = fm.panel_metrics(series)
    cells = " | ".join(f"{metrics[k]:.3f}" for k in keys)
    print(f"| statsforecast | AutoETS | model | {cells} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
