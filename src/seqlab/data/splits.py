"""Datasets as train/valid/test splits: the :class:`Dataset` record, what a dataset is
(:class:`DatasetInfo`), and the seeded functions that split examples into the three splits.

Splits are pure functions of ``seed`` (a private ``random.Random(seed)``, stable across
machines and Python versions); within a split, examples keep their file order. Used by the
bundled catalog (:mod:`seqlab.data.datasets`) and the user's files
(:mod:`seqlab.data.user_files`); import them all from :mod:`seqlab.data.datasets`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from seqlab.errors import ConfigError
from seqlab.tasks import TASKS as _TASK_REGISTRY
from seqlab.tasks import TaskSpec

__all__ = [
    "TaskSpec",
    "Example",
    "Fractions",
    "Splits",
    "TASKS",
    "DatasetInfo",
    "Dataset",
    "check_fractions",
    "split_examples",
    "contiguous_split",
]

Example = dict[str, Any]
Fractions = tuple[float, float, float]
Splits = tuple[list[Example], list[Example], list[Example]]

TASKS: tuple[str, ...] = tuple(_TASK_REGISTRY)  # the task registry's names


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is and where it comes from. ``size`` is filled when it is installed."""

    name: str
    task: str
    description: str
    source: str
    licence: str
    extra: str
    size: str = "not installed"


@dataclass
class Dataset:
    """Three splits of examples and the task they pose: ``task`` is a :class:`TaskSpec` (name
    and the options that task needs; a name given here becomes one with ``task_options``)."""

    name: str
    task: TaskSpec
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    info: DatasetInfo
    task_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.task.name if isinstance(self.task, TaskSpec) else self.task
        if name not in TASKS:
            raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
        self.task_options = {**(self.task.options if isinstance(self.task, TaskSpec) else {}), **self.task_options}
        self.task = TaskSpec(name, dict(self.task_options))

    def can_pose(self) -> list[str]:
        """The registered tasks whose example keys every example of this dataset has."""
        rows = [*self.train, *self.valid, *self.test]
        return [name for name, (cls, _) in _TASK_REGISTRY.items()
                if cls.file_shapes and all(any(all(k in ex for k in keys) for keys in cls.file_shapes) for ex in rows)]

    def posed_as(self, task: str) -> Dataset:
        """The same examples posing ``task`` (the dataset's task options that ``task`` takes come
        along); a task the examples cannot serve is an error naming the ones they can."""
        if task == self.task.name:
            return self
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
        posable = self.can_pose()
        if task not in posable:
            raise ConfigError(f"dataset {self.name!r} cannot pose task {task!r} (its examples lack the keys it reads); "
                              f"it poses {', '.join(posable) or 'none'}")
        accepted = {f.name for f in fields(_TASK_REGISTRY[task][1])}
        options = {k: v for k, v in self.task.options.items() if k in accepted}
        return replace(self, task=TaskSpec(task, options), task_options=options)


# --------------------------------------------------------------------------- splitting


def check_fractions(fractions: Sequence[float]) -> Fractions:
    """Validate ``(train, valid, test)`` fractions: non-negative, train > 0, sum 1."""
    problem = "must be three numbers (train, valid, test), non-negative, train > 0, summing to 1"
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions {problem}; got {fractions!r}") from None
    if len(fr) != 3 or min(fr) < 0 or fr[0] <= 0 or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"fractions {problem}; got {fractions!r}")
    return (fr[0], fr[1], fr[2])


def _cut(n: int, fractions: Fractions) -> tuple[int, int]:
    """Sizes of valid and test for ``n`` items (rounded), leaving at least one for train.

    When there are too few items, the larger of the two (test on a tie) gives way first.
    """
    n_valid, n_test = round(n * fractions[1]), round(n * fractions[2])
    while n_valid + n_test >= n and n_valid + n_test > 0:
        if n_test >= n_valid:
            n_test -= 1
        else:
            n_valid -= 1
    return n_valid, n_test


def _assign(n: int, rng: random.Random, fractions: Fractions) -> list[int]:
    """A split id (0 train, 1 valid, 2 test) for each of ``n`` items, drawn with ``rng``."""
    order = list(range(n))
    rng.shuffle(order)
    n_valid, n_test = _cut(n, fractions)
    which = [0] * n
    for i in order[:n_valid]:
        which[i] = 1
    for i in order[n_valid : n_valid + n_test]:
        which[i] = 2
    return which


def split_examples(
    examples: Sequence[Example],
    seed: int,
    fractions: Fractions = (0.8, 0.1, 0.1),
    stratify: str | None = None,
    group: Callable[[Example], Any] | None = None,
) -> Splits:
    """Split examples at random into train/valid/test, deterministically from ``seed``.

    ``stratify`` names a key (e.g. ``"label"``) whose classes are split separately, so each
    split keeps the class proportions. ``group`` maps an example to a group id; whole groups
    are split, so no group is shared between splits. Examples keep their input order.
    """
    fr = check_fractions(fractions)
    rng = random.Random(seed)
    if group is not None:
        groups = list(dict.fromkeys(group(ex) for ex in examples))
        which_group = dict(zip(groups, _assign(len(groups), rng, fr)))
        which = [which_group[group(ex)] for ex in examples]
    elif stratify is not None:
        which = [0] * len(examples)
        classes: dict[Any, list[int]] = {}
        for i, ex in enumerate(examples):
            classes.setdefault(ex[stratify], []).append(i)
        for key in sorted(classes, key=repr):
            members = classes[key]
            for i, w in zip(members, _assign(len(members), rng, fr)):
                which[i] = w
    else:
        which = _assign(len(examples), rng, fr)
    out: Splits = ([], [], [])
    for ex, w in zip(examples, which):
        out[w].append(ex)
    return out


def contiguous_split(examples: Sequence[Example], fractions: Fractions) -> Splits:
    """Cut each example's text into three contiguous pieces at line boundaries."""
    out: Splits = ([], [], [])
    for ex in examples:
        text: str = ex["text"]
        n = len(text)
        a = _line_end(text, round(n * fractions[0]))
        b = _line_end(text, max(a, round(n * (fractions[0] + fractions[1]))))
        for split, piece in zip(out, (text[:a], text[a:b], text[b:])):
            if piece:
                split.append({**ex, "text": piece})
    return out


def _line_end(text: str, pos: int) -> int:
    """The index just after the first newline at or after ``pos`` (or the text's end)."""
    k = text.find("\n", pos)
    return len(text) if k < 0 else k + 1
