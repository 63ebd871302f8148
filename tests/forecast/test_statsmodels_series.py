"""statsmodels' bundled series load offline as forecasting datasets: values equal to statsmodels'
own frames, co2's missing weeks handled only under the missing= policy, and macrodata's past-only
covariates refused by a model that cannot use them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("statsmodels")

import seqlab  # noqa: E402
from seqlab.data.datasets import load  # noqa: E402
from seqlab.data.forecasting import read_co2, read_statsmodels  # noqa: E402
from seqlab.errors import ConfigError, DataError  # noqa: E402


def test_each_series_is_statsmodels_frame() -> None:
    from statsmodels.datasets import elnino, macrodata, nile, sunspots

    got = {name: read_statsmodels(name)[0] for name in ("sunspots", "nile", "elnino", "macrodata")}
    np.testing.assert_array_equal(got["sunspots"]["y"], sunspots.load_pandas().data["SUNACTIVITY"])
    np.testing.assert_array_equal(got["nile"]["y"], nile.load_pandas().data["volume"])
    table = elnino.load_pandas().data
    assert len(got["elnino"]["y"]) == 12 * len(table) == 732
    assert got["elnino"]["y"][13] == table["FEB"][1]  # row by row: February of the second year
    macro = macrodata.load_pandas().data
    np.testing.assert_array_equal(got["macrodata"]["y"], macro["realgdp"])
    assert sorted(got["macrodata"]["past"]) == sorted(set(macro.columns) - {"year", "quarter", "realgdp"})
    assert got["macrodata"]["past"]["unemp"] == macro["unemp"].tolist()
    assert [got[n]["m"] for n in ("sunspots", "nile", "elnino", "macrodata")] == [1, 1, 12, 4]
    with pytest.raises(ConfigError, match="unknown statsmodels series 'nil'"):
        read_statsmodels("nil")


def test_datasets_take_the_competition_split_and_fit() -> None:
    ds = load("nile")
    assert [len(ex["y"]) for ex in (ds.train[0], ds.valid[0], ds.test[0])] == [80, 90, 100]
    model = seqlab.build("naive", task=ds).fit(ds.train)
    assert model.predict([ds.valid[0]["y"]]) == [[ds.valid[0]["y"][-1]] * 10]
    macro = load("macrodata")
    with pytest.raises(ConfigError, match="past"):  # a covariate the model cannot use is an error
        seqlab.build("naive", task=macro).fit(macro.train)


def test_co2_gaps_need_the_missing_policy() -> None:
    raw = read_co2()
    assert np.isnan(raw[0]["y"]).sum() > 0  # the missing weeks
    with pytest.raises(DataError, match="missing='interpolate'"):
        seqlab.build("naive", task="forecasting", task_options={"horizon": 52, "season_length": 52}).fit(raw)
    ds = load("co2")  # the catalog entry chooses interpolation
    model = seqlab.build("snaive", task=ds).fit(ds.train)
    assert np.isfinite(model.histories_[0]).all()
