"""Context sensitivity: change one earlier token and see how every prediction moves.

Works on every family through two model methods (see ``NeuralModel.distributions``):
``model.tokenize(x) -> list[str]`` (the T tokens the model sees) and
``model.distributions(inputs) -> list[(J, K) probabilities]`` (lm: row j = p(next | tokens[: j+1]);
labeling: the label distribution at token j (softmax, or CRF/HMM posterior marginals);
classification: J = 1). ``model.output_labels()`` names the K columns.

- :func:`sensitivity`: one edit (token i -> a replacement): per output j the KL divergence
  KL(p_j || q_j) in nats, the total variation, and whether the top-1 prediction flipped.
- :func:`influence_matrix`: every position i edited (seeded random vocabulary tokens, averaged),
  the (T, J) matrix of mean KL; all variants go through one ``distributions`` call.
- :func:`saliency`: gradient norms ||d log p_j(top-1) / d embedding_i|| (neural families).

Shapes: T input tokens, J output rows (T, or 1 for classification), K output labels, k
replacements per position.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError, SeqlabError
from seqlab.probes.results import result_dict

__all__ = [
    "SensitivityResult", "InfluenceResult", "sensitivity", "influence_matrix", "saliency", "kl_divergence",
    "total_variation", "input_vocabulary",
]


# --- the math -------------------------------------------------------------------------------
def kl_divergence(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) in nats over the last axis, float64: sum_k p_k (log p_k - log q_k), with
    0 log 0 = 0; +inf where q_k = 0 < p_k. Rows are renormalised in float64 first (a float32
    softmax sums to 1 only to ~1e-7), so the result is >= 0. (..., K), (..., K) -> (...)."""
    p, q = p.double(), q.double()
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)  # float32 rows sum to 1 +- 1e-7
    terms = torch.where(p > 0, p * (p.clamp(min=1e-300).log() - q.log()), torch.zeros_like(p))
    return terms.sum(-1).clamp(min=0.0)  # >= 0 (Gibbs); rounding could leave -1e-16


def total_variation(p: Tensor, q: Tensor) -> Tensor:
    """Total variation 0.5 * sum_k |p_k - q_k| over the last axis, float64: (...)."""
    return 0.5 * (p.double() - q.double()).abs().sum(-1)


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensitivityResult:
    """One edit: ``tokens[position]`` -> ``replacement``. Per output row j (``outputs[j]`` names
    it: the token at j, or ``"<sequence>"`` for classification): ``kl[j]`` = KL(p_j || q_j)
    (nats; p before the edit, q after), ``tv[j]`` total variation, ``flipped[j]`` top-1 changed,
    ``top_before[j]``/``p_before[j]`` and ``top_after[j]``/``p_after[j]`` the top-1 labels and
    their probabilities."""

    family: str
    task: str
    tokens: tuple[str, ...]
    position: int
    replacement: str
    outputs: tuple[str, ...]
    kl: tuple[float, ...]
    tv: tuple[float, ...]
    flipped: tuple[bool, ...]
    top_before: tuple[str, ...]
    p_before: tuple[float, ...]
    top_after: tuple[str, ...]
    p_after: tuple[float, ...]

    @property
    def edited(self) -> tuple[str, ...]:
        """The tokens after the edit."""
        t = list(self.tokens)
        t[self.position] = self.replacement
        return tuple(t)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types (lists, str, float, bool, int; an infinite KL as ``None``)."""
        return result_dict(self, "edited")

    def __str__(self) -> str:
        from seqlab.formatting import format_table

        head = (f"{self.family} ({self.task}): token {self.position} {self.tokens[self.position]!r} -> "
                f"{self.replacement!r}\n  before: {' '.join(self.tokens)}\n  after:  {' '.join(self.edited)}\n")
        rows = []
        for j, out in enumerate(self.outputs):
            mark = "*" if self.flipped[j] else ""
            rows.append((j, out, f"{self.kl[j]:.4g}", f"{self.tv[j]:.4f}", f"{self.top_before[j]} ({self.p_before[j]:.3f})",
                         f"{self.top_after[j]} ({self.p_after[j]:.3f})", mark))
        return head + format_table(rows, ("j", "output", "KL (nats)", "TV", "top-1 before", "top-1 after", "flip"))


@dataclass(frozen=True)
class InfluenceResult:
    """``kl[i][j]``: mean KL(p_j || q_j) (nats) over the ``replacements[i]`` put at input
    position i (rows: changed position i over ``tokens``; columns: output row j over
    ``outputs``); ``tv`` the mean total variation and ``flip_rate`` the fraction of
    replacements that changed the top-1 prediction at j. Tensors are (T, J) float64."""

    family: str
    task: str
    tokens: tuple[str, ...]
    outputs: tuple[str, ...]
    replacements: tuple[tuple[str, ...], ...]
    kl: Tensor
    tv: Tensor
    flip_rate: Tensor
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types (infinite KL, possible when q_j(k) = 0 < p_j(k), as ``None``)."""
        return result_dict(self)

    def __str__(self) -> str:
        from seqlab.formatting import format_table

        rows = [(f"{i}:{t}", *(f"{float(v):.3g}" for v in self.kl[i])) for i, t in enumerate(self.tokens)]
        head = f"{self.family} ({self.task}): mean KL (nats), rows = changed token i, columns = output j\n"
        return head + format_table(rows, ("changed \\ output", *(f"{j}:{o}" for j, o in enumerate(self.outputs))))


# --- helpers ------------------------------------------------------------------------------------
def input_vocabulary(model: Any) -> list[str]:
    """The tokens the model's task knows (its codec's vocabulary, specials included)."""
    codec = getattr(model.task, "codec", None)
    if codec is None:
        raise SeqlabError(f"task {model.task.name!r} has no text vocabulary to draw replacements from")
    return list(codec.fitted_vocab.itos)


def _n_special(model: Any) -> int:
    vocab = model.task.codec.fitted_vocab
    return 5 if getattr(vocab, "has_specials", False) else 0


def _tokens(model: Any, tokens: Any) -> list[str]:
    for name in ("tokenize", "distributions", "output_labels"):
        if not callable(getattr(model, name, None)):
            raise SeqlabError(f"{type(model).__name__} has no {name}(): the sensitivity probe needs "
                              "tokenize, distributions and output_labels")
    if (isinstance(tokens, str) and not tokens.strip()) or (isinstance(tokens, (list, tuple)) and not tokens):
        raise ConfigError("the input is empty: give at least one token")
    toks = model.tokenize(tokens)
    if not toks:
        raise ConfigError(f"the input {tokens!r} has no tokens for this model")
    return list(toks)


def _check_replacement(model: Any, token: str) -> str:
    """The replacement as the model normalises it; must be in the input vocabulary."""
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(f"the replacement must be a non-empty token string, found {token!r}")
    vocab = input_vocabulary(model)
    known = set(vocab)
    norm = model.tokenize([token])  # normalised (e.g. lowercased), not split
    if norm[0] not in known:
        pieces = model.tokenize(token)  # as text, through the task's tokenizer
        if len(pieces) != 1 or any(c.isspace() for c in token):
            raise ConfigError(f"the replacement must be one token; {token!r} is {len(pieces)} tokens to this model: {pieces}")
        norm = pieces
    if norm[0] not in known:
        close = difflib.get_close_matches(norm[0], vocab[_n_special(model):], n=5)
        hint = f"; close ones: {', '.join(map(repr, close))}" if close else ""
        raise ConfigError(f"replacement {token!r} is not in the model's vocabulary of {len(vocab)} tokens "
                          f"(it would read as <unk>){hint}")
    return str(norm[0])


def _check_rows(model: Any, dist: Tensor, tokens: Sequence[str]) -> None:
    rows = 1 if model.task.probe_rows == "sequence" else len(tokens)
    if dist.dim() != 2 or dist.shape[0] != rows:
        raise SeqlabError(f"{type(model).__name__}.distributions gave shape {tuple(dist.shape)} for "
                          f"{len(tokens)} tokens; expected ({rows}, K)")


def _outputs(model: Any, tokens: Sequence[str]) -> tuple[str, ...]:
    return ("<sequence>",) if model.task.probe_rows == "sequence" else tuple(tokens)


def _family(model: Any) -> str:
    return str(getattr(model, "family", type(model).__name__))


# --- probes ------------------------------------------------------------------------------------
def sensitivity(model: Any, tokens: Any, position: int, replacement: str) -> SensitivityResult:
    """Replace the token at ``position`` (0-based, over ``model.tokenize(tokens)``) by
    ``replacement`` (a token in the model's vocabulary) and compare every output row before
    (p) and after (q) the edit. ``tokens``: a string or a token list, as ``predict`` takes."""
    toks = _tokens(model, tokens)
    if not isinstance(position, int) or not -len(toks) <= position < len(toks):
        raise ConfigError(f"position must be an int in [0, {len(toks)}) for the {len(toks)} tokens {toks}; found {position!r}")
    position %= len(toks)
    rep = _check_replacement(model, replacement)
    edited = list(toks)
    edited[position] = rep
    p, q = (d.double() for d in model.distributions([toks, edited]))  # (J, K) each
    _check_rows(model, p, toks)
    labels = model.output_labels()
    pb, ib = p.max(-1)
    pa, ia = q.max(-1)
    return SensitivityResult(
        family=_family(model), task=model.task.name, tokens=tuple(toks), position=position, replacement=rep,
        outputs=_outputs(model, toks), kl=tuple(kl_divergence(p, q).tolist()), tv=tuple(total_variation(p, q).tolist()),
        flipped=tuple((ib != ia).tolist()), top_before=tuple(labels[i] for i in ib.tolist()), p_before=tuple(pb.tolist()),
        top_after=tuple(labels[i] for i in ia.tolist()), p_after=tuple(pa.tolist()),
    )


def _replacement_sets(model: Any, toks: Sequence[str], replacements: int | str | Sequence[str], seed: int) -> list[list[str]]:
    """Per position, the replacement tokens (see :func:`influence_matrix`)."""
    if isinstance(replacements, str):
        rep = _check_replacement(model, replacements)
        return [[rep] for _ in toks]
    if isinstance(replacements, int) and not isinstance(replacements, bool):
        if replacements < 1:
            raise ConfigError(f"replacements must be >= 1 random tokens, a token, or a list of tokens; found {replacements}")
        pool = input_vocabulary(model)[_n_special(model):]
        out = []
        for i, t in enumerate(toks):
            cands = [w for w in pool if w != t]
            if not cands:
                raise ConfigError("the vocabulary has no other token to put at a position")
            out.append(random.Random(seed * 1_000_003 + i).sample(cands, min(replacements, len(cands))))
        return out
    if isinstance(replacements, bool) or not isinstance(replacements, (list, tuple)):
        raise ConfigError(f"replacements must be a count, a token or a list of tokens; found {replacements!r}")
    reps = [_check_replacement(model, r) for r in replacements]
    if not reps:
        raise ConfigError("replacements is an empty list")
    return [list(reps) for _ in toks]


def influence_matrix(
    model: Any, tokens: Any, replacements: int | str | Sequence[str] = 4, *, seed: int = 0,
) -> InfluenceResult:
    """The (T, J) influence of every input position i on every output row j.

    Replacement strategy (``replacements``):
      - an int k (default 4): at each position, k distinct tokens drawn uniformly from the
        vocabulary without its specials and without the token already there, by
        ``random.Random(seed * 1000003 + i)``: seeded and deterministic, independent across
        positions; KL, TV and flips are averaged over the k edits;
      - a token (e.g. ``"<unk>"``): that token at every position;
      - a list of tokens: each of them at every position, averaged.
    All T * k edited copies and the original go through one ``model.distributions`` call."""
    toks = _tokens(model, tokens)
    sets = _replacement_sets(model, toks, replacements, seed)
    variants: list[list[str]] = [list(toks)]
    for i, reps in enumerate(sets):
        for r in reps:
            v = list(toks)
            v[i] = r
            variants.append(v)
    dists = [d.double() for d in model.distributions(variants)]
    p = dists[0]  # (J, K)
    _check_rows(model, p, toks)
    top = p.argmax(-1)  # (J,)
    T, J = len(toks), p.shape[0]
    kl, tv, flips = (torch.zeros(T, J, dtype=torch.float64) for _ in range(3))
    k = 1
    for i, reps in enumerate(sets):
        q = torch.stack(dists[k : k + len(reps)])  # (k, J, K)
        k += len(reps)
        kl[i] = kl_divergence(p, q).mean(0)
        tv[i] = total_variation(p, q).mean(0)
        flips[i] = (q.argmax(-1) != top).double().mean(0)
    return InfluenceResult(
        family=_family(model), task=model.task.name, tokens=tuple(toks), outputs=_outputs(model, toks),
        replacements=tuple(tuple(r) for r in sets), kl=kl, tv=tv, flip_rate=flips, seed=seed,
    )


def saliency(model: Any, tokens: Any) -> Tensor:
    """(J, T) float32 gradient norms: entry (j, i) = || d log p_j(y*_j) / d e_i ||_2, where
    p_j is output row j of :meth:`distributions` (softmax, or CRF marginals), y*_j its top-1
    label (held fixed) and e_i the embedding layer's output at token i (after its scaling,
    before the encoder; a character CNN's features are not included). Taken through a
    forward hook on ``module.frontend.embed`` in eval mode, one backward pass per output row.
    Classical families raise :class:`SeqlabError`."""
    if getattr(model, "kind", None) != "neural" or not hasattr(model, "output_probabilities"):
        raise SeqlabError(f"saliency needs a neural family; {_family(model)} is {getattr(model, 'kind', 'not neural')}")
    from seqlab.data.batching import move_to

    toks = _tokens(model, tokens)
    module = model.module
    batch = move_to(model.task.collate(model.task.encode_inputs([toks])), model.device)
    captured: list[Tensor] = []

    def keep(_mod: Any, _inp: Any, out: Tensor) -> Tensor:
        captured.append(out)
        return out

    was_training = module.training
    module.eval()
    handle = module.frontend.embed.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            probs = model.output_probabilities(module(batch), batch, differentiable=True)  # (1, T, K) or (1, K)
            rows = probs.reshape(-1, probs.shape[-1])[: 1 if probs.dim() == 2 else len(toks)]  # (J, K)
            logp = rows.gather(1, rows.detach().argmax(-1, keepdim=True)).squeeze(1).log()  # (J,)
            emb = captured[0]  # (1, T, E)
            grads = [torch.autograd.grad(logp[j], emb, retain_graph=True, allow_unused=True)[0] for j in range(len(logp))]
    finally:
        handle.remove()
        module.train(was_training)
    out = [g[0].norm(dim=-1) if g is not None else torch.zeros(len(toks)) for g in grads]  # (T,) each
    return torch.stack(out).float().cpu()  # (J, T)
