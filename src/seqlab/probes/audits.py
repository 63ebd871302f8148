"""Padding and truncation audits: does a model's output depend on how its inputs are packed or cut?

- :func:`padding_audit`: a model's per-position output probabilities must not move when padding
  is added beside an input. Neural models are audited through the task's ``collate`` and the
  module (padding on the left or right, next to a longer real neighbour in the same batch);
  classical models, which read one sequence at a time, through batched ``distributions`` (or
  ``predict``) of mixed lengths. A change above ``tolerance`` is reported as a DEFECT.
- :func:`truncation_audit`: the share of inputs longer than ``max_len`` whose prediction changes
  when the input is cut to ``max_len`` tokens by removing its head, its tail or its middle.

Shapes: B batch, T time (padded length), S source length, J output rows per input, K labels.
Masks are bool, True = real token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqlab.data.batching import truncate
from seqlab.errors import ConfigError, SeqlabError
from seqlab.formatting import format_rows
from seqlab.probes.results import family_of, result_dict

__all__ = ["PaddingAudit", "TruncationAudit", "padding_audit", "truncation_audit", "TRUNCATION_MODES"]


def _is_neural(model: Any) -> bool:
    """A model whose network the audits can run directly (``model.module`` + ``model.task.collate``)."""
    kind = getattr(model, "kind", None)
    return kind == "neural" or (kind is None and hasattr(model, "module"))


# --- padding --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaddingAudit:
    """``max_change[s][e]``: the largest absolute change of any output probability of any input
    when ``extra[e]`` padding positions are added on side ``sides[s]``; ``worst_input[s][e]`` the
    input where it happened (-1 when nothing changed). ``method`` says how outputs were read:
    ``module`` (collate + forward; neural), ``distributions`` or ``predict`` (classical: side
    ``batch``, the input batched beside one ``extra`` tokens longer; with ``predict`` a change
    counts 1.0). :attr:`defects` lists every (side, amount) above ``tolerance``; ``refused``
    the (side, amount) cells where the model raised a clear seqlab error instead of answering
    (e.g. a CRF head refuses left padding), with the message (their ``max_change`` is NaN)."""

    family: str
    task: str
    method: str
    n_inputs: int
    tolerance: float
    sides: tuple[str, ...]
    extra: tuple[int, ...]
    max_change: tuple[tuple[float, ...], ...]
    worst_input: tuple[tuple[int, ...], ...]
    refused: tuple[str, ...] = ()

    def _refused(self, side: str, e: int) -> bool:
        return any(r.startswith(f"{side} +{e}:") for r in self.refused)

    def _status(self, side: str, e: int, change: float) -> str:
        if self._refused(side, e):
            return "refused"
        return "ok" if change <= self.tolerance else "DEFECT"  # NaN (non-finite outputs) is a defect

    @property
    def defects(self) -> list[str]:
        out = []
        for side, row, worst in zip(self.sides, self.max_change, self.worst_input):
            for e, change, w in zip(self.extra, row, worst):
                if self._status(side, e, change) == "DEFECT":
                    out.append(f"DEFECT: {self.family} on {self.task}: {side} padding +{e} changes an output "
                               f"probability by {change:.3g} > {self.tolerance:g} (input {w})")
        return out

    @property
    def passed(self) -> bool:
        return not self.defects

    def __str__(self) -> str:
        rows = [[side, e, change, w, self._status(side, e, change)]
                for side, row, worst in zip(self.sides, self.max_change, self.worst_input)
                for e, change, w in zip(self.extra, row, worst)]
        head = (f"padding audit: {self.family} on {self.task}, {self.n_inputs} inputs, method {self.method}, "
                f"tolerance {self.tolerance:g}")
        return "\n".join([head, format_rows(rows, ["side", "extra", "max |dp|", "input", "status"]), *self.defects,
                          *(f"refused: {r}" for r in self.refused)])

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self, "defects", "passed")

    def save_plot(self, path: str | Path) -> Path:
        """Max change against the padding amount, one line per side (log y; the tolerance dashed)."""
        from seqlab.plots import save_line_plot

        series = {side: (list(self.extra), [max(c, 1e-16) for c in row]) for side, row in zip(self.sides, self.max_change)}
        return save_line_plot(series, path, xlabel="extra padding positions", ylabel="max |change| of a probability",
                              title=f"padding audit: {self.family} on {self.task}", logy=True,
                              hline=(self.tolerance, "tolerance"))


def padding_audit(
    model: Any, inputs: Sequence[Any], extra: Sequence[int] = (1, 4, 16), sides: Sequence[str] = ("left", "right"),
    tolerance: float = 1e-5, *, fill: int | None = None,
) -> PaddingAudit:
    """Check that padding beside an input leaves the model's output probabilities unchanged.

    Neural models: each input is collated alone by the task and run through ``model.module``
    (eval mode); then its batch is widened by ``e`` padding columns on ``side`` (ids ``fill``,
    default the task's pad id: pass a real token id to prove the mask alone decides; mask
    False; labels -100) and stacked with a neighbour row that is the same input made ``e``
    tokens longer with real tokens, so the padding sits in a genuine mixed-length batch. The
    probabilities (softmax of the logits; CRF posterior marginals through
    ``model.output_probabilities``) at the input's real positions are compared with the
    unpadded ones. Encoder-decoders (generation) are fed their own greedy output as target
    (or the ``target`` of an input given as ``{"source", "target"}``); ``side`` pads the source
    and the decoder side is padded on the right (a causal decoder's layout).

    Classical models: ``sides`` is replaced by ``("batch",)``: ``distributions([x, x'])[0]``
    (x' = x plus ``e`` tokens) is compared with ``distributions([x])[0]``; without
    ``distributions``, ``predict`` (a changed prediction counts as a change of 1.0).
    """
    if not inputs:
        raise ConfigError("padding_audit needs at least one input")
    amounts = tuple(int(e) for e in extra)
    if not amounts or min(amounts) < 1:
        raise ConfigError(f"extra must be padding amounts >= 1, found {tuple(extra)}")
    if not tolerance >= 0:
        raise ConfigError(f"tolerance must be >= 0, found {tolerance}")
    if _is_neural(model):
        for s in sides:
            if s not in ("left", "right"):
                raise ConfigError(f"sides must be 'left' and/or 'right', found {s!r}")
        method, use_sides = "module", tuple(sides)
        changes, refused = _neural_changes(model, inputs, amounts, use_sides, fill)
    else:
        method = "distributions" if callable(getattr(model, "distributions", None)) else "predict"
        use_sides = ("batch",)
        changes, refused = _classical_changes(model, inputs, amounts, method), []
    max_change, worst = [], []
    for per_side in changes:  # per side: (e, n_inputs) changes
        max_change.append(tuple(_worst(row)[0] for row in per_side))
        worst.append(tuple(_worst(row)[1] for row in per_side))
    return PaddingAudit(family_of(model), model.task.name, method, len(inputs), float(tolerance), use_sides, amounts,
                        tuple(max_change), tuple(worst), tuple(refused))


def _worst(row: list[float]) -> tuple[float, int]:
    """(max change, its input; -1 when nothing changed); NaN wins, as the worst."""
    for i, c in enumerate(row):
        if math.isnan(c):
            return c, i
    best = max(range(len(row)), key=lambda i: row[i])
    return row[best], (best if row[best] > 0 else -1)


def _neural_changes(model: Any, inputs: Sequence[Any], amounts: tuple[int, ...], sides: tuple[str, ...],
                    fill: int | None) -> tuple[list[list[list[float]]], list[str]]:
    task, module = model.task, model.module
    items = _neural_items(model, inputs)
    pad_id = getattr(task, "pad_id", 0) if fill is None else int(fill)  # ids pad with the task's pad id
    out = [[[0.0] * len(items) for _ in amounts] for _ in sides]
    refused: dict[tuple[int, int], str] = {}
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for i, item in enumerate(items):
                batch = task.collate([{**item, "index": 0}])
                base = _real_probs(model, batch)[0]  # (J, K)
                for s, side in enumerate(sides):
                    for k, e in enumerate(amounts):
                        if (s, k) in refused:
                            out[s][k][i] = math.nan
                            continue
                        try:
                            got = _real_probs(model, pad_beside(batch, e, side, pad_id))[0]  # (J', K)
                        except SeqlabError as err:  # a clear refusal, not a silent change
                            refused[s, k] = f"{side} +{e}: {type(err).__name__}: {err}"
                            out[s][k][i] = math.nan
                            continue
                        out[s][k][i] = _diff(base, got)
    finally:
        module.train(was_training)
    return out, [refused[key] for key in sorted(refused)]


def _neural_items(model: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
    task = model.task
    if not task.decodes_free:
        return list(task.encode_inputs(list(inputs)))
    pairs = [x for x in inputs if isinstance(x, dict)]
    if pairs and len(pairs) != len(inputs):
        raise ConfigError("give generation inputs all as sources or all as {'source', 'target'} dicts")
    if not pairs:  # the model's own greedy output is the teacher-forced target
        pairs = [{"source": s, "target": t} for s, t in zip(inputs, model.predict(list(inputs)))]
    return list(task.encode(pairs).items)


def _real_probs(model: Any, batch: dict[str, Tensor]) -> list[Tensor]:
    """Per row of the batch, the output probabilities at its real positions: (J, K) (one row for
    a sequence-level output); a task whose outputs are values (regression) gives the values."""
    module = model.module
    output = module(batch)
    fn = getattr(model, "output_probabilities", None)
    if model.task.output == "values":
        probs = output.float()  # (B, K) values, compared as they are
    elif callable(fn) and getattr(module, "head", None) is not None and not model.task.decodes_free:
        probs = fn(output, batch)  # (B, T, K) or (B, K)
    else:
        probs = output.float().softmax(-1)
    mask = batch["mask"].bool()
    if probs.dim() == 2:
        return [probs[b : b + 1].double() for b in range(probs.shape[0])]
    return [probs[b][mask[b]].double() for b in range(probs.shape[0])]


def _diff(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return math.inf  # a different number of real positions is a defect of any size
    if not bool(torch.isfinite(b).all()):
        return math.nan
    return float((a - b).abs().max()) if a.numel() else 0.0


def pad_beside(batch: dict[str, Tensor], extra: int, side: str, pad_id: int = 0) -> dict[str, Tensor]:
    """A single-row batch -> two rows: the row with ``extra`` padding columns on ``side`` and a
    neighbour that is the row lengthened by ``extra`` real positions (its own tokens, cycled).

    Time tensors are those of shape (1, T, ...) with T the width of their mask: ``src_*`` keys
    follow ``src_mask`` (padded on ``side``); the others follow ``mask`` (padded on ``side``, or
    on the right when the batch has a source: the decoder side of an encoder-decoder). Padding
    holds ``pad_id`` in id tensors, False in masks, -100 in ``labels`` and 0 elsewhere; per-row
    tensors (``index``, ``length``, class labels) are repeated.
    """
    if batch["mask"].shape[0] != 1:
        raise ConfigError(f"pad_beside takes a one-row batch, found {batch['mask'].shape[0]} rows")
    out: dict[str, Tensor] = {}
    for key, t in batch.items():
        src = key.startswith("src_")
        mask_key = "src_mask" if src and "src_mask" in batch else "mask"
        width = batch[mask_key].shape[1]
        if t.dim() < 2 or t.shape[1] != width:
            out[key] = torch.cat([t, t], 0)  # per-row values
            continue
        where = side if (src or "src_mask" not in batch) else "right"
        real = max(int(batch[mask_key][0].sum()), 1)
        fill: int | bool = False if key.endswith("mask") else (-100 if key == "labels" else (pad_id if key.endswith("ids") else 0))
        pad = torch.full((1, extra, *t.shape[2:]), fill, dtype=t.dtype, device=t.device)
        row = torch.cat([pad, t] if where == "left" else [t, pad], 1)  # (1, T + e, ...)
        longer = torch.cat([t, t[:, torch.arange(extra) % real]], 1)  # (1, T + e, ...) real tokens
        out[key] = torch.cat([row, longer], 0)  # (2, T + e, ...)
    return out


def _classical_changes(model: Any, inputs: Sequence[Any], amounts: tuple[int, ...], method: str) -> list[list[list[float]]]:
    fn = model.distributions if method == "distributions" else model.predict
    toks = [_tokens(model, x) for x in inputs]
    out = [[0.0] * len(inputs) for _ in amounts]
    alone = [fn([x])[0] for x in inputs]
    for k, e in enumerate(amounts):
        longer = [t + [t[j % len(t)] for j in range(e)] if t else t for t in toks]
        pairs = [z for pair in zip(inputs, longer) for z in pair]  # x0, x0', x1, x1', ... one call
        got = fn(pairs)[0::2]
        for i, (a, b) in enumerate(zip(alone, got)):
            if method == "distributions":
                out[k][i] = _diff(torch.as_tensor(a).double(), torch.as_tensor(b).double())
            else:
                out[k][i] = float(a != b)
    return [out]


# --- truncation -----------------------------------------------------------------------------------
#: mode -> the :func:`seqlab.data.batching.truncate` policy that does it. Named by what is cut:
#: ``cut_head`` keeps the last ``max_len`` tokens (seqlab's policy ``tail``), ``cut_tail`` the
#: first ``max_len`` (policy ``head``), ``cut_middle`` both ends (policy ``middle``).
TRUNCATION_MODES: dict[str, str] = {"cut_head": "tail", "cut_tail": "head", "cut_middle": "middle"}

@dataclass(frozen=True)
class TruncationAudit:
    """For each truncation mode, how many of the ``n_longer`` inputs longer than ``max_len``
    tokens change prediction (``prediction`` defines it for the task) when cut to ``max_len``.
    ``changed_inputs[m]`` lists their indices in the audited inputs."""

    family: str
    task: str
    max_len: int
    n_examples: int
    n_longer: int
    modes: tuple[str, ...]
    changed: tuple[int, ...]
    changed_inputs: tuple[tuple[int, ...], ...]
    prediction: str

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(c / self.n_longer if self.n_longer else math.nan for c in self.changed)

    def __str__(self) -> str:
        rows = [[m, c, self.n_longer, f] for m, c, f in zip(self.modes, self.changed, self.fractions)]
        head = (f"truncation audit: {self.family} on {self.task}, max_len {self.max_len}: {self.n_longer} of "
                f"{self.n_examples} inputs are longer\nprediction = {self.prediction}")
        return "\n".join([head, format_rows(rows, ["mode", "changed", "of", "fraction"])])

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self, "fractions")

    def save_plot(self, path: str | Path) -> Path:
        """One bar per mode: the fraction of long inputs whose prediction changed."""
        from seqlab.plots import save_bar_plot

        return save_bar_plot(dict(zip(self.modes, self.fractions)), path, ylabel="fraction of predictions changed",
                             title=f"truncation to {self.max_len}: {self.family} on {self.task} (n={self.n_longer})")


def _tokens(model: Any, value: Any) -> list[str]:
    """The tokens the model reads for a raw input (its ``tokenize`` where it has one)."""
    task = model.task
    fn = getattr(model, "tokenize", None)
    if callable(fn) and not task.decodes_free:  # a generator's tokenize is its output side
        return list(fn(value))
    return list(task.raw_tokens(value))


def truncation_audit(model: Any, examples: Sequence[Any], max_len: int,
                     modes: Sequence[str] = tuple(TRUNCATION_MODES)) -> TruncationAudit:
    """The share of inputs whose prediction changes when cut to ``max_len`` tokens.

    ``examples``: raw inputs (text or token lists; for generation sources; an example dict is
    read through its ``tokens``/``text``/``source`` field). Each is tokenized as the model reads
    it (``model.tokenize``), and only inputs of more than ``max_len`` tokens count
    (``n_longer``). Every mode (:data:`TRUNCATION_MODES`) cuts the token list and the model
    predicts on it; "prediction" is, per task: classification the label; labeling the labels of
    the kept tokens, compared with the uncut input's labels at the same tokens; lm the argmax
    next token after the final kept token, compared with the uncut input's prediction at that
    token (the prediction after the uncut prefix ending there); generation the output sequence.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"max_len must be an integer >= 1, found {max_len!r}")
    the_task = model.task
    task, kind = the_task.name, the_task.prediction_kind
    if not kind:
        raise ConfigError(f"truncation_audit needs a task whose predictions can be compared; not {task!r}")
    for m in modes:
        if m not in TRUNCATION_MODES:
            raise ConfigError(f"unknown truncation mode {m!r}; valid: {', '.join(TRUNCATION_MODES)}")
    raw = [_raw(x, the_task.input_keys) for x in examples]
    toks = [_tokens(model, x) for x in raw]
    longer = [i for i, t in enumerate(toks) if len(t) > max_len]
    changed: list[tuple[int, ...]] = []
    full = model.predict([toks[i] for i in longer]) if longer and kind != "next" else []
    for mode in modes:
        kept = [truncate(list(range(len(toks[i]))), max_len, TRUNCATION_MODES[mode])[0] for i in longer]  # type: ignore[arg-type]
        cut = [[toks[i][j] for j in k] for i, k in zip(longer, kept)]
        got = model.predict(cut) if cut else []
        if kind == "next":  # the uncut prediction at the final kept token: the prefix ending there
            ref = model.predict([toks[i][: k[-1] + 1] for i, k in zip(longer, kept)]) if cut else []
            diff = [a != b for a, b in zip(ref, got)]
        elif kind == "token":
            diff = [[f[j] for j in k] != list(g)[: len(k)] for f, g, k in zip(full, got, kept)]
        else:
            diff = [a != b for a, b in zip(full, got)]
        changed.append(tuple(i for i, d in zip(longer, diff) if d))
    return TruncationAudit(family_of(model), task, max_len, len(raw), len(longer), tuple(modes),
                           tuple(len(c) for c in changed), tuple(changed), the_task.prediction_words)


def _raw(x: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(x, dict):
        return x
    for k in keys:
        if k in x:
            return x[k]
    raise ConfigError(f"an example dict needs one of the fields {keys}; found {sorted(x)}")
