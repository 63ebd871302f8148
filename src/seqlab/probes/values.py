"""Probes for models that read numbers (regression, and forecasting as it lands): how much each
input step moves each output.

- :func:`value_sensitivity`: change one step's value by ``delta`` and return how far each output
  moved (the exact effect of that one edit).
- :func:`value_saliency`: the gradient of every output with respect to every input step, its
  norm over the step's features: (K, T). It shows how many steps back a model really looks,
  whatever its nominal context.

Both run the network in eval mode on one input, through the task's own encoding (so the input's
standardization and truncation are the model's). Shapes: T input steps, F features per step,
K outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError, SeqlabError

__all__ = ["value_sensitivity", "value_saliency"]


def _batch(model: Any, value: Any) -> dict[str, Tensor]:
    if getattr(model, "kind", None) != "neural":
        raise SeqlabError(f"value probes need a neural family; {getattr(model, 'family', type(model).__name__)} is not")
    if model.task.output != "values":
        raise ConfigError(f"value probes are for tasks whose outputs are values; task {model.task.name!r} is not")
    from seqlab.data.batching import move_to

    task = model.task
    return move_to(task.collate(task.encode_inputs([value])), model.device)


def _outputs(model: Any, batch: dict[str, Tensor]) -> Tensor:
    """(K,) the outputs in the task's original units."""
    module = model.module
    out = module(batch)  # (1, K) standardized
    scale = torch.as_tensor(model.task.y_std, dtype=out.dtype, device=out.device)
    shift = torch.as_tensor(model.task.y_mean, dtype=out.dtype, device=out.device)
    return (out[0] * scale + shift)  # (K,)


def value_sensitivity(model: Any, value: Any, position: int, delta: float = 1.0, feature: int = 0) -> Tensor:
    """(K,) float64: each output after adding ``delta`` (in the input's own units) to ``feature``
    of step ``position``, minus the output before."""
    batch = _batch(model, value)
    t, f = batch["values"].shape[1:]
    if not 0 <= position < t or not 0 <= feature < f:
        raise ConfigError(f"position must be in [0, {t}) and feature in [0, {f}), found {position} and {feature}")
    module, was_training = model.module, model.module.training
    module.eval()
    try:
        with torch.no_grad():
            before = _outputs(model, batch)
            edited = dict(batch)
            values = batch["values"].clone()
            values[0, position, feature] += delta / float(model.task.x_std[feature])  # the task standardizes
            edited["values"] = values
            after = _outputs(model, edited)
    finally:
        module.train(was_training)
    return (after - before).double().cpu()


def value_saliency(model: Any, value: Any) -> Tensor:
    """(K, T) float32: entry (k, t) = || d y_k / d x_t ||_2 over the step's F features, with y_k
    in the output's units and x_t in the input's (the standardization's scales applied)."""
    batch = _batch(model, value)
    module, was_training = model.module, model.module.training
    module.eval()
    x = batch["values"].clone().requires_grad_(True)  # (1, T, F) standardized
    try:
        with torch.enable_grad():
            y = _outputs(model, {**batch, "values": x})  # (K,)
            grads = [torch.autograd.grad(y[k], x, retain_graph=True)[0][0] for k in range(y.shape[0])]  # (T, F) each
    finally:
        module.train(was_training)
    inv = 1.0 / torch.as_tensor(model.task.x_std, dtype=x.dtype)  # d x_std / d x = 1 / std
    return torch.stack([(g.cpu() * inv).norm(dim=-1) for g in grads]).float()  # (K, T)
