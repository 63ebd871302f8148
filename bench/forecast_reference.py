"""Reference forecasts from statsforecast for the tests in tests/forecast/test_simple.py.

statsforecast needs pandas < 3, so it lives in its own virtual environment (see bench/README.md):

    python3 -m venv /work/peerenvs/statsforecast
    /work/peerenvs/statsforecast/bin/pip install "pandas<3" statsforecast
    /work/peerenvs/statsforecast/bin/python bench/forecast_reference.py

It prints, for a few small series built here from a fixed formula (no random generator, so the
test rebuilds them exactly), each method's forecast as JSON; the test holds them as literals.
"""

from __future__ import annotations

import json
import math

import numpy as np


def series() -> dict[str, tuple[list[float], int]]:
    """The test's inputs: a seasonal monthly-like series, a trending yearly-like one, an
    intermittent one. Noise is a fixed sine of a large argument: reproducible everywhere."""
    def noise(t: int) -> float:
        return math.sin(12.9898 * t + 78.233) * 4.0

    seasonal = [round(200 + 1.5 * t + 30 * math.sin(2 * math.pi * t / 12) + noise(t), 2) for t in range(60)]
    trend = [round(50 + 3 * t + 2 * noise(t), 2) for t in range(24)]
    intermittent = [float(max(0, round(noise(t) * 1.5 - 2))) for t in range(40)]
    return {"seasonal": (seasonal, 12), "trend": (trend, 1), "intermittent": (intermittent, 1)}


def main() -> None:
    from statsforecast.models import (
        TSB,
        CrostonClassic,
        CrostonSBA,
        DynamicOptimizedTheta,
        DynamicTheta,
        Naive,
        OptimizedTheta,
        RandomWalkWithDrift,
        SeasonalNaive,
        Theta,
    )

    h = 8
    out: dict[str, dict[str, list[float]]] = {}
    for key, (y, m) in series().items():
        arr = np.asarray(y, dtype=np.float64)
        models = {"naive": Naive(), "snaive": SeasonalNaive(season_length=m), "drift": RandomWalkWithDrift(),
                  "theta": Theta(season_length=m), "otm": OptimizedTheta(season_length=m),
                  "dstm": DynamicTheta(season_length=m), "dotm": DynamicOptimizedTheta(season_length=m),
                  "croston": CrostonClassic(), "sba": CrostonSBA(), "tsb": TSB(alpha_d=0.1, alpha_p=0.1)}
        out[key] = {}
        for name, model in models.items():
            fc = model.forecast(y=arr, h=h, level=[95] if name in ("naive", "snaive", "drift") else None)
            out[key][name] = [round(float(v), 6) for v in fc["mean"]]
            if "hi-95" in fc:
                out[key][name + "_hi95"] = [round(float(v), 6) for v in fc["hi-95"]]
    print(json.dumps(out, indent=None))


if __name__ == "__main__":
    main()
