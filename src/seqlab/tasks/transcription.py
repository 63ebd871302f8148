"""Transcription: a sequence of frames (audio, or precomputed features) to a shorter label sequence.

Examples: ``{"audio_filepath": "a.wav", "text": "three one four"}`` (the manifest form, see
:mod:`seqlab.audio.readers`; optional ``offset`` / ``duration`` in seconds cut a segment,
``speaker`` feeds the per-speaker breakdown), ``{"audio": [samples...], "text": ...}`` (a waveform
at the task's ``sample_rate``), ``{"features": "f.npy" or (T, F) array, "text": ...}``, or
``{"symbols": ["w", "o", "r", "d"], "text": "W ER D"}`` (a symbol string read as one-hot frames,
each symbol ``symbol_repeat`` times, :mod:`seqlab.data.symbol_frames`: grapheme-to-phoneme as
CTC, Rao et al. 2015). One kind per task, fixed by the training examples.

Outputs (``output``): characters (the default; a space is a label, so words come back), phonemes
or words (whitespace-separated tokens of ``text``), or subwords (byte-level BPE learned on the
training texts, :class:`seqlab.data.tokenizers.BPETokenizer`). The label set is the task's own: id 0
is the CTC blank, then the training labels; no text specials.

Network: log-mel (:mod:`seqlab.audio.features`) -> per-utterance normalisation -> SpecAugment
(training) -> subsampling 1x/2x/4x (frame stacking, or strided convolutions) -> any encoder -> :class:`CTCHead`. Loss: CTC
(Graves et al. 2006, ``F.ctc_loss``) summed over utterances, per reference label. Decoding: greedy
(:func:`seqlab.inference.ctc.ctc_greedy`). Augmentation happens in :meth:`collate` when it is given
a generator (training): speed perturbation (``speed_factors``, one factor per utterance), additive
noise (``noise_snr``) and the SpecAugment masks, all drawn from that generator, so a seed gives the same batches.

Metrics (:mod:`seqlab.metrics.transcription`): WER and CER (jiwer corpus rates), and the same broken
down by speaker (``wer[speaker=S]``, when examples name two or more speakers) and by length
(``wer[len<=2s]``, ...). For phoneme output, ``wer`` is the phoneme error rate.

Batch: ``wave`` (B, N) float32 or ``features`` (B, T, F) float32, ``mask`` (B, N or T) bool,
``labels`` (B, U) long (0-padded), ``label_lengths`` (B,) long, ``index`` (B,) long, and in training
``time_keep`` (B, T) / ``freq_keep`` (B, M) bool.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.audio.features import (
    FeatureConfig,
    add_noise,
    frame_lengths,
    spec_augment_masks,
    speed_perturb,
    subsampled_lengths,
)
from seqlab.audio.io import check_features, read_audio, read_features
from seqlab.config import check_at_least, from_dict, to_dict
from seqlab.data.batching import TruncationReport, pad_floats
from seqlab.errors import ConfigError, DataError
from seqlab.metrics import transcription as tm
from seqlab.tasks.base import Batch, Encoded, Example, Item, ProbeRows, Task

if TYPE_CHECKING:
    from torch import nn

    from seqlab.models.heads import Head
    from seqlab.models.network import EndsSpec

__all__ = ["TranscriptionConfig", "TranscriptionTask", "BLANK"]

BLANK = "<blank>"
Output = Literal["chars", "phonemes", "words", "subwords"]
INPUT_KEYS = ("audio_filepath", "audio", "features", "symbols")
FRAME_KINDS = ("features", "symbols")  # inputs that are frames already (no log-mel)


@dataclass(frozen=True)
class TranscriptionConfig:
    """``output``: chars / phonemes / words / subwords (``subword_vocab_size`` for BPE, counting the
    256 bytes). Audio: ``sample_rate`` (files at another rate are errors unless ``resample``),
    ``n_mels``, ``win_ms``, ``hop_ms``, ``mel_scale``. Front end: ``subsampling`` 1, 2 or 4,
    ``conv_channels``, ``normalize`` (per utterance), ``subsampling_kind``: "stack" (the default: consecutive frames side by side)
    or "conv" (two strided convolutions, as in Conformer). Stacking is the default because on FSDD
    digits a BiLSTM-CTC over it left the all-blank plateau within about 200 steps, where the same
    model over convolutions was still on it after 450 (bench/README.md). Training augmentation: ``spec_augment`` with
    ``freq_masks`` x ``freq_width`` and ``time_masks`` x ``time_width`` (frames, at most
    ``max_time_fraction`` of an utterance each); ``speed_factors`` (e.g. ``(0.9, 1.0, 1.1)``, empty =
    off); ``noise_snr`` (low, high) dB: white noise added to each utterance at an SNR drawn uniformly
    in that range (empty = off; after speed perturbation). ``lowercase`` folds the transcripts.

    The RNN-T head (``head="rnnt"``, :class:`seqlab.models.transducer.TransducerHead`): an LSTM
    prediction network ``rnnt_pred_dim`` wide with ``rnnt_pred_layers`` layers, a joiner
    ``rnnt_joint_dim`` wide; decoding emits at most ``rnnt_max_symbols`` labels per frame and is
    greedy (``rnnt_beam`` 1) or a prefix beam search of that width. ``symbol_repeat``: frames per
    symbol of a ``symbols`` input."""

    output: Output = "chars"
    sample_rate: int = 16000
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    mel_scale: Literal["htk", "slaney"] = "slaney"
    subsampling: int = 2
    subsampling_kind: Literal["conv", "stack"] = "stack"
    conv_channels: int = 32
    normalize: bool = True
    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 10
    max_time_fraction: float = 0.2
    speed_factors: tuple[float, ...] = ()
    noise_snr: tuple[float, ...] = ()
    resample: bool = False
    lowercase: bool = False
    subword_vocab_size: int = 300
    rnnt_pred_dim: int = 128
    rnnt_pred_layers: int = 1
    rnnt_joint_dim: int = 256
    rnnt_beam: int = 1
    rnnt_max_symbols: int = 5
    symbol_repeat: int = 2

    def __post_init__(self) -> None:
        if self.output not in ("chars", "phonemes", "words", "subwords"):
            raise ConfigError(f"output must be chars, phonemes, words or subwords, found {self.output!r}")
        if self.subsampling not in (1, 2, 4):
            raise ConfigError(f"subsampling must be 1, 2 or 4, found {self.subsampling}")
        check_at_least(self, 1, "conv_channels")
        check_at_least(self, 1, "symbol_repeat")
        check_at_least(self, 1, "rnnt_pred_dim", "rnnt_pred_layers", "rnnt_joint_dim", "rnnt_beam", "rnnt_max_symbols")
        if self.subsampling_kind not in ("conv", "stack"):
            raise ConfigError(f"subsampling_kind must be conv or stack, found {self.subsampling_kind!r}")
        check_at_least(self, 0, "freq_masks", "freq_width", "time_masks", "time_width")
        if any(f <= 0 for f in self.speed_factors):
            raise ConfigError(f"speed_factors must be > 0, found {self.speed_factors}")
        if self.noise_snr and (len(self.noise_snr) != 2 or self.noise_snr[0] > self.noise_snr[1]):
            raise ConfigError(f"noise_snr must be (low, high) dB with low <= high, or empty; found {self.noise_snr}")
        if not 0 <= self.max_time_fraction <= 1:
            raise ConfigError(f"max_time_fraction must be in [0, 1], found {self.max_time_fraction}")
        _ = self.features  # validates the audio settings

    @property
    def features(self) -> FeatureConfig:
        return FeatureConfig(self.sample_rate, self.n_mels, self.win_ms, self.hop_ms, scale=self.mel_scale)


class TranscriptionTask(Task):
    name = "transcription"
    output = "frames_to_labels"
    causal = False
    main_metric = "wer"
    #: CTC posteriors over frames: ``seqlab align`` can place a transcript's labels in time
    aligns_to_frames = True
    greater_is_better = False
    alignment = "frames -> shorter label sequence"
    loss_name = "CTC"
    decoding = "greedy"
    metric_names = ("wer", "cer")
    input_keys = INPUT_KEYS
    file_shapes = (("audio_filepath", "text"), ("audio", "text"), ("features", "text"), ("symbols", "text"))
    ends_used = ("frontend_dim", "head")
    #: ``head="rnnt"``: an RNN transducer (prediction network + joiner) instead of the CTC head
    heads = ("ctc", "rnnt")
    probe_rows: ProbeRows = ""
    prediction_kind = ""

    def __init__(self, config: TranscriptionConfig | None = None) -> None:
        self.config = config or TranscriptionConfig()
        self.keys = ("text",)  # type: ignore[misc]
        self.labels: list[str] = []  # id -> label; 0 is the blank
        self.stoi: dict[str, int] = {}
        self.input_kind = ""  # "audio", "features" or "symbols"
        self.symbols: list[str] = []  # a symbols input's alphabet (from the training examples)
        self.n_features = 0
        self.tokenizer: Any = None

    # --- text <-> labels -------------------------------------------------------------------
    def _text(self, ex: Any, index: int) -> str:
        if not isinstance(ex, dict) or "text" not in ex or not isinstance(ex["text"], str):
            raise DataError(None, None, f"example {index}: a record with an audio input and a 'text' string", repr(ex)[:80])
        text = " ".join(ex["text"].split())
        return text.lower() if self.config.lowercase else text

    def _units(self, text: str) -> list[str]:
        if self.config.output == "chars":
            return list(text)
        if self.config.output == "subwords":
            return list(self.tokenizer.tokenize(text)) if text else []
        return text.split()

    def _join(self, units: Sequence[str]) -> str:
        if self.config.output == "chars":
            return "".join(units)
        if self.config.output == "subwords":
            return str(self.tokenizer.detokenize(list(units)))
        return " ".join(units)

    def unseen_labels(self, examples: Sequence[Example]) -> list[str]:
        return sorted({u for i, ex in enumerate(examples) for u in self._units(self._text(ex, i)) if u not in self.stoi})

    # --- reading inputs --------------------------------------------------------------------
    @staticmethod
    def read_file(path: Path, options: Mapping[str, Any] | None) -> list[Example] | None:
        """The task's own files (used by :func:`seqlab.data.datasets.load_files`): a ``.jsonl``
        manifest (:func:`seqlab.audio.readers.read_manifest`), or a folder of audio with
        ``transcripts.tsv`` / a ``.tsv`` transcript list (:func:`~seqlab.audio.readers.read_audio_dir`).
        ``options`` None asks only whether the path is one of those (None if not)."""
        from seqlab.audio.readers import read_audio_dir, read_manifest

        kind = "jsonl" if path.suffix.lower() == ".jsonl" else "tsv" if path.suffix.lower() == ".tsv" \
            else "dir" if path.is_dir() else ""
        if options is None:
            return [] if kind else None
        if options:
            raise ConfigError(f"transcription files take no reader options; found {sorted(options)}")
        if kind == "jsonl":
            return read_manifest(path)
        return read_audio_dir(path.parent, path.name) if kind == "tsv" else read_audio_dir(path)

    def _kind(self, ex: Any, index: int) -> str:
        if isinstance(ex, dict):
            for key in INPUT_KEYS:
                if key in ex:
                    return key if key in FRAME_KINDS else "audio"
        raise DataError(None, None, f"example {index}: a record with one of the keys {', '.join(INPUT_KEYS)}",
                        repr(ex)[:80])

    def _signal(self, ex: dict[str, Any], index: int) -> np.ndarray:
        """(N,) float32 samples or (T, F) float32 features of one example."""
        where = tuple(ex["source_line"]) if isinstance(ex.get("source_line"), list) else None
        c = self.config
        if "symbols" in ex:
            from seqlab.data.symbol_frames import symbol_frames

            value = ex["symbols"]
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
                raise DataError(None, None, f"example {index}: 'symbols' as a non-empty list of strings", repr(value)[:80])
            return symbol_frames(value, self.symbols, c.symbol_repeat)
        if "features" in ex:
            value = ex["features"]
            if isinstance(value, (str, Path)):
                return read_features(value, self.n_features or None, where)
            return check_features(np.asarray(value), f"example {index}: features", self.n_features or None)
        if "audio_filepath" in ex:
            return read_audio(ex["audio_filepath"], c.sample_rate, resample=c.resample, offset=float(ex.get("offset", 0.0)),
                              duration=ex.get("duration"), where=where)
        try:
            wave = np.asarray(ex["audio"], dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(None, None, f"example {index}: 'audio' as a list of samples", repr(ex["audio"])[:80]) from None
        if wave.ndim != 1 or not len(wave) or not np.isfinite(wave).all():
            raise DataError(None, None, f"example {index}: 'audio' as a non-empty 1-D list of finite samples",
                            f"shape {wave.shape}")
        return wave

    def _as_example(self, value: Any, index: int) -> dict[str, Any]:
        """A raw prediction input as an example: a path (audio file or ``.npy``), a waveform, or a record."""
        if isinstance(value, (str, Path)):
            return {"features" if str(value).endswith(".npy") else "audio_filepath": str(value)}
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return {"symbols": list(value)}
        if isinstance(value, (list, tuple, np.ndarray)):
            return {"features" if np.ndim(value) == 2 else "audio": value}
        if isinstance(value, dict):
            return value
        raise DataError(None, None, f"input {index}: an audio file path, a waveform or a record", repr(value)[:80])

    def check_input(self, value: Any, index: int) -> None:
        ex = self._as_example(value, index)
        kind = self._kind(ex, index)
        if self.input_kind and kind != self.input_kind:
            raise DataError(None, None, f"input {index}: {self.input_kind} (the model was trained on {self.input_kind})", kind)

    # --- fitting and encoding ----------------------------------------------------------------
    def fit(self, examples: Sequence[Example]) -> TranscriptionTask:
        if not examples:
            raise DataError(None, None, "at least one training example", "none")
        kinds = {self._kind(ex, i) for i, ex in enumerate(examples)}
        if len(kinds) > 1:
            raise DataError(None, None, "one kind of input in every example (audio or features)", str(sorted(kinds)))
        self.input_kind = kinds.pop()
        texts = [self._text(ex, i) for i, ex in enumerate(examples)]
        if self.config.output == "subwords":
            from seqlab.data.tokenizers import BPETokenizer

            self.tokenizer = BPETokenizer(vocab_size=self.config.subword_vocab_size, min_frequency=1).fit(texts)
        units = sorted({u for t in texts for u in self._units(t)})
        self.labels = [BLANK, *units]
        self.stoi = {u: i for i, u in enumerate(self.labels)}
        if self.input_kind == "symbols":
            self.symbols = sorted({str(v) for ex in examples for v in ex["symbols"]})
            self.n_features = len(self.symbols) + 1
        if self.input_kind == "features":
            first = examples[0]
            self.n_features = int(self._signal(first, 0).shape[1])
        return self

    @property
    def output_size(self) -> int:
        if not self.labels:
            raise ConfigError("the task is not fitted: call fit() on training examples first")
        return len(self.labels)

    def _n_out(self, signal: np.ndarray) -> int:
        """Head positions the signal gives after framing and subsampling."""
        c = self.config
        n = int(frame_lengths(torch.tensor([len(signal)]), c.features.hop_length)[0]) if signal.ndim == 1 else len(signal)
        return int(subsampled_lengths(torch.tensor([n]), c.subsampling)[0])

    def _item(self, ex: dict[str, Any], index: int, text: str | None) -> Item:
        signal = self._signal(ex, index)
        ids = [] if text is None else [self.stoi[u] for u in self._units(text) if u in self.stoi]
        return {"signal": signal, "labels": ids, "index": index}

    def encode(self, examples: Sequence[Example]) -> Encoded:
        items, refs, too_short, longest = [], [], 0, 0
        for i, ex in enumerate(examples):
            self._kind(ex, i)
            text = self._text(ex, i)
            item = self._item(ex, i, text)
            ids = item["labels"]
            need = len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))  # repeats need a blank between
            too_short += int(self._n_out(item["signal"]) < need)
            seconds = (len(item["signal"]) / self.config.sample_rate if item["signal"].ndim == 1
                       else len(item["signal"]) * self.config.hop_ms / 1000)
            items.append(item)
            refs.append({"text": text, "speaker": str(ex.get("speaker", "")), "seconds": round(seconds, 4)})
            longest = max(longest, len(item["signal"]))
        if too_short:
            print(f"[seqlab] transcription: {too_short} of {len(examples)} utterance(s) have fewer frames after "
                  f"{self.config.subsampling}x subsampling than their labels need; CTC cannot align them (their loss "
                  "counts as 0). Use a smaller subsampling or coarser output units.", file=sys.stderr)
        return Encoded(items=items, references=refs, report=TruncationReport(len(examples), 0, None, "none", longest))

    def encode_inputs(self, inputs: Sequence[Any]) -> list[Item]:
        return [self._item(self._as_example(v, i), i, None) for i, v in enumerate(inputs)]

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(it["signal"]) for it in items]

    def collate(self, items: Sequence[Item], generator: torch.Generator | None = None) -> Batch:
        c = self.config
        signals = [it["signal"] for it in items]
        audio = self.input_kind not in FRAME_KINDS
        if audio and generator is not None and c.speed_factors:
            picks = torch.randint(0, len(c.speed_factors), (len(items),), generator=generator).tolist()
            signals = [speed_perturb(s, c.speed_factors[k]) for s, k in zip(signals, picks)]
        if audio and generator is not None and c.noise_snr:
            lo, hi = c.noise_snr
            snrs = (lo + (hi - lo) * torch.rand(len(items), generator=generator, dtype=torch.float64)).tolist()
            signals = [add_noise(s, snr, generator) for s, snr in zip(signals, snrs)]
        values, mask = pad_floats(signals)  # (B, N) or (B, T, F)
        labels, _ = pad_floats([np.asarray(it["labels"], dtype=np.int64) for it in items], dtype=torch.long)
        batch: Batch = {
            "wave" if audio else "features": values,
            "mask": mask,
            "labels": labels.view(len(items), -1),  # (B, U)
            "label_lengths": torch.tensor([len(it["labels"]) for it in items], dtype=torch.long),  # (B,)
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
        }
        if generator is not None and c.spec_augment:
            n = mask.sum(1)
            frames = frame_lengths(n, c.features.hop_length) if audio else n
            width = c.n_mels if audio else self.n_features
            batch["time_keep"], batch["freq_keep"] = spec_augment_masks(
                frames, width, generator, freq_masks=c.freq_masks, freq_width=c.freq_width, time_masks=c.time_masks,
                time_width=c.time_width, max_time_fraction=c.max_time_fraction)
        return batch

    # --- the network's ends ------------------------------------------------------------------
    def build_frontend(self, spec: EndsSpec) -> nn.Module:
        from seqlab.audio.frontend import AudioFrontend

        c = self.config
        features = c.features if self.input_kind not in FRAME_KINDS else None
        return AudioFrontend(features, self.n_features, spec.embedding_dim, subsampling=c.subsampling,
                             channels=c.conv_channels, dropout=spec.dropout, normalise=c.normalize, kind=c.subsampling_kind)

    def build_head(self, spec: EndsSpec, dim: int, frontend: nn.Module, encoder: nn.Module) -> Head:
        from seqlab.audio.frontend import CTCHead

        if spec.ends.head == "rnnt":
            return self._rnnt_head(spec, dim)
        return CTCHead(dim, self.output_size, spec.dropout, blank=0)

    def _rnnt_head(self, spec: EndsSpec, dim: int) -> Head:
        from seqlab.models.transducer import TransducerConfig, TransducerHead

        c = self.config
        tc = TransducerConfig(pred_dim=c.rnnt_pred_dim, pred_layers=c.rnnt_pred_layers, joint_dim=c.rnnt_joint_dim,
                              dropout=spec.dropout)
        return TransducerHead(dim, self.output_size, self.output_lengths, blank=0, config=tc,
                              max_symbols=c.rnnt_max_symbols)

    def output_lengths(self, batch: Batch) -> Tensor:
        """(B,) head positions per row (frames after subsampling)."""
        n = batch["mask"].sum(1)
        frames = frame_lengths(n, self.config.features.hop_length) if "wave" in batch else n
        return subsampled_lengths(frames, self.config.subsampling)

    # --- learning and decoding -----------------------------------------------------------------
    def loss(self, output: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """``output`` (B, T', V) -> (summed CTC loss, reference labels)."""
        logp = output.float().log_softmax(-1).transpose(0, 1)  # (T', B, V)
        lengths = self.output_lengths(batch).clamp(max=logp.shape[0])
        targets = batch["labels"]
        total = F.ctc_loss(logp, targets, lengths, batch["label_lengths"], blank=0, reduction="sum", zero_infinity=True)
        return total, batch["label_lengths"].sum().clamp(min=1)

    def decode(self, output: Tensor, batch: Batch) -> list[Any]:
        """(B, T', V) log-probabilities (padding a certain blank; :meth:`CTCHead.decide`) -> texts."""
        from seqlab.inference.ctc import ctc_greedy

        logp = output.detach().float().cpu()
        lengths = self.output_lengths(batch).clamp(max=logp.shape[1]).cpu()
        return [self._join([self.labels[i] for i in ids]) for ids in ctc_greedy(logp.numpy(), lengths.numpy(), blank=0)]

    def predictions(self, network: Any, output: Tensor, batch: Batch, decoding: Any) -> list[Any]:
        """Texts per row. An RNN-T head decodes greedily or by prefix beam search
        (``rnnt_beam``); the CTC head's decision goes through :meth:`decode`."""
        from seqlab.models.transducer import TransducerHead

        head = getattr(network, "head", None)
        if isinstance(head, TransducerHead):
            rows = head.transcribe(output, network.output_mask(batch), beam=self.config.rnnt_beam)
            return [self._join([self.labels[i] for i in ids]) for ids in rows]
        return super().predictions(network, output, batch, decoding)

    def metrics(self, tallies: Sequence[Any], references: Sequence[Any], nll_sum: float, n_units: int) -> dict[str, float]:
        out = self.base_metrics(nll_sum, n_units)
        if not tallies:
            return out
        refs = [r["text"] for r in references]
        hyps = [str(h) for h in tallies]
        out.update(tm.error_rates(hyps, refs))
        speakers = [r["speaker"] for r in references]
        if len(set(speakers)) > 1:
            for name, row in tm.breakdown(hyps, refs, speakers).items():
                out[f"wer[speaker={name}]"], out[f"cer[speaker={name}]"] = row["wer"], row["cer"]
        for name, row in tm.breakdown(hyps, refs, [tm.length_bucket(r["seconds"]) for r in references]).items():
            out[f"wer[len{name}]" if name[0] in "<>" else f"wer[len={name}]"] = row["wer"]
        return out

    @classmethod
    def toy_examples(cls, seed: int = 0) -> tuple[list[Example], list[Any], dict[str, Any]]:
        """Tone "speech" at 8 kHz: each of the letters a, b, c is a 60 ms tone of its own pitch, 20 ms
        of silence between letters; transcripts of one to three letters."""
        rng = random.Random(seed)
        data = []
        for _ in range(48):
            text = "".join(rng.choice("abc") for _ in range(rng.randint(1, 3)))
            data.append({"audio": toy_tones(text, rng.random()), "text": text})
        return data, [toy_tones("ab", 0.3), toy_tones("c", 0.6)], {"sample_rate": 8000, "n_mels": 20}

    # --- persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"config": to_dict(self.config), "labels": self.labels, "input_kind": self.input_kind,
                "n_features": self.n_features, "symbols": self.symbols, "tokenizer": None if self.tokenizer is None else self.tokenizer.to_json()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TranscriptionTask:
        task = cls(from_dict(TranscriptionConfig, state["config"]))
        task.labels = list(state["labels"])
        task.stoi = {u: i for i, u in enumerate(task.labels)}
        task.input_kind, task.n_features = str(state["input_kind"]), int(state["n_features"])
        task.symbols = [str(v) for v in state.get("symbols", [])]
        if state.get("tokenizer") is not None:
            from seqlab.data.tokenizers import tokenizer_from_json

            task.tokenizer = tokenizer_from_json(state["tokenizer"])
        return task


TOY_PITCH = {"a": 400.0, "b": 1000.0, "c": 2200.0}


def toy_tones(text: str, phase: float = 0.0, sample_rate: int = 8000) -> list[float]:
    """A waveform (plain floats) spelling ``text`` in tones: 60 ms per letter, 20 ms gaps."""
    tone, gap = int(0.06 * sample_rate), int(0.02 * sample_rate)
    t = np.arange(tone) / sample_rate
    parts = [np.zeros(gap)]
    for ch in text:
        parts += [0.5 * np.sin(2 * np.pi * (TOY_PITCH[ch] * t + phase)), np.zeros(gap)]
    return [round(float(v), 5) for v in np.concatenate(parts)]
