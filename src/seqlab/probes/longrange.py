"""Long-range dependency: can a model recall a cue across ``d`` distractor tokens?

The task is :func:`seqlab.data.synthetic.cue_recall` as causal language modeling:
``cue x1 .. xd ? -> cue``. One model of the given family is trained on a mix of distances;
recall at distance d is the share of held-out prompts ``cue x1 .. xd ?`` whose argmax next
token (``model.predict``) is the cue. The held-out set is balanced (every distractor draw
carries every cue once), so a model that cannot see the cue scores exactly chance,
``1 / n_cues``, whenever it names some cue: an order-n n-gram does at every ``d > n - 3``.

Any registry family serving ``lm`` works unchanged (n-gram, HMM, RNNs, Transformer, Mamba...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.data.synthetic import cue_recall
from seqlab.errors import ConfigError
from seqlab.formatting import format_rows
from seqlab.probes.results import result_dict

__all__ = ["LongRangeResult", "long_range_dependency", "recall_run", "DEFAULT_TRAIN"]

#: Training settings for neural families when ``train`` is not given (small and quiet).
DEFAULT_TRAIN: dict[str, Any] = {"epochs": 3, "batch_size": 32, "lr": 3e-3, "patience": None, "progress": False}


@dataclass(frozen=True)
class LongRangeResult:
    """Recall per distance: ``accuracy[i]`` over ``counts[i]`` held-out prompts at distance
    ``distances[i]``; ``predictions[i]`` / ``targets[i]`` are the model's argmax next tokens and
    the cues, so the accuracy can be recounted. ``chance = 1 / n_cues``."""

    family: str
    distances: tuple[int, ...]
    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    chance: float
    n_train: int
    train_distances: tuple[int, ...]
    predictions: tuple[tuple[str, ...], ...]
    targets: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        rows = [[d, a, n] for d, a, n in zip(self.distances, self.accuracy, self.counts)]
        head = (f"long-range recall: {self.family}, trained on {self.n_train} examples at distances "
                f"{list(self.train_distances)}; chance {self.chance:.4g}")
        return "\n".join([head, format_rows(rows, ["distance", "accuracy", "n"])])

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self)

    def save_plot(self, path: str | Path) -> Path:
        """Recall against distance, with chance dashed."""
        from seqlab.plots import save_line_plot

        return save_line_plot({self.family: (list(self.distances), list(self.accuracy))}, path,
                              xlabel="distractors between cue and query (d)", ylabel="recall accuracy",
                              title=f"long-range recall: {self.family}", hline=(self.chance, "chance"))


def _build(family: str, train: Any, seed: int, block_size: int, model_options: Mapping[str, Any]) -> Any:
    from seqlab.models.registry import build, get_family

    fam = get_family(family)  # build refuses a family that does not serve the lm task these probes pose
    opts = dict(model_options)
    if "seed" in {f.name for f in dataclasses.fields(fam.config_class())}:
        opts.setdefault("seed", seed)
    task_options = {"tokenizer": "word", "block_size": block_size}
    if fam.kind == "classical":
        if train:
            raise ConfigError(f"model {family!r} is fitted by its own estimator and takes no train settings")
        return build(family, "lm", task_options=task_options, **opts)
    settings = {**DEFAULT_TRAIN, "seed": seed}
    if train is not None:
        is_config = dataclasses.is_dataclass(train) and not isinstance(train, type)
        settings.update(dataclasses.asdict(train) if is_config else dict(train))
    return build(family, "lm", task_options=task_options, train=settings, **opts)


def recall_run(
    family: str, train_distances: Sequence[int], eval_distances: Sequence[int], *, n_train: int, n_eval: int,
    seed: int, train: Any, n_cues: int, n_distractors: int, model_options: Mapping[str, Any],
    block_size: int | None = None,
) -> tuple[tuple[float, ...], tuple[int, ...], tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Train one ``family`` model on cue recall at ``train_distances`` and measure recall at each
    of ``eval_distances`` (``n_eval`` prompts each, rounded up to a multiple of ``n_cues``).
    ``block_size``: the LM task's training window (default: the longest training example and its
    ``<eos>``); it is widened after training so no held-out prompt is cut. Returns (accuracy, counts, predictions, targets), one entry per eval distance."""
    if n_train < 1 or n_eval < 1:
        raise ConfigError(f"n_train and n_eval must be >= 1, found {n_train} and {n_eval}")
    train_set = cue_recall(n_train, tuple(train_distances), n_cues, n_distractors, seed=seed)
    groups = math.ceil(n_eval / n_cues)
    evals = [cue_recall(groups * n_cues, (d,), n_cues, n_distractors, seed=seed + 1 + i, balanced=True)
             for i, d in enumerate(eval_distances)]
    model = _build(family, train, seed, block_size or max(train_distances) + 4, model_options)
    model.fit(train_set)
    task = model.task
    if getattr(getattr(task, "config", None), "block_size", None) is not None:
        # widen the task's prompt window so no held-out prompt is cut (training is over)
        task.config = dataclasses.replace(task.config, block_size=max(max(eval_distances) + 4, task.config.block_size))
    prompts = [ex["tokens"][:-1] for ev in evals for ex in ev]
    flat = [str(p) for p in model.predict(prompts)]
    accuracy, counts, preds, targets = [], [], [], []
    start = 0
    for ev in evals:
        got = tuple(flat[start : start + len(ev)])
        want = tuple(ex["cue"] for ex in ev)
        start += len(ev)
        accuracy.append(sum(a == b for a, b in zip(got, want)) / len(ev))
        counts.append(len(ev))
        preds.append(got)
        targets.append(want)
    return tuple(accuracy), tuple(counts), tuple(preds), tuple(targets)


def long_range_dependency(
    family: str, distances: Sequence[int] = (0, 1, 2, 4, 8, 16), n_train: int = 2000, seed: int = 0,
    train: Any = None, *, n_eval: int = 64, n_cues: int = 4, n_distractors: int = 8, **model_options: Any,
) -> LongRangeResult:
    """Train one ``family`` LM on cue recall at a mix of ``distances`` (``n_train`` seeded
    examples) and report recall per distance on ``n_eval`` balanced held-out prompts each.

    ``train``: training settings for neural families (a mapping or TrainConfig, over
    :data:`DEFAULT_TRAIN`; classical families take none); ``model_options``: the family's
    hyperparameters (``order=3``, ``hidden_size=32``...); the family's ``seed`` defaults to ``seed``.
    """
    dists = tuple(int(d) for d in distances)
    if not dists or min(dists) < 0:
        raise ConfigError(f"distances must be a non-empty list of integers >= 0, found {tuple(distances)}")
    acc, counts, preds, targets = recall_run(
        family, dists, dists, n_train=n_train, n_eval=n_eval, seed=seed, train=train, n_cues=n_cues,
        n_distractors=n_distractors, model_options=model_options)
    return LongRangeResult(family, dists, acc, counts, 1.0 / n_cues, n_train, dists, preds, targets)
