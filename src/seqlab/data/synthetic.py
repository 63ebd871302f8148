"""Seeded generators for synthetic sequence tasks with known answers.

Each generator takes ``n`` (how many examples) and ``seed``, draws from its own
``numpy.random.default_rng(seed)`` (never global state), and returns a list of plain
example dicts shaped like the readers' output, so the same task code serves them:

* :func:`copying` - the copying-memory problem (Hochreiter & Schmidhuber 1997), laid out as
  in the TCN repository (Bai, Kolter & Koltun 2018, ``copy_memory/utils.py``); labeling-shaped.
* :func:`adding` - the adding problem (Hochreiter & Schmidhuber 1997): two channels, one
  float target.
* :func:`parity` - the parity of a bit string; classification-shaped.
* :func:`selective_copying` - data tokens scattered among blanks, recalled in order after
  markers (Gu & Dao 2023, Sec. 4.1.1 / Fig. 2); labeling-shaped.
* :func:`induction_heads` - recall the token that followed a trigger (Olsson et al. 2022; Gu &
  Dao 2023, Sec. 4.1.2); classification-shaped, the answer read at the last position.
* :func:`cue_recall` - recall a cue token after ``d`` distractors (``cue x1 .. xd ? -> cue``);
  LM-shaped, with a balanced layout that makes chance exactly ``1 / n_cues``.
* :func:`listops` - nested MIN/MAX/MED/SM expressions over digits, as LRA generates them (Tay et
  al. 2021, after Nangia & Bowman 2018); classification-shaped, with :func:`listops_ref` as the
  evaluator.

The chance-level numbers a model must beat are :func:`copying_chance_loss` and
:data:`ADDING_CHANCE_MSE`.

:class:`Resampled` wraps a generator so that training draws fresh examples every epoch (the
Mamba paper's synthetic tasks generate new data every step): a fixed training set of random
sequences can be memorized, and a model that memorizes never has to learn the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import numpy as np

from seqlab.errors import ConfigError, DataError

__all__ = [
    "copying", "adding", "parity", "selective_copying", "induction_heads", "listops", "listops_ref", "cue_recall",
    "copying_chance_loss", "ADDING_CHANCE_MSE", "LISTOPS_OPERATORS", "CUE_QUERY", "Resampled", "epoch_seed",
]

#: MSE of always predicting 1 on the adding problem: Var(U1 + U2) = 2/12.
ADDING_CHANCE_MSE = 1.0 / 6.0


def _check(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch``'s draw: a hash of ``(seed, epoch)`` (numpy ``SeedSequence``), so
    epochs are independent and no epoch's data equals a split drawn with a small seed."""
    _check("seed", seed, 0)
    _check("epoch", epoch, 0)
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint32)[0])


class Resampled(Sequence[Any]):
    """Training examples drawn afresh every epoch: ``draw(epoch)`` returns epoch ``epoch``'s list.

    ``NeuralModel.fit`` trains epoch ``e`` on ``draw(e)``; a draw must be a pure function of the
    epoch (a seeded generator) and keep the same size, so a resumed run sees the same data as an
    uninterrupted one. As a plain sequence it is epoch 0's draw: that is what the task fits its
    vocabularies on, so every later draw must use the same alphabet and label set (a symbol
    that first appears later is ``<unk>``). The most recent draw is cached.

    ``Resampled.of(generator, n, seed=s, **kwargs)`` is the usual form: epoch ``e`` is
    ``generator(n, seed=epoch_seed(s, e), **kwargs)`` for any generator in this module.
    """

    def __init__(self, draw: Callable[[int], Sequence[Any]]) -> None:
        self._draw = draw
        first = list(draw(0))
        if not first:
            raise ConfigError("a Resampled draw must return at least one example")
        self._n = len(first)
        self._cached = (0, first)  # the last draw: (epoch, examples)

    @classmethod
    def of(cls, generator: Callable[..., Sequence[Any]], n: int, *, seed: int = 0, **kwargs: Any) -> Resampled:
        """Epoch ``e`` is ``generator(n, seed=epoch_seed(seed, e), **kwargs)``."""
        _check("n", n, 1)
        _check("seed", seed, 0)
        return cls(lambda epoch: generator(n, seed=epoch_seed(seed, epoch), **kwargs))

    def epoch(self, epoch: int) -> list[Any]:
        """The examples of ``epoch`` (drawn, or the cached last draw)."""
        _check("epoch", epoch, 0)
        if self._cached[0] != epoch:
            examples = list(self._draw(epoch))
            if len(examples) != self._n:
                raise ConfigError(f"epoch {epoch} drew {len(examples)} examples; epoch 0 drew {self._n}: "
                                  "every epoch must draw the same number")
            self._cached = (epoch, examples)
        return self._cached[1]

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        return self.epoch(0)[i]


def copying_chance_loss(T: int = 100, n_symbols: int = 8, copy_len: int = 10) -> float:
    """Mean per-position cross-entropy (nats) of a model that has learned nothing to recall.

    It predicts blank with certainty except on the last ``copy_len`` positions, where it
    spreads over the ``n_symbols`` symbols: ``copy_len * ln(n_symbols) / (T + 2 * copy_len)``,
    i.e. ``10 ln 8 / (T + 20)`` = 0.1733 at T = 100. Below it, the model has learned.
    """
    return copy_len * math.log(n_symbols) / (T + 2 * copy_len)


def copying(
    n: int,
    T: int = 100,
    n_symbols: int = 8,
    copy_len: int = 10,
    seed: int = 0,
    recall_fill: Literal["marker", "blank"] = "marker",
) -> list[dict[str, Any]]:
    """The copying-memory problem, as aligned token/tag sequences of length ``T + 2*copy_len``.

    Input: ``copy_len`` symbols drawn uniformly from ``1..n_symbols``, then ``T - 1`` blanks
    (``0``), then the marker ``n_symbols + 1`` (``9``) that says "recall now", then
    ``copy_len`` more positions. As in the TCN repository those hold the marker again
    (``recall_fill="marker"``: the last ``copy_len + 1`` inputs are all ``9``); with
    ``recall_fill="blank"`` they are blanks (the Arjovsky et al. 2016 layout).
    Target: blanks everywhere except the last ``copy_len`` positions, which repeat the
    symbols. A model that has failed sits at :func:`copying_chance_loss`.

    Returns:
        ``[{"tokens": [str ids], "tags": [str ids]}, ...]``, ids written as decimal strings.
    """
    _check("n", n, 0)
    _check("T", T, 1)
    _check("n_symbols", n_symbols, 1)
    _check("copy_len", copy_len, 1)
    if recall_fill not in ("marker", "blank"):
        raise ConfigError(f"recall_fill must be 'marker' or 'blank'; got {recall_fill!r}")
    rng = np.random.default_rng(seed)
    marker = n_symbols + 1
    symbols = rng.integers(1, n_symbols + 1, size=(n, copy_len))  # (N, L)
    length = T + 2 * copy_len
    x = np.zeros((n, length), dtype=np.int64)  # (N, T + 2L)
    x[:, :copy_len] = symbols
    x[:, T + copy_len - 1] = marker
    if recall_fill == "marker":
        x[:, T + copy_len :] = marker
    y = np.zeros((n, length), dtype=np.int64)  # (N, T + 2L)
    y[:, -copy_len:] = symbols
    return [
        {"tokens": [str(v) for v in xi], "tags": [str(v) for v in yi]}
        for xi, yi in zip(x.tolist(), y.tolist())
    ]


def adding(n: int, T: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """The adding problem: add the two values whose marker is 1.

    ``values`` are ``T`` draws from U(0, 1); ``markers`` are 0 except exactly two 1s, one
    drawn uniformly in the first half (``[0, T//2)``) and one in the second
    (``[T//2, T)``); ``target`` is the sum of the two marked values. Always predicting 1
    gives MSE :data:`ADDING_CHANCE_MSE` = 1/6.

    Returns:
        ``[{"values": list[float], "markers": list[int], "target": float}, ...]``.
    """
    _check("n", n, 0)
    _check("T", T, 2)
    rng = np.random.default_rng(seed)
    values = rng.random((n, T))  # (N, T) float64
    half = T // 2
    first = rng.integers(0, half, size=n)  # (N,)
    second = rng.integers(half, T, size=n)  # (N,)
    rows = np.arange(n)
    markers = np.zeros((n, T), dtype=np.int64)  # (N, T)
    markers[rows, first] = 1
    markers[rows, second] = 1
    targets = values[rows, first] + values[rows, second]  # (N,)
    return [
        {"values": v, "markers": m, "target": float(t)}
        for v, m, t in zip(values.tolist(), markers.tolist(), targets.tolist())
    ]


def parity(n: int, min_len: int = 1, max_len: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """Bit strings labelled by the parity of their number of ones.

    Lengths are uniform on ``[min_len, max_len]``, bits are fair coin flips.

    Returns:
        ``[{"tokens": ["0", "1", ...], "label": "even" | "odd"}, ...]``.
    """
    _check("n", n, 0)
    _check("min_len", min_len, 1)
    _check("max_len", max_len, min_len)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)  # (N,)
    out: list[dict[str, Any]] = []
    for length in lengths.tolist():
        bits = rng.integers(0, 2, size=length).tolist()
        out.append({"tokens": [str(b) for b in bits], "label": "odd" if sum(bits) % 2 else "even"})
    return out


def selective_copying(n: int, L: int = 256, n_copy: int = 16, vocab: int = 16, seed: int = 0) -> list[dict[str, Any]]:
    """Selective copying (Gu & Dao 2023, Sec. 4.1.1, Fig. 2 and App. E.1), as aligned token/tag
    sequences of length ``L + n_copy``.

    Layout, with ids written as decimal strings (the alphabet of the S4 / H3 ``copying`` generator
    that the Mamba paper uses, ``vocab`` symbols in all):

    * positions ``0 .. L-1``: blanks ``0`` (the noise), except ``n_copy`` positions drawn
      uniformly without replacement, which hold data tokens drawn uniformly from
      ``1 .. vocab-2``;
    * positions ``L .. L+n_copy-1``: the marker ``vocab-1``, once per token to recall.

    Tags are ``0`` everywhere except the ``n_copy`` marker positions, whose tags are the data
    tokens in the order they appeared. Unlike :func:`copying`, the spacing varies from example
    to example, so a time-invariant model cannot learn *where* to look: it must select by
    content. A causal model answers each marker after seeing every data token. Score only the
    last ``n_copy`` tags (chance there is ``1 / (vocab - 2)``); the blank tags are trivial.
    (The reference generator counts ``L`` blanks plus the ``n_copy`` data tokens; its
    ``L`` is our ``L - n_copy``.)

    Returns:
        ``[{"tokens": [str ids], "tags": [str ids]}, ...]``, ``L + n_copy`` of each.
    """
    _check("n", n, 0)
    _check("n_copy", n_copy, 1)
    _check("L", L, n_copy)
    _check("vocab", vocab, 3)
    rng = np.random.default_rng(seed)
    marker = vocab - 1
    data = rng.integers(1, vocab - 1, size=(n, n_copy))  # (N, n_copy)
    # n_copy distinct sorted positions per row: the first n_copy of a random permutation
    pos = np.sort(rng.random((n, L)).argsort(axis=1)[:, :n_copy], axis=1)  # (N, n_copy)
    x = np.zeros((n, L + n_copy), dtype=np.int64)  # (N, L + n_copy)
    np.put_along_axis(x, pos, data, axis=1)
    x[:, L:] = marker
    y = np.zeros_like(x)  # (N, L + n_copy)
    y[:, L:] = data
    return [
        {"tokens": [str(v) for v in xi], "tags": [str(v) for v in yi]}
        for xi, yi in zip(x.tolist(), y.tolist())
    ]


def induction_heads(n: int, L: int = 256, vocab: int = 16, seed: int = 0) -> list[dict[str, Any]]:
    """Induction heads (Olsson et al. 2022; Gu & Dao 2023, Sec. 4.1.2 and App. E.1), as
    ``L``-token sequences with one label.

    Tokens ``0 .. vocab-2`` are drawn uniformly at every position; the trigger ``vocab-1``
    is written once at a position ``p`` drawn uniformly from ``0 .. L-3`` and again at the last
    position ``L-1``. The label is the token at ``p + 1``: what followed the trigger the first
    time. The trigger occurs exactly twice and the answer is never the final trigger; chance
    accuracy is ``1 / (vocab - 1)``.

    Shape: classification, ``{"tokens", "label"}``. Only the last position is scored, and the
    labeling task has no per-position "ignore", so the label belongs to the whole sequence and
    a *causal* model (Mamba, or a Transformer with ``causal=True``) classifies its state at the
    last real token (``pooling="last"``): the state that has just read the second trigger,
    exactly where the paper reads the prediction. Nothing ties the model to ``L``, so it can be
    trained at 256 and evaluated at 4096 (with ``max_len=None`` in the task options).

    Returns:
        ``[{"tokens": [str ids], "label": str id}, ...]``.
    """
    _check("n", n, 0)
    _check("L", L, 3)
    _check("vocab", vocab, 3)
    rng = np.random.default_rng(seed)
    trigger = vocab - 1
    x = rng.integers(0, vocab - 1, size=(n, L))  # (N, L), never the trigger
    first = rng.integers(0, L - 2, size=n)  # (N,) in [0, L-3]
    rows = np.arange(n)
    x[rows, first] = trigger
    x[:, L - 1] = trigger
    answer = x[rows, first + 1]  # (N,)
    return [{"tokens": [str(v) for v in xi], "label": str(a)} for xi, a in zip(x.tolist(), answer.tolist())]


#: ListOps operators as LRA writes them (its FIRST and LAST are defined but unused).
LISTOPS_OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
_LISTOPS_LEAF_P = 0.75  # LRA: VALUE_P = 0.25 is the probability of an operator node
_Tree = Any  # an int leaf, or (operator, [children])


def _listops_apply(op: str, args: list[int]) -> int:
    """One operator on its evaluated arguments; MED is ``int(numpy.median)``, SM sums mod 10."""
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":
        s = sorted(args)
        return (s[(len(s) - 1) // 2] + s[len(s) // 2]) // 2  # mean of the middle pair, floored
    if op == "[SM":
        return sum(args) % 10
    raise ConfigError(f"unknown ListOps operator {op!r}; valid: {', '.join(LISTOPS_OPERATORS)}")


def _listops_tree(rng: np.random.Generator, depth: int, max_depth: int, max_args: int, budget: list[int]) -> _Tree:
    """LRA's ``generate_tree``: a leaf with probability 0.75 (always at ``max_depth``), else an
    operator over 2..max_args subtrees. ``budget[0]`` counts tokens left before ``max_length``;
    once it goes negative the tree is rejected anyway, so generation stops early."""
    if depth >= max_depth or rng.random() < _LISTOPS_LEAF_P:
        budget[0] -= 1
        return int(rng.integers(0, 10))
    budget[0] -= 2  # the operator and its closing bracket
    k = int(rng.integers(2, max_args + 1))
    children = []
    for _ in range(k):
        if budget[0] < 0:
            break
        children.append(_listops_tree(rng, depth + 1, max_depth, max_args, budget))
    op = LISTOPS_OPERATORS[int(rng.integers(0, len(LISTOPS_OPERATORS)))]
    return (op, children)


def _listops_tokens(tree: _Tree, out: list[str]) -> int:
    """Append the tree's tokens to ``out`` (prefix order, ``]`` closing each operator); return its value."""
    if isinstance(tree, int):
        out.append(str(tree))
        return tree
    op, children = tree
    out.append(op)
    value = _listops_apply(op, [_listops_tokens(c, out) for c in children])
    out.append("]")
    return value


def listops(
    n: int, max_depth: int = 10, max_args: int = 10, max_length: int = 2000, min_length: int = 500, seed: int = 0,
) -> list[dict[str, Any]]:
    """ListOps as the Long Range Arena generates it (Tay et al. 2021, ``lra_benchmarks/data/
    listops.py``, after Nangia & Bowman 2018), an independent implementation.

    A tree is drawn top-down from depth 1: a node below ``max_depth`` is a digit ``0..9`` with
    probability 0.75, otherwise one of ``[MIN``, ``[MAX``, ``[MED`` (median, ``int`` of the
    numpy median: the middle pair's mean floored) or ``[SM`` (sum mod 10), uniformly, over
    ``2..max_args`` (uniform) subtrees, closed by ``]``; at ``max_depth`` it is a digit. Trees
    are kept when their token count lies strictly between ``min_length`` and ``max_length``
    (LRA's test) and is new (LRA keeps a set); the label is the tree's value. Tokens are LRA's
    without the ``(`` ``)`` wrappers of its TSV text, which loaders drop (so
    ``len(tokens)`` is LRA's ``length``). LRA's setting is the default: depth 10, 10 arguments,
    lengths in (500, 2000).

    Returns:
        ``[{"tokens": ["[MAX", "2", "[MIN", "4", "7", "]", "0", "]"], "label": "4"}, ...]``.

    Raises:
        ConfigError: bad arguments, or no tree in the bounds after ``1000 * (n + 10)`` draws.
    """
    _check("n", n, 0)
    _check("max_depth", max_depth, 1)
    _check("max_args", max_args, 2)
    _check("min_length", min_length, 0)
    _check("max_length", max_length, min_length + 2)
    rng = np.random.default_rng(seed)
    seen: set[tuple[str, ...]] = set()
    out: list[dict[str, Any]] = []
    for _ in range(1000 * (n + 10)):
        if len(out) == n:
            return out
        budget = [max_length - 1]  # tokens allowed: length < max_length
        tree = _listops_tree(rng, 1, max_depth, max_args, budget)
        if budget[0] < 0:
            continue
        tokens: list[str] = []
        value = _listops_tokens(tree, tokens)
        key = tuple(tokens)
        if len(tokens) > min_length and key not in seen:
            seen.add(key)
            out.append({"tokens": tokens, "label": str(value)})
    if len(out) == n:
        return out
    raise ConfigError(
        f"listops: only {len(out)} of {n} distinct trees with {min_length} < length < {max_length} "
        f"in {1000 * (n + 10)} draws (max_depth={max_depth}, max_args={max_args}); widen the bounds"
    )


def listops_ref(tokens: list[str]) -> int:
    """The value of a ListOps token list, by one left-to-right pass with a stack of open
    operators (the evaluator: independent of how :func:`listops` built the tree).

    Raises:
        DataError: a malformed list (an unknown token, unbalanced brackets, an empty operator).
    """
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for i, tok in enumerate(tokens):
        if result is not None:
            raise DataError(None, None, f"the expression to end at token {i}", f"{tok!r}")
        if tok in LISTOPS_OPERATORS:
            stack.append((tok, []))
            continue
        if tok == "]":
            if not stack or not stack[-1][1]:
                raise DataError(None, None, f"token {i} to close an operator with arguments", "']'")
            op, args = stack.pop()
            value = _listops_apply(op, args)
        elif len(tok) == 1 and tok in "0123456789":
            value = int(tok)
        else:
            raise DataError(None, None, f"token {i} to be a digit, ']' or one of {LISTOPS_OPERATORS}", f"{tok!r}")
        if stack:
            stack[-1][1].append(value)
        else:
            result = value
    if result is None or stack:
        raise DataError(None, None, "one complete ListOps expression", f"{len(stack)} operator(s) left open")
    return result


#: The query token of :func:`cue_recall`.
CUE_QUERY = "?"


def cue_recall(
    n: int, distances: tuple[int, ...] | list[int] = (0, 1, 2, 4, 8), n_cues: int = 4, n_distractors: int = 8,
    seed: int = 0, balanced: bool = False,
) -> list[dict[str, Any]]:
    """Cue recall across a gap, for causal language models: ``cue x1 .. xd ? cue``.

    A cue ``C0 .. C{n_cues-1}`` opens the sequence, ``d`` distractors drawn uniformly from
    ``d0 .. d{n_distractors-1}`` follow, then the query ``?``; the next token is the cue again.
    Recall is the model's argmax next token after ``?``; the cue lies ``d + 2`` tokens back, so a
    model that sees fewer tokens of context (an order-n n-gram with ``d + 2 > n - 1``) cannot know it.

    ``balanced=False``: each example draws ``d`` uniformly from ``distances`` and its cue uniformly.
    ``balanced=True`` (evaluation sets): ``n`` must be a multiple of ``n_cues * len(distances)``;
    every distance gets ``n / len(distances)`` examples, in groups of ``n_cues`` that share one
    distractor draw and carry every cue once. A model whose prediction ignores the cue then scores
    at most ``1 / n_cues`` per distance, exactly ``1 / n_cues`` when it always names some cue.

    Returns:
        ``[{"tokens": [cue, x1, .., xd, "?", cue], "distance": d, "cue": cue}, ...]``.
    """
    _check("n", n, 0)
    _check("n_cues", n_cues, 2)
    _check("n_distractors", n_distractors, 1)
    dists = [int(d) for d in distances]
    if not dists or any(isinstance(d, bool) or d < 0 for d in distances):
        raise ConfigError(f"distances must be a non-empty list of integers >= 0; got {distances!r}")
    rng = np.random.default_rng(seed)
    cues = [f"C{k}" for k in range(n_cues)]

    def example(cue: int, filler: list[int]) -> dict[str, Any]:
        return {"tokens": [cues[cue], *(f"d{x}" for x in filler), CUE_QUERY, cues[cue]],
                "distance": len(filler), "cue": cues[cue]}

    if not balanced:
        out = []
        for d, c in zip(rng.choice(dists, size=n).tolist(), rng.integers(0, n_cues, size=n).tolist()):
            out.append(example(c, rng.integers(0, n_distractors, size=d).tolist()))
        return out
    if n % (n_cues * len(dists)):
        raise ConfigError(f"balanced cue_recall needs n a multiple of n_cues * len(distances) = "
                          f"{n_cues * len(dists)}; got {n}")
    groups = n // (n_cues * len(dists))
    out = []
    for d in dists:
        for _ in range(groups):
            filler = rng.integers(0, n_distractors, size=d).tolist()
            out.extend(example(c, filler) for c in range(n_cues))
    return out
