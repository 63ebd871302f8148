"""Cost of one training step against sequence length: the measuring core shared by
``bench/cost_vs_length.py`` and the ``cost_scaling`` experiment.

Each (model, L) point runs in a fresh process (``python -m seqlab.experiments.cost --one NAME
--lengths L ...`` or the bench script's ``--one``): it builds a causal encoder of width D, warms
up at L = 16, resets the kernel's peak-RSS mark, runs ``repeats`` forward + backward steps at L
and reports the best time and the peak memory the first step added (CUDA:
``max_memory_allocated`` growth). :func:`loglog_slope` fits the exponent of cost against L.
Shapes: B batch, L length, D width.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["MODELS", "EXPECTED", "ALL_LENGTHS", "Point", "build", "inputs", "sync", "step",
           "reset_peak_rss", "one_point", "extrapolate", "measured", "loglog_slope", "crossover", "child_args",
           "point_args", "run_point"]

MODELS = ("attention", "mamba", "lstm", "hybrid")
EXPECTED = {"attention": "2", "mamba": "1", "lstm": "1", "hybrid": "2 for long L (1 while Mamba layers dominate)"}
ALL_LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384)
Point = dict[str, Any]  # {"seconds": [...], "peak_mib": float, "rss_grew": bool} or {"skipped": reason}


def build(name: str, args: argparse.Namespace) -> nn.Module:
    """A causal encoder (B, L, D) embeddings + (B, L) mask -> (B, L, D'), without dropout."""
    d = args.dim
    if name == "attention":
        from seqlab.models.transformer import TransformerConfig, TransformerEncoder

        tcfg = TransformerConfig(d_model=d, n_heads=args.heads, num_layers=args.layers, dropout=0.0,
                                 positions="rope", causal=True, max_len=max(ALL_LENGTHS))
        return TransformerEncoder(tcfg, d)
    if name == "mamba":
        from seqlab.models.mamba import MambaConfig, MambaEncoder

        return MambaEncoder(MambaConfig(d_model=d, num_layers=args.layers, dropout=0.0, causal=True), d)
    if name == "lstm":
        from seqlab.models.rnn import RNNConfig, RNNEncoder

        return RNNEncoder(RNNConfig(cell="lstm", d_model=d, hidden_size=d, num_layers=args.layers,
                                    dropout=0.0), d)
    if name == "hybrid":
        from seqlab.models.hybrid import HybridConfig, HybridEncoder

        hcfg = HybridConfig(d_model=d, num_layers=args.layers, n_heads=args.heads,
                            attention_every=args.attention_every, dropout=0.0, causal=True)
        return HybridEncoder(hcfg, d)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def inputs(args: argparse.Namespace, length: int) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(length)
    x = torch.randn(args.batch, length, args.dim, generator=g)  # (B, L, D)
    mask = torch.ones(args.batch, length, dtype=torch.bool)  # (B, L): no padding
    grad = torch.randn(args.batch, length, args.dim, generator=g)  # (B, L, D) output gradient
    return x.to(args.device), mask.to(args.device), grad.to(args.device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step(model: nn.Module, x: Tensor, mask: Tensor, grad: Tensor, forward_only: bool) -> None:
    if forward_only:
        with torch.no_grad():
            model(x, mask)
        return
    y = model(x, mask)  # (B, L, D)
    y.backward(grad)
    model.zero_grad(set_to_none=True)


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024.0  # kB


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def one_point(args: argparse.Namespace) -> Point:
    """Child of the sweep: time and peak memory of model ``args.one`` at length ``args.lengths[0]``."""
    length = args.lengths[0]
    torch.manual_seed(0)
    model = build(args.one, args).to(args.device)
    model.train(not args.forward_only)
    step(model, *inputs(args, 16), args.forward_only)  # warm-up: kernels, numba compilation
    x, mask, grad = inputs(args, length)
    cuda = args.device.startswith("cuda")
    sync(args.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base, peak0, exact = torch.cuda.memory_allocated() / 2**20, 0.0, True
    else:
        exact = reset_peak_rss()  # else the old peak (imports, warm-up) stays the mark: an upper bound
        base, peak0 = _status_mib("VmRSS"), _status_mib("VmHWM")
    seconds: list[float] = []
    peak = base
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step(model, x, mask, grad, args.forward_only)
        sync(args.device)
        seconds.append(time.perf_counter() - t0)
        if len(seconds) == 1:  # memory of the first step alone
            peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _status_mib("VmHWM")
    return {"seconds": seconds, "peak_mib": max(peak - base, 0.0), "rss_grew": exact or peak > peak0,
            "params": sum(p.numel() for p in model.parameters())}


def extrapolate(points: list[tuple[int, float]], length: int, floor_exp: float) -> float:
    """Value at ``length`` from the last two (L, value) points on a log-log line (exponent at least
    ``floor_exp``, at most 3); from one point, with exponent ``max(floor_exp, 2)``."""
    (l1, v1) = points[-1]
    exp = max(floor_exp, 2.0)
    if len(points) >= 2:
        l0, v0 = points[-2]
        if v0 > 0 and v1 > 0:
            exp = min(max(math.log(v1 / v0) / math.log(l1 / l0), floor_exp), 3.0)
    return max(v1, 1e-9) * (length / l1) ** exp


def measured(results: dict[int, Point], key: str) -> tuple[list[int], list[float]]:
    ls = [n for n, p in sorted(results.items()) if "seconds" in p]
    if key == "seconds":
        return ls, [min(results[n]["seconds"]) for n in ls]
    return ls, [max(results[n]["peak_mib"], 1e-3) for n in ls]


def loglog_slope(ls: list[int], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log L over the upper half of the points (at least 2)."""
    k = len(ls)
    if k < 2:
        return None
    lo = min(k // 2, k - 2)
    xs = [math.log(v) for v in ls[lo:]]
    zs = [math.log(v) for v in ys[lo:]]
    mx, mz = statistics.fmean(xs), statistics.fmean(zs)
    return sum((a - mx) * (b - mz) for a, b in zip(xs, zs)) / sum((a - mx) ** 2 for a in xs)


def crossover(la: list[int], a: list[float], lb: list[int], b: list[float]) -> str:
    """The length from which curve ``b`` stays below curve ``a`` (log-log, linear in between)."""
    common = sorted(set(la) & set(lb))
    if not common:
        return "no common lengths"
    da, db = dict(zip(la, a)), dict(zip(lb, b))
    gap = [math.log(db[n]) - math.log(da[n]) for n in common]  # > 0: b costs more
    if gap[-1] > 0:
        return f"none up to {common[-1]:,}"
    j = len(gap) - 1
    while j > 0 and gap[j - 1] <= 0:
        j -= 1
    if j == 0:
        return f"below {common[0]:,} (cheaper at every measured length)"
    x0, x1 = math.log(common[j - 1]), math.log(common[j])
    return f"L ~ {math.exp(x0 + (x1 - x0) * gap[j - 1] / (gap[j - 1] - gap[j])):,.0f}"


def child_args(ap: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The arguments one point needs (the bench script adds its sweep options to these)."""
    ap = ap or argparse.ArgumentParser(description="one cost point (internal)")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    ap.add_argument("--lengths", type=int, nargs="+", default=list(ALL_LENGTHS))
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--attention-every", type=int, default=2, help="hybrid: every k-th layer is attention")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--forward-only", action="store_true", help="time the forward pass alone (no_grad)")
    ap.add_argument("--threads", type=int, default=0, help="torch (and numba) threads (0: the default)")
    ap.add_argument("--device", default="cpu")
    return ap


def point_args(**values: Any) -> argparse.Namespace:
    """The child's arguments: its defaults, with ``values`` (names as in :func:`child_args`) set."""
    args = child_args().parse_args([])
    unknown = sorted(set(values) - set(vars(args)))
    if unknown:
        raise ValueError(f"unknown cost-point arguments {unknown}; valid: {sorted(vars(args))}")
    for key, value in values.items():
        setattr(args, key, value)
    return args


def run_point(name: str, length: int, args: argparse.Namespace, timeout: float) -> Point:
    """:func:`one_point` for model ``name`` at ``length`` in a fresh process (its own peak-memory
    mark); ``{"skipped": why}`` when it fails or runs past ``timeout`` seconds."""
    cmd = [sys.executable, "-m", "seqlab.experiments.cost", "--one", name, "--lengths", str(length)]
    for key in ("dim", "layers", "heads", "batch", "attention_every", "repeats", "threads", "device"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.forward_only:
        cmd.append("--forward-only")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"ran past the {timeout:g} s timeout"}
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {"skipped": f"child failed (exit {res.returncode}): {tail}"}
    point: Point = json.loads(res.stdout.strip().splitlines()[-1])
    return point


if __name__ == "__main__":  # a child point: python -m seqlab.experiments.cost --one NAME --lengths L
    import os

    _args = child_args().parse_args()
    if _args.threads:
        torch.set_num_threads(_args.threads)
        os.environ["NUMBA_NUM_THREADS"] = str(_args.threads)
    print(json.dumps(one_point(_args)))
