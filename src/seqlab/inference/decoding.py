"""Decoding for every generator: greedy, batched beam search, and sampling (temperature, top-k, top-p).

A generator (an RNN or Transformer decoder, an n-gram LM) implements one small interface,
:class:`Stepper`: ``step(tokens, state) -> (scores, state)`` feeds the last token of each
row and returns the scores of the next one, and ``reorder(state, index)`` selects rows of its
state (beam search keeps, duplicates and drops hypotheses). :func:`reorder_state` does that for
any nest of tuples, lists and dicts of tensors with a declared batch dimension, so an RNN's
``(L, N, H)`` state and a KV cache's ``(N, heads, T, D)`` need no code of their own
(:class:`FunctionStepper` wraps a plain step function this way).

Conventions shared by the three decoders:

* ``start`` (B,) is the first token fed (``<bos>``, or a prompt's last token with the state
  after the rest of the prompt). ``max_len`` counts generated tokens, ``<eos>`` included.
* The stepper may return logits or log-probabilities: they are normalised here with
  ``log_softmax`` (a no-op on log-probabilities). Scores are sums of these log-probabilities.
* ``eos=None``: nothing ends a sequence, every row runs ``max_len`` steps. ``min_len``:
  ``<eos>`` is forbidden (its score set to ``-inf``, without renormalising, as fairseq does)
  while fewer than ``min_len`` tokens have been generated.
* A :class:`Hypothesis` holds the tokens without ``<eos>``, ``finished`` (it ended with
  ``<eos>``), its length (tokens + ``<eos>``), its log-probability and its ranking score.

Beam search (Graves 2012; batched as in fairseq) keeps ``beam`` live hypotheses per row: the
best ``beam`` extensions by other tokens. An extension by ``<eos>`` that ranks among the row's
best ``beam`` of all extensions (as in fairseq, so ``beam=1`` is greedy) is set aside among
the row's finished hypotheses, ranked by the
length-normalised score ``log p / lp(length)``: ``lp = ((5 + length) / 6) ** alpha`` (GNMT, Wu
et al. 2016), ``length ** alpha`` ("power"), or 1 ("none"). Live hypotheses at ``max_len``
join the pool as unfinished. The search stops early only when no live hypothesis can still
beat the row's ``n_best``-th finished one (log-probabilities only fall, so
``score / max lp(remaining lengths)`` bounds it): with ``beam`` at least the number of
extensions (live prefixes times V) the search is exhaustive, which the tests check against enumeration.

Sampling draws from ``softmax(scores / temperature)`` restricted by top-k (Fan et al. 2018)
and top-p, the nucleus (Holtzman et al. 2020): the smallest set of most likely tokens whose
probability reaches ``p``. ``temperature == 0`` is greedy.

Shapes: B rows (prompts or sources), K beam, N = B * K stepper rows, V vocabulary, L length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from seqlab.errors import ConfigError

__all__ = [
    "Stepper", "FunctionStepper", "Hypothesis", "LengthPenalty", "reorder_state", "length_penalty",
    "filter_logits", "greedy", "beam_search", "sample", "sample_logits", "decode", "DecodingConfig", "decode_with",
]

LengthPenalty = Literal["none", "gnmt", "power"]
Method = Literal["greedy", "sample", "beam"]


@dataclass(frozen=True)
class DecodingConfig:
    """How a generator decodes, passed per call (``predict(x, decoding=...)``) and saved with the
    model as its default; nothing else changes how later calls decode.

    ``method``: greedy, beam (width ``beam``; ``length_penalty`` none | gnmt | power with
    ``alpha``; ``n_best`` outputs per input) or sample (``temperature``, ``top_k``, ``top_p``;
    each call draws from a generator seeded with ``seed``, so it is reproducible). ``max_len``:
    output tokens (None: the caller's default, e.g. twice the source length + 10).
    """

    method: Method = "greedy"
    beam: int = 4
    max_len: int | None = None
    length_penalty: LengthPenalty = "gnmt"
    alpha: float = 0.6
    n_best: int = 1
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam", "sample"):
            raise ConfigError(f"decoding method must be greedy, beam or sample, found {self.method!r}")
        if self.beam < 1 or self.n_best < 1:
            raise ConfigError(f"beam and n_best must be >= 1, found {self.beam} and {self.n_best}")
        if self.n_best > 1 and self.method != "beam":
            raise ConfigError("n_best > 1 needs method='beam'")
        if self.method == "beam" and self.n_best > self.beam:
            raise ConfigError(f"n_best ({self.n_best}) cannot exceed the beam width ({self.beam})")
        if self.max_len is not None and self.max_len < 1:
            raise ConfigError(f"max_len must be >= 1 or None, found {self.max_len}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, found {self.temperature}")
        length_penalty(1, self.length_penalty, self.alpha)  # validates the kind


class Stepper(Protocol):
    """What a generator implements to be decoded."""

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """``tokens`` (N,) long, the last id of each row -> next-token scores (N, V), new state."""
        ...

    def reorder(self, state: Any, index: Tensor) -> Any:
        """The state of rows ``index`` (M,) long, in that order (rows may repeat)."""
        ...


def reorder_state(state: Any, index: Tensor, dim: int = 0) -> Any:
    """Select rows ``index`` along ``dim`` of every tensor in a nest of tuples, lists, dicts
    and dataclasses (``None`` and other leaves pass through). Returns a new nest; inputs are not mutated."""
    if isinstance(state, Tensor):
        return state.index_select(dim, index.to(state.device))
    if isinstance(state, tuple):
        return tuple(reorder_state(s, index, dim) for s in state)
    if isinstance(state, list):
        return [reorder_state(s, index, dim) for s in state]
    if isinstance(state, dict):
        return {k: reorder_state(v, index, dim) for k, v in state.items()}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        fields = {f.name: reorder_state(getattr(state, f.name), index, dim) for f in dataclasses.fields(state) if f.init}
        return dataclasses.replace(state, **fields)
    return state


class FunctionStepper:
    """A :class:`Stepper` from a step function whose state tensors all have their batch
    dimension at ``batch_dim`` (1 for PyTorch RNN states (L, N, H))."""

    def __init__(self, step: Callable[[Tensor, Any], tuple[Tensor, Any]], batch_dim: int = 0) -> None:
        self._step = step
        self.batch_dim = batch_dim

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self._step(tokens, state)

    def reorder(self, state: Any, index: Tensor) -> Any:
        return reorder_state(state, index, self.batch_dim)


@dataclass(frozen=True)
class Hypothesis:
    """One decoded sequence: ``tokens`` without ``<eos>``; ``length`` counts ``<eos>`` too."""

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool

    @property
    def length(self) -> int:
        return len(self.tokens) + int(self.finished)


def length_penalty(length: int, kind: LengthPenalty, alpha: float) -> float:
    """The divisor of a hypothesis' log-probability: GNMT's ``((5 + l) / 6) ** alpha``,
    ``l ** alpha`` ("power") or 1 ("none")."""
    if kind == "gnmt":
        return float(((5 + length) / 6) ** alpha)
    if kind == "power":
        return float(length**alpha)
    if kind == "none":
        return 1.0
    raise ConfigError(f"unknown length penalty {kind!r}; valid: none, gnmt, power")


def _check(max_len: int, min_len: int, eos: int | None) -> None:
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, found {max_len}")
    if not 0 <= min_len <= max_len:
        raise ConfigError(f"min_len must be in [0, max_len={max_len}], found {min_len}")
    if min_len and eos is None:
        raise ConfigError("min_len needs an eos id")


def _log_probs(stepper: Stepper, tokens: Tensor, state: Any, t: int, eos: int | None, min_len: int) -> tuple[Tensor, Any]:
    scores, state = stepper.step(tokens, state)
    logp = torch.log_softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)), dim=-1)  # (N, V)
    if eos is not None and t < min_len:
        logp = logp.clone()
        logp[:, eos] = float("-inf")
    return logp, state


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """(N, V) logits with ``-inf`` outside the top-k / top-p support (both may apply: top-k
    first). Top-p keeps, in order of probability, every token while the mass before it is
    below ``p`` (so at least one). Ties at the top-k boundary are all kept."""
    if top_k is not None:
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, found {top_k}")
        if top_k < logits.shape[-1]:
            kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (N, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], found {top_p}")
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (N, V)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # (N, V) mass of the more likely tokens
        drop_sorted = before >= top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _run(
    stepper: Stepper, start: Tensor, state: Any, max_len: int, eos: int | None, min_len: int,
    pick: Callable[[Tensor], Tensor],
) -> list[Hypothesis]:
    """Token-by-token decoding with ``pick((N, V) log-probs) -> (N,) ids``."""
    _check(max_len, min_len, eos)
    n = start.shape[0]
    tokens = start
    done = torch.zeros(n, dtype=torch.bool)
    total = torch.zeros(n, dtype=torch.float64)
    steps: list[Tensor] = []
    for t in range(max_len):
        logp, state = _log_probs(stepper, tokens, state, t, eos, min_len)
        nxt = pick(logp)  # (N,)
        chosen = logp.gather(1, nxt[:, None])[:, 0].cpu().double()  # (N,)
        tokens = nxt.to(start.device)
        nxt = nxt.cpu()
        if eos is None:
            total += chosen
            steps.append(nxt)
            continue
        total += chosen.masked_fill(done, 0.0)
        steps.append(nxt.masked_fill(done, -1))
        done = done | (nxt == eos)
        if bool(done.all()):
            break
    ids = torch.stack(steps, 1).tolist()  # (N, L), -1 after the end
    out = []
    for row, lp in zip(ids, total.tolist()):
        seq = [i for i in row if i >= 0]
        fin = eos is not None and bool(seq) and seq[-1] == eos
        out.append(Hypothesis(seq[:-1] if fin else seq, lp, lp, fin))
    return out


def greedy(stepper: Stepper, start: Tensor, state: Any, max_len: int, eos: int | None = None, min_len: int = 0) -> list[Hypothesis]:
    """The most likely next token at every step, for each of the B rows at once."""
    return _run(stepper, start, state, max_len, eos, min_len, lambda logp: logp.argmax(-1))


def sample(
    stepper: Stepper, start: Tensor, state: Any, max_len: int, eos: int | None = None, *,
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
    generator: torch.Generator | None = None, min_len: int = 0,
) -> list[Hypothesis]:
    """Ancestral sampling, one sequence per row. ``log_prob`` is under the model itself (not
    the tempered, truncated distribution drawn from). ``temperature == 0`` is :func:`greedy`."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, found {temperature}")
    if temperature == 0:
        return greedy(stepper, start, state, max_len, eos, min_len)
    gen = generator or torch.Generator().manual_seed(0)
    return _run(stepper, start, state, max_len, eos, min_len,
                lambda logp: sample_logits(logp.cpu(), temperature, top_k, gen, top_p))


def sample_logits(
    logits: Tensor, temperature: float, top_k: int | None, generator: torch.Generator, top_p: float | None = None,
) -> Tensor:
    """(N, V) logits -> (N,) ids drawn from ``softmax(logits / temperature)`` restricted to the
    top-k / top-p support (:func:`filter_logits`). ``temperature == 0`` is the argmax."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(-1)  # (N, V)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def decode(
    method: Literal["greedy", "sample", "beam"], stepper: Stepper, start: Tensor, state: Any, max_len: int,
    eos: int | None = None, *, beam: int = 4, n_best: int = 1, penalty: LengthPenalty = "none", alpha: float = 1.0,
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """One entry point for every generator: each row's hypotheses, best first (one for greedy
    and sampling, ``n_best`` for beam search)."""
    if method == "greedy":
        return [[h] for h in greedy(stepper, start, state, max_len, eos)]
    if method == "sample":
        return [[h] for h in sample(stepper, start, state, max_len, eos, temperature=temperature, top_k=top_k,
                                    top_p=top_p, generator=generator)]
    if method == "beam":
        return beam_search(stepper, start, state, max_len, eos, beam=beam, n_best=n_best, penalty=penalty, alpha=alpha)
    raise ConfigError(f"unknown decoding method {method!r}; valid: greedy, sample, beam")


def decode_with(
    config: DecodingConfig, stepper: Stepper, start: Tensor, state: Any, max_len: int, eos: int | None = None,
    stream: int = 0,
) -> list[list[Hypothesis]]:
    """:func:`decode` under a :class:`DecodingConfig` (its ``max_len`` wins over the argument).
    Sampling draws from a generator seeded by ``(config.seed, stream)``: callers pass a stream per
    batch (e.g. its first item's index), so batches draw apart and a call is reproducible."""
    gen = None
    if config.method == "sample":
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + stream)
    return decode(config.method, stepper, start, state, config.max_len or max_len, eos, beam=config.beam,
                  n_best=config.n_best, penalty=config.length_penalty, alpha=config.alpha,
                  temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, generator=gen)


def _expand(stepper: Stepper, state: Any, b: int, k: int) -> Any:
    return stepper.reorder(state, torch.arange(b).repeat_interleave(k))


def beam_search(
    stepper: Stepper, start: Tensor, state: Any, max_len: int, eos: int | None = None, *,
    beam: int = 4, n_best: int = 1, penalty: LengthPenalty = "none", alpha: float = 1.0, min_len: int = 0,
) -> list[list[Hypothesis]]:
    """Batched beam search: for each of the B rows, its ``n_best`` hypotheses, best first,
    ranked by ``log_prob / lp(length)`` (ties: earlier found first). ``state`` has B rows."""
    _check(max_len, min_len, eos)
    if beam < 1 or not 1 <= n_best:
        raise ConfigError(f"beam and n_best must be >= 1, found beam={beam}, n_best={n_best}")
    b, k = start.shape[0], beam
    dev = start.device
    state = _expand(stepper, state, b, k)
    tokens = start.repeat_interleave(k)  # (N,)
    score = torch.full((b, k), float("-inf"), dtype=torch.float64)
    score[:, 0] = 0.0  # one live hypothesis per row to begin with
    hist = torch.zeros(b, k, 0, dtype=torch.long)  # (B, K, t)
    pools: list[list[Hypothesis]] = [[] for _ in range(b)]
    lp_max = [max(length_penalty(n, penalty, alpha) for n in range(t + 1, max_len + 1)) for t in range(max_len)]
    for t in range(max_len):
        logp, state = _log_probs(stepper, tokens, state, t, eos, min_len)
        cand = score[:, :, None] + logp.cpu().double().view(b, k, -1)  # (B, K, V)
        v = cand.shape[-1]
        # one top-k per step: at most K <eos> candidates (one per beam), so the best 2K hold the
        # K best of all and, after them, at least K that continue
        vals, flat = cand.view(b, k * v).topk(min(2 * k if eos is not None else k, k * v), dim=-1)  # (B, <=2K)
        if eos is not None:  # <eos> ends a hypothesis when it ranks among the row's top K
            kk = min(k, k * v)
            kth = vals[:, kk - 1 : kk]  # (B, 1) the row's K-th best candidate, <eos> included
            ends = cand[:, :, eos]  # (B, K)
            _finish(pools, ends.masked_fill(ends < kth, float("-inf")), hist, t + 1, n_best, penalty, alpha)
            live = vals.masked_fill(flat % v == eos, float("-inf"))  # (B, <=2K)
            top, pos = live.topk(kk, dim=-1)  # (B, K)
            flat = flat.gather(1, pos)
        else:
            top = vals
        src, tok = flat // v, flat % v  # (B, K) parent beam, new token
        score = top
        hist = torch.cat([hist.gather(1, src[:, :, None].expand(-1, -1, t)), tok[:, :, None]], dim=2)
        if t + 1 == max_len:
            _finish(pools, score, hist, None, k, penalty, alpha)
            break
        if _can_stop(pools, score, n_best, lp_max[t + 1]):
            break
        index = (src + torch.arange(b)[:, None] * k).view(-1)  # (N,) rows of the old state
        state = stepper.reorder(state, index.to(dev))
        tokens = tok.view(-1).to(dev)
    return [sorted(p, key=lambda h: -h.score)[:n_best] for p in pools]


def _finish(
    pools: list[list[Hypothesis]], scores: Tensor, hist: Tensor, length: int | None, keep: int,
    penalty: LengthPenalty, alpha: float,
) -> None:
    """Add each row's best ``keep`` hypotheses ending here (``scores`` (B, K), finite only) to
    its pool; ``length=None``: the live ones at ``max_len``, unfinished."""
    fin = length is not None
    n = hist.shape[2] + int(fin)
    lp = length_penalty(n, penalty, alpha)
    top, idx = scores.topk(min(keep, scores.shape[1]), dim=-1)  # (B, keep)
    for r in range(scores.shape[0]):
        for s, j in zip(top[r].tolist(), idx[r].tolist()):
            if s == float("-inf"):
                break
            pools[r].append(Hypothesis(hist[r, j].tolist(), s, s / lp, fin))
        pools[r].sort(key=lambda h: -h.score)  # stable: earlier first among ties
        del pools[r][keep if fin else len(pools[r]):]


def _can_stop(pools: list[list[Hypothesis]], score: Tensor, n_best: int, lp_max: float) -> bool:
    """True when no live hypothesis can beat any row's ``n_best``-th finished one."""
    best_live = score.max(dim=1).values.tolist()  # (B,) log-probs only fall from here
    for pool, live in zip(pools, best_live):
        if live == float("-inf"):
            continue
        if len(pool) < n_best or live / lp_max > pool[n_best - 1].score:
            return False
    return True
