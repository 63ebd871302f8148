"""The estimator every neural family shares: embedding -> encoder -> task head.

``NeuralModel`` follows the scikit-learn habit: ``__init__`` stores settings, ``fit`` returns
``self``, learned state ends in ``_``. It owns nothing family-specific: the registry gives it
an encoder factory, the task gives it the head shape, the loss, decoding and metrics, and the
trainer (which knows nothing about models) runs the optimisation.
"""

from __future__ import annotations

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
from seqlab.io import read_tensors, write_json, write_tensors
from seqlab.models.heads import CRFTokenHead, LMHead, SequenceHead, TokenHead, crf_constraints
from seqlab.models.layers import CharCNN, TokenEmbedding
from seqlab.tasks import Encoded, EvalAccumulator, Example, Task, task_from_state
from seqlab.train.checkpoint import atomic_directory
from seqlab.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["NeuralModule", "NeuralModel", "EncoderFactory"]

# (config, input_dim) -> encoder; for encoder-decoder tasks (config, task) -> the whole network
EncoderFactory = Callable[[Any, Any], nn.Module]


class NeuralModule(nn.Module):
    """``batch`` -> task output: (B, C), (B, T, C) or (B, T, V) logits.

    ``head="crf"`` (token labeling only) puts a linear-chain CRF over the (B, T, C) scores;
    ``module(batch, loss=True)`` then returns the batch's summed CRF NLL, so the loss runs
    inside ``forward`` (as DDP needs for the CRF's gradients to be synchronised).
    """

    def __init__(self, task: Task, config: Any, make_encoder: EncoderFactory, head: str | None = None) -> None:
        super().__init__()
        c = config
        init = getattr(c, "embedding_init", None)  # a family's choice: (scaled, init_std)
        scaled, std = init() if callable(init) else (False, None)
        self.embed = TokenEmbedding(task.input_size, c.embedding_dim, c.dropout, c.word_dropout,
                                    scaled=scaled, init_std=std)
        n_chars = int(getattr(task, "char_vocab_size", 0))
        filters = int(getattr(c, "char_filters", 0))
        if filters and not n_chars:
            raise ConfigError(f"char_filters needs a task that emits characters (labeling); task {task.name!r} does not")
        self.chars = CharCNN(n_chars, c.char_dim, filters, dropout=c.dropout) if filters else None
        if getattr(c, "causal", False) is None:  # families with causal: bool | None follow the task
            c = dataclasses.replace(c, causal=task.causal)
        self.encoder = make_encoder(c, c.embedding_dim + filters)
        dim: int = getattr(self.encoder, "output_dim")  # noqa: B009 (an nn.Module attribute)
        if task.causal and not getattr(self.encoder, "causal", False):
            raise ConfigError(f"task {task.name!r} needs a causal encoder; set bidirectional=false (or causal=true)")
        if head == "crf" and task.output != "token":
            raise ConfigError(f"head 'crf' is for token labeling; task {task.name!r} predicts {task.output!r}")
        self.head: nn.Module
        if task.output == "sequence":
            self.head = SequenceHead(dim, task.output_size, c.pooling, c.dropout, getattr(self.encoder, "last", None))
        elif head == "crf":
            tags = getattr(task, "tag_vocab").itos  # noqa: B009 (the labeling task's tags)
            constraints = crf_constraints(tags, str(getattr(task, "scheme", "none")))
            self.head = CRFTokenHead(dim, task.output_size, c.dropout, constraints)
        elif task.output == "token":
            self.head = TokenHead(dim, task.output_size, c.dropout)
        elif task.output in ("next_token", "masked_token"):
            tied = self.embed.weight_layer if c.tie_weights else None
            self.head = LMHead(dim, tied, task.output_size, c.embedding_dim, c.dropout)
        else:
            raise ConfigError(f"this family has no head for task output {task.output!r}")

    def forward(self, batch: dict[str, Tensor], loss: bool = False) -> Tensor:
        mask = batch["mask"]  # (B, T) bool
        x = self.embed(batch["input_ids"])  # (B, T, E)
        if self.chars is not None:
            x = torch.cat([x, self.chars(batch["chars"])], dim=-1)  # (B, T, E + F)
        h = self.encoder(x, mask)  # (B, T, H)
        out: Tensor = self.head(h, mask)
        if loss:
            if not isinstance(self.head, CRFTokenHead):
                raise SeqlabError("forward(loss=True) is for the CRF head; other heads use the task's loss")
            return self.head.nll(out, batch["labels"], mask)  # () summed NLL
        return out


def _labelled(batch: dict[str, Tensor]) -> Tensor:
    """Number of real tokens with a known label: () long."""
    return ((batch["labels"] != -100) & batch["mask"]).sum()


class NeuralModel:
    """A neural sequence model for one task: build, fit, evaluate, predict, save, load."""

    kind = "neural"

    def __init__(
        self, family: str, task: Task, config: Any, make_encoder: EncoderFactory,
        train: TrainConfig | None = None, device: str = "cpu", head: str | None = None,
    ) -> None:
        self.family = family
        self.head = head  # None = the task's default head
        self.task = task
        self.config = config
        self.make_encoder = make_encoder
        self.train_config = train or TrainConfig()
        self.device = torch.device(device)
        self.module_: nn.Module | None = None
        self.result_: TrainResult | None = None
        self.train_time_: float = 0.0

    # --- construction -------------------------------------------------------------------
    @property
    def seq2seq(self) -> bool:
        """Encoder-decoder task: the family's factory builds the whole network
        ``(config, task) -> module`` with ``forward(batch)`` -> (B, T, V) teacher-forced logits and
        the stepper protocol (``start(batch)``, ``step``, ``reorder``) for free-running decoding."""
        return self.task.output == "sequence_to_sequence"

    def _build_module(self) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            if self.seq2seq:
                module = self.make_encoder(self.config, self.task)
            else:
                module = NeuralModule(self.task, self.config, self.make_encoder, self.head)
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

    def _loss(self, module: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        # the trainer has moved the batch already
        if self.head == "crf":
            # CRF NLL summed over sequences; units = labelled tokens, so the reported loss is
            # per token like the softmax head's (a sequence's NLL spread over its tokens)
            return module(batch, loss=True), _labelled(batch)
        total, units = self.task.loss(module(batch), batch)
        aux = _aux_loss(module)
        if aux is not None:  # e.g. a mixture-of-experts balancing loss, per unit like the task loss
            total = total + aux * units
        return total, units

    def _output_loss(self, output: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Loss sum and units of an eval-mode output (no DDP here)."""
        head = getattr(self.module, "head", None)
        if isinstance(head, CRFTokenHead):
            with torch.no_grad():
                return head.nll(output, batch["labels"], batch["mask"]), _labelled(batch)
        return self.task.loss(output, batch)

    def _decode(self, output: Tensor, batch: dict[str, Tensor]) -> list[Any]:
        if self.seq2seq:  # free-running decoding, not the teacher-forced argmax
            return self.task.decode_ids([h.tokens for h in self._generate_batch(batch)])  # type: ignore[attr-defined]
        head = self.module.head
        if isinstance(head, CRFTokenHead):
            return getattr(self.task, "decode_ids")(head.decode(output, batch["mask"]), batch)  # noqa: B009
        return self.task.decode(output, batch)

    def prepare(self, train: Sequence[Example]) -> NeuralModel:
        """Fit the task's vocabularies on ``train`` and build the network, once, without training
        (``fit`` calls it; so does weight transfer into a model that has not been trained)."""
        if self.module_ is None:
            if not train:
                raise SeqlabError("the model is not built yet: pass its training examples")
            if getattr(self.config, "char_filters", 0) and hasattr(self.task, "use_chars"):
                self.task.use_chars = True  # the model asks the task for character ids
            self.task.fit(train)
            self.module_ = self._build_module()
        return self

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
        evaluate = None
        if valid_enc is not None:
            def evaluate() -> dict[str, float]:
                return self._evaluate_encoded(valid_enc)
        trainer = Trainer(
            self.module, self._loss, self.train_config, run_dir=run_dir, evaluate=evaluate,
            main_metric=self.task.main_metric if valid_enc else "loss",
            greater_is_better=self.task.greater_is_better if valid_enc else False, device=self.device,
        )
        start = time.perf_counter()
        self.result_ = trainer.fit(source, resume=resume)
        self.train_time_ += time.perf_counter() - start
        return self

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

    def _evaluate_encoded(self, enc: Encoded, batch_size: int | None = None) -> dict[str, float]:
        acc = EvalAccumulator()
        for output, batch in self._outputs(enc.items, batch_size or self.train_config.batch_size):
            nll, n = self._output_loss(output, batch)
            acc.add(nll, n, self._decode(output, batch), batch["index"])
        preds = acc.ordered(len(enc.items))
        return self.task.metrics(preds, enc.references, acc.nll_sum, acc.n_units)

    def evaluate(self, split: Sequence[Example], batch_size: int | None = None) -> dict[str, float]:
        """The task's metrics on labelled examples."""
        return self._evaluate_encoded(self.task.encode(split), batch_size)

    def _predict_rows(self, inputs: Sequence[Any], fn: Callable[[Tensor, dict[str, Tensor]], list[Any]]) -> list[Any]:
        items = self.task.encode_inputs(inputs)
        by_index: dict[int, Any] = {}
        # an encoder-decoder decodes free-running: its teacher-forced forward would go unused
        for output, batch in self._outputs(items, self.train_config.batch_size, forward=not self.seq2seq):
            for i, p in zip(batch["index"].tolist(), fn(output, batch)):
                by_index[i] = p
        return [by_index[i] for i in range(len(items))]

    def decoding(self, method: str = "greedy", beam: int = 4, max_len: int | None = None,
                 length_penalty: str = "gnmt", alpha: float = 0.6, n_best: int = 1, *,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0) -> NeuralModel:
        """How an encoder-decoder decodes in ``evaluate`` and ``predict``: ``greedy`` (default),
        ``beam`` (width ``beam``, ``length_penalty`` none | gnmt | power with ``alpha``) or
        ``sample`` (``temperature``, ``top_k``, ``top_p``; draws from a generator seeded with
        ``seed`` when this is called, so a run is reproducible); ``max_len`` output tokens
        (default: twice the source length + 10). ``n_best > 1`` makes ``predict`` return the
        n best outputs per input (beam). Returns ``self``."""
        if method not in ("greedy", "beam", "sample"):
            raise ConfigError(f"decoding method must be greedy, beam or sample, found {method!r}")
        if n_best > 1 and method != "beam":
            raise ConfigError("n_best > 1 needs method='beam'")
        if n_best > beam and method == "beam":
            raise ConfigError(f"n_best ({n_best}) cannot exceed the beam width ({beam})")
        gen = torch.Generator().manual_seed(seed)
        self._decoding = {"method": method, "beam": beam, "max_len": max_len, "length_penalty": length_penalty,
                          "alpha": alpha, "n_best": n_best, "temperature": temperature, "top_k": top_k,
                          "top_p": top_p, "generator": gen}
        return self

    def _generate_batch(self, batch: dict[str, Tensor], n_best: int = 1) -> list[Any]:
        """Free-running decoding of a collated batch through :mod:`seqlab.inference.decoding`:
        one best :class:`Hypothesis` per row (``n_best > 1``: a list of them per row)."""
        from seqlab.inference import decoding as dec

        opts: dict[str, Any] = getattr(self, "_decoding", None) or self.decoding()._decoding  # default: greedy
        module = self.module
        task: Any = self.task
        B = batch["src_ids"].shape[0]
        max_len = opts.get("max_len") or int(batch["src_mask"].sum(-1).max()) * 2 + 10
        start = torch.full((B,), task.bos_id, dtype=torch.long, device=self.device)
        with torch.no_grad():
            hyps = dec.decode(opts["method"], module, start, module.start(batch), max_len, task.eos_id,
                              beam=opts["beam"], n_best=max(n_best, 1), penalty=opts["length_penalty"],
                              alpha=opts["alpha"], temperature=opts["temperature"], top_k=opts["top_k"],
                              top_p=opts["top_p"], generator=opts["generator"])
        return [h[:n_best] if n_best > 1 else h[0] for h in hyps]

    def save_alignment(self, source: Any, path: str | Path, target: Any = None, *, title: str | None = None) -> Path:
        """Save the attention heatmap (PNG) of an encoder-decoder for one example: ``source`` (text
        or a token list) against ``target`` (default: the model's own output under the current
        :meth:`decoding`), teacher-forced; rows are the predicted target tokens and ``<eos>``,
        columns the source tokens. Returns the path written."""
        from seqlab.plots import save_attention_heatmap

        module = self.module
        if not self.seq2seq or not hasattr(module, "alignment"):
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

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """Labels (classification), tag lists (labeling), next tokens (lm) or generated outputs
        (generation; see :meth:`decoding`) for raw inputs."""
        if self.seq2seq:
            n_best = (getattr(self, "_decoding", None) or {}).get("n_best", 1)
            if n_best > 1:
                task: Any = self.task
                return self._predict_rows(inputs, lambda out, batch: [
                    task.decode_ids([h.tokens for h in row]) for row in self._generate_batch(batch, n_best)])
        fn = getattr(self.task, "next_tokens", None) if self.task.name == "lm" else None
        return self._predict_rows(inputs, fn or self._decode)

    def predict_proba(self, inputs: Sequence[Any]) -> list[dict[str, float]]:
        fn = getattr(self.task, "probabilities", None)
        if fn is None:
            raise SeqlabError(f"predict_proba is for classification, not {self.task.name}")
        return self._predict_rows(inputs, lambda out, batch: fn(out))

    # --- probing: per-position output distributions (seqlab.probes) -------------------------
    _PROBE_TASKS = ("lm", "labeling", "classification")

    def _check_probe_task(self) -> None:
        if self.task.name not in self._PROBE_TASKS:
            raise SeqlabError(f"output distributions are for the tasks {', '.join(self._PROBE_TASKS)}; "
                              f"this {self.family} model serves {self.task.name!r}")

    def tokenize(self, value: Any) -> list[str]:
        """The tokens the model sees for one raw input (the task's tokenizer, lowercasing and
        truncation): ``distributions`` gives one row per token (lm, labeling) or one row
        (classification). Token lists are normalised only, so ``tokenize(tokenize(x)) == tokenize(x)``."""
        self._check_probe_task()
        return self.task.input_tokens(value)

    def output_labels(self) -> list[str]:
        """Names of the K columns of :meth:`distributions`: vocabulary (lm), tags, or classes."""
        self._check_probe_task()
        return self.task.output_labels()

    def output_probabilities(self, output: Tensor, batch: dict[str, Tensor], differentiable: bool = False) -> Tensor:
        """The module's ``output`` as probabilities: (B, T, K) (lm, labeling) or (B, K)
        (classification), float32. Softmax of the logits; with a CRF head the posterior node
        marginals p(y_t = k | x) (``differentiable=True``: as the gradient of the reference
        log-partition with ``create_graph``, so a saliency can differentiate through them)."""
        head = self.module.head
        if isinstance(head, CRFTokenHead):
            em = output.float()  # (B, T, C)
            if not differentiable:
                return head.crf.marginals(em, batch["mask"])
            from seqlab.inference import log_partition_ref

            tr, st, en = head.crf._params(em)
            log_z = log_partition_ref(em, tr, st, en, batch["mask"])  # (B,)
            (node,) = torch.autograd.grad(log_z.sum(), em, create_graph=True)  # (B, T, C)
            return node
        return output.float().softmax(-1)

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        """One (J, K) float32 tensor of probabilities per raw input (J = ``len(tokenize(x))``;
        K = ``len(output_labels())``): lm row j = p(next token | tokens[: j + 1]); labeling row
        j = the label distribution at token j (CRF head: posterior marginals, not the Viterbi
        path); classification: J = 1, the class probabilities."""
        self._check_probe_task()
        items = self.task.encode_inputs(list(inputs))
        out: dict[int, Tensor] = {}
        for output, batch in self._outputs(items, self.train_config.batch_size):
            probs = self.output_probabilities(output, batch).cpu()  # (B, T, K) or (B, K)
            lengths = batch["mask"].sum(-1).tolist()
            for r, i in enumerate(batch["index"].tolist()):
                out[i] = probs[r : r + 1] if probs.dim() == 2 else probs[r, : lengths[r]]
        return [out[i] for i in range(len(items))]

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 200, temperature: float = 1.0,
        top_k: int | None = None, seed: int = 0, *, top_p: float | None = None,
        method: str = "sample", beam: int = 4, stop_at_eos: bool = False,
    ) -> list[str]:
        """Continuations from a causal LM: ``method`` "sample" (temperature, top-k, top-p;
        ``temperature == 0`` is greedy), "greedy" or "beam" (width ``beam``); ``stop_at_eos``
        ends a continuation at ``<eos>`` (see :func:`seqlab.models.sampling.generate`)."""
        from seqlab.models.sampling import generate

        return generate(
            self, prompts, max_new_tokens, temperature, top_k, seed, top_p=top_p,
            method=method, beam=beam, stop_at_eos=stop_at_eos,  # type: ignore[arg-type]
        )

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
            "kind": self.kind,
            "family": self.family,
            "head": self.head,
            "task": self.task.name,
            "task_state": self.task.state(),
            "model_config": to_dict(self.config),
            "train_config": to_dict(self.train_config),
        })

    @classmethod
    def from_saved(cls, path: str | Path, meta: dict[str, Any], config_cls: type, make_encoder: EncoderFactory) -> NeuralModel:
        task = task_from_state(meta["task"], meta["task_state"])
        model = cls(
            meta["family"], task, from_dict(config_cls, meta["model_config"]), make_encoder,
            from_dict(TrainConfig, meta["train_config"]), head=meta.get("head"),
        )
        model.module_ = model._build_module()
        state = read_tensors(Path(path) / "model.safetensors")
        try:
            model.module_.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise SeqlabError(f"{path}: the weights do not fit the saved configuration: {e}") from None
        return model

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))
        return f"NeuralModel({self.family!r}, task={self.task.name!r}, {fields})"


def _aux_loss(module: nn.Module) -> Tensor | None:
    """The encoder's auxiliary training loss from the last forward (``encoder.aux_loss``, a
    scalar per unit, or None). Families that have one (mixture-of-experts routing) set it in
    ``forward``; the trainer then minimises task loss + aux."""
    inner = getattr(module, "module", module)  # unwrap DDP
    aux = getattr(inner, "aux_loss", None)  # an encoder-decoder's: both stacks
    if aux is None:
        aux = getattr(getattr(inner, "encoder", None), "aux_loss", None)
    return aux if isinstance(aux, Tensor) else None

