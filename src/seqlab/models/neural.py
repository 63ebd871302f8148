"""The lifecycle every neural family shares: build, fit, evaluate, predict, save, load.

``NeuralModel`` follows the scikit-learn habit: ``__init__`` stores settings, ``fit`` returns
``self``, learned state ends in ``_``. It owns nothing family- or task-specific: the registry
gives it an encoder factory, :func:`seqlab.models.network.build_network` joins that encoder to
the task's frontend and head, the task gives the loss, decoding and metrics, and the trainer
(which knows nothing about models) runs the optimisation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqlab._version import __version__
from seqlab.config import from_dict, to_dict
from seqlab.data.batching import BatchSource, BucketBatchSampler, EpochBatchSource, move_to
from seqlab.data.synthetic import Resampled
from seqlab.errors import ConfigError, SeqlabError
from seqlab.inference.decoding import DecodingConfig
from seqlab.io import read_tensors, write_json, write_tensors
from seqlab.models.network import EndsConfig, build_network, output_loss
from seqlab.tasks import Encoded, EvalAccumulator, Example, Task, task_from_state
from seqlab.train.checkpoint import atomic_directory
from seqlab.train.identity import check_identity, fingerprint, run_lock
from seqlab.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["NeuralModel", "EncoderFactory", "Seq2SeqFactory", "SAVE_FORMAT"]

# (config, input_dim) -> encoder; for encoder-decoder tasks (config, task, ends) -> the whole network
EncoderFactory = Callable[[Any, int], nn.Module]
Seq2SeqFactory = Callable[[Any, Any, EndsConfig], nn.Module]
SAVE_FORMAT = 2  # 2: frontend -> encoder -> head, encoder configs with d_model, ends_config


class NeuralModel:
    """A neural sequence model for one task: build, fit, evaluate, predict, save, load.

    ``ends``: the frontend and head settings (:class:`~seqlab.models.network.EndsConfig`);
    ``decoding``: how a generator decodes by default (saved with the model; every ``predict`` /
    ``evaluate`` / ``generate`` call may pass its own).
    """

    kind = "neural"

    def __init__(
        self, family: str, task: Task, config: Any, make_encoder: EncoderFactory | None,
        train: TrainConfig | None = None, device: str = "cpu", *, ends: EndsConfig | None = None,
        decoding: DecodingConfig | None = None, make_seq2seq: Seq2SeqFactory | None = None,
        recipe: bool = False, explicit: dict[str, set[str]] | None = None,
    ) -> None:
        self.family = family
        self.task = task
        self.config = config
        self.ends = ends or EndsConfig()
        self.decoding = decoding or task.default_decoding()
        task.check_head(self.ends.head)
        self.make_encoder = make_encoder
        self.make_seq2seq = make_seq2seq
        self.train_config = train or TrainConfig()
        self.device = torch.device(device)
        self.module_: nn.Module | None = None
        self.result_: TrainResult | None = None
        self.train_time_: float = 0.0
        # the data-dependent defaults (seqlab.recipes) for the settings not in ``explicit``,
        # derived once, when the network is built from the training split
        self.use_recipe = recipe
        self.explicit = explicit or {}
        self.recipe_: dict[str, Any] | None = None

    @property
    def head(self) -> str | None:
        """The head the user chose (None: the task's default)."""
        return self.ends.head

    # --- construction -------------------------------------------------------------------
    def _build_module(self) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            seq2seq = None
            if self.make_seq2seq is not None:
                make, ends = self.make_seq2seq, self.ends

                def seq2seq(config: Any, task: Any) -> nn.Module:
                    return make(config, task, ends)
            module = build_network(self.task, self.config, self.ends, self.make_encoder, seq2seq)
        return module.to(self.device)

    @property
    def module(self) -> Any:
        if self.module_ is None:
            raise SeqlabError("the model is not fitted: call fit() or load a saved model")
        return self.module_

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    # --- training -----------------------------------------------------------------------
    def _encode_train(self, train: Sequence[Example], report: bool = True) -> Encoded:
        enc = self.task.encode(train)
        if report and enc.report.n_truncated:
            print(f"[seqlab] train: {enc.report}")
        return enc

    def _source(self, enc: Encoded, shuffle: bool, batch_size: int) -> BatchSource:
        sampler = BucketBatchSampler(
            self.task.lengths(enc.items), batch_size, shuffle=shuffle, bucket=self.train_config.bucket,
            seed=self.train_config.seed,
        )
        return BatchSource(enc.items, self.task.collate, sampler, seed=self.train_config.seed)

    @staticmethod
    def _loss(module: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The trainer's loss: the network computes it inside ``forward`` (the batch is on the device)."""
        total, units = module(batch, loss=True)
        return total, units

    def prepare(self, train: Sequence[Example]) -> NeuralModel:
        """Fit the task's vocabularies on ``train`` and build the network, once, without training
        (``fit`` calls it; so does weight transfer into a model that has not been trained)."""
        if self.module_ is None:
            if not train:
                raise SeqlabError("the model is not built yet: pass its training examples")
            prepare = getattr(self.task, "prepare_ends", None)
            if prepare is not None:
                prepare(self.ends)  # e.g. a character CNN asks the task for character ids
            self.task.fit(train)
            if self.use_recipe:
                self._apply_recipe(train)
            self.module_ = self._build_module()
        return self

    def _apply_recipe(self, train: Sequence[Example]) -> None:
        """Derive the data-dependent defaults (:mod:`seqlab.recipes`), put them in place, say them."""
        import sys

        from seqlab.recipes import DataStats, apply, derive

        first = train.epoch(0) if isinstance(train, Resampled) else train
        items = self.task.encode(first).items
        stats = DataStats(len(first), sum(self.task.lengths(items)), self.task.chars_per_unit(first), len(items))
        recipe = derive(self.family, self.task, self.config, self.ends, self.train_config, stats, self.explicit)
        self.config, ends, self.train_config = apply(recipe, self.config, self.ends, self.train_config)
        if ends.char_filters != self.ends.char_filters:
            self.ends = ends
            prepare = getattr(self.task, "prepare_ends", None)
            if prepare is not None:
                prepare(self.ends)
            self.task.fit(first)  # again, now with the characters the CNN reads
        self.ends = ends
        self.recipe_ = recipe.record()
        if recipe and self.train_config.progress:
            print(f"[seqlab] recipe for {self.family} on {self.task.name} ({stats}): {recipe.summary()}; "
                  "set any of these to override, or recipe=False (--no-recipe) for the plain defaults",
                  file=sys.stderr, flush=True)

    def fit(
        self, train: Sequence[Example], valid: Sequence[Example] | None = None, *,
        run_dir: str | Path | None = None, resume: bool = True,
    ) -> NeuralModel:
        """Fit the task's vocabularies (once), build the network and train it.

        Early stopping follows the task's main metric on ``valid`` (training loss without it).
        With ``run_dir``, a checkpoint there is resumed and metrics go to ``metrics.jsonl``.
        ``train`` may be a :class:`~seqlab.data.synthetic.Resampled`: epoch ``e`` then trains on
        its draw ``e`` (vocabularies come from epoch 0's).
        """
        if not train:
            raise SeqlabError("fit() needs at least one training example")
        self.prepare(train)
        bs = self.train_config.batch_size
        source: BatchSource | EpochBatchSource
        if isinstance(train, Resampled):
            resampled = train

            def make(epoch: int) -> BatchSource:
                return self._source(self._encode_train(resampled.epoch(epoch), report=epoch == 0), True, bs)

            source = EpochBatchSource(make)
        else:
            source = self._source(self._encode_train(train), True, bs)
        valid_enc = self.task.encode(valid) if valid else None
        with run_lock(Path(run_dir)) if run_dir is not None else contextlib.nullcontext():
            self._fit_locked(source, valid_enc, run_dir, resume, train, valid)
        return self

    def _fit_locked(
        self, source: BatchSource | EpochBatchSource, valid_enc: Encoded | None, run_dir: str | Path | None,
        resume: bool, train: Sequence[Example], valid: Sequence[Example] | None,
    ) -> None:
        """Train, holding ``run_dir`` (see :func:`seqlab.train.identity.run_lock`)."""
        evaluate = None
        if valid_enc is not None:
            def evaluate() -> dict[str, float]:
                return self._evaluate_encoded(valid_enc)
        if run_dir is not None:
            self._check_run(Path(run_dir), train, valid, resume)
        trainer = Trainer(
            self.module, self._loss, self.train_config, run_dir=run_dir, evaluate=evaluate,
            main_metric=self.task.main_metric if valid_enc else "loss",
            greater_is_better=self.task.greater_is_better if valid_enc else False, device=self.device,
        )
        start = time.perf_counter()
        self.result_ = trainer.fit(source, resume=resume)
        self.train_time_ += time.perf_counter() - start

    def _check_run(self, run_dir: Path, train: Sequence[Example], valid: Sequence[Example] | None, resume: bool) -> None:
        """A run directory resumes only the run it was started with: same data, same settings (a
        larger budget is a named continuation); see :mod:`seqlab.train.identity`."""
        settings = {
            "family": self.family,
            "task": {"name": self.task.name, **to_dict(getattr(self.task, "config"))},  # noqa: B009
            "model": to_dict(self.config), "ends": to_dict(self.ends), "train": to_dict(self.train_config),
        }
        data = fingerprint({"train": list(train), "valid": list(valid or [])})
        check_identity(run_dir, settings, data, resume=resume, has_checkpoint=(run_dir / "checkpoint").exists())

    # --- inference ----------------------------------------------------------------------
    def _outputs(
        self, items: list[dict[str, Any]], batch_size: int, forward: bool = True,
    ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """Outputs batch by batch, in eval mode. A generator: one batch's (B, T, V) logits are
        alive at a time, however large the split. ``forward=False`` yields the batches with an
        empty output (an encoder-decoder's predictions come from decoding alone)."""
        module = self.module
        was_training = module.training
        module.eval()
        sampler = BucketBatchSampler(self.task.lengths(items), batch_size, shuffle=False, bucket=True)
        try:
            for idx in sampler.batches(0):
                batch = move_to(self.task.collate([items[i] for i in idx]), self.device)
                with torch.no_grad():
                    output = module(batch) if forward else torch.empty(0)
                yield output, batch
        finally:
            module.train(was_training)

    def _decoding(self, decoding: DecodingConfig | dict[str, Any] | None, generating: bool = False) -> DecodingConfig:
        if decoding is None:
            return self.decoding
        if not (self.task.decodes_free or (generating and self.task.uses_decoding)):
            raise ConfigError(f"this {self.family} model's task {self.task.name!r} predicts without decoding; "
                              "decoding= is for generators (and an LM's generate)")
        if isinstance(decoding, DecodingConfig):
            return decoding
        return from_dict(DecodingConfig, {**to_dict(self.decoding), **decoding}, where="decoding")

    def _evaluate_encoded(self, enc: Encoded, batch_size: int | None = None,
                          decoding: DecodingConfig | None = None) -> dict[str, float]:
        acc = EvalAccumulator()
        module, dec = self.module, decoding or self.decoding
        for output, batch in self._outputs(enc.items, batch_size or self.train_config.batch_size):
            with torch.no_grad():
                nll, n = output_loss(module, output, batch)
            acc.add(nll, n, self.task.tally(module, output, batch, dec), batch["index"])
        tallies = acc.ordered(len(enc.items))
        return self.task.metrics(tallies, enc.references, acc.nll_sum, acc.n_units)

    def evaluate(self, split: Sequence[Example], batch_size: int | None = None, *,
                 decoding: DecodingConfig | dict[str, Any] | None = None) -> dict[str, float]:
        """The task's metrics on labelled examples (a generator decodes under ``decoding``,
        default: the model's own)."""
        if not split:
            raise SeqlabError("evaluate() needs at least one example; the split is empty")
        self.task.warn_unseen(split)
        return self._evaluate_encoded(self.task.encode(split), batch_size, self._decoding(decoding))

    def _inputs(self, inputs: Sequence[Any]) -> list[Any]:
        if isinstance(inputs, (str, bytes)):
            raise SeqlabError("predict takes a list of inputs; wrap a single input in a list: predict([x])")
        out = list(inputs)
        for i, v in enumerate(out):
            self.task.check_input(v, i)
        return out

    def _predict_rows(self, inputs: Sequence[Any], fn: Callable[[Tensor, dict[str, Tensor]], list[Any]]) -> list[Any]:
        items = self.task.encode_inputs(self._inputs(inputs))
        by_index: dict[int, Any] = {}
        # a generator decodes free-running: its teacher-forced forward would go unused
        for output, batch in self._outputs(items, self.train_config.batch_size, forward=not self.task.decodes_free):
            for i, p in zip(batch["index"].tolist(), fn(output, batch)):
                by_index[i] = p
        return [by_index[i] for i in range(len(items))]

    def save_alignment(self, source: Any, path: str | Path, target: Any = None, *, title: str | None = None) -> Path:
        """Save the attention heatmap (PNG) of an encoder-decoder for one example: ``source`` (text
        or a token list) against ``target`` (default: the model's own output under the current
        :meth:`decoding`), teacher-forced; rows are the predicted target tokens and ``<eos>``,
        columns the source tokens. Returns the path written."""
        from seqlab.plots import save_attention_heatmap

        module = self.module
        if self.task.shape != "encoder_decoder" or not hasattr(module, "alignment"):
            raise ConfigError(f"{self.family} on {self.task.name} has no attention alignment; it is for encoder-decoders")
        task: Any = self.task
        if target is None:
            target = self.predict([source])[0]
        items = task.encode([{"source": source, "target": target}]).items
        batch = move_to(task.collate(items), self.device)
        was_training = module.training
        module.eval()
        try:
            weights = module.alignment(batch, 0)  # (T, S)
        finally:
            module.train(was_training)
        src_itos, tgt_itos = task.source_codec.fitted_vocab.itos, task.target_codec.fitted_vocab.itos
        src = [src_itos[int(t)] for t in batch["src_ids"][0][batch["src_mask"][0].bool()]]
        tgt = [tgt_itos[int(t)] for t in batch["labels"][0][batch["mask"][0].bool()]]
        return save_attention_heatmap(weights, src, tgt, path, title=title)

    def predict(self, inputs: Sequence[Any], *, decoding: DecodingConfig | dict[str, Any] | None = None) -> list[Any]:
        """The task's predictions for raw inputs: labels, tag lists, next tokens, filled
        ``<mask>`` tokens, values, or generated outputs (decoded under ``decoding``, default: the
        model's own; ``n_best > 1`` gives a list per input)."""
        dec = self._decoding(decoding)
        module = self.module
        return self._predict_rows(inputs, lambda out, batch: self.task.predictions(module, out, batch, dec))

    def predict_proba(self, inputs: Sequence[Any]) -> list[dict[str, float]]:
        """Class probabilities per input (tasks with one output row per sequence and named classes)."""
        labels = self.output_labels() if self.task.probe_rows == "sequence" else None
        if labels is None:
            raise SeqlabError(f"predict_proba is for tasks with one class distribution per sequence, not {self.task.name}")
        module = self.module

        def rows(out: Tensor, batch: dict[str, Tensor]) -> list[dict[str, float]]:
            probs = module.probabilities(out, batch)  # (B, C)
            return [{name: float(p[c]) for c, name in enumerate(labels)} for p in probs]

        return self._predict_rows(inputs, rows)

    # --- probing: the views seqlab.probes reads (written in seqlab.probes.view) ---------------
    def tokenize(self, value: Any) -> list[str]:
        """The tokens the model sees for one raw input (see :class:`seqlab.probes.view.NeuralView`)."""
        return self._view().tokenize(value)

    def output_labels(self) -> list[str]:
        """Names of the K columns of :meth:`distributions`: vocabulary (lm), tags, or classes."""
        return self._view().output_labels()

    def output_probabilities(self, output: Tensor, batch: dict[str, Tensor], differentiable: bool = False) -> Tensor:
        """The module's ``output`` as (B, T, K) or (B, K) float32 probabilities (softmax; CRF marginals)."""
        return self._view().output_probabilities(output, batch, differentiable)

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """One (J, K) float32 tensor of probabilities per raw input (J = ``len(tokenize(x))``)."""
        return self._view().distributions(inputs)

    def _view(self) -> Any:
        from seqlab.probes.view import NeuralView

        return NeuralView(self)

    def outputs(self, items: list[dict[str, Any]], batch_size: int | None = None) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """``(output, batch)`` per batch of encoded ``items``, in eval mode, without gradients."""
        return self._outputs(items, batch_size or self.train_config.batch_size)

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 200, *,
        decoding: DecodingConfig | dict[str, Any] | None = None, stop_at_eos: bool = False, **settings: Any,
    ) -> list[str]:
        """Continuations from a causal LM under ``decoding`` (default: the model's own, sampling
        at temperature 1 for an LM), with any :class:`DecodingConfig` field given by name for this
        call (``method="beam"``, ``temperature=0.8``, ``top_p=0.95``, ``seed=3``; temperature 0 is
        greedy); ``stop_at_eos`` ends a continuation at ``<eos>`` (see
        :func:`seqlab.models.sampling.generate`)."""
        from seqlab.models.sampling import generate

        dec = self._decoding(decoding, generating=True)
        if settings:
            dec = from_dict(DecodingConfig, {**to_dict(dec), **settings}, where="generate")
        return generate(self, prompts, max_new_tokens, dec, stop_at_eos=stop_at_eos)

    # --- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model directory ``path`` (``model.safetensors`` + ``config.json``) atomically:
        it is built beside ``path`` and swapped in whole, so a crash leaves the old one intact."""
        p = Path(path)
        with atomic_directory(p) as tmp:
            self._write(tmp)
        return p

    def _write(self, p: Path) -> None:
        write_tensors(p / "model.safetensors", self.module.state_dict())
        write_json(p / "config.json", {
            "seqlab_version": __version__,
            "format": SAVE_FORMAT,
            "kind": self.kind,
            "family": self.family,
            "task": self.task.name,
            "task_state": self.task.state(),
            "model_config": to_dict(self.config),
            "ends_config": to_dict(self.ends),
            "decoding": to_dict(self.decoding),
            "train_config": to_dict(self.train_config),
            "recipe": self.recipe_,
        })

    @classmethod
    def from_saved(
        cls, path: str | Path, meta: dict[str, Any], config_cls: type, make_encoder: EncoderFactory | None,
        make_seq2seq: Seq2SeqFactory | None = None,
    ) -> NeuralModel:
        """Rebuild a model from ``config.json`` (``meta``, already in the current format: see
        :func:`seqlab.models.registry.load`) and its weights."""
        task = task_from_state(meta["task"], meta["task_state"])
        model = cls(
            meta["family"], task, from_dict(config_cls, meta["model_config"], where=f"{path}: model_config"),
            make_encoder, from_dict(TrainConfig, meta["train_config"], where=f"{path}: train_config"),
            ends=from_dict(EndsConfig, meta.get("ends_config", {}), where=f"{path}: ends_config"),
            decoding=from_dict(DecodingConfig, meta.get("decoding", {}), where=f"{path}: decoding"),
            make_seq2seq=make_seq2seq,
        )
        model.recipe_ = meta.get("recipe")
        model.module_ = model._build_module()
        state = read_tensors(Path(path) / "model.safetensors")  # a format-1 layout is renamed by the Network
        broken = sorted(k for k, v in state.items() if v.is_floating_point() and bool(torch.isnan(v).any()))
        if broken:
            raise SeqlabError(f"{path}: model.safetensors holds NaN weights ({', '.join(broken[:5])}"
                              f"{', ...' if len(broken) > 5 else ''}); a model that diverged cannot predict")
        try:
            model.module_.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise SeqlabError(f"{path}: the weights do not fit the saved configuration: {e}") from None
        return model

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))
        return f"NeuralModel({self.family!r}, task={self.task.name!r}, {fields})"
