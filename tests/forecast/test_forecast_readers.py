"""The long format (CSV and pandas), JSONL, the user-file machinery's competition split and the
CLI on a forecasting file: errors name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.data.datasets import load_files
from seqlab.data.forecasting import read_dataframe, read_long_csv
from seqlab.errors import DataError


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def _csv(tmp_path: Path) -> Path:
    rows = ["unique_id,ds,y,promo,store"]
    for sid, slope in (("b", 2.0), ("a", 1.0)):
        for t in reversed(range(12)):  # out of order on purpose: the reader sorts by ds
            rows.append(f"{sid},{t},{10 + slope * t + (t % 3)},{t % 2},{7 if sid == 'a' else 9}")
    return _write(tmp_path / "s.csv", rows)


def test_long_csv_groups_sorts_and_assigns_roles(tmp_path: Path) -> None:
    out = read_long_csv(_csv(tmp_path), future="promo", static=["store"], season_length=3)
    assert [ex["id"] for ex in out] == ["b", "a"]
    a = out[1]
    assert a["y"] == [10 + 1.0 * t + (t % 3) for t in range(12)]
    assert a["future"] == {"promo": [float(t % 2) for t in range(12)]} and a["static"] == {"store": 7.0}
    assert a["m"] == 3 and a["start"] == 0


@pytest.mark.parametrize("rows,match", [
    (["unique_id,ds,y", "a,0,1", "a,2,3"], "line 3: expected consecutive integer time steps"),
    (["unique_id,ds,y", "a,0,1", "a,0,3"], "line 3: expected one row per time step"),
    (["unique_id,ds,y", "a,0,1", "a,1,x"], "line 3: expected a number in column 'y'"),
    (["unique_id,ds,y,extra", "a,0,1,2"], "line 1: expected every covariate column given a role"),
    (["id,ds,y", "a,0,1"], "line 1: expected columns"),
])
def test_long_csv_errors_name_the_line(tmp_path: Path, rows: list[str], match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_long_csv(_write(tmp_path / "bad.csv", rows))


def test_an_empty_value_is_missing_and_the_policy_decides(tmp_path: Path) -> None:
    import seqlab

    rows = ["unique_id,ds,y"] + [f"a,{t},{'' if t == 4 else t}" for t in range(12)]
    ds = load_files("forecasting", _write(tmp_path / "gap.csv", rows), task_options={"horizon": 2})
    with pytest.raises(DataError, match="missing='interpolate'"):
        seqlab.build("naive", task=ds, task_options={"horizon": 2}).fit(ds.train)
    model = seqlab.build("naive", task=ds, task_options={"horizon": 2, "missing": "interpolate"}).fit(ds.train)
    assert model.histories_[0][4] == 4.0


def test_dataframe_reads_as_the_csv(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    path = _csv(tmp_path)
    assert read_dataframe(pd.read_csv(path), future=["promo"], static="store") == \
        read_long_csv(path, future=["promo"], static=["store"])


def test_user_files_take_the_competition_split(tmp_path: Path) -> None:
    ds = load_files("forecasting", _csv(tmp_path), reader_options={"future": "promo", "static": "store"},
                    task_options={"horizon": 3})
    assert [len(ex["y"]) for ex in (ds.train[0], ds.valid[0], ds.test[0])] == [6, 9, 12]
    assert len(ds.train[0]["future"]["promo"]) == 6
    jl = tmp_path / "s.jsonl"
    jl.write_text("\n".join(json.dumps({"id": f"s{i}", "y": list(np.arange(10.0) * (i + 1)), "m": 2})
                            for i in range(3)) + "\n")
    ds = load_files("forecasting", jl, task_options={"horizon": 2})
    assert [len(ex["y"]) for ex in (ds.train[2], ds.valid[2], ds.test[2])] == [6, 8, 10] and ds.test[2]["m"] == 2


def test_cli_train_evaluate_predict_backtest_on_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "p.csv", ["unique_id,ds,y"] + [f"{s},{t},{5 + (t % 4) * (2 if s == 'a' else 3) + t // 4}"
                                                             for s in "ab" for t in range(24)])
    run = tmp_path / "run"
    assert main(["train", str(path), "--task", "forecasting", "--model", "snaive", "--task.horizon", "4",
                 "--task.season_length", "4", "--out", str(run)]) == 0
    test = json.loads(capsys.readouterr().out)["test"]
    # a season that steps up by 1 each year: seasonal naive is 1 low everywhere, as is its in-sample scale
    assert test["mae"] == pytest.approx(1.0) and test["mase"] == pytest.approx(1.0)
    assert main(["evaluate", str(run), "--split", "valid"]) == 0
    assert json.loads(capsys.readouterr().out)["mase"] == pytest.approx(1.0)
    assert main(["predict", str(run), "--text", "1 2 3 4 1 2 3 4"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["prediction"] == [1.0, 2.0, 3.0, 4.0]
    assert main(["backtest", str(run), "--windows", "3", "--step", "2"]) == 0
    out = capsys.readouterr().out
    assert "mase" in out and out.count("\n") >= 5
