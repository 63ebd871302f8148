"""Sampling from a causal LM: temperature and top-k, with a seeded generator.

Encoders that can step (RNNs) carry their state, so each new token costs one step; others
recompute over the last ``block_size`` tokens. The full decoding module (beam search, top-p,
a KV cache) comes with the generation task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from seqlab.models.neural import NeuralModel

__all__ = ["sample", "sample_logits"]


def sample_logits(logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> Tensor:
    """(B, V) logits -> (B,) ids. ``temperature == 0`` is greedy."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample(
    model: NeuralModel, prompts: Sequence[str], max_new_tokens: int, temperature: float,
    top_k: int | None, seed: int,
) -> list[str]:
    """Continue each prompt by ``max_new_tokens`` tokens; returns the continuations as text."""
    task: Any = model.task
    if task.name != "lm":
        raise ConfigError(f"generate() needs a causal LM; this model's task is {task.name!r}")
    module = model.module
    was_training = module.training
    module.eval()
    gen = torch.Generator().manual_seed(seed)
    codec = task.codec
    eos = codec.fitted_vocab.eos_id
    outs = []
    try:
        for prompt in prompts:
            ids = codec.encode(prompt) or [eos]
            new = _sample_one(module, ids, max_new_tokens, temperature, top_k, gen, task.config.block_size)
            outs.append(codec.detokenize(codec.decode(new)))
    finally:
        module.train(was_training)
    return outs


def _sample_one(
    module: Any, ids: list[int], n: int, temperature: float, top_k: int | None, gen: torch.Generator, block: int
) -> list[int]:
    step = getattr(module.encoder, "step", None)
    new: list[int] = []
    if step is not None:
        x = torch.tensor([ids], dtype=torch.long)
        h, state = step(module.embed(x), None)  # (1, T, H)
        for _ in range(n):
            mask = torch.ones(1, 1, dtype=torch.bool)
            nxt = sample_logits(module.head(h[:, -1:], mask)[:, -1], temperature, top_k, gen)
            new.append(int(nxt))
            h, state = step(module.embed(nxt.view(1, 1)), state)
        return new
    seq = list(ids)
    for _ in range(n):
        x = torch.tensor([seq[-block:]], dtype=torch.long)
        logits = module({"input_ids": x, "mask": torch.ones_like(x, dtype=torch.bool)})
        nxt = sample_logits(logits[:, -1], temperature, top_k, gen)
        seq.append(int(nxt))
        new.append(int(nxt))
    return new
