"""Generating from causal LMs through :mod:`seqlab.inference.decoding` (greedy, beam, sampling).

Each kind of LM becomes a :class:`~seqlab.inference.decoding.Stepper`:

* :class:`RecurrentStepper`: encoders with ``step(x (N, 1, D), state)`` (RNNs, cached
  Transformers) carry their state, so each new token costs one step. Beam search reorders the
  state with the encoder's ``reorder(state, index)`` if it has one, else along the batch
  dimension ``encoder.state_batch_dim`` of every tensor in it (default 1: PyTorch's RNN
  ``(L, N, H)``; a KV cache ``(N, heads, T, D)`` declares 0).
* :class:`WindowStepper`: other causal encoders recompute over the last ``block_size`` tokens;
  the state is that window, (N, t) ids.

A prompt primes the stepper (:func:`seqlab.inference.continuation.decode_continuation`): its
last token is the first one fed, the rest builds the state. (The n-gram models' stepper is
:class:`seqlab.models.classical.ngram_stepper.NGramStepper`.)

Shapes: N stepper rows (beam hypotheses), T prompt length, V vocabulary, D embedding width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from seqlab.errors import ConfigError
from seqlab.inference.continuation import Method, decode_continuation
from seqlab.inference.decoding import DecodingConfig, reorder_state

__all__ = ["Method", "CausalLM", "RecurrentStepper", "WindowStepper", "generate"]


class CausalLM(Protocol):
    """What :func:`generate` reads of a model (a :class:`~seqlab.models.neural.NeuralModel`):
    its task (the ``lm`` task, with its codec) and its module (embedding, encoder, head)."""

    @property
    def task(self) -> Any: ...

    @property
    def module(self) -> Any: ...


class RecurrentStepper:
    """A NeuralModule whose encoder can ``step``: one token in, next-token logits out."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.encoder = module.encoder

    def prime(self, ids: list[int]) -> tuple[Tensor, Any]:
        """``(start (1,), state)`` after all of ``ids`` but the last."""
        state = None
        if len(ids) > 1:
            x = torch.tensor([ids[:-1]], dtype=torch.long, device=self._device)  # (1, T-1)
            _, state = self.encoder.step(self.module.frontend.embed(x), None)
        return torch.tensor(ids[-1:], dtype=torch.long, device=self._device), state

    @property
    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        h, state = self.encoder.step(self.module.frontend.embed(tokens[:, None]), state)  # (N, 1, H)
        mask = torch.ones(h.shape[0], 1, dtype=torch.bool, device=h.device)  # (N, 1)
        return self.module.head(h, mask)[:, -1], state  # (N, V)

    def reorder(self, state: Any, index: Tensor) -> Any:
        own = getattr(self.encoder, "reorder", None)
        if own is not None:
            return own(state, index)
        return reorder_state(state, index, dim=int(getattr(self.encoder, "state_batch_dim", 1)))


class WindowStepper(RecurrentStepper):
    """Any causal NeuralModule: the logits at the end of the last ``block`` tokens."""

    def __init__(self, module: Any, block: int) -> None:
        super().__init__(module)
        self.block = block

    def prime(self, ids: list[int]) -> tuple[Tensor, Any]:
        window = torch.tensor([ids[:-1][-(self.block - 1):] if self.block > 1 else []], dtype=torch.long)
        return torch.tensor(ids[-1:], dtype=torch.long, device=self._device), window.to(self._device)

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        seq = torch.cat([state, tokens[:, None]], dim=1)[:, -self.block :]  # (N, t)
        logits = self.module({"input_ids": seq, "mask": torch.ones_like(seq, dtype=torch.bool)})  # (N, t, V)
        return logits[:, -1], seq

    def reorder(self, state: Any, index: Tensor) -> Any:
        return reorder_state(state, index)


@torch.no_grad()
def generate(
    model: CausalLM, prompts: Sequence[str], max_new_tokens: int, decoding: DecodingConfig, *, stop_at_eos: bool = False,
) -> list[str]:
    """Continue each prompt by up to ``max_new_tokens`` tokens under ``decoding`` (method,
    temperature, top-k, top-p, beam; sampling draws from one generator seeded with
    ``decoding.seed`` for the whole call); returns the continuations as text."""
    task: Any = model.task
    if not (task.causal and hasattr(task, "codec")):
        raise ConfigError(f"generate() needs a causal language model; this model's task is {task.name!r}")
    module = model.module
    was_training = module.training
    module.eval()
    gen = torch.Generator().manual_seed(decoding.seed)
    codec = task.codec
    eos = codec.fitted_vocab.eos_id
    has_step = getattr(module.encoder, "step", None) is not None
    stepper = RecurrentStepper(module) if has_step else WindowStepper(module, task.config.block_size)
    d = decoding
    outs = []
    try:
        for prompt in prompts:
            ids = codec.encode(prompt) or [eos]
            new = decode_continuation(
                stepper, ids, max_new_tokens, eos if stop_at_eos else None, d.method, d.temperature, d.top_k, d.top_p,
                d.beam, gen,
            )
            outs.append(codec.detokenize(codec.decode(new)))
    finally:
        module.train(was_training)
    return outs
