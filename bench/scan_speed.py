"""Selective scan forward+backward: seqlab's chunked scan vs mamba.py's ``pscan`` vs the sequential
reference, at B=8, D=128, N=16 and L in {256, 1024, 4096}, float32, CPU.

The peer is mamba.py's ``selective_scan`` formula (exp(ΔA), ΔBx, ``pscan``, contraction with C,
skip D), with ``pscan`` imported from a mamba.py source tree that is never part of seqlab: pass
the folder that holds ``mambapy/`` with ``--mambapy`` or ``MAMBAPY`` (``fetch
github:alxndrTL/mamba.py``, then ``git archive HEAD mambapy | tar -x -C DIR``). All three run on
the same inputs, alternating for ``--repeats`` rounds; best and median seconds and the ratios are
printed, with the output and gradient gaps to the reference (``--chunked`` adds the torch-ops
path that non-CPU devices use). ``--memory`` measures each method's
peak resident memory growth (ru_maxrss) in a fresh subprocess per (method, L).

    python bench/scan_speed.py --mambapy /tmp/mambapy_src [--lengths 256 1024 4096] [--memory] [--chunked]
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from seqlab.models.layers.scan import selective_scan, selective_scan_ref

Inputs = list[Tensor]
ScanFn = Callable[..., Tensor]


def load_pscan(path: str | None) -> ScanFn | None:
    if not path:
        return None
    sys.path.insert(0, str(Path(path).resolve()))
    fn: ScanFn = importlib.import_module("mambapy.pscan").pscan
    return fn


def make_inputs(b: int, length: int, d: int, n: int, seed: int = 0) -> Inputs:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, length, d, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(b, length, d, generator=g) - 3.0)  # ~ Mamba's init range
    a = -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)  # (D, N): S4D-real init
    bm = torch.randn(b, length, n, generator=g)
    cm = torch.randn(b, length, n, generator=g)
    dskip = torch.ones(d)
    return [t.requires_grad_(True) for t in (u, delta, a, bm, cm, dskip)]


def peer_scan(pscan: ScanFn) -> ScanFn:
    def run(u: Tensor, delta: Tensor, a: Tensor, bm: Tensor, cm: Tensor, dskip: Tensor) -> Tensor:
        delta_a = torch.exp(delta.unsqueeze(-1) * a)  # (B, L, D, N)
        bx = (delta.unsqueeze(-1) * bm.unsqueeze(2)) * u.unsqueeze(-1)  # (B, L, D, N)
        hs = pscan(delta_a, bx)  # (B, L, D, N)
        y: Tensor = (hs @ cm.unsqueeze(-1)).squeeze(3) + dskip * u  # (B, L, D)
        return y
    return run


def chunked_scan(u: Tensor, delta: Tensor, a: Tensor, bm: Tensor, cm: Tensor, dskip: Tensor) -> Tensor:
    return selective_scan(u, delta, a, bm, cm, dskip, impl="chunked")[0]


def methods(pscan: ScanFn | None, with_ref: bool, chunked: bool = False) -> dict[str, ScanFn]:
    out: dict[str, ScanFn] = {"seqlab": lambda *xs: selective_scan(*xs)[0]}
    if chunked:  # the torch-ops path that non-CPU devices use
        out["seqlab chunked"] = chunked_scan
    if pscan is not None:
        out["mamba.py pscan"] = peer_scan(pscan)
    if with_ref:
        out["sequential ref"] = lambda *xs: selective_scan_ref(*xs)[0]
    return out


def fwd_bwd(fn: ScanFn, xs: Inputs, grad: Tensor) -> tuple[Tensor, list[Tensor]]:
    y = fn(*xs)
    gs = torch.autograd.grad(y, xs, grad)
    return y.detach(), [g.detach() for g in gs]


def timed(fn: ScanFn, xs: Inputs, grad: Tensor) -> float:
    t0 = time.perf_counter()
    fwd_bwd(fn, xs, grad)
    return time.perf_counter() - t0


def speed(args: argparse.Namespace, pscan: ScanFn | None) -> None:
    print(f"B={args.batch} D={args.dim} N={args.state} float32, threads={torch.get_num_threads()}, fwd+bwd seconds")
    for length in args.lengths:
        xs = make_inputs(args.batch, length, args.dim, args.state)
        grad = torch.randn(args.batch, length, args.dim, generator=torch.Generator().manual_seed(1))
        fns = methods(pscan, length <= args.ref_max, args.chunked)
        y0, g0 = fwd_bwd(fns["seqlab"], xs, grad)
        for name, fn in fns.items():  # parity, and warm-up
            y1, g1 = fwd_bwd(fn, xs, grad)
            gap = max(float((a - b).abs().max()) for a, b in zip([y0, *g0], [y1, *g1]))
            print(f"  L={length} {name}: max |seqlab - {name}| over y and all gradients = {gap:.2e}")
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                times[name].append(timed(fn, xs, grad))
        ours = times["seqlab"]
        for name, ts in times.items():
            ratio = f"  x{min(ts) / min(ours):.2f} (best), x{statistics.median(ts) / statistics.median(ours):.2f} (median)"
            print(f"L={length:5d} {name:15s} best {min(ts):.4f}  median {statistics.median(ts):.4f}"
                  + ("" if name == "seqlab" else ratio + " vs seqlab"))


def one(args: argparse.Namespace, pscan: ScanFn | None) -> None:
    """Child process of --memory: peak RSS growth (MiB) of one method at one length."""
    length = args.lengths[0]
    xs = make_inputs(args.batch, length, args.dim, args.state)
    grad = torch.randn(args.batch, length, args.dim)
    fn = methods(pscan, True, True)[args.one]
    fwd_bwd(fn, make_inputs(1, 2, 2, 2), torch.ones(1, 2, 2))  # load compiled kernels before measuring
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fwd_bwd(fn, xs, grad)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((peak - base) / 1024.0)


def memory(args: argparse.Namespace, pscan: ScanFn | None) -> None:
    print("peak RSS growth during one fwd+bwd (MiB), fresh process each")
    names = list(methods(pscan, True, args.chunked))
    for length in args.lengths:
        row = []
        for name in names:
            if name == "sequential ref" and length > args.ref_max:
                continue
            cmd = [sys.executable, __file__, "--one", name, "--lengths", str(length), "--batch", str(args.batch),
                   "--dim", str(args.dim), "--state", str(args.state), "--mambapy", args.mambapy or ""]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            row.append(f"{name}: {float(out):8.1f}")
        print(f"L={length:5d}  " + "   ".join(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mambapy", default=os.environ.get("MAMBAPY"), help="folder holding mambapy/ (or $MAMBAPY)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--state", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-max", type=int, default=4096, help="longest L for the sequential reference")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--chunked", action="store_true", help="also time the chunked torch-ops path")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    pscan = load_pscan(args.mambapy)
    if pscan is None and not args.one:
        print("mamba.py not given (--mambapy or MAMBAPY): timing seqlab and the reference only")
    if args.one:
        one(args, pscan)
    elif args.memory:
        memory(args, pscan)
    else:
        speed(args, pscan)


if __name__ == "__main__":
    main()
