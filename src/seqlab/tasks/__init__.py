"""Tasks: one file each (collate, loss, decoding, metrics), and a table to find them by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seqlab.config import check_keys, from_dict
from seqlab.errors import ConfigError
from seqlab.tasks.base import Batch, Encoded, EvalAccumulator, Example, Item, Task, TaskSpec
from seqlab.tasks.classification import ClassificationConfig, ClassificationTask
from seqlab.tasks.forecasting import ForecastingConfig, ForecastingTask
from seqlab.tasks.generation import GenerationConfig, GenerationTask
from seqlab.tasks.labeling import LabelingConfig, LabelingTask
from seqlab.tasks.lm import LMConfig, LMTask
from seqlab.tasks.mlm import MLMConfig, MLMTask
from seqlab.tasks.regression import RegressionConfig, RegressionTask
from seqlab.tasks.text import TextTask
from seqlab.tasks.transcription import TranscriptionConfig, TranscriptionTask

__all__ = [
    "TASKS",
    "make_task",
    "task_from_state",
    "Task",
    "TaskSpec",
    "TextTask",
    "Encoded",
    "EvalAccumulator",
    "Example",
    "Item",
    "Batch",
]

TASKS: dict[str, tuple[type[Task], type]] = {
    "classification": (ClassificationTask, ClassificationConfig),
    "forecasting": (ForecastingTask, ForecastingConfig),
    "generation": (GenerationTask, GenerationConfig),
    "labeling": (LabelingTask, LabelingConfig),
    "lm": (LMTask, LMConfig),
    "mlm": (MLMTask, MLMConfig),
    "regression": (RegressionTask, RegressionConfig),
    "transcription": (TranscriptionTask, TranscriptionConfig),
}


def make_task(name: str | TaskSpec, options: Mapping[str, Any] | None = None) -> Task:
    """A fresh (unfitted) task from its name (or a :class:`TaskSpec`, whose options come first)
    and options; unknown names/keys are errors."""
    if isinstance(name, TaskSpec):
        options = {**name.options, **dict(options or {})}
        name = name.name
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    cls, cfg_cls = TASKS[name]
    cfg: Any = from_dict(cfg_cls, dict(options or {}), where=f"task {name}")
    return cls(cfg)  # type: ignore[call-arg]


def task_from_state(name: str, state: dict[str, Any]) -> Task:
    check_keys({name: None}, list(TASKS), "saved task")
    return TASKS[name][0].from_state(state)
