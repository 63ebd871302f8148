"""Issue 16, target 9: every classical forecaster in the registry forecasts bit-identically on a
second fit, and after save -> load (points and intervals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import seqlab
from seqlab.forecast.methods import method_names
from seqlab.tasks import TASKS


def _panel() -> tuple[list, list, dict]:
    train, inputs, opts = TASKS["forecasting"][0].toy_examples(0)
    return train[:3], inputs[:2], opts  # three series keep ARIMA and the optimised ones quick


def _bytes(fcs: list) -> list[bytes]:
    out = []
    for fc in fcs:
        out.append(fc.mean.tobytes())
        for lv in sorted(fc.intervals):
            out += [fc.intervals[lv][0].tobytes(), fc.intervals[lv][1].tobytes()]
    return out


@pytest.mark.parametrize("name", method_names())
def test_refit_and_reload_forecast_bit_identically(name: str, tmp_path: Path) -> None:
    train, inputs, opts = _panel()
    first = seqlab.build(name, task="forecasting", task_options=opts).fit(train)
    second = seqlab.build(name, task="forecasting", task_options=opts).fit(train)
    fc1, fc2 = first.forecast(train), second.forecast(train)
    assert all(np.isfinite(fc.mean).all() and fc.intervals for fc in fc1)  # intervals for every method ("auto")
    assert _bytes(fc1) == _bytes(fc2)
    new1, new2 = first.forecast(inputs), second.forecast(inputs)  # histories not fitted: a fresh fit each
    assert _bytes(new1) == _bytes(new2)
    first.save(tmp_path / "m")
    again = seqlab.load(tmp_path / "m")
    assert _bytes(again.forecast(train)) == _bytes(fc1)
    assert _bytes(again.forecast(inputs)) == _bytes(new1)
    assert again.predict(inputs) == first.predict(inputs)
