"""``seqlab probe`` sub-commands for the audits and failure-mode probes.

:data:`COMMANDS` maps a sub-command name to ``(add_args(parser), run(args) -> exit code)``:

- ``padding RUN``: :func:`~seqlab.probes.audits.padding_audit` on a split's inputs (exit 1 on a defect);
- ``truncation RUN --max-len N``: :func:`~seqlab.probes.audits.truncation_audit`;
- ``exposure RUN``: :func:`~seqlab.probes.exposure.exposure_bias` (generation runs);
- ``long-range --model FAMILY``: :func:`~seqlab.probes.longrange.long_range_dependency`;
- ``length --model FAMILY``: :func:`~seqlab.probes.length.length_generalization`.

RUN is a run directory from ``seqlab train`` (its ``model/`` is loaded; the dataset and seed come
from its ``run.json`` unless ``--dataset`` is given). The last two train a fresh model; family
settings go in ``--set model.KEY=VALUE`` and ``--set train.KEY=VALUE`` (repeatable). Every
command prints the result's table; ``--json PATH`` writes ``to_dict()``, ``--plot PATH`` the PNG.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError

__all__ = ["COMMANDS"]


# --- shared -----------------------------------------------------------------------------------------
def _outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.add_argument("--plot", metavar="PATH", help="save the result's figure (PNG)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run directory from `seqlab train` (or a saved model directory)")
    p.add_argument("--dataset", help="bundled dataset name or data file (default: the run's, from run.json)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="which split (default test)")
    p.add_argument("--n", type=int, default=64, help="use the split's first N examples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed when --dataset is given")
    _outputs(p)


def _report(result: Any, args: argparse.Namespace) -> None:
    print(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.plot:
        print(f"figure: {result.save_plot(args.plot)}")


def _load(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The run's model and the first ``--n`` examples of the split (as ``cmd_evaluate`` finds them)."""
    from seqlab.data import datasets
    from seqlab.io import read_json
    from seqlab.models.registry import load

    model = load(args.run)
    name, seed = args.dataset, args.seed
    if not name:
        run_json = Path(args.run) / "run.json"
        if not run_json.exists():
            raise SeqlabError(f"{args.run} has no run.json: pass --dataset NAME")
        run = read_json(run_json)
        name, seed = run["dataset"], run.get("seed", 0)
    ds = datasets.load_files(model.task.name, name, seed=seed) if Path(name).exists() else datasets.load(name, seed=seed)
    split = list(getattr(ds, args.split) or [])
    if not split:
        raise SeqlabError(f"dataset {name!r} has no {args.split} examples")
    return model, split[: max(args.n, 1)]


def _inputs(model: Any, examples: list[Any]) -> list[Any]:
    """Raw model inputs of examples: the whole pair for a generator (its audit teacher-forces the
    target), else the task's input field."""
    if model.task.decodes_free:
        return examples
    out = []
    keys = model.task.input_keys
    for i, ex in enumerate(examples):
        for key in keys:
            if key in ex:
                out.append(ex[key])
                break
        else:
            raise SeqlabError(f"example {i} has none of the input fields {', '.join(map(repr, keys))}")
    return out


def _settings(sets: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set model.KEY=VALUE`` / ``--set train.KEY=VALUE`` -> (model options, train settings)."""
    from seqlab.config import check_keys, parse_overrides

    cfg = parse_overrides([f"--{s}" for s in sets or []])
    check_keys(cfg, ("model", "train"), "--set (use model.KEY=VALUE or train.KEY=VALUE)")
    return dict(cfg.get("model", {})), dict(cfg.get("train", {}))


def _fresh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model family serving lm (ngram, hmm, lstm, transformer, ...)")
    p.add_argument("--n-train", type=int, default=2000, help="training examples (default 2000)")
    p.add_argument("--n-eval", type=int, default=64, help="held-out prompts per point (default 64)")
    p.add_argument("--n-cues", type=int, default=4, help="cue tokens; chance is 1 / n-cues (default 4)")
    p.add_argument("--n-distractors", type=int, default=8, help="distractor tokens (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a family setting (model.hidden_size=32) or training setting (train.epochs=5); repeatable")
    _outputs(p)


# --- the commands -------------------------------------------------------------------------------------
def add_padding(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--extra", type=int, nargs="+", default=[1, 4, 16], help="padding amounts (default 1 4 16)")
    p.add_argument("--sides", nargs="+", default=["left", "right"], choices=["left", "right"])
    p.add_argument("--tolerance", type=float, default=1e-5, help="largest allowed probability change (default 1e-5)")


def run_padding(args: argparse.Namespace) -> int:
    """Padding audit: do predictions change when padding is added on the left or right? (exit 1 on a defect)"""
    from seqlab.probes.audits import padding_audit

    model, examples = _load(args)
    result = padding_audit(model, _inputs(model, examples), tuple(args.extra), tuple(args.sides), args.tolerance)
    _report(result, args)
    return 0 if result.passed else 1


def add_truncation(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--max-len", type=int, required=True, help="cut inputs to this many tokens")


def run_truncation(args: argparse.Namespace) -> int:
    """Truncation audit: how many predictions change under cut-head, cut-tail and cut-middle truncation."""
    from seqlab.probes.audits import truncation_audit

    model, examples = _load(args)
    _report(truncation_audit(model, _inputs(model, examples), args.max_len), args)
    return 0


def add_exposure(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--max-positions", type=int, default=None, help="only target positions below this")


def run_exposure(args: argparse.Namespace) -> int:
    """Exposure bias: per-position error, teacher-forced against free-running (generation runs)."""
    from seqlab.probes.exposure import exposure_bias

    model, examples = _load(args)
    _report(exposure_bias(model, examples, args.max_positions), args)
    return 0


def add_long_range(p: argparse.ArgumentParser) -> None:
    _fresh_args(p)
    p.add_argument("--distances", type=int, nargs="+", default=[0, 1, 2, 4, 8, 16], help="distractor counts d")


def run_long_range(args: argparse.Namespace) -> int:
    """Long-range dependency: train a family on cue recall, accuracy against cue distance."""
    from seqlab.probes.longrange import long_range_dependency

    model_opts, train = _settings(args.set)
    result = long_range_dependency(
        args.model, tuple(args.distances), args.n_train, args.seed, train or None, n_eval=args.n_eval,
        n_cues=args.n_cues, n_distractors=args.n_distractors, **model_opts)
    _report(result, args)
    return 0


def add_length(p: argparse.ArgumentParser) -> None:
    _fresh_args(p)
    p.add_argument("--train-length", type=int, default=16, help="longest training sequence n (default 16)")
    p.add_argument("--factors", type=float, nargs="+", default=[1, 2, 4, 8], help="evaluate at f * n (default 1 2 4 8)")


def run_length(args: argparse.Namespace) -> int:
    """Length generalization: train on lengths up to n, accuracy at n, 2n, 4n, 8n."""
    from seqlab.probes.length import length_generalization

    model_opts, train = _settings(args.set)
    result = length_generalization(
        args.model, args.train_length, tuple(args.factors), args.n_train, args.seed, train or None,
        n_eval=args.n_eval, n_cues=args.n_cues, n_distractors=args.n_distractors, **model_opts)
    _report(result, args)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "padding": (add_padding, run_padding),
    "truncation": (add_truncation, run_truncation),
    "exposure": (add_exposure, run_exposure),
    "long-range": (add_long_range, run_long_range),
    "length": (add_length, run_length),
}
