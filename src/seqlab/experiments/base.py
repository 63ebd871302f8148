"""What every experiment shares: the :class:`Verdict` it returns, its registry entry, and small
helpers (training through the public API, accuracy over chosen positions, the missing-family rule).

An experiment is ``run(size, out_dir, seed) -> Verdict``. ``size`` is ``"tiny"`` (seconds: the
test suite; the claim need not hold, the verdict must still follow from the numbers),
``"quick"`` (a few minutes on 2 cores) or ``"full"``. Each one trains what it needs with
``seqlab.build(...).fit(...)``, measures a statistic, saves a PNG and decides ``held`` from the
numbers by the rule written in its docstring and in ``Experiment.rule``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqlab.errors import ConfigError

__all__ = ["Size", "Verdict", "Experiment", "SIZES", "not_available", "train_cfg", "fit", "position_accuracy"]

Size = Literal["tiny", "quick", "full"]
SIZES: tuple[str, ...] = ("tiny", "quick", "full")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one experiment run.

    ``held``: True / False from the experiment's decision rule on ``numbers``; None only when a
    family it needs is not in the registry (``note`` says which). ``plot``: the PNG written
    (None when nothing ran). ``seconds``: wall time of the run.
    """

    name: str
    claim: str
    held: bool | None
    numbers: Mapping[str, float] = field(default_factory=dict)
    plot: Path | None = None
    rule: str = ""
    note: str = ""
    seconds: float = 0.0
    size: str = "quick"

    @property
    def status(self) -> str:
        if self.held is None:
            return "NOT AVAILABLE"
        return "HELD" if self.held else "NOT HELD on this run"

    def __str__(self) -> str:
        nums = ", ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items())
        lines = [f"{self.name}: {self.status} ({self.size}, {self.seconds:.1f} s)", f"  claim: {self.claim}"]
        if self.rule:
            lines.append(f"  rule: {self.rule}")
        if nums:
            lines.append(f"  numbers: {nums}")
        if self.note:
            lines.append(f"  note: {self.note}")
        if self.plot is not None:
            lines.append(f"  plot: {self.plot}")
        return "\n".join(lines)


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e9):
        return str(int(v))
    return f"{v:.4g}"


@dataclass(frozen=True)
class Experiment:
    """One registry line: the name, the claim in one sentence, the families it needs, the
    decision rule in words, and where its ``run`` lives (``module:function``, imported lazily)."""

    name: str
    claim: str
    families: tuple[str, ...]
    rule: str
    target: str

    def runner(self) -> Callable[..., Verdict]:
        import importlib

        module, fn = self.target.split(":")
        runner: Callable[..., Verdict] = getattr(importlib.import_module(module), fn)
        return runner

    def run(self, size: Size = "quick", out_dir: str | Path = "runs/experiments", seed: int = 0) -> Verdict:
        """Run the experiment; a verdict with ``held=None`` when a needed family has not landed."""
        if size not in SIZES:
            raise ConfigError(f"size must be one of {', '.join(SIZES)}; found {size!r}")
        missing = not_available(self.families)
        if missing:
            return Verdict(self.name, self.claim, None, rule=self.rule, size=size,
                           note=f"not available: {missing} has not landed")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        v = self.runner()(size, out, seed)
        return Verdict(self.name, self.claim, v.held, dict(v.numbers), v.plot, self.rule, v.note,
                       time.perf_counter() - start, size)


def not_available(families: Sequence[str]) -> str:
    """The first of ``families`` not in the model registry ('' when all are there)."""
    from seqlab.models.registry import ALIASES, FAMILIES

    for f in families:
        if f not in FAMILIES and f not in ALIASES:
            return f
    return ""


def train_cfg(epochs: int, lr: float = 3e-3, batch_size: int = 32, seed: int = 0, **extra: Any) -> dict[str, Any]:
    """Training settings for a small experiment: no weight decay, no progress bar, fixed seed."""
    return {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": 0.0, "progress": False,
            "seed": seed, "patience": None, **extra}


def fit(family: str, task: Any, train: Sequence[Any], valid: Sequence[Any] | None = None, *,
        task_options: Mapping[str, Any] | None = None, train_settings: Mapping[str, Any] | None = None,
        head: str | None = None, **config: Any) -> Any:
    """``seqlab.build(family, task, ...).fit(train, valid)``: the public API, nothing else. An
    experiment controls every setting it compares, so the data-dependent recipe is off."""
    import seqlab

    model = seqlab.build(family, task=task, task_options=task_options, train=dict(train_settings or {}),
                         head=head, recipe=False, **config)
    return model.fit(train, valid, resume=False)


def position_accuracy(model: Any, examples: Sequence[Mapping[str, Any]], positions: slice) -> float:
    """Token accuracy of ``model.predict`` on the tags at ``positions`` of each labeling example."""
    preds = model.predict([list(ex["tokens"]) for ex in examples])
    right = total = 0
    for pred, ex in zip(preds, examples):
        gold = list(ex["tags"])[positions]
        got = list(pred)[positions]
        right += sum(p == g for p, g in zip(got, gold))
        total += len(gold)
    return right / max(total, 1)
