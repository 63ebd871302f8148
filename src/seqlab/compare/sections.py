"""The comparison report's sections, from the numbers :func:`seqlab.compare.compare` returns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from seqlab.compare.figures import save_grouped_bars, save_interval_plot
from seqlab.compare.render import Report, fmt, write_json

__all__ = ["comparison_report", "write_report"]


def _ci(r: dict[str, Any], k: str) -> str:
    lo, hi = r["ci"].get(k, (None, None))
    return f"{fmt(r['metrics'][k])} [{fmt(lo)}, {fmt(hi)}]"


def comparison_report(res: dict[str, Any], out: Path) -> Report:
    rows, main = res["families"], res["main_metric"]
    rep = Report(f"seqlab compare: {res['dataset']} ({res['task']})")
    better = "higher" if res["greater_is_better"] else "lower"
    budget = f"; neural families capped at {res['budget_steps']:,} optimizer steps" if res.get("budget_steps") else ""
    rep.p(f"{len(rows)} families, each with its defaults, on the same splits: {res['n_train']:,} training, "
          f"{res['n_valid']:,} validation, {res['n_test']:,} test examples{budget}. Main metric: `{main}` "
          f"({better} is better). Intervals: 95% percentile bootstrap over test examples ({res['n_boot']:,} "
          f"resamples, seed {res['seed']}); p: paired bootstrap against the best row (the fraction of resamples "
          "where the best is not better).")
    if res.get("settings"):
        given = "; ".join(f"{k}: " + ", ".join(f"{a}={b!r}" for a, b in v.items()) for k, v in res["settings"].items())
        rep.p(f"Settings given beyond the defaults: {given}.")
    rep.p("Each family's run (model, and metrics.jsonl for neural ones) is under `runs/FAMILY/`.")
    _metrics_section(rep, res, out)
    _cost_section(rep, res)
    _curves_section(rep, res, out)
    _length_section(rep, res, out)
    _label_section(rep, res, out)
    _probe_section(rep, res, out)
    _recommendation_section(rep, res)
    return rep


def _metrics_section(rep: Report, res: dict[str, Any], out: Path) -> None:
    rows, main, names = res["families"], res["main_metric"], res["metric_names"]
    rep.h2("Metrics (test split, 95% intervals)")
    rep.table(["family", *names, f"p vs best ({main})"],
              [[r["family"] + (" (best)" if r["family"] == res["best"] else ""), *(_ci(r, k) for k in names),
                r["p_value_vs_best"]] for r in rows])
    differ = [f"{r['family']} ({', '.join(r['per_example_differs'])})" for r in rows if r.get("per_example_differs")]
    if differ:
        rep.p("Scored one example at a time, these differ from the whole-split evaluation (a language model's stream, "
              f"or masks drawn per batch), so their intervals are centred on the per-example value: {'; '.join(differ)}.")
    if main in names:
        vals = {r["family"]: (r["metrics"][main], *r["ci"][main]) for r in rows}
        rep.figure(save_interval_plot(vals, out / "figures" / "metric.png", ylabel=main,
                                      title=f"{main} with 95% bootstrap intervals"), f"{main} per family, 95% intervals")


def _cost_section(rep: Report, res: dict[str, Any]) -> None:
    rep.h2("Cost")
    rep.table(["family", "kind", "parameters", "train s", "train CPU s", "steps", "stopped by", "predict ex/s",
               "peak memory MB"],
              [[r["family"], r["kind"], r["parameters"], r["train_seconds"], r["train_cpu_seconds"], r["steps"],
                r["stopped_by"], r["predict_examples_per_s"], r["peak_memory_mb"]] for r in res["families"]])
    notes = [f"{r['family']}: {r['predict_note']}" for r in res["families"] if r.get("predict_note")]
    rep.p(f"Training time is the wall time of `fit` (CPU s: the process's CPU time, which other programs on the "
          f"machine disturb less; a run resumed by re-running the comparison adds its sessions); throughput is `predict` over all {res['n_test']:,} test inputs "
          f"in one call; memory is the {res['memory_note']}." + (" " + "; ".join(notes) if notes else ""))


def _curves_section(rep: Report, res: dict[str, Any], out: Path) -> None:
    from seqlab.plots import save_line_plot

    main = res["main_metric"]
    rep.h2("Learning curves")
    steps = {r["family"]: ([p[0] for p in r["curve_steps"]], [p[1] for p in r["curve_steps"]])
             for r in res["families"] if r["curve_steps"]}
    if steps:
        rep.figure(save_line_plot(steps, out / "figures" / "curve_steps.png", xlabel="optimizer steps",
                                  ylabel=f"validation {main}", title="validation metric at each evaluation"),
                   f"validation {main} against training steps (neural families, from each run's metrics.jsonl)")
    classical = [r["family"] for r in res["families"] if not r["curve_steps"]]
    if classical:
        rep.p(f"No step curve for {', '.join(classical)}: fitted in one go (counting, EM or L-BFGS), "
              "or no validation split to evaluate on.")
    sizes = res.get("size_curve")
    if sizes:
        series = {k: ([p[0] for p in v], [p[1] for p in v]) for k, v in sizes.items()}
        rep.figure(save_line_plot(series, out / "figures" / "curve_sizes.png", xlabel="training examples",
                                  ylabel=f"test {main}", title="test metric against training size", logx=True),
                   f"test {main} against training size")
        ns = sorted({p[0] for v in sizes.values() for p in v})
        rep.table(["family", *(fmt(int(n)) for n in ns)],
                  [[k, *(next((p[1] for p in v if p[0] == n), None) for n in ns)] for k, v in sizes.items()])


def _length_section(rep: Report, res: dict[str, Any], out: Path) -> None:
    main, buckets = res["main_metric"], res["length_buckets"]
    if not buckets:
        return
    rep.h2("By input length")
    labels = [f"{b} ({n})" for b, n in zip(buckets, res["bucket_counts"])]
    series = {r["family"]: [r["by_length"].get(b) for b in buckets] for r in res["families"]}
    rep.table(["family", *labels], [[k, *v] for k, v in series.items()])
    rep.figure(save_grouped_bars(labels, series, out / "figures" / "by_length.png", xlabel="input length (test examples)",
                                 ylabel=main, title=f"{main} by input-length bucket"),
               f"{main} by input length in encoded units (the bucket's example count in parentheses)")


def _label_section(rep: Report, res: dict[str, Any], out: Path) -> None:
    rows = [r for r in res["families"] if r["per_label"]]
    if not rows:
        return
    labels = sorted({lab for r in rows for lab in r["per_label"]})
    support = {lab: next((r["per_label"][lab]["support"] for r in rows if lab in r["per_label"]), 0.0) for lab in labels}
    rep.h2("Per label (F1)")
    series = {r["family"]: [r["per_label"].get(lab, {}).get("f1") for lab in labels] for r in rows}
    rep.table(["label (support)", *series], [[f"{lab} ({int(support[lab])})", *(series[k][i] for k in series)]
                                             for i, lab in enumerate(labels)])
    rep.figure(save_grouped_bars(labels, series, out / "figures" / "per_label.png", xlabel="label", ylabel="F1",
                                 title="F1 per label (entity type or class)"), "F1 per label")


def _probe_section(rep: Report, res: dict[str, Any], out: Path) -> None:
    from seqlab.plots import save_influence_heatmap

    rep.h2("Sensitivity on one example")
    x = res.get("probe_input")
    if x is None:
        rep.p("Not probed: this task's outputs are not per-token or per-sequence class distributions.")
        return
    shown = " ".join(x) if isinstance(x, (list, tuple)) else str(x)
    rep.p(f"Input: `{shown}`. Each cell is the mean KL divergence (nats) of output row j when input token i is "
          "replaced by 4 random vocabulary tokens (seqlab.probes.influence_matrix): how far each family's context reaches.")
    for r in res["families"]:
        s = r["sensitivity"]
        if "error" in s:
            rep.p(f"{r['family']}: {s['error']}")
        elif "result" in s:
            path = save_influence_heatmap(s["result"], out / "figures" / f"sensitivity_{r['family']}.png")
            rep.figure(path, f"{r['family']}: influence of input token i (rows) on output j (columns)")


def _recommendation_section(rep: Report, res: dict[str, Any]) -> None:
    rec, main = res.get("recommendation") or {}, res["main_metric"]
    rep.h2("Recommendation")
    if not rec:
        rep.p("No recommendation: the main metric is missing for every family.")
        return
    b = rec["best"]
    lines = [f"**Best {main}:** {b['family']} ({fmt(b[main])}, 95% interval [{fmt(b['ci'][0])}, {fmt(b['ci'][1])}])."]
    c, t = rec["cheapest_params"], rec["cheapest_time"]
    within = ", ".join(rec["within_ci_of_best"])
    lines.append(f"**Cheapest within the best's interval** (intervals overlapping: {within}): fewest parameters "
                 f"{c['family']} ({fmt(c['parameters'])} parameters, {main} {fmt(c[main])}); fastest training "
                 f"{t['family']} ({fmt(t['train_seconds'])} s, {main} {fmt(t[main])}).")
    f = rec.get("fastest_predictor")
    if f:
        lines.append(f"**Fastest predictor:** {f['family']} ({fmt(f['examples_per_s'])} examples/s, {main} {fmt(f[main])}).")
    for line in lines:
        rep.p(line)
    if not all(math.isfinite(x) for x in b["ci"]):
        rep.p("The best row's interval is not finite; the overlap rule is unreliable here.")


def write_report(results: dict[str, Any], out: Path) -> None:
    """Render a comparison's ``results`` (see :func:`seqlab.compare.compare`) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    comparison_report(results, out).write(out)
    write_json(out / "results.json", results)
