"""The model registry: one line per family, imported lazily.

Adding a neural family is one new file (a frozen config dataclass of encoder settings, with
``d_model`` the width entering the encoder, and an encoder taking ``(config, input_dim)``) plus
one line here; it then serves every task whose network is frontend -> encoder -> head (the tasks
build both ends). An encoder-decoder family names a ``network`` factory ``(config, task, ends)``
for tasks of shape ``"encoder_decoder"``. A classical family is one file with a config dataclass
and a :class:`~seqlab.models.classical.base.ClassicalModel` subclass named in ``estimator``, and
lists the tasks it serves. The contract tests then cover it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from seqlab.config import from_dict
from seqlab.errors import ConfigError, SeqlabError
from seqlab.inference.decoding import DecodingConfig
from seqlab.io import read_json
from seqlab.models.network import EndsConfig
from seqlab.models.neural import SAVE_FORMAT, NeuralModel
from seqlab.tasks import TASKS, Task, make_task
from seqlab.train.trainer import TrainConfig

__all__ = ["Family", "FAMILIES", "ALIASES", "build", "load", "get_family", "SequenceModel", "split_settings"]

ENDS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EndsConfig))


@dataclass(frozen=True)
class Family:
    """How to build one family. ``defaults`` preset settings (e.g. the RNN cell, or an end
    setting such as the Transformer's mean pooling); ``renamed`` maps keys of earlier versions
    to the key that took their meaning."""

    name: str
    description: str
    module: str
    config: str
    encoder: str  # neural: the encoder factory ("" = none); classical: "" (see estimator)
    context: str  # "causal or bidirectional", "causal", ...
    defaults: Mapping[str, Any] = field(default_factory=dict)
    estimator: str = ""  # classical: the ClassicalModel subclass in ``module``
    network: str = ""  # encoder-decoder tasks: ``(config, task, ends) -> whole network``
    renamed: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "classical" if self.estimator else "neural"

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this family serves: those a classical estimator declares (``serves``); for a
        neural family every registered task whose network shape it can build (from the task registry)."""
        if self.kind == "classical":
            served = self.estimator_class().serves
            return tuple(name for name, (cls, _) in TASKS.items() if cls in served)
        shapes = {"encoder"} if self.encoder else set()
        if self.network:
            shapes.add("encoder_decoder")
        return tuple(name for name, (cls, _) in TASKS.items() if cls.shape in shapes)

    def config_class(self) -> type:
        cls: type = getattr(importlib.import_module(self.module), self.config)
        return cls

    def encoder_factory(self) -> Any:
        return getattr(importlib.import_module(self.module), self.encoder) if self.encoder else None

    def seq2seq_factory(self) -> Any:
        return getattr(importlib.import_module(self.module), self.network) if self.network else None

    def estimator_class(self) -> Any:
        return getattr(importlib.import_module(self.module), self.estimator)


# keys of earlier versions -> the key that took their meaning (errors name it; old saved models migrate by it)
_WIDTH = {"embedding_dim": "d_model"}
_STATE_WIDTH = {**_WIDTH, "hidden_size": "d_model"}  # Mamba / hybrid: the model width
_FF = {**_WIDTH, "hidden_size": "d_ff"}  # Transformer: the feed-forward width

FAMILIES: dict[str, Family] = {
    "lstm": Family("lstm", "LSTM (Hochreiter & Schmidhuber 1997)", "seqlab.models.rnn", "RNNConfig", "RNNEncoder",
                   "causal, or bidirectional", defaults={"cell": "lstm"}, renamed=_WIDTH),
    "gru": Family("gru", "GRU (Cho et al. 2014)", "seqlab.models.rnn", "RNNConfig", "RNNEncoder",
                  "causal, or bidirectional", defaults={"cell": "gru"}, renamed=_WIDTH),
    "elman": Family("elman", "Elman RNN (Elman 1990)", "seqlab.models.rnn", "RNNConfig", "RNNEncoder",
                    "causal, or bidirectional", defaults={"cell": "elman"}, renamed=_WIDTH),
    "ngram": Family("ngram", "n-gram LM: ML, add-k, modified Kneser-Ney (Chen & Goodman 1998), Good-Turing / Katz; one LM per class for classification",
                    "seqlab.models.classical.ngram", "NGramConfig", "", "causal (order - 1 tokens)",
                    estimator="NGramModel"),
    "hmm": Family("hmm", "hidden Markov model: counting + TnT suffixes, or Baum-Welch",
                  "seqlab.models.classical.hmm", "HMMConfig", "", "whole sequence",
                  estimator="HMMModel"),
    "crf": Family("crf", "feature-based linear-chain CRF (Lafferty et al. 2001), L-BFGS / OWL-QN",
                  "seqlab.models.classical.crf", "CRFConfig", "", "whole sequence (features: a window)",
                  estimator="CRFModel"),
    "linear": Family("linear", "bag-of-n-grams logistic regression, L2 / L1, NB log-count ratios (Wang & Manning 2012)",
                     "seqlab.models.classical.linear", "LinearConfig", "", "whole sequence (bag of n-grams)",
                     estimator="LinearModel"),
    "transformer": Family("transformer", "Transformer, Pre-LN; sinusoidal/learned/RoPE/ALiBi positions, optional MoE (Vaswani et al. 2017)",
                          "seqlab.models.transformer", "TransformerConfig", "TransformerEncoder",
                          "causal (lm), or bidirectional; encoder-decoder (generation)",
                          defaults={"pooling": "mean"}, network="transformer_network", renamed=_FF),
    "seq2seq": Family("seq2seq", "RNN encoder-decoder: fixed vector, Bahdanau or Luong attention (Sutskever 2014; Bahdanau 2015; Luong 2015)",
                      "seqlab.models.seq2seq", "Seq2SeqConfig", "", "encoder bidirectional, decoder causal",
                      network="seq2seq_network", renamed=_WIDTH),
    "mamba": Family("mamba", "Mamba selective SSM (Gu & Dao 2023); selective=false: the LTI ablation",
                    "seqlab.models.mamba", "MambaConfig", "MambaEncoder",
                    "causal (lm), or bidirectional by a reversed pass", renamed=_STATE_WIDTH),
    "hybrid": Family("hybrid", "Mamba + attention hybrid, every k-th layer attention (Jamba, Lieber et al. 2024)",
                     "seqlab.models.hybrid", "HybridConfig", "HybridEncoder",
                     "causal (lm), or bidirectional by a reversed pass", renamed=_STATE_WIDTH),
    "conformer": Family("conformer", "Conformer: macaron FFN, MHSA (RoPE/relative), conv module (Gulati et al. 2020)",
                        "seqlab.models.conformer", "ConformerConfig", "ConformerEncoder", "bidirectional, or causal (lm)"),
}
# Local forecasting methods (issue 16): one line each; the family fits the named method per series.
_FC = ("seqlab.models.classical.forecast", "ForecastConfig", "", "causal (one fit per series)")
FAMILIES.update({name: Family(name, desc, *_FC, defaults={"method": spec}, estimator="ForecastModel") for name, desc, spec in [
    ("naive", "naive forecast: the last value", "seqlab.forecast.simple:Naive"),
    ("snaive", "seasonal naive: the value one season earlier", "seqlab.forecast.simple:SeasonalNaive"),
    ("drift", "random walk with drift", "seqlab.forecast.simple:Drift"),
    ("naive2", "Naive2: naive on the seasonally adjusted series (M3/M4 benchmark)", "seqlab.forecast.simple:Naive2"),
    ("theta", "Theta method, the M3 winner (Assimakopoulos & Nikolopoulos 2000)", "seqlab.forecast.theta:Theta"),
    ("otm", "optimised Theta (Fiorucci et al. 2016)", "seqlab.forecast.theta:OptimizedTheta"),
    ("dstm", "dynamic standard Theta (Fiorucci et al. 2016)", "seqlab.forecast.theta:DynamicTheta"),
    ("dotm", "dynamic optimised Theta (Fiorucci et al. 2016)", "seqlab.forecast.theta:DynamicOptimizedTheta"),
    ("croston", "Croston's method for intermittent demand (1972)", "seqlab.forecast.simple:Croston"),
    ("sba", "Syntetos-Boylan approximation (2005)", "seqlab.forecast.simple:SBA"),
    ("tsb", "Teunter-Syntetos-Babai (2011)", "seqlab.forecast.simple:TSB"),
    ("ensemble", "median (or mean) of local forecasting methods", "seqlab.forecast.simple:Ensemble"),
    ("ets", "AutoETS: error/trend/season state-space model chosen by AICc (Hyndman et al. 2008)", "seqlab.forecast.ets:ETS"),
    ("ses", "simple exponential smoothing, ETS(A,N,N)", "seqlab.forecast.ets:SES"),
    ("holt", "Holt's linear trend, ETS(A,A,N)", "seqlab.forecast.ets:Holt"),
    ("damped", "damped trend, ETS(A,Ad,N) (Gardner & McKenzie 1985)", "seqlab.forecast.ets:DampedTrend"),
    ("holt_winters", "Holt-Winters, ETS(A,A,A) or ETS(M,A,M)", "seqlab.forecast.ets:HoltWinters"),
    ("arima", "AutoARIMA: stepwise search by AICc, exact likelihood via the Kalman filter (Hyndman & Khandakar 2008)", "seqlab.forecast.arima:AutoARIMA"),
    ("structural", "structural model: level, trend and season by the Kalman filter, smoothed components (Harvey 1989)", "seqlab.forecast.structural:Structural"),
]})
# Global neural forecasters (issue 16): one network over all series, windows sampled across them.
_GF = ("seqlab.models.global_forecast", "GlobalForecastConfig", "", "causal (a lookback window)")
FAMILIES["nbeats"] = Family("nbeats", "N-BEATS, generic or interpretable, median ensemble over lookbacks and seeds (Oreshkin et al. 2020)", *_GF, defaults={"encoder": "nbeats"}, estimator="GlobalForecastModel")
FAMILIES["global"] = Family("global", "global forecaster on a seqlab encoder (gru, lstm, transformer with patches, mamba), direct multi-horizon head", *_GF, defaults={"encoder": "gru"}, estimator="GlobalForecastModel")
ALIASES: dict[str, str] = {"rnn": "elman"}
def get_family(name: str) -> Family:
    key = ALIASES.get(name, name)
    if key not in FAMILIES:
        valid = sorted([*FAMILIES, *ALIASES])
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(valid)}")
    return FAMILIES[key]


@runtime_checkable
class SequenceModel(Protocol):
    """What :func:`build` and :func:`load` return, classical or neural: one API. Families add
    their own capabilities (a language model's ``generate``, a neural model's ``module``)."""

    family: str
    task: Task
    kind: str

    def fit(self, train: Sequence[Any], valid: Sequence[Any] | None = None, *,
            run_dir: str | Path | None = None, resume: bool = True) -> Any: ...

    def evaluate(self, split: Sequence[Any], batch_size: int | None = None) -> dict[str, float]: ...

    def predict(self, inputs: Sequence[Any]) -> list[Any]: ...

    def tokenize(self, value: Any) -> list[str]: ...

    def output_labels(self) -> list[str]: ...

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]: ...

    def save(self, path: str | Path) -> Path: ...


def _task_of(task: Any, task_options: Mapping[str, Any] | None) -> Task:
    if isinstance(task, Task):
        if task_options:
            raise ConfigError("task_options go with a task name, not a task object")
        return task
    spec = getattr(task, "task", None)  # a Dataset: its task spec
    if spec is not None and hasattr(spec, "options"):
        task = spec
    if hasattr(task, "name") and hasattr(task, "options"):  # a TaskSpec: name + options
        return make_task(task.name, {**dict(task.options), **dict(task_options or {})})
    if isinstance(task, str):
        return make_task(task, task_options)
    raise ConfigError(f"task must be a task name, a Task, a TaskSpec or a Dataset; found {type(task).__name__}")


def split_settings(fam: Family, settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(family config, ends config)`` from one flat mapping of a neural family's settings; a
    renamed key is an error naming its new key, an unknown key one listing the valid ones."""
    own = [f.name for f in fields(fam.config_class())]
    cfg: dict[str, Any] = {}
    ends: dict[str, Any] = {}
    for key, value in settings.items():
        if key in own:
            cfg[key] = value
        elif key in ENDS_FIELDS:
            ends[key] = value
        elif key in fam.renamed:
            raise ConfigError(f"model {fam.name}: {key} is now {fam.renamed[key]} (renamed in this version)")
        else:
            raise ConfigError(f"unknown key {key!r} in model {fam.name}; valid keys: {', '.join(sorted([*own, *ENDS_FIELDS]))}")
    return cfg, ends


def build(
    name: str,
    task: Any,
    *,
    task_options: Mapping[str, Any] | None = None,
    train: TrainConfig | Mapping[str, Any] | None = None,
    head: str | None = None,
    decoding: DecodingConfig | Mapping[str, Any] | None = None,
    device: str = "cpu",
    recipe: bool = True,
    **config: Any,
) -> SequenceModel:
    """Build an unfitted model of family ``name`` for ``task`` (a name, a Task, a TaskSpec or a
    Dataset, whose task options come along).

    ``config`` sets the family's encoder settings and the network's end settings
    (:class:`~seqlab.models.network.EndsConfig`: pooling, word dropout, character CNN, ...); an
    unknown key is an error that lists the valid ones, a renamed key one that names the new key.
    ``train``: the training settings; ``task_options``: the task's; ``decoding``: how a generator
    decodes by default; ``head``: a task's alternative head (labeling: ``"crf"``).
    ``recipe``: a neural family fills the settings not given here from the training data when it
    is fitted (:mod:`seqlab.recipes`: context direction, dropout, a word tagger's character CNN,
    learning rate, epochs and patience), printing and saving what it chose; False keeps the plain
    defaults. A classical family has no recipe.
    """
    fam = get_family(name)
    the_task = _task_of(task, task_options)
    if the_task.name not in fam.tasks:
        raise ConfigError(f"model {fam.name!r} does not serve task {the_task.name!r}; it serves {', '.join(fam.tasks)}")
    cfg_cls = fam.config_class()
    if fam.kind == "classical":
        refused = [k for k, v in (("train", train), ("head", head), ("decoding", decoding)) if v]
        if refused:
            raise ConfigError(
                f"model {fam.name!r} is fitted by its own estimator and takes no {' / '.join(refused)} settings; "
                f"its settings are model settings: {', '.join(f.name for f in fields(cfg_cls))}"
            )
        own = [f.name for f in fields(cfg_cls)]
        unknown = [k for k in config if k not in own]
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))} in model {fam.name} (a classical family "
                              f"takes no network settings); valid keys: {', '.join(sorted(own))}")
        cfg: Any = from_dict(cfg_cls, {**fam.defaults, **config}, where=f"model {fam.name}")
        return fam.estimator_class()(fam.name, the_task, cfg)
    own_cfg, ends_cfg = split_settings(fam, {**fam.defaults, **config})
    if head is not None:
        ends_cfg["head"] = head
    _refuse_unused(the_task, {**config, **({"head": head} if head is not None else {})}, decoding)
    cfg = from_dict(cfg_cls, own_cfg, where=f"model {fam.name}")
    ends = from_dict(EndsConfig, ends_cfg, where=f"model {fam.name}")
    train_cfg = train if isinstance(train, TrainConfig) else from_dict(TrainConfig, dict(train or {}), where="train")
    if decoding is not None and not isinstance(decoding, DecodingConfig):
        decoding = from_dict(DecodingConfig, dict(decoding), where="decoding")
    given_train = set(fields_of(train)) if isinstance(train, TrainConfig) else set(dict(train or {}))
    explicit = {"model": set(own_cfg), "ends": set(ends_cfg), "train": given_train}  # family presets count as set
    return NeuralModel(fam.name, the_task, cfg, fam.encoder_factory(), train_cfg, device=device, ends=ends,
                       decoding=decoding, make_seq2seq=fam.seq2seq_factory(), recipe=recipe, explicit=explicit)


def fields_of(obj: Any) -> list[str]:
    """The field names of a dataclass instance (a TrainConfig given whole counts as all set)."""
    return [f.name for f in fields(obj)]


def _refuse_unused(task: Task, given: Mapping[str, Any], decoding: Any) -> None:
    """Nothing the user sets is silently dropped: an end setting the task's frontend and head do
    not read, or a decoding for a task that does not decode, is an error."""
    ignored = sorted(k for k in given if k in ENDS_FIELDS and k not in task.ends_used)
    if ignored:
        said = ", ".join(f"{k}={given[k]!r}" for k in ignored)
        raise ConfigError(f"task {task.name!r} does not use {said}; its network ends read "
                          f"{', '.join(task.ends_used) or 'nothing'}")
    if decoding is not None and not task.uses_decoding:
        raise ConfigError(f"task {task.name!r} does not decode; decoding= is for generators and language models")


_LEGACY_ENDS = ("word_dropout", "pooling", "tie_weights", "char_filters", "char_dim")


def migrate_saved(fam: Family, meta: dict[str, Any]) -> dict[str, Any]:
    """A neural model's ``config.json`` from before the frontend/encoder/head split (format 1),
    in today's form: the end settings move to ``ends_config``, ``embedding_dim`` becomes
    ``d_model`` (a Mamba or hybrid model width ``hidden_size`` too, with a different token width
    kept as ``frontend_dim``), a Transformer's ``hidden_size`` becomes ``d_ff``."""
    old = dict(meta["model_config"])
    ends = {k: old.pop(k) for k in _LEGACY_ENDS if k in old}
    own = {f.name for f in fields(fam.config_class())}
    e = old.pop("embedding_dim", None)
    hidden = old.pop("hidden_size", None) if "hidden_size" in fam.renamed else None
    if fam.renamed.get("hidden_size") == "d_model":  # Mamba / hybrid: the model width; 0 meant e
        width = hidden or e
        if e is not None and width != e:
            ends["frontend_dim"] = e
        e = width
    elif hidden is not None:  # Transformer: the feed-forward width
        old["d_ff"] = old.get("d_ff") or hidden
    if e is not None:
        old["d_model"] = e
    if old.get("d_ff") == 0:  # the hybrid's "4 * M" was 0; it is None now, as in the Transformer
        old["d_ff"] = None
    if meta.get("head"):
        ends["head"] = meta["head"]
    unknown = sorted(set(old) - own)
    if unknown:
        raise SeqlabError(f"this model was saved by an earlier seqlab whose {fam.name} settings {', '.join(unknown)} "
                          f"no longer exist; retrain it with this version")
    # the weights keep their format-1 names; the Network renames them as it loads them
    return {**meta, "model_config": old, "ends_config": ends, "format": SAVE_FORMAT}


def load(path: str | Path) -> SequenceModel:
    """Load a model saved with ``model.save(path)`` (safetensors + JSON; nothing is unpickled).

    ``path`` may also be a run directory written by ``seqlab train`` (its model is in ``model/``).
    Models saved by the previous format load too (see :func:`migrate_saved`).
    """
    if not Path(path).is_dir():
        raise SeqlabError(f"{path}: no such run or model directory (a run directory is what `seqlab train --out` "
                          "wrote; a model directory what model.save wrote)")
    if (Path(path) / "model" / "config.json").exists():
        path = Path(path) / "model"
    if not (Path(path) / "config.json").exists():
        raise SeqlabError(f"{path}: not a seqlab run or model directory (no config.json, and no model/config.json)")
    meta = read_json(Path(path) / "config.json")
    if not isinstance(meta, dict) or "family" not in meta:
        raise SeqlabError(f"{path}: config.json does not describe a seqlab model")
    fam = get_family(meta["family"])
    try:
        if fam.kind == "classical":
            return fam.estimator_class().from_saved(path, meta, fam.config_class())
        if meta.get("format", 1) < SAVE_FORMAT:
            meta = migrate_saved(fam, meta)
        return NeuralModel.from_saved(path, meta, fam.config_class(), fam.encoder_factory(), fam.seq2seq_factory())
    except KeyError as e:  # a hand-edited or truncated config.json: name the file and the key
        raise SeqlabError(f"{Path(path) / 'config.json'}: a key the model needs is missing: {e.args[0]!r}") from None
    except (TypeError, AttributeError) as e:
        raise SeqlabError(f"{Path(path) / 'config.json'}: a value has the wrong type ({e})") from None
