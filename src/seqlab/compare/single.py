"""``seqlab report RUN``: one run (a directory written by ``seqlab train``) rendered like a
comparison: the training curves from its ``metrics.jsonl`` (loss, validation metric, learning
rate, gradient norm), its test metrics with bootstrap 95% intervals, a confusion matrix (one label
per example) or a per-label table, and the worst-predicted examples (highest NLL per unit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqlab.compare.core import bootstrap_all, read_log
from seqlab.compare.records import Records, per_label_scores, record_examples
from seqlab.compare.render import Report, fmt, write_json
from seqlab.compare.stats import percentile_interval, resample_indices
from seqlab.errors import SeqlabError

__all__ = ["report_run", "confusion", "worst_examples"]


def _run_data(run: Path, split: str) -> tuple[Any, list[Any]]:
    """The run's model and the examples of ``split`` of its own data, read as in training (the
    bundled dataset, or the data files with their reader options, by run.json)."""
    from seqlab.data import datasets
    from seqlab.io import read_json
    from seqlab.models.registry import load

    model = load(run)
    if not (run / "run.json").exists():
        raise SeqlabError(f"{run}: no run.json (a run directory is what `seqlab train --out` wrote)")
    info = read_json(run / "run.json")
    name, seed, task = info["dataset"], info.get("seed", 0), model.task.name
    if Path(name).exists():
        ds = datasets.load_files(task, name, info.get("valid"), info.get("test"), info.get("format"), seed=seed,
                                 reader_options=info.get("reader") or None)
    else:
        ds = datasets.load(name, seed=seed, task=task)
    examples = list(getattr(ds, split))
    if not examples:
        raise SeqlabError(f"the {split} split of {name} holds no examples")
    return model, examples


def confusion(records: Records) -> tuple[list[str], list[list[int]]] | None:
    """``(labels, counts[gold][predicted])`` when every example has one string label, else None."""
    pairs = [(p, g) for r in records.rows for p, g in zip(r.tallies, r.references)]
    if not pairs or not all(isinstance(p, str) and isinstance(g, str) for p, g in pairs):
        return None
    labels = sorted({x for pg in pairs for x in pg})
    at = {c: i for i, c in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for p, g in pairs:
        counts[at[g]][at[p]] += 1
    return labels, counts


def worst_examples(records: Records, k: int) -> list[int]:
    """Row numbers of the ``k`` examples with the highest NLL per unit (ties: the first)."""
    def loss(i: int) -> float:
        r = records.rows[i]
        return r.nll_sum / r.n_units if r.n_units else -math.inf

    return sorted(range(len(records.rows)), key=lambda i: -loss(i))[:k]


def _short(v: Any, n: int = 90) -> str:
    text = " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def report_run(run: str | Path, out: str | Path, *, split: str = "test", n_boot: int = 1000, worst: int = 10,
               seed: int = 0) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``results.json`` for one run under ``out``."""
    from seqlab.compare.measure import raw_inputs

    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, examples = _run_data(run, split)
    task = model.task
    metrics = model.evaluate(examples)
    records = record_examples(model, examples)
    names = [k for k in dict.fromkeys([task.main_metric, *task.metric_names, "loss"])
             if isinstance(metrics.get(k), (int, float)) and math.isfinite(metrics[k])]
    values, method = bootstrap_all(records, names, resample_indices(len(examples), n_boot, seed))
    ci = {k: list(percentile_interval(values[k])) for k in names}
    log = read_log(run / "train" / "metrics.jsonl") or read_log(run / "metrics.jsonl")  # seqlab train / seqlab compare
    inputs = raw_inputs(task, examples) or [None] * len(examples)
    rows = worst_examples(records, worst)
    res: dict[str, Any] = {
        "run": str(run), "family": model.family, "task": task.name, "split": split, "n_examples": len(examples),
        "metrics": metrics, "ci": ci, "n_boot": n_boot, "bootstrap_method": method, "main_metric": task.main_metric,
        "parameters": int(model.n_parameters), "per_label": per_label_scores(records), "confusion": confusion(records),
        "worst": [{"row": i, "input": inputs[i], "prediction": list(records.rows[i].tallies),
                   "reference": list(records.rows[i].references),
                   "loss": records.rows[i].nll_sum / max(records.rows[i].n_units, 1),
                   task.main_metric: records.metrics([i]).get(task.main_metric)} for i in rows],
        "log_records": len(log),
    }
    _render_run(res, log, out).write(out)
    write_json(out / "results.json", res)
    return res


def _curve(log: Sequence[dict[str, Any]], kind: str, key: str) -> tuple[list[float], list[float]]:
    pts = [(float(r["step"]), float(r[key])) for r in log
           if r.get("type") == kind and isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _render_run(res: dict[str, Any], log: Sequence[dict[str, Any]], out: Path) -> Report:
    from seqlab.plots import save_line_plot

    rep = Report(f"seqlab report: {res['run']} ({res['family']}, {res['task']})")
    main = res["main_metric"]
    rep.p(f"{res['family']} on the {res['split']} split of its own data ({res['n_examples']:,} examples), "
          f"{fmt(res['parameters'])} parameters. Intervals: 95% percentile bootstrap over examples "
          f"({res['n_boot']:,} resamples).")
    rep.h2("Metrics")
    rep.table(["metric", "value", "95% interval"],
              [[k, res["metrics"][k], f"[{fmt(lo)}, {fmt(hi)}]"] for k, (lo, hi) in res["ci"].items()])
    rep.h2("Training curves")
    figs = out / "figures"
    if not log:
        rep.p("No metrics log (a classical family fits in one go and writes none).")
    for name, series, ylabel, logy in (
        ("loss", {"train (per step)": _curve(log, "step", "loss"), "validation": _curve(log, "eval", "loss")}, "loss", False),
        ("metric", {f"validation {main}": _curve(log, "eval", main)}, main, False),
        ("lr", {"learning rate": _curve(log, "step", "lr")}, "learning rate", False),
        ("grad_norm", {"gradient norm (before clipping)": _curve(log, "step", "grad_norm")}, "gradient norm", True),
    ):
        kept = {k: v for k, v in series.items() if v[0]}
        if kept:
            rep.figure(save_line_plot(kept, figs / f"{name}.png", xlabel="optimizer step", ylabel=ylabel, logy=logy,
                                      title=f"{ylabel} against steps"), f"{ylabel} against optimizer steps")
    _labels_section(rep, res)
    rep.h2(f"Worst-predicted examples (highest NLL per unit, of {res['n_examples']:,})")
    rep.table(["row", "input", "prediction", "reference", "loss", main],
              [[w["row"], _short(w["input"]), _short(w["prediction"][0] if len(w["prediction"]) == 1 else w["prediction"]),
                _short(w["reference"][0] if len(w["reference"]) == 1 else w["reference"]), w["loss"], w[main]]
               for w in res["worst"]])
    return rep


def _labels_section(rep: Report, res: dict[str, Any]) -> None:
    conf = res["confusion"]
    if conf is not None:
        labels, counts = conf
        rep.h2("Confusion matrix (rows: reference, columns: prediction)")
        rep.table(["reference \\ prediction", *labels], [[g, *row] for g, row in zip(labels, counts)])
    if res["per_label"]:
        rep.h2("Per label")
        rep.table(["label", "F1", "precision", "recall", "support"],
                  [[k, v["f1"], v["precision"], v["recall"], int(v["support"])] for k, v in res["per_label"].items()])
