"""Sequence regression: a whole sequence to one or more real numbers ("sequence to scalar").

Examples: one field per input channel, each a number per step or a list of numbers per step,
and a target: ``{"values": [0.3, 0.9, ...], "markers": [0, 1, ...], "target": 1.2}`` (the adding
problem, with ``channels=("values", "markers")``), or ``{"values": [[f1, f2], ...], "target":
[y1, y2]}``. Every channel of an example has the same number of steps.

The frontend projects each step's features (or patches of steps) to the model width; the head
pools the encoder's states and maps them to K values. With ``standardize`` (the default) each
input feature and each target is z-scored with the training split's mean and standard deviation,
so the loss is well conditioned whatever the units; predictions and metrics are in the original
units. Loss: MSE, or Huber (``loss="huber"``, ``huber_delta``), summed over the K outputs of each
example, in standardized units. Metrics (:mod:`seqlab.metrics.regression`): MAE, RMSE, R² and MSE.

Batch: ``values`` (B, T, F) float32, ``mask`` (B, T) bool, ``targets`` (B, K) float32 (NaN
when unknown: prediction inputs), ``index`` (B,) long.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict, to_dict
from seqlab.data.batching import TruncationPolicy, TruncationReport, pad_floats, truncate
from seqlab.errors import ConfigError, DataError
from seqlab.metrics import regression as rm
from seqlab.tasks.base import Batch, Encoded, Example, Item, ProbeRows, Task

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["RegressionConfig", "RegressionTask", "parse_numbers"]


def parse_numbers(text: str) -> Any:
    """A predict input for the numeric tasks: a JSON record (text starting with ``{``) or numbers
    separated by spaces or commas; anything else is a :class:`DataError` saying what was found."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            raise DataError(None, None, "a JSON record", f"invalid JSON ({e}): {text[:80]!r}") from None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise DataError(None, None, "numbers separated by spaces or commas, or a JSON record", repr(text)[:80]) from None


@dataclass(frozen=True)
class RegressionConfig:
    """``channels``: the per-step input fields; ``target``: the field of the value(s) to predict.
    ``max_len``: steps kept (None: all), by ``truncation``."""

    channels: tuple[str, ...] = ("values",)
    target: str = "target"
    loss: Literal["mse", "huber"] = "mse"
    huber_delta: float = 1.0
    standardize: bool = True
    max_len: int | None = None
    truncation: TruncationPolicy = "head"

    def __post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("channels must name at least one input field")
        if self.huber_delta <= 0:
            raise ConfigError(f"huber_delta must be > 0, found {self.huber_delta}")
        if self.max_len is not None and self.max_len < 1:
            raise ConfigError(f"max_len must be >= 1 or None, found {self.max_len}")


def _finite(arr: np.ndarray, what: str, index: int) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise DataError(None, None, f"example {index}: finite numbers in {what}", "NaN or infinity")
    return arr


class RegressionTask(Task):
    name = "regression"
    output = "values"
    causal = False
    main_metric = "rmse"
    greater_is_better = False
    alignment = "whole sequence -> one or more numbers"
    loss_name = "MSE / Huber"
    decoding = "the value"
    metric_names = ("mae", "rmse", "r2", "mse")
    input_keys = ("values",)
    prediction_kind = "sequence"
    prediction_words = "the predicted value(s)"
    ends_used = ("frontend_dim", "pooling", "patch")
    file_shapes = (("values", "target"),)
    probe_rows: ProbeRows = ""

    def __init__(self, config: RegressionConfig | None = None) -> None:
        self.config = config or RegressionConfig()
        self.keys = (*self.config.channels, self.config.target)  # type: ignore[misc]
        self.n_features = 0
        self.n_targets = 0
        self.x_mean = np.zeros(0)
        self.x_std = np.ones(0)
        self.y_mean = np.zeros(0)
        self.y_std = np.ones(0)

    # --- reading examples -----------------------------------------------------------------
    def _steps(self, ex: Any, index: int) -> np.ndarray:
        """(T, F) float64 from the example's channels."""
        if isinstance(ex, str) or not isinstance(ex, dict):
            raise DataError(None, None, f"input {index}: a record with the field(s) {', '.join(self.config.channels)} "
                            f"(or a list of numbers)", repr(ex)[:80])
        cols = []
        for c in self.config.channels:
            if c not in ex:
                raise DataError(None, None, f"example {index}: a {c!r} field", f"keys {sorted(ex)}")
            try:
                arr = np.asarray(ex[c], dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(None, None, f"example {index}: {c!r} as numbers per step", repr(ex[c])[:80]) from None
            if arr.ndim not in (1, 2) or not len(arr):
                raise DataError(None, None, f"example {index}: {c!r} as a non-empty list (of numbers or lists of numbers)",
                                f"shape {arr.shape}")
            cols.append(_finite(arr if arr.ndim == 2 else arr[:, None], repr(c), index))
        if len({len(a) for a in cols}) > 1:
            raise DataError(None, None, f"example {index}: as many steps in every channel", str([len(a) for a in cols]))
        return np.concatenate(cols, axis=1)

    def _target(self, ex: Example, index: int) -> np.ndarray:
        key = self.config.target
        if key not in ex:
            raise DataError(None, None, f"example {index}: a {key!r} field", f"keys {sorted(ex)}")
        try:
            y = np.atleast_1d(np.asarray(ex[key], dtype=np.float64))
        except (TypeError, ValueError):
            raise DataError(None, None, f"example {index}: {key!r} as a number or a list of numbers", repr(ex[key])[:80]) from None
        if y.ndim != 1 or (self.n_targets and len(y) != self.n_targets):
            raise DataError(None, None, f"example {index}: {self.n_targets or 'some'} target value(s)", f"shape {y.shape}")
        return _finite(y, repr(key), index)

    def parse_input(self, text: str) -> Any:
        """A JSON record (``{"values": [...], ...}``) or numbers separated by spaces or commas
        (the one channel's values)."""
        return parse_numbers(text)

    def _as_example(self, value: Any, index: int) -> Any:
        if isinstance(value, (list, tuple, np.ndarray)) and len(self.config.channels) == 1:
            return {self.config.channels[0]: value}
        return value

    # --- fitting and encoding -----------------------------------------------------------
    def fit(self, examples: Sequence[Example]) -> RegressionTask:
        if not examples:
            raise DataError(None, None, "at least one training example", "none")
        xs = [self._steps(ex, i) for i, ex in enumerate(examples)]
        ys = [self._target(ex, i) for i, ex in enumerate(examples)]
        if len({x.shape[1] for x in xs}) > 1:
            raise DataError(None, None, "the same number of features per step in every example", str({x.shape[1] for x in xs}))
        if len({len(y) for y in ys}) > 1:
            raise DataError(None, None, "the same number of target values in every example", str({len(y) for y in ys}))
        self.n_features, self.n_targets = xs[0].shape[1], len(ys[0])
        if self.config.standardize:
            allx, ally = np.concatenate(xs), np.stack(ys)
            self.x_mean, self.x_std = allx.mean(0), allx.std(0)
            self.y_mean, self.y_std = ally.mean(0), ally.std(0)
        else:
            self.x_mean, self.x_std = np.zeros(self.n_features), np.ones(self.n_features)
            self.y_mean, self.y_std = np.zeros(self.n_targets), np.ones(self.n_targets)
        self.x_std = np.where(self.x_std > 0, self.x_std, 1.0)
        self.y_std = np.where(self.y_std > 0, self.y_std, 1.0)
        return self

    @property
    def output_size(self) -> int:
        if not self.n_targets:
            raise ConfigError("the task is not fitted: call fit() on training examples first")
        return self.n_targets

    def _item(self, x: np.ndarray, y: np.ndarray | None, index: int) -> tuple[Item, bool]:
        if x.shape[1] != self.n_features:
            raise DataError(None, None, f"example {index}: {self.n_features} feature(s) per step", str(x.shape[1]))
        rows, cut = truncate(list((x - self.x_mean) / self.x_std), self.config.max_len, self.config.truncation, index=index)
        target = [math.nan] * self.n_targets if y is None else ((y - self.y_mean) / self.y_std).tolist()
        return {"values": np.stack(rows).astype(np.float32), "target": target, "index": index}, cut

    def encode(self, examples: Sequence[Example]) -> Encoded:
        items, refs, n_cut, longest = [], [], 0, 0
        for i, ex in enumerate(examples):
            x, y = self._steps(ex, i), self._target(ex, i)
            item, cut = self._item(x, y, i)
            items.append(item)
            refs.append(float(y[0]) if self.n_targets == 1 else y.tolist())
            n_cut, longest = n_cut + int(cut), max(longest, len(x))
        report = TruncationReport(len(examples), n_cut, self.config.max_len, self.config.truncation, longest)
        return Encoded(items=items, references=refs, report=report)

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        return [self._item(self._steps(self._as_example(v, i), i), None, i)[0] for i, v in enumerate(inputs)]

    def check_input(self, value: Any, index: int) -> None:
        self._steps(self._as_example(value, index), index)

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["values"]) for it in items]

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        values, mask = pad_floats([it["values"] for it in items])
        return {
            "values": values,  # (B, T, F)
            "mask": mask,  # (B, T) bool
            "targets": torch.tensor([it["target"] for it in items], dtype=torch.float32).view(len(items), -1),  # (B, K)
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
        }

    # --- the network's ends --------------------------------------------------------------
    def build_frontend(self, spec: EndsSpec) -> nn.Module:
        from seqlab.models.frontends import ValueFrontend

        return ValueFrontend(self.n_features, spec.embedding_dim, spec.dropout, spec.ends.patch)

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        from seqlab.models.heads import RegressionHead

        return RegressionHead(dim, self.output_size, spec.ends.pooling, spec.dropout, getattr(encoder, "last", None))

    # --- learning and decoding -----------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output`` (B, K) standardized values -> (summed loss, B * K known targets)."""
        targets = batch["targets"]
        known = ~torch.isnan(targets)
        pred, true = output.float()[known], targets[known]
        if self.config.loss == "huber":
            total = F.huber_loss(pred, true, reduction="sum", delta=self.config.huber_delta)
        else:
            total = F.mse_loss(pred, true, reduction="sum")
        return total, known.sum()

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """(B, K) -> each row's values in the original units (a float when K = 1)."""
        values = output.detach().double().cpu().numpy() * self.y_std + self.y_mean  # (B, K)
        return [float(v[0]) if self.n_targets == 1 else v.tolist() for v in values]

    def metrics(self, tallies: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        if tallies:
            out.update(mae=rm.mae(tallies, references), rmse=rm.rmse(tallies, references),
                       r2=rm.r2(tallies, references), mse=rm.mse(tallies, references))
        return out

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """The sum of a short sequence of numbers in [0, 1)."""
        rng = random.Random(seed)
        data: list[Example] = []
        for _ in range(48):
            values = [round(rng.random(), 3) for _ in range(rng.randint(2, 6))]
            data.append({"values": values, "target": sum(values)})
        return data, [[0.5, 0.25], [0.9, 0.1, 0.4]], {}

    # --- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.config), "n_features": self.n_features, "n_targets": self.n_targets,
            "x_mean": self.x_mean.tolist(), "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionTask:
        task = cls(from_dict(RegressionConfig, state["config"]))
        task.n_features, task.n_targets = int(state["n_features"]), int(state["n_targets"])
        for key in ("x_mean", "x_std", "y_mean", "y_std"):
            setattr(task, key, np.asarray(state[key], dtype=np.float64))
        return task
