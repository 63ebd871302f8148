"""What several benchmark scripts share: timing, the HMM benchmark's problem (sizes + data), and the
synthetic long-range benchmarks' models, arguments and training."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process (all threads), result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def add_hmm_args(ap: argparse.ArgumentParser) -> None:
    """The issue's HMM benchmark size: 10,000 sequences x 100 steps, 50 states, 100 symbols."""
    ap.add_argument("--n-seq", type=int, default=10000)
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--states", type=int, default=50)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def random_hmm(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start (n,), transition (n, n) and emission (n, m) probabilities (Dirichlet draws)."""
    pi = rng.dirichlet(np.ones(n))
    A = rng.dirichlet(np.ones(n) * 0.5, size=n)
    B = rng.dirichlet(np.ones(m) * 0.5, size=n)
    return pi, A, B


# --- the synthetic long-range benchmarks (selective copying, induction heads) -------------------

# the recipes and the fit/score helpers live in seqlab.experiments.longrange (shared with `seqlab experiment`),
# imported lazily so that the HMM benchmarks do not load them


def causal_model(name: str, width: int, layers: int) -> tuple[str, dict[str, Any]]:
    """(family, config) of a causal model (see seqlab.experiments.longrange.causal_model)."""
    from seqlab.errors import ConfigError
    from seqlab.experiments import longrange as _lr

    try:
        return _lr.causal_model(name, width, layers)
    except ConfigError as e:
        raise SystemExit(str(e)) from e


def add_synthetic_args(ap: argparse.ArgumentParser, *, models: str, n_test: int, epochs: int, lr: float,
                       patience: int) -> None:
    """The arguments both synthetic benchmarks take (model size, data sizes, training)."""
    from seqlab.experiments.longrange import CAUSAL_MODELS

    ap.add_argument("--models", default=models, help=f"comma list of {', '.join(CAUSAL_MODELS)}")
    ap.add_argument("--width", type=int, default=64, help="d_model (the paper: 64)")
    ap.add_argument("--layers", type=int, default=2, help="the paper: 2")
    ap.add_argument("--n-train", type=int, default=8192)
    ap.add_argument("--n-valid", type=int, default=256)
    ap.add_argument("--n-test", type=int, default=n_test)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--patience", type=int, default=patience)
    ap.add_argument("--max-time", type=float, default=None, help="training seconds per model (None: no limit)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run-dir", default=None, help="write each model's metrics.jsonl under RUN_DIR/<model>")
    ap.add_argument("--resume", action="store_true",
                    help="continue from RUN_DIR/<model>/checkpoint (--epochs counts from the first run, --max-time this one)")
    ap.add_argument("--fresh", action="store_true",
                    help="draw N_TRAIN new training sequences every epoch (the paper's recipe) instead of one fixed set")


def train_split(generator: Callable[..., list], args: argparse.Namespace, seed: int, **kwargs: Any) -> Any:
    """The training split: ``generator(args.n_train, seed=seed, **kwargs)``, or with ``--fresh``
    a ``Resampled`` that draws a new one every epoch (epoch e from a hash of (seed, e))."""
    from seqlab.data.synthetic import Resampled

    if args.fresh:
        return Resampled.of(generator, args.n_train, seed=seed, **kwargs)
    return generator(args.n_train, seed=seed, **kwargs)


def fit_synthetic(name: str, family: str, task: str, config: dict[str, Any], args: argparse.Namespace,
                  train: list, valid: list, task_options: dict[str, Any] | None = None) -> tuple[Any, float]:
    """Build and fit one model through seqlab's API (early stopping on ``valid``); returns it and
    its training seconds."""
    from seqlab.experiments import longrange as _lr

    run_dir = None if args.run_dir is None else f"{args.run_dir}/{name}"
    return _lr.fit_synthetic(family, task, config, train, valid, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, warmup=args.warmup, patience=args.patience, max_time=args.max_time,
                             run_dir=run_dir, task_options=task_options, resume=args.resume)
