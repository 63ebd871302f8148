"""Continuing a prompt with any generator: prime a stepper with the prompt, then decode.

A :class:`PromptStepper` is a :class:`~seqlab.inference.decoding.Stepper` that a prompt can
prime: ``prime(ids)`` returns the prompt's last id (the first token fed) and the state after
the rest of it. Neural LMs (:mod:`seqlab.models.sampling`) and n-gram models
(:mod:`seqlab.models.classical.ngram_stepper`) implement it; :func:`decode_continuation` needs
nothing else, so it knows no model family.

Shapes: T prompt length, n new tokens at most.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from seqlab.inference.decoding import Stepper, decode

__all__ = ["Method", "PromptStepper", "decode_continuation"]

Method = Literal["sample", "greedy", "beam"]


class PromptStepper(Stepper, Protocol):
    """A :class:`~seqlab.inference.decoding.Stepper` that a prompt can prime."""

    def prime(self, ids: list[int]) -> tuple[Tensor, Any]:
        """``(start (1,), state)``: the last of ``ids`` (T,), fed first, and the state after the rest."""
        ...


def decode_continuation(
    stepper: PromptStepper, ids: list[int], n: int, eos: int | None, method: Method, temperature: float,
    top_k: int | None, top_p: float | None, beam: int, generator: torch.Generator,
) -> list[int]:
    """Up to ``n`` new ids after ``ids`` (primed through ``stepper.prime``), ``eos`` excluded."""
    start, state = stepper.prime(ids)
    return decode(method, stepper, start, state, n, eos, beam=beam, temperature=temperature, top_k=top_k,
                  top_p=top_p, generator=generator)[0][0].tokens
