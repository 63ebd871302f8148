"""The estimator shape every classical family shares.

A family implements five methods: ``_fit`` (counting, EM, L-BFGS...), ``_score`` (what the task's
``metrics`` takes: predictions, references, summed NLL in nats and the number of scored units),
``predict``, and ``_get_state`` / ``_set_state`` (tensors + JSON-able extras). The base class does
the rest the way :class:`~seqlab.models.neural.NeuralModel` does it, so a classical model and a
neural one are saved, loaded and evaluated alike: a model directory holds ``config.json`` and
``model.safetensors`` and nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from seqlab._version import __version__
from seqlab.config import from_dict, to_dict
from seqlab.errors import ConfigError, SeqlabError
from seqlab.io import read_tensors, write_json, write_tensors
from seqlab.tasks import Example, Task, task_from_state
from seqlab.train.checkpoint import atomic_directory

__all__ = ["ClassicalModel", "ClassicalResult"]

M = TypeVar("M", bound="ClassicalModel")


@dataclass
class ClassicalResult:
    """What ``fit`` reports: the time it took and the family's own trace (EM log-likelihoods,
    optimiser objective per iteration, ...)."""

    train_time: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class ClassicalModel(ABC):
    """A classical sequence model for one task: fit, evaluate, predict, save, load."""

    kind = "classical"
    serves: ClassVar[tuple[type[Task], ...]] = ()  # the task classes the family's estimator serves

    def __init__(self, family: str, task: Task, config: Any) -> None:
        if type(task) not in self.serves:
            names = ", ".join(cls.name for cls in self.serves)
            raise ConfigError(f"the {family} family serves {names}, not {task.name!r}")
        self.family = family
        self.task = task
        self.config = config
        self.fitted_ = False
        self.train_time_: float = 0.0
        self.result_: ClassicalResult | None = None

    # --- what a family implements ---------------------------------------------------------
    @abstractmethod
    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]] | None:
        """Estimate the parameters; may return a trace (one dict per iteration)."""

    @abstractmethod
    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        """Predictions, references, NLL sum (nats) and units, exactly as ``task.metrics`` takes them."""

    @abstractmethod
    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        """The family's predictions for a list of raw inputs."""

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """The same outputs as :meth:`NeuralModel.predict` gives for the task."""
        if isinstance(inputs, (str, bytes)):
            raise SeqlabError("predict takes a list of inputs; wrap a single input in a list: predict([x])")
        return self._predict(list(inputs))

    @abstractmethod
    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The learned state: tensors (saved as safetensors) and JSON-able extras."""

    @abstractmethod
    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    # --- shared -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise SeqlabError(f"the {self.family} model is not fitted: call fit() or load a saved model")

    def fit(
        self: M, train: Sequence[Example], valid: Sequence[Example] | None = None, *,
        run_dir: str | Path | None = None, resume: bool = True,
    ) -> M:
        """Fit the task's vocabularies (once) and the model on ``train``.

        ``valid`` is passed to the family (some use it for early stopping); ``run_dir`` and
        ``resume`` are accepted so classical and neural models share one call, and unused.
        """
        if not train:
            raise SeqlabError("fit() needs at least one training example")
        if not self.fitted_:
            self.task.fit(train)
        start = time.perf_counter()
        history = self._fit(train, valid)
        seconds = time.perf_counter() - start
        self.train_time_ += seconds
        self.result_ = ClassicalResult(train_time=seconds, history=list(history or []))
        self.fitted_ = True
        return self

    def evaluate(self, split: Sequence[Example], batch_size: int | None = None) -> dict[str, float]:
        """The task's metrics on labelled examples (``batch_size`` is accepted and unused)."""
        self._check_fitted()
        if not split:
            raise SeqlabError("evaluate() needs at least one example; the split is empty")
        self.task.warn_unseen(split)
        preds, refs, nll_sum, n_units = self._score(split)
        return self.task.metrics(preds, refs, nll_sum, n_units)

    @property
    def n_parameters(self) -> int:
        """Stored numbers: table entries, probabilities, weights."""
        self._check_fitted()
        return sum(int(t.numel()) for t in self._get_state()[0].values())

    def save(self, path: str | Path) -> Path:
        """Write the model directory ``path`` (``model.safetensors`` + ``config.json``) atomically."""
        self._check_fitted()
        p = Path(path)
        tensors, extra = self._get_state()
        with atomic_directory(p) as tmp:
            write_tensors(tmp / "model.safetensors", tensors)
            write_json(tmp / "config.json", {
                "seqlab_version": __version__,
                "kind": self.kind,
                "family": self.family,
                "task": self.task.name,
                "task_state": self.task.state(),
                "model_config": to_dict(self.config),
                "state": extra,
            })
        return p

    @classmethod
    def from_saved(cls: type[M], path: str | Path, meta: dict[str, Any], config_cls: type) -> M:
        task = task_from_state(meta["task"], meta["task_state"])
        model = cls(meta["family"], task, from_dict(config_cls, meta["model_config"]))
        model._set_state(read_tensors(Path(path) / "model.safetensors"), meta.get("state") or {})
        model.fitted_ = True
        return model

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))
        return f"{type(self).__name__}({self.family!r}, task={self.task.name!r}, {fields})"
