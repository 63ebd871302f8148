"""Length generalization: train on sequences up to length n, test at n, 2n, 4n, 8n.

The task is cue recall (:func:`seqlab.data.synthetic.cue_recall`) as causal language modeling,
whose answer is known at any length: a sequence ``cue x1 .. xd ? cue`` has length ``d + 3``.
Training draws lengths uniformly from ``3 .. n`` (distances ``0 .. n - 3``) with training
windows of ``n`` tokens, so no training position lies beyond ``n``; evaluation prompts of
length ``L = factor * n`` (distance ``L - 3``) ask for the cue after ``?``. Chance is
``1 / n_cues`` exactly (balanced held-out sets; see :mod:`seqlab.probes.longrange`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError
from seqlab.formatting import format_rows
from seqlab.probes.longrange import recall_run
from seqlab.probes.results import result_dict

__all__ = ["LengthResult", "length_generalization"]


@dataclass(frozen=True)
class LengthResult:
    """Recall at each evaluation length ``lengths[i] = factors[i] * train_length``:
    ``accuracy[i]`` over ``counts[i]`` prompts; ``predictions`` / ``targets`` for recounting."""

    family: str
    train_length: int
    factors: tuple[float, ...]
    lengths: tuple[int, ...]
    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    chance: float
    n_train: int
    predictions: tuple[tuple[str, ...], ...]
    targets: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        rows = [[f, n, a, c] for f, n, a, c in zip(self.factors, self.lengths, self.accuracy, self.counts)]
        head = (f"length generalization: {self.family}, trained on lengths <= {self.train_length} "
                f"({self.n_train} examples); chance {self.chance:.4g}")
        return "\n".join([head, format_rows(rows, ["factor", "length", "accuracy", "n"])])

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self)

    def save_plot(self, path: str | Path) -> Path:
        """Recall against evaluation length (log x), chance dashed."""
        from seqlab.plots import save_line_plot

        return save_line_plot({self.family: (list(self.lengths), list(self.accuracy))}, path,
                              xlabel=f"sequence length (trained up to {self.train_length})", ylabel="recall accuracy",
                              title=f"length generalization: {self.family}", logx=True,
                              hline=(self.chance, "chance"))


def length_generalization(
    family: str, train_length: int = 16, factors: Sequence[float] = (1, 2, 4, 8), n_train: int = 2000, seed: int = 0,
    train: Any = None, *, n_eval: int = 64, n_cues: int = 4, n_distractors: int = 8, **model_options: Any,
) -> LengthResult:
    """Train one ``family`` LM on cue recall of lengths ``3 .. train_length`` and report recall at
    lengths ``round(f * train_length)`` for each factor (``n_eval`` balanced prompts each).

    ``train`` / ``model_options`` as in :func:`seqlab.probes.longrange.long_range_dependency`.
    A family with a hard position limit (learned positions) may refuse the longer lengths:
    size it for ``max(factors) * train_length`` tokens.
    """
    if isinstance(train_length, bool) or not isinstance(train_length, int) or train_length < 3:
        raise ConfigError(f"train_length must be an integer >= 3 (cue, ?, cue), found {train_length!r}")
    lengths = tuple(int(round(float(f) * train_length)) for f in factors)
    if not lengths or min(lengths) < 3:
        raise ConfigError(f"every factor * train_length must be >= 3, found lengths {lengths}")
    acc, counts, preds, targets = recall_run(
        family, tuple(range(train_length - 2)), tuple(n - 3 for n in lengths), n_train=n_train, n_eval=n_eval,
        seed=seed, train=train, n_cues=n_cues, n_distractors=n_distractors, model_options=model_options,
        block_size=train_length)
    return LengthResult(family, train_length, tuple(float(f) for f in factors), lengths, acc, counts,
                        1.0 / n_cues, n_train, preds, targets)
