"""``seqlab tune``: a small search over the few settings that matter, on the validation split.

The search itself is Optuna's (TPE, seeded): a well-kept library does this better than a grid
written here, and it stays an optional dependency (the ``tune`` extra). What seqlab adds is the
space and the bookkeeping: each trial is an ordinary ``build -> fit`` under a step budget (so the
search is the same on any machine), scored by the task's main metric on the validation split;
every trial's settings and score go to ``tune.json``, and the best trial is saved as an ordinary
run (``model/`` + ``run.json``) that ``evaluate``, ``predict`` and ``serve`` take as they are.

The default space, for a neural family: the learning rate (log-uniform, 3e-4 to 1e-2), dropout
(0 to 0.5) and the width ``d_model`` (64, 128 or 256; a recurrent encoder's state follows it).
Everything else comes from the family's recipe (:mod:`seqlab.recipes`) or from the settings given.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError, MissingDependencyError

__all__ = ["TuneResult", "tune", "DEFAULT_SPACE"]

#: name -> ("log", low, high) | ("float", low, high) | ("choice", [values...])
DEFAULT_SPACE: dict[str, tuple[Any, ...]] = {
    "lr": ("log", 3e-4, 1e-2),
    "dropout": ("float", 0.0, 0.5),
    "d_model": ("choice", (64, 128, 256)),
}
_TRAIN_KEYS = ("lr", "weight_decay", "batch_size", "warmup_steps")


@dataclass
class TuneResult:
    """Every trial (``{"number", "params", "value", "steps"}``), the best one, and where it was saved."""

    metric: str
    greater_is_better: bool
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    saved: Path | None = None


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("seqlab tune needs Optuna: pip install 'seqlab[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _suggest(trial: Any, space: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif kind == "float":
            out[name] = trial.suggest_float(name, spec[1], spec[2])
        elif kind == "choice":
            out[name] = trial.suggest_categorical(name, list(spec[1]))
        else:
            raise ConfigError(f"search space {name!r}: kind must be log, float or choice, found {kind!r}")
    return out


def tune(
    family: str, dataset: Any, *, trials: int = 12, max_steps: int | None = 1500, space: Mapping[str, Any] | None = None,
    out: str | Path | None = None, seed: int = 0, train: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None, verbose: bool = True, **fixed: Any,
) -> TuneResult:
    """Search ``space`` (default :data:`DEFAULT_SPACE`) for ``family`` on ``dataset`` (a
    :class:`~seqlab.data.splits.Dataset` with a validation split) in ``trials`` trials of at most
    ``max_steps`` optimizer steps each (None: the recipe's epochs). ``fixed`` model settings and
    ``train`` settings hold in every trial. With ``out``, the best trial is saved there as a run."""
    from seqlab.io import write_json
    from seqlab.models.registry import build, get_family

    optuna = _optuna()
    fam = get_family(family)
    if fam.kind != "neural":
        raise ConfigError(f"tune searches a neural family's settings; {family!r} is fitted by its own estimator")
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, found {trials}")
    if not getattr(dataset, "valid", None):
        raise ConfigError("tune scores trials on the validation split, and this dataset has none")
    space = dict(DEFAULT_SPACE if space is None else space)
    clash = sorted(set(space) & (set(fixed) | set(train or {})))
    if clash:
        raise ConfigError(f"{', '.join(clash)} is both searched and fixed; drop it from one")
    probe = build(family, dataset, task_options=task_options)
    metric, greater = probe.task.main_metric, probe.task.greater_is_better
    result = TuneResult(metric, greater)
    best_model: Any = None

    def objective(trial: Any) -> float:
        nonlocal best_model
        params = _suggest(trial, space)
        model_cfg = {**fixed, **{k: v for k, v in params.items() if k not in _TRAIN_KEYS}}
        if "d_model" in params and family in ("lstm", "gru", "elman") and "hidden_size" not in fixed:
            model_cfg["hidden_size"] = params["d_model"]  # the recurrent state follows the width
        settings = {"progress": False, "seed": seed, **dict(train or {}),
                    **{k: v for k, v in params.items() if k in _TRAIN_KEYS}}
        if max_steps is not None:
            settings["max_steps"] = max_steps
        model: Any = build(family, dataset, task_options=task_options, train=settings, **model_cfg)  # neural: result_
        model.fit(dataset.train, valid=dataset.valid)
        value = float(model.evaluate(dataset.valid)[metric])
        if not math.isfinite(value):
            value = -math.inf if greater else math.inf
        steps = model.result_.steps if model.result_ is not None else 0
        result.trials.append({"number": trial.number, "params": params, "value": value, "steps": steps})
        better = not result.best or (value > result.best["value"] if greater else value < result.best["value"])
        if better:
            result.best, best_model = dict(result.trials[-1]), model
        if verbose:
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
            print(f"[seqlab] tune trial {trial.number + 1}/{trials}: {shown} -> {metric} {value:.4f}"
                  f"{'  (best so far)' if better else ''}", file=sys.stderr, flush=True)
        return value

    study = optuna.create_study(direction="maximize" if greater else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials)))
    study.optimize(objective, n_trials=trials)
    if out is not None:
        run = Path(out)
        best_model.save(run / "model")
        write_json(run / "tune.json", {"family": family, "metric": metric, "greater_is_better": greater,
                                       "max_steps": max_steps, "seed": seed, "space": {k: list(v) for k, v in space.items()},
                                       "fixed": fixed, "train": dict(train or {}), "trials": result.trials,
                                       "best": result.best})
        result.saved = run
    result.best_model = best_model  # type: ignore[attr-defined]
    return result


def parse_space(items: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """``["lr=log:1e-4:1e-2", "dropout=float:0:0.5", "d_model=choice:64,128"]`` -> a space."""
    space: dict[str, tuple[Any, ...]] = {}
    for item in items:
        name, _, spec = item.partition("=")
        kind, _, rest = spec.partition(":")
        try:
            if kind in ("log", "float"):
                lo, hi = (float(x) for x in rest.split(":"))
                space[name] = (kind, lo, hi)
            elif kind == "choice":
                values = [int(v) if v.lstrip("-").isdigit() else float(v) for v in rest.split(",")]
                space[name] = ("choice", tuple(values))
            else:
                raise ValueError(kind)
        except ValueError:
            raise ConfigError(f"--space {item!r}: expected NAME=log:LOW:HIGH, NAME=float:LOW:HIGH or "
                              "NAME=choice:A,B,...") from None
    return space
