"""``compare``: every family on the same splits, the same resamples, one report.

Each family is built with its defaults through the public API (``seqlab.build(family,
task=dataset)``; with ``budget_steps`` the neural ones get ``train={"max_steps": N}``, an equal
step budget), fitted on the training split (early stopping on the validation split, as ``fit``
does), evaluated on the test split, and recorded example by example
(:mod:`seqlab.compare.records`). Every number of the report comes from those records or from the
run's own logs: metrics with bootstrap 95% intervals and a paired test against the best row
(:mod:`seqlab.compare.stats`), cost (parameters, training time, throughput, memory), learning
curves, the metric per input-length bucket, per-label scores, and one sensitivity heatmap per
family. :func:`recommend` closes with three rules; :mod:`seqlab.compare.render` writes
``report.md``, ``report.html`` and ``results.json``.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.compare.measure import MEMORY_NOTE, Cost, measured, raw_inputs, throughput
from seqlab.compare.records import Records, per_label_scores, record_examples
from seqlab.compare.stats import (
    bootstrap_values,
    paired_p_value,
    percentile_interval,
    resample_indices,
)
from seqlab.compare.sufficient import sufficient_stats
from seqlab.errors import ConfigError, SeqlabError

__all__ = ["compare", "recommend", "length_buckets", "bootstrap_all", "parse_sizes", "read_log"]


def parse_sizes(text: str | Sequence[int | str] | None) -> list[int | None] | None:
    """``"500,1000,all"`` -> ``[500, 1000, None]`` (None: the whole training split)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    out: list[int | None] = []
    for p in parts:
        if p == "all":
            out.append(None)
        elif p.isdigit() and int(p) > 0:
            out.append(int(p))
        else:
            raise ConfigError(f"sizes: expected positive integers or 'all' separated by commas, found {p!r}")
    return out


def _load(dataset: Any, task: str | None, seed: int) -> Any:
    """A Dataset object as it is, a bundled name, or a data file posing ``task``."""
    from seqlab.data import datasets

    if hasattr(dataset, "train") and hasattr(dataset, "test"):
        return dataset
    if Path(str(dataset)).exists():
        if not task:
            raise SeqlabError(f"{dataset} is a data file: say which task it poses (task=...)")
        return datasets.load_files(task, str(dataset), seed=seed)
    return datasets.load(str(dataset), seed=seed, task=task)


def _fit_one(name: str, ds: Any, train: Sequence[Any], budget_steps: int | None, run_dir: Path | None,
             settings: Mapping[str, Any] | None = None, resume: bool = False,
             key: Mapping[str, Any] | None = None) -> tuple[Any, Cost]:
    """Build family ``name`` with its defaults (and the user's ``settings`` for it, as ``build``
    takes them) and fit it; returns (model, cost). A neural family trains without a progress bar,
    for at most ``budget_steps`` optimizer steps when given, logging to ``run_dir`` (resuming its
    checkpoint when ``resume``). Interrupted (Ctrl-C, ``timeout -s INT``), the time spent so far is
    kept in ``run_dir/compare.json`` under ``key`` for the run that resumes it."""
    from seqlab import build
    from seqlab.models.registry import get_family

    neural = get_family(name).kind == "neural"
    model = build(name, task=ds, **build_settings(name, budget_steps, settings))
    try:
        with measured() as cost:
            model.fit(train, valid=ds.valid or None, run_dir=run_dir if neural else None, resume=resume and neural)
    except KeyboardInterrupt:
        if neural and run_dir is not None:
            _write_state(run_dir, {"key": dict(key or {}), "done": False, "cost": asdict(cost)})
        raise
    return model, cost


def build_settings(name: str, budget_steps: int | None, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments ``build`` gets for family ``name``: the user's ``settings``, and for a
    neural family no progress bar and, with a budget, exactly that many optimizer steps (the epoch
    limit lifted so the budget binds; early stopping on the validation split may still end it)."""
    from seqlab.models.registry import get_family

    kwargs = dict(settings or {})
    if get_family(name).kind == "neural":
        train_cfg = {"progress": False, **dict(kwargs.pop("train", None) or {})}
        if budget_steps:
            train_cfg.update(max_steps=budget_steps, epochs=max(int(train_cfg.get("epochs", 1)), budget_steps))
        kwargs["train"] = train_cfg
    return kwargs


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    from seqlab.io import write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "compare.json", state)


def _fit_or_reuse(name: str, ds: Any, budget_steps: int | None, run_dir: Path, settings: Mapping[str, Any] | None,
                  seed: int) -> tuple[Any, Cost, dict[str, Any]]:
    """A family fitted by an earlier run of the same comparison (same data, seed, budget and
    settings; recorded in ``run_dir/compare.json``) is loaded with its recorded cost; a neural run
    cut short resumes from its checkpoint, its earlier time added; anything else is fitted afresh."""
    from seqlab import load
    from seqlab.io import read_json

    key = {"dataset": ds.name, "n_train": len(ds.train), "n_test": len(ds.test), "seed": seed,
           "build": build_settings(name, budget_steps, settings)}
    state = read_json(run_dir / "compare.json") if (run_dir / "compare.json").exists() else {}
    same = state.get("key") == json.loads(json.dumps(key))
    if same and state.get("done") and (run_dir / "model" / "config.json").exists():
        print(f"[seqlab] compare: {name} was fitted by an earlier run of this comparison; reusing {run_dir / 'model'}",
              file=sys.stderr)
        return load(run_dir / "model"), Cost(**state["cost"]), state.get("trained", {})
    earlier = Cost(**state["cost"]) if same and not state.get("done") else Cost()
    resume = same and earlier.seconds > 0
    if resume:
        print(f"[seqlab] compare: resuming {name} ({earlier.seconds:.0f} s spent before)", file=sys.stderr)
    model, cost = _fit_one(name, ds, ds.train, budget_steps, run_dir, settings, resume=resume, key=key)
    cost = Cost(cost.seconds + earlier.seconds, cost.cpu_seconds + earlier.cpu_seconds,
                max((c for c in (cost.peak_bytes, earlier.peak_bytes) if c is not None), default=None))
    result = getattr(model, "result_", None)
    trained = {"steps": getattr(result, "steps", None), "stopped_by": getattr(result, "stopped_by", None)}
    model.save(run_dir / "model")  # `seqlab report out/runs/NAME` renders it; `seqlab evaluate` scores it
    _write_state(run_dir, {"key": key, "done": True, "cost": asdict(cost), "trained": trained})
    return model, cost, trained


def _steps_curve(run_dir: Path, metric: str) -> list[list[float]]:
    """``[[step, value of metric], ...]`` from a run's metrics.jsonl evaluation records."""
    return [[float(r["step"]), float(r[metric])] for r in read_log(run_dir / "metrics.jsonl")
            if r.get("type") == "eval" and isinstance(r.get(metric), (int, float))]


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl (none if the file is missing); a line cut short by a crash
    at the end is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def length_buckets(lengths: Sequence[int], n: int = 4) -> list[tuple[int, int]]:
    """Up to ``n`` contiguous length ranges ``(low, high)`` (inclusive) at the quantiles of
    ``lengths``, each holding at least one example; the same for every family."""
    if not lengths:
        return []
    qs = np.quantile(np.asarray(lengths, dtype=np.float64), np.linspace(0, 1, n + 1))
    edges = sorted({int(math.floor(q)) for q in qs[1:-1]})
    out, low = [], min(lengths)
    for e in [*edges, max(lengths)]:
        if e >= low and any(low <= x <= e for x in lengths):
            out.append((low, e))
            low = e + 1
    return out


def bootstrap_all(records: Records, names: Sequence[str], indices: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """``{metric: (B,) resampled values}`` and how they were computed ("sufficient statistics"
    when the fast path reproduces the task's metrics, else "the task's metric code")."""
    fast = sufficient_stats(records, names)
    if fast is not None:
        return fast.values(indices), "sufficient statistics (checked against the task's metrics)"
    return {k: v for k, v in bootstrap_values(records.metrics, indices).items() if k in names}, "the task's metric code"


def _sensitivity(model: Any, example_input: Any, seed: int) -> dict[str, Any]:
    """The influence matrix of ``model`` on one input, or why it cannot be probed."""
    from seqlab.probes.sensitivity import influence_matrix

    try:
        res = influence_matrix(model, example_input, replacements=4, seed=seed)
    except SeqlabError as e:  # the probe refuses families it cannot probe, saying why
        return {"error": f"{model.family} cannot be probed here: {e}"}
    return {"tokens": list(res.tokens), "outputs": list(res.outputs), "kl": res.kl.tolist(), "result": res}


def _probe_input(ds: Any, models: dict[str, Any]) -> Any:
    """The raw input of the first test example with 6 to 14 tokens (or the shortest one)."""
    task = next(iter(models.values())).task
    inputs = raw_inputs(task, ds.test) or []
    if not inputs or not task.probe_rows:
        return None
    model = next(iter(models.values()))
    try:
        lens = [len(model.tokenize(x)) for x in inputs[:200]]
    except (SeqlabError, AttributeError, TypeError):
        return None
    fits = [i for i, n in enumerate(lens) if 6 <= n <= 14]
    return inputs[fits[0] if fits else int(np.argmin(lens))]


def _family_row(name: str, model: Any, cost: Any, records: Records, metrics: dict[str, float],
                ds: Any, run_dir: Path | None) -> dict[str, Any]:
    """Everything measured of one family except what needs the other families."""
    speed, why = throughput(model, ds.test)
    return {
        "family": name, "kind": model.kind, "metrics": metrics, "parameters": int(model.n_parameters),
        "train_seconds": cost.seconds, "train_cpu_seconds": cost.cpu_seconds,
        "peak_memory_mb": None if cost.peak_bytes is None else cost.peak_bytes / 2**20,
        "predict_examples_per_s": speed, "predict_note": why,
        "curve_steps": _steps_curve(run_dir, model.task.main_metric) if run_dir is not None else [],
        "per_label": per_label_scores(records),
    }


def compare(
    dataset: Any, models: Sequence[str], *, budget_steps: int | None = None, sizes: Sequence[int | None] | None = None,
    out: str | Path = "report", seed: int = 0, task: str | None = None, n_boot: int = 1000, probe: bool = True,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train and evaluate each family of ``models`` on ``dataset`` (a Dataset, a bundled name, or
    a data file with ``task``), write the report under ``out`` and return its numbers (the
    content of ``results.json``).

    ``budget_steps``: the neural families' optimizer-step cap (equal for all); ``sizes``:
    training sizes for a learning curve (None = all); ``n_boot``: bootstrap resamples; ``seed``:
    the data split (a bundled name), resampling, subsets and probe replacements; ``settings``:
    per-family keyword arguments for ``seqlab.build`` (``{"gru": {"d_model": 64}}``), which the
    report lists; ``probe``: draw the sensitivity heatmaps."""
    from seqlab.compare.sections import write_report
    from seqlab.io import write_json
    from seqlab.models.registry import get_family

    if not models:
        raise ConfigError("compare needs at least one model family")
    for name in models:
        get_family(name)  # an unknown name fails before any training
    ds = _load(dataset, task, seed)
    if not ds.test:
        raise SeqlabError(f"{ds.name} has no test examples to compare on")
    out = Path(out)
    fitted: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    records: dict[str, Records] = {}
    for name in models:
        print(f"[seqlab] compare: fitting {name} on {len(ds.train):,} examples", file=sys.stderr)
        run_dir = out / "runs" / name
        source = str(dataset) if isinstance(dataset, (str, Path)) else None  # a name or file `seqlab report` can reload
        model, cost, trained = _fit_or_reuse(name, ds, budget_steps, run_dir, (settings or {}).get(name), seed)
        if source is not None:  # where the data came from, as `seqlab train` records it
            write_json(run_dir / "run.json", {"dataset": source, "task": model.task.name, "seed": seed, "valid": None,
                                              "test": None, "format": None, "reader": {}, "trained": trained})
        metrics = model.evaluate(ds.test)
        records[name] = record_examples(model, ds.test)
        fitted[name] = model
        rows.append(_family_row(name, model, cost, records[name], metrics, ds, run_dir if model.kind == "neural" else None))
        rows[-1].update(trained)
    task_obj = next(iter(fitted.values())).task
    results = _summarise(ds, task_obj, rows, records, n_boot, seed)
    results.update(budget_steps=budget_steps, seed=seed, memory_note=MEMORY_NOTE,
                   settings={k: dict(v) for k, v in (settings or {}).items()})
    _add_sensitivity(results, ds, fitted, seed, probe)
    if sizes:
        results["size_curve"] = _size_curve(ds, models, sizes, budget_steps, seed, fitted, settings or {})
    results["recommendation"] = recommend(results)
    write_report(results, out)
    return results


def _summarise(ds: Any, task: Any, rows: list[dict[str, Any]], records: dict[str, Records], n_boot: int,
               seed: int) -> dict[str, Any]:
    """Intervals, the paired test against the best row and the length buckets."""
    main, gib = task.main_metric, bool(task.greater_is_better)
    names = [k for k in dict.fromkeys([main, *task.metric_names, "loss"])
             if all(isinstance(r["metrics"].get(k), (int, float)) and math.isfinite(r["metrics"][k]) for r in rows)]
    indices = resample_indices(len(ds.test), n_boot, seed)
    boots: dict[str, dict[str, np.ndarray]] = {}
    for r in rows:
        boots[r["family"]], r["bootstrap_method"] = bootstrap_all(records[r["family"]], names, indices)
        r["ci"] = {k: list(percentile_interval(boots[r["family"]][k])) for k in names}
        whole = records[r["family"]].metrics()  # one example at a time; a stream LM or random masks may differ
        r["per_example_differs"] = sorted(k for k in names if not math.isclose(whole[k], r["metrics"][k], rel_tol=1e-6,
                                                                             abs_tol=1e-9))
    scored = [r for r in rows if main in names]
    best = (max if gib else min)(scored, key=lambda r: r["metrics"][main])["family"] if scored else None
    for r in rows:
        r["p_value_vs_best"] = None if best is None or r["family"] == best else \
            paired_p_value(boots[best][main], boots[r["family"]][main], gib)
    lengths = next(iter(records.values())).lengths
    buckets = length_buckets(lengths)
    for r in rows:
        rec = records[r["family"]]
        r["by_length"] = {f"{lo}-{hi}": rec.metrics([i for i, n in enumerate(lengths) if lo <= n <= hi]).get(main)
                          for lo, hi in buckets}
    return {"dataset": ds.name, "task": task.name, "main_metric": main, "greater_is_better": gib,
            "metric_names": names, "n_train": len(ds.train), "n_valid": len(ds.valid or []), "n_test": len(ds.test),
            "n_boot": n_boot, "best": best, "families": rows,
            "length_buckets": [f"{lo}-{hi}" for lo, hi in buckets],
            "bucket_counts": [sum(lo <= n <= hi for n in lengths) for lo, hi in buckets]}


def _add_sensitivity(results: dict[str, Any], ds: Any, fitted: dict[str, Any], seed: int, probe: bool) -> None:
    x = _probe_input(ds, fitted) if probe else None
    results["probe_input"] = x
    for r in results["families"]:
        if x is None:
            r["sensitivity"] = {"error": "not probed (no token-level input, or probing turned off)"}
        else:
            r["sensitivity"] = _sensitivity(fitted[r["family"]], x, seed)


def _size_curve(ds: Any, models: Sequence[str], sizes: Sequence[int | None], budget_steps: int | None, seed: int,
                fitted: dict[str, Any], settings: Mapping[str, Mapping[str, Any]]) -> dict[str, list[list[float]]]:
    """``{family: [[n_train, main metric on test], ...]}``: each family refitted on seeded random
    subsets of the training split (the full split reuses the main run)."""
    curve: dict[str, list[list[float]]] = {}
    shuffled = list(ds.train)
    random.Random(seed).shuffle(shuffled)
    for name in models:
        pts = []
        for n in sizes:
            if n is None or n >= len(ds.train):
                model, n_used = fitted[name], len(ds.train)
            else:
                print(f"[seqlab] compare: fitting {name} on {n:,} examples", file=sys.stderr)
                model, _ = _fit_one(name, ds, shuffled[:n], budget_steps, None, settings.get(name))
                n_used = n
            pts.append([float(n_used), float(model.evaluate(ds.test)[model.task.main_metric])])
        curve[name] = pts
    return curve


def recommend(results: dict[str, Any]) -> dict[str, Any]:
    """Three rules over the rows: the best main metric; among the rows whose 95% interval overlaps
    the best row's, the fewest parameters and the fastest training; the fastest predictor."""
    rows, main, gib = results["families"], results["main_metric"], results["greater_is_better"]
    best_name = results.get("best")
    out: dict[str, Any] = {}
    if best_name is None:
        return out
    best = next(r for r in rows if r["family"] == best_name)
    out["best"] = {"family": best_name, main: best["metrics"][main], "ci": best["ci"].get(main)}
    lo, hi = best["ci"][main]
    close = [r for r in rows if r["ci"][main][0] <= hi and r["ci"][main][1] >= lo]
    small = min(close, key=lambda r: (r["parameters"], r["train_seconds"]))
    quick = min(close, key=lambda r: r["train_seconds"])
    out["cheapest_params"] = {"family": small["family"], "parameters": small["parameters"], main: small["metrics"][main],
                              "ci": small["ci"][main]}
    out["cheapest_time"] = {"family": quick["family"], "train_seconds": quick["train_seconds"],
                            main: quick["metrics"][main], "ci": quick["ci"][main]}
    timed = [r for r in rows if r["predict_examples_per_s"]]
    if timed:
        fast = max(timed, key=lambda r: r["predict_examples_per_s"])
        out["fastest_predictor"] = {"family": fast["family"], "examples_per_s": fast["predict_examples_per_s"],
                                    main: fast["metrics"][main]}
    out["within_ci_of_best"] = [r["family"] for r in close]
    out["greater_is_better"] = gib
    return out
