"""``seqlab.compare`` end to end on tiny data: the report's numbers are the runs' own."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

import seqlab
from seqlab.compare import compare

TINY_GRU = {"d_model": 16, "hidden_size": 16, "char_filters": 0}


def _table_row(md: str, family: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].split(" ")[0] == family:
            return cells
    raise AssertionError(f"no row for {family}")


@pytest.fixture(scope="module")
def labeling_report(tiny_labeling, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("cmp_lab")
    res = compare(tiny_labeling, ["hmm", "crf", "gru"], budget_steps=12, out=out, n_boot=200,
                  settings={"gru": TINY_GRU})
    return res, out


def test_report_numbers_are_the_runs_own(labeling_report, tiny_labeling) -> None:  # type: ignore[no-untyped-def]
    res, out = labeling_report
    saved = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    assert [r["family"] for r in saved["families"]] == ["hmm", "crf", "gru"]
    for row in saved["families"]:
        model = seqlab.load(out / "runs" / row["family"] / "model")
        want = model.evaluate(tiny_labeling.test)
        for k in ("f1", "precision", "recall", "token_accuracy", "loss"):
            assert row["metrics"][k] == pytest.approx(want[k], rel=1e-6, abs=1e-9), (row["family"], k)
        cells = _table_row(md, row["family"])
        f1_cell = cells[saved["metric_names"].index("f1") + 1]
        assert float(f1_cell.split(" ")[0]) == pytest.approx(want["f1"], rel=1e-3, abs=1e-4)
        lo, hi = row["ci"]["f1"]
        assert lo <= row["metrics"]["f1"] + 1e-12 and row["metrics"]["f1"] <= hi + 1e-12
        assert row["parameters"] == model.n_parameters
        assert row["per_example_differs"] == []  # tagging: one sentence at a time gives the same sums
    assert saved["best"] == max(saved["families"], key=lambda r: r["metrics"]["f1"])["family"]
    best = next(r for r in saved["families"] if r["family"] == saved["best"])
    assert best["p_value_vs_best"] is None
    assert all(0 <= r["p_value_vs_best"] <= 1 for r in saved["families"] if r is not best)


def test_breakdowns_and_curves(labeling_report, tiny_labeling) -> None:  # type: ignore[no-untyped-def]
    res, out = labeling_report
    gru = next(r for r in res["families"] if r["family"] == "gru")
    assert gru["curve_steps"] and gru["curve_steps"][-1][0] <= 12  # eval records of a 12-step run
    assert gru["steps"] == 12 and gru["stopped_by"] == "max_steps"
    assert sum(res["bucket_counts"]) == len(tiny_labeling.test)
    for r in res["families"]:
        assert set(r["per_label"]) <= {"ANI", "COL"} and r["per_label"]
        s = r["sensitivity"]
        assert "error" in s or len(s["kl"]) == len(s["tokens"])
    rec = res["recommendation"]
    assert rec["best"]["family"] == res["best"] and rec["best"]["family"] in rec["within_ci_of_best"]
    for name in ("metric", "by_length", "per_label", "curve_steps"):
        assert (out / "figures" / f"{name}.png").exists()


def test_html_is_self_contained(labeling_report) -> None:  # type: ignore[no-untyped-def]
    _, out = labeling_report
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "<link" not in page
    assert page.count("<img") == len(list((out / "figures").glob("*.png")))


def test_a_second_run_reuses_the_fitted_families(labeling_report, tiny_labeling) -> None:  # type: ignore[no-untyped-def]
    """Re-running the same comparison loads each family's saved model and recorded cost; the numbers
    are the same."""
    res, out = labeling_report
    again = compare(tiny_labeling, ["hmm", "crf", "gru"], budget_steps=12, out=out, n_boot=200,
                    settings={"gru": TINY_GRU}, probe=False)
    for a, b in zip(res["families"], again["families"]):
        assert a["metrics"] == pytest.approx(b["metrics"]) and a["train_seconds"] == b["train_seconds"]
        assert a["ci"] == b["ci"] and a["steps"] == b["steps"]


def test_classification_compare(tiny_classification, tmp_path: Path) -> None:
    from seqlab.metrics.classification import per_class_f1

    res = compare(tiny_classification, ["ngram", "linear", "gru"], budget_steps=10, out=tmp_path, n_boot=100,
                  settings={"gru": {"d_model": 16, "hidden_size": 16}}, probe=False, sizes=[60, None])
    assert [p[0] for p in res["size_curve"]["linear"]] == [60.0, float(len(tiny_classification.train))]
    full = res["size_curve"]["ngram"][-1][1]
    assert full == pytest.approx(next(r for r in res["families"] if r["family"] == "ngram")["metrics"]["accuracy"])
    assert (tmp_path / "figures" / "curve_sizes.png").exists()
    for row in res["families"]:
        model = seqlab.load(tmp_path / "runs" / row["family"] / "model")
        want = model.evaluate(tiny_classification.test)
        assert row["metrics"]["accuracy"] == pytest.approx(want["accuracy"])
        assert row["metrics"]["macro_f1"] == pytest.approx(want["macro_f1"])
        preds = model.predict([ex["text"] for ex in tiny_classification.test])
        gold = [ex["label"] for ex in tiny_classification.test]
        f1 = per_class_f1(preds, gold)
        assert {k: v["f1"] for k, v in row["per_label"].items()} == pytest.approx({str(k): v for k, v in f1.items()})
        assert row["bootstrap_method"].startswith("sufficient")
        assert math.isfinite(row["predict_examples_per_s"])


@pytest.mark.parametrize("task", ["regression", "lm"])
def test_other_tasks(task: str, tmp_path: Path) -> None:
    """Tasks without labels go through the same code: the task's own metrics on the records."""
    from seqlab.data.splits import Dataset, DatasetInfo
    from seqlab.tasks import TASKS

    ex, _, opts = TASKS[task][0].toy_examples(0)
    a, b = int(len(ex) * 0.6), int(len(ex) * 0.8)
    ds = Dataset(f"toy_{task}", task, ex[:a], ex[a:b], ex[b:], DatasetInfo(task, task, "", "", "", ""), task_options=opts)
    res = compare(ds, ["gru"], budget_steps=3, out=tmp_path, n_boot=30, settings={"gru": {"d_model": 8, "hidden_size": 8}})
    row = res["families"][0]
    want = seqlab.load(tmp_path / "runs" / "gru" / "model").evaluate(ds.test)
    assert row["metrics"][res["main_metric"]] == pytest.approx(want[res["main_metric"]])
    lo, hi = row["ci"][res["main_metric"]]
    assert lo <= hi and row["per_label"] == {}
    assert (tmp_path / "report.html").exists()
