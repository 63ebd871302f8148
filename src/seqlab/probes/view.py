"""What the probes read of a neural model: its tokens, its output labels, and its output
distributions per position (one row per token, or one per sequence), as
:mod:`seqlab.probes` needs them. Classical families implement the same three methods themselves.

``NeuralView(model)`` reads a :class:`~seqlab.models.neural.NeuralModel` through its public
surface (``task``, ``module``, ``outputs``); the task says what the rows are (``probe_rows``) and
the network's head turns scores into probabilities (softmax, or a CRF's posterior marginals).

Shapes: J output rows (the tokens, or 1 for a sequence-level output), K output labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from seqlab.errors import SeqlabError
from seqlab.tasks import TextTask

__all__ = ["NeuralView"]


class NeuralView:
    """``tokenize``, ``output_labels``, ``output_probabilities`` and ``distributions`` of a neural model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        task = model.task
        if not task.probe_rows:
            raise SeqlabError(f"output distributions are for tasks whose outputs are class distributions per token or "
                              f"per sequence; this {model.family} model serves {task.name!r}")
        if not isinstance(task, TextTask):
            raise SeqlabError(f"task {task.name!r} has no tokens to probe")
        self.task: TextTask = task

    def tokenize(self, value: Any) -> list[str]:
        """The tokens the model sees for one raw input (the task's tokenizer, lowercasing and
        truncation): :meth:`distributions` gives one row per token (lm, labeling) or one row
        (classification). Token lists are normalised only, so ``tokenize(tokenize(x)) == tokenize(x)``."""
        return self.task.input_tokens(value)

    def output_labels(self) -> list[str]:
        """Names of the K columns of :meth:`distributions`: vocabulary (lm), tags, or classes."""
        return self.task.output_labels()

    def output_probabilities(self, output: Tensor, batch: dict[str, Tensor], differentiable: bool = False) -> Tensor:
        """The network's ``output`` as probabilities: (B, T, K) or (B, K), float32. Softmax of the
        logits; with a CRF head the posterior node marginals p(y_t = k | x) (``differentiable=True``:
        differentiable through them, for a saliency)."""
        probs: Tensor = self.model.module.probabilities(output, batch, differentiable)
        return probs

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """One (J, K) float32 tensor of probabilities per raw input (J = ``len(tokenize(x))``;
        K = ``len(output_labels())``): lm row j = p(next token | tokens[: j + 1]); labeling row
        j = the label distribution at token j (CRF head: posterior marginals, not the Viterbi
        path); classification: J = 1, the class probabilities."""
        items = self.task.encode_inputs(list(inputs))
        out: dict[int, Tensor] = {}
        for output, batch in self.model.outputs(items):
            probs = self.output_probabilities(output, batch).cpu()  # (B, T, K) or (B, K)
            lengths = batch["mask"].sum(-1).tolist()
            for r, i in enumerate(batch["index"].tolist()):
                out[i] = probs[r : r + 1] if probs.dim() == 2 else probs[r, : lengths[r]]
        return [out[i] for i in range(len(items))]
