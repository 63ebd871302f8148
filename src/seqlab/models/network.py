"""The network every neural family shares: the task's frontend -> the family's encoder -> the task's head.

::

    batch --frontend--> (x (B, T', D_in), mask (B, T')) --encoder--> h (B, T', H) --head--> output

The task builds both ends (:meth:`seqlab.tasks.Task.build_frontend` / ``build_head``), the family
builds only the encoder (``make_encoder(config, input_dim)``), and this module joins them. It
knows no task names: what differs between tasks is behind the frontend, the head and the task's
loss. A task whose output is a new sequence (``Task.shape == "encoder_decoder"``) gets the
family's whole encoder-decoder network instead (``make_seq2seq(config, task)``), which follows
the same loss protocol (``forward(batch, loss=True)``, :func:`output_loss`).

:class:`EndsConfig` holds the frontend and head settings; they are set the same way for every
neural family (``seqlab.build("gru", task, pooling="mean", char_filters=50)``) and saved beside
the family's encoder config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from seqlab.config import check_at_least, check_fraction
from seqlab.errors import ConfigError
from seqlab.models.heads import Head

__all__ = ["EndsConfig", "EndsSpec", "Network", "build_network", "output_loss", "training_loss", "TaskLoss"]

TaskLoss = Callable[[Tensor, dict[str, Tensor]], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class EndsConfig:
    """Frontend and head settings, the same for every neural family.

    ``frontend_dim``: the width of token (or value) embeddings; None = the encoder's ``d_model``
    (a different width is projected to ``d_model`` by the encoder). ``word_dropout``: the rate at which training tokens become ``<unk>``.
    ``char_filters`` > 0 adds a character CNN of that many filters (``char_dim`` wide character
    embeddings) to each word (labeling with word tokens). ``pooling``: how a sequence head
    summarises the states (last / mean / max / attention). ``tie_weights``: an LM head shares the
    token embedding matrix. ``patch``: a numeric frontend projects patches of this many steps.
    ``head``: a task's alternative head (labeling: ``"crf"``); None = the task's default.
    """

    frontend_dim: int | None = None
    word_dropout: float = 0.0
    char_filters: int = 0
    char_dim: int = 30
    pooling: Literal["last", "mean", "max", "attention"] = "last"
    tie_weights: bool = True
    patch: int = 1
    head: str | None = None

    def __post_init__(self) -> None:
        check_at_least(self, 0, "char_filters")
        check_at_least(self, 1, "char_dim", "patch")
        if self.frontend_dim is not None and self.frontend_dim < 1:
            raise ConfigError(f"frontend_dim must be >= 1 (or unset), found {self.frontend_dim}")
        check_fraction(self, "word_dropout")


@dataclass(frozen=True)
class EndsSpec:
    """What a task needs to build its frontend and head: the settings, the encoder's input width
    ``d_model``, the family's dropout, and its token-embedding initialisation ``(scaled, std)``."""

    ends: EndsConfig
    d_model: int
    dropout: float
    embedding_init: tuple[bool, float | None] = (False, None)

    @property
    def embedding_dim(self) -> int:
        return self.ends.frontend_dim or self.d_model


def training_loss(module: nn.Module, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The training loss of ``output``: :func:`output_loss` plus the encoder's auxiliary loss from
    the last forward (``aux_loss``, per unit, e.g. mixture-of-experts balancing), if any."""
    total, units = output_loss(module, output, batch)
    aux = getattr(module, "aux_loss", None)  # an encoder-decoder's: both stacks
    if aux is None:
        aux = getattr(getattr(module, "encoder", None), "aux_loss", None)
    if isinstance(aux, Tensor):
        total = total + aux * units
    return total, units


def output_loss(module: nn.Module, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(summed loss, units)`` of a network's output: the head's own loss where it has one (a
    CRF), else the task's loss that the network was built with."""
    head = getattr(module, "head", None)
    own = head.loss(output, batch) if isinstance(head, Head) else None
    if own is not None:
        return own
    task_loss: TaskLoss = getattr(module, "task_loss")  # noqa: B009 (set by the builder)
    return task_loss(output, batch)


class Network(nn.Module):
    """``frontend -> encoder -> head``. ``forward(batch)`` gives the head's output;
    ``forward(batch, loss=True)`` gives ``(summed training loss, units)``, so the loss runs inside
    ``forward`` (DDP then synchronises every parameter it used, a CRF's transitions included)."""

    def __init__(self, frontend: nn.Module, encoder: nn.Module, head: Head, task_loss: TaskLoss) -> None:
        super().__init__()
        self.frontend = frontend
        self.encoder = encoder
        self.head = head
        self.task_loss = task_loss
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    def forward(self, batch: dict[str, Tensor], loss: bool = False) -> Any:
        x, mask = self.frontend(batch)  # (B, T', D_in), (B, T')
        h = self.encoder(x, mask)  # (B, T', H)
        out: Tensor = self.head(h, mask)
        return training_loss(self, out, batch) if loss else out

    def output_mask(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T') the mask of the head's positions (the frontend's: shorter when it subsamples)."""
        mask_of = getattr(self.frontend, "mask_of")  # noqa: B009 (every frontend has it)
        mask: Tensor = mask_of(batch)
        return mask

    def decide(self, output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The output in the form the task decodes (scores, or a structured head's best ids)."""
        return self.head.decide(output, self.output_mask(batch))

    def probabilities(self, output: Tensor, batch: dict[str, Tensor], differentiable: bool = False) -> Tensor:
        return self.head.probabilities(output, self.output_mask(batch), differentiable)


LEGACY_FRONTEND = ("embed", "chars")


def _rename_legacy_keys(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    """Before the frontend existed (saved-model format 1, and the training checkpoints of that
    time) a token network held its embedding and character CNN itself: ``embed.*`` and
    ``chars.*`` are ``frontend.embed.*`` and ``frontend.chars.*`` now. Renamed in place as the
    state is loaded, so old saved models load and old runs resume (the parameters keep their
    order, so the optimizer's state lines up too)."""
    for key in [k for k in state if k.startswith(prefix) and k[len(prefix):].split(".")[0] in LEGACY_FRONTEND]:
        state[f"{prefix}frontend.{key[len(prefix):]}"] = state.pop(key)


def build_network(
    task: Any, config: Any, ends: EndsConfig, make_encoder: Callable[[Any, int], nn.Module] | None,
    make_seq2seq: Callable[[Any, Any], nn.Module] | None = None,
) -> nn.Module:
    """The network for ``task``: the task's ends around the family's encoder (or, for an
    encoder-decoder task, the family's whole encoder-decoder, given the task's loss)."""
    if task.shape == "encoder_decoder":
        if make_seq2seq is None:
            raise ConfigError(f"this family has no encoder-decoder for task {task.name!r}")
        module = make_seq2seq(config, task)
        module.task_loss = task.loss
        return module
    if make_encoder is None:
        raise ConfigError(f"this family has no encoder for task {task.name!r}")
    c = config
    if getattr(c, "causal", False) is None:  # families with causal: bool | None follow the task
        c = dataclasses.replace(c, causal=task.causal)
    init = getattr(c, "embedding_init", None)  # a family's choice: (scaled, init_std)
    spec = EndsSpec(ends, int(c.d_model), float(c.dropout), init() if callable(init) else (False, None))
    frontend = task.build_frontend(spec)
    encoder = make_encoder(c, int(frontend.output_dim))
    if task.causal and not getattr(encoder, "causal", False):
        raise ConfigError(f"task {task.name!r} needs a causal encoder; set bidirectional=false (or causal=true)")
    head = task.build_head(spec, int(getattr(encoder, "output_dim")), frontend, encoder)  # noqa: B009
    return Network(frontend, encoder, head, task.loss)
