"""Cost against length: time and peak memory of one training step (forward + backward) as the
sequence length L grows, for causal attention (seqlab's Transformer on SDPA), Mamba, an LSTM and
the Mamba + attention hybrid, all at the same width D.

Every model is a causal encoder of ``--layers`` layers, model width D (``--dim``): the Transformer
has a D-wide residual stream, ``--heads`` heads, RoPE and a 4D feed-forward; Mamba has a D-wide
residual stream, inner width 2D, state 16; the LSTM has D hidden units; the hybrid stacks Mamba
layers with an attention layer every ``--attention-every`` layers. Input: (B, L, D) random
embeddings, no padding (so the Transformer's causal mask reaches SDPA as ``is_causal=True``);
the backward pass takes a random (B, L, D) output gradient into every parameter.

Each (model, L) point runs in a fresh subprocess: it builds the model, warms up at L = 16 (loads
kernels, compiles the numba scan), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
reads its resident set size (VmRSS), runs one step at L and reads the peak (VmHWM). "peak MiB" is
the difference: the memory one step adds on top of the model and its input (activations, saved
tensors, gradients, workspace). Allocator caching makes the smallest lengths a few MiB noisy.
(CUDA: ``max_memory_allocated`` growth.)
Time is the best of ``--repeats`` steps in that process, the first included.

Before launching a point, its memory and time are extrapolated from the model's last two points;
a point predicted over ``--mem-limit-gb`` or ``--max-seconds`` is skipped with a note, and so is
every longer one. The log-log slope of time (and memory) against L is fitted by least squares over
the upper half of each model's measured lengths and printed beside the textbook exponent (2 for
attention, 1 for Mamba and the LSTM); the crossover is where Mamba becomes cheaper than attention,
interpolated linearly on the log-log curves.

    python bench/cost_vs_length.py [--quick] [--max-len 16384] [--dim 128] [--layers 2] [--batch 1]
        [--threads N] [--forward-only] [--mem-limit-gb 8] [--plot bench/cost_vs_length.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqlab.experiments.cost import (  # the measuring core, shared with `seqlab experiment run cost_scaling`
    ALL_LENGTHS,
    EXPECTED,
    MODELS,
    Point,
    build,
    child_args,
    crossover,
    extrapolate,
    inputs,
    loglog_slope,
    measured,
    run_point,
    step,
)

QUICK_MAX = 2048


# ---------------------------------------------------------------- the sweep, in the parent


def sdpa_kernels(args: argparse.Namespace) -> str:
    """The aten kernels the Transformer's attention actually runs (forward and backward), at L = 64."""
    from torch.profiler import profile

    model = build("attention", args).to(args.device)
    x, mask, grad = inputs(args, 64)
    with profile() as prof:
        step(model, x, mask, grad, args.forward_only)
    names = sorted({e.key for e in prof.key_averages()
                    if "scaled_dot_product" in e.key and e.key != "aten::scaled_dot_product_attention"})
    return ", ".join(names) or "none found"


def sweep(args: argparse.Namespace, names: list[str]) -> dict[str, dict[int, Point]]:
    results: dict[str, dict[int, Point]] = {n: {} for n in names}
    stopped: dict[str, str] = {}
    for length in args.lengths:
        for name in names:
            done = [(n, p) for n, p in results[name].items() if "seconds" in p]
            if name in stopped:
                results[name][length] = {"skipped": stopped[name]}
                continue
            if done:
                mem = extrapolate([(n, max(p["peak_mib"], 1.0)) for n, p in done], length, 1.0)
                sec = extrapolate([(n, min(p["seconds"])) for n, p in done], length, 1.0)
                if mem > args.mem_limit_gb * 1024:
                    stopped[name] = f"predicted {mem / 1024:.1f} GiB > --mem-limit-gb {args.mem_limit_gb:g} from L={length}"
                elif sec > args.max_seconds:
                    stopped[name] = f"predicted {sec:.0f} s/step > --max-seconds {args.max_seconds:g} from L={length}"
                if name in stopped:
                    results[name][length] = {"skipped": stopped[name]}
                    print(f"  skip {name} L={length}: {stopped[name]}", flush=True)
                    continue
            point = run_point(name, length, args, args.timeout)
            results[name][length] = point
            if "skipped" in point:
                stopped[name] = f"L={length}: {point['skipped']}"
                print(f"  skip {name} L={length}: {point['skipped']}", flush=True)
            else:
                print(f"  {name:9s} L={length:6d}  best {min(point['seconds']):9.4f} s   peak +{point['peak_mib']:9.1f} MiB",
                      flush=True)
    return results


def plot(results: dict[str, dict[int, Point]], args: argparse.Namespace, cross: int | None) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    what = "forward" if args.forward_only else "forward + backward"
    for ax, key, label in ((axes[0], "seconds", f"seconds per {what} (best)"),
                           (axes[1], "peak_mib", "peak memory added by one step (MiB)")):
        for name, res in results.items():
            ls, ys = measured(res, key)
            if ls:
                ax.plot(ls, ys, "o-", label=name)
        first = results.get("attention", {})
        ls, ys = measured(first, key) if first else ([], [])
        if ls:  # guide lines through attention's first point
            span = [ls[0], max(args.lengths)]
            for exp, style in ((1, ":"), (2, "--")):
                ax.plot(span, [ys[0] * (v / ls[0]) ** exp for v in span], style, color="grey", lw=1,
                        label=f"slope {exp}")
        if cross and key == "seconds":
            ax.axvline(cross, color="k", lw=0.8, alpha=0.5)
            ax.text(cross, 0.97, f" mamba < attention\n from L ~ {cross:,}", transform=ax.get_xaxis_transform(),
                    fontsize=8, va="top")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(args.lengths, [f"{v // 1024}k" if v >= 1024 else str(v) for v in args.lengths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("sequence length L")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    threads = args.threads or torch.get_num_threads()
    fig.suptitle(f"cost vs length: D={args.dim}, {args.layers} layers, batch {args.batch}, {args.device}, "
                 f"{threads} thread{'s' if threads > 1 else ''}", fontsize=10)
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"\nplot: {args.plot}")


def _fmt(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.2f}"


def report(results: dict[str, dict[int, Point]], args: argparse.Namespace, params: dict[str, int]) -> int | None:
    names = list(results)
    print(f"\n{'L':>6s}  " + "  ".join(f"{n + ' s':>12s} {n + ' MiB':>14s}" for n in names))
    for length in args.lengths:
        cells = []
        for n in names:
            p = results[n].get(length, {"skipped": "?"})
            if "seconds" in p:
                flag = "" if p["rss_grew"] else "<="
                cells.append(f"{min(p['seconds']):12.4f} {flag + format(p['peak_mib'], '.1f'):>14s}")
            else:
                cells.append(f"{'skipped':>12s} {'-':>14s}")
        print(f"{length:6d}  " + "  ".join(cells))
    print("('<=': the peak-RSS mark could not be reset and the step did not raise it: an upper bound)")
    print("\nparameters: " + ", ".join(f"{n} {params.get(n, 0):,}" for n in names))
    print("\nlog-log slopes: least squares over the upper half of the measured lengths (time, memory), and"
          " time's slope over the last doubling alone; expected for time:")
    for n in names:
        ls, ts = measured(results[n], "seconds")
        _, ms = measured(results[n], "peak_mib")
        st, sm, last = loglog_slope(ls, ts), loglog_slope(ls, ms), loglog_slope(ls[-2:], ts[-2:])
        span = f"L {ls[min(len(ls) // 2, len(ls) - 2)]}..{ls[-1]}" if len(ls) >= 2 else "too few points"
        print(f"  {n:9s} time {_fmt(st)}   memory {_fmt(sm)}   time, last doubling {_fmt(last)}   "
              f"expected {EXPECTED[n]}   ({span})")
    cross_at: int | None = None
    if "attention" in results:
        la, ta = measured(results["attention"], "seconds")
        _, ma = measured(results["attention"], "peak_mib")
        for n in names:
            if n == "attention":
                continue
            lb, tb = measured(results[n], "seconds")
            _, mb = measured(results[n], "peak_mib")
            ct, cm = crossover(la, ta, lb, tb), crossover(la, ma, lb, mb)
            print(f"crossover, {n} cheaper than attention: time {ct}; memory {cm}")
            if n == "mamba" and ct.startswith("L ~ "):
                cross_at = int(ct[4:].replace(",", ""))
    return cross_at


def measure(args: argparse.Namespace, names: list[str]) -> dict[str, dict[int, Point]]:
    what = "forward only (no_grad)" if args.forward_only else "forward + backward"
    print(f"{what}; D={args.dim} layers={args.layers} heads={args.heads} batch={args.batch} "
          f"device={args.device} threads={args.threads or torch.get_num_threads()} repeats={args.repeats} "
          f"torch {torch.__version__}")
    print("time: best of the repeats in a fresh process per point; memory: peak RSS (VmHWM, reset "
          "before) during the first step minus RSS before it" + (" (CUDA: max_memory_allocated)" if args.device.startswith("cuda") else ""))
    if "attention" in names:
        print(f"attention kernels (profiled at L=64): {sdpa_kernels(args)}")
    start = time.perf_counter()
    results = sweep(args, names)
    print(f"\nsweep took {time.perf_counter() - start:.0f} s")
    return results


def main() -> None:
    ap = child_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))  # the options of one point
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--max-len", type=int, default=max(ALL_LENGTHS), help="drop longer lengths")
    ap.add_argument("--quick", action="store_true", help=f"lengths up to {QUICK_MAX}, 2 repeats")
    ap.add_argument("--mem-limit-gb", type=float, default=8.0, help="skip points predicted to need more")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="skip points predicted slower per step")
    ap.add_argument("--timeout", type=float, default=900.0, help="kill a point's process after this many s")
    ap.add_argument("--plot", default=None,
                    help="PNG to write ('' for none; default bench/cost_vs_length.png, none with --quick)")
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--load", default="", help="report and plot the results saved by --json, measure nothing")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # the parent's profiling; each point sets its own
    if args.plot is None:
        args.plot = "" if args.quick else str(Path(__file__).with_name("cost_vs_length.png"))
    if args.quick:
        args.max_len = min(args.max_len, QUICK_MAX)
        args.repeats = min(args.repeats, 2)
    args.lengths = sorted(n for n in set(args.lengths) if n <= args.max_len)
    if not args.lengths:
        ap.error("no lengths at or below --max-len")
    names = list(dict.fromkeys(args.models))
    config_keys = ("dim", "layers", "heads", "attention_every", "batch", "repeats", "forward_only", "threads",
                   "device", "lengths")
    if args.load:  # report and plot saved results again, without measuring
        saved = json.loads(Path(args.load).read_text())
        for key, value in saved["config"].items():
            setattr(args, key, value)
        results = {n: {int(k): v for k, v in r.items()} for n, r in saved["results"].items()}
    else:
        results = measure(args, names)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "config": {k: getattr(args, k) for k in config_keys},
                "results": {n: {str(k): v for k, v in r.items()} for n, r in results.items()},
            }, indent=1))
    params = {n: next((p["params"] for p in results[n].values() if "params" in p), 0) for n in results}
    cross = report(results, args, params)
    if args.plot:
        plot(results, args, cross)


if __name__ == "__main__":
    main()
