"""Global neural forecasters: one network over every series of a collection (issue 16).

``seqlab.build("nbeats", task="forecasting", ...)`` (N-BEATS, Oreshkin et al. 2020) and
``seqlab.build("global", task="forecasting", encoder="gru", ...)`` (any seqlab sequence encoder:
lstm, gru, elman, transformer, mamba, hybrid) give a :class:`GlobalForecastModel`. It is shaped
like the classical estimators (``fit / evaluate / predict / save / load``), because its training
data are not the task's examples but windows drawn from them; the optimisation itself is
seqlab's :class:`~seqlab.train.trainer.Trainer`.

Training (:mod:`seqlab.forecast.neural`): batches of ``batch_size`` windows of lookback L drawn
across series (series uniform, origin among the last ``history`` x h steps), each scaled by its
lookback, a direct multi-horizon head (Q x h values at once, no recursion), one of the losses
mse / mae / smape / mase / pinball, ``steps`` optimizer steps per member (a step budget, never
wall-clock). ``quantiles`` (must include 0.5) make it a quantile head trained by the pinball
loss: its outputs are sorted per step (monotone rearrangement), so quantiles never cross, and
the task's interval levels come from the matching pairs (80%: 0.1 and 0.9).

Ensemble (N-BEATS's recipe): one member per (lookback, seed) of ``lookbacks`` x ``seeds``,
combined by the median (or mean) of their forecasts, per quantile. Determinism: a member's
initial weights come from its seed, its batches from (seed, epoch, step), so two fits with one
configuration give the same forecasts bit for bit on one machine and thread count.

``fit(train, run_dir=...)`` checkpoints each member's training in ``run_dir/member{k}`` and
keeps a finished member's weights there: a later call resumes where the last stopped.
:meth:`fit_members` trains at most ``limit`` unfinished members per call, so a long ensemble
fits in chunks. ``cpu_seconds_`` adds up the CPU time of the training (all calls).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from seqlab.config import check_at_least, to_dict
from seqlab.errors import ConfigError, SeqlabError
from seqlab.forecast.local import Forecast
from seqlab.forecast.nbeats import NBeats
from seqlab.forecast.neural import (
    ENCODERS,
    LOSSES,
    SCALES,
    EncoderForecaster,
    Panel,
    forecast_loss,
    sample_windows,
    windows_at,
)
from seqlab.io import read_tensors, write_json, write_tensors
from seqlab.models.classical.base import ClassicalModel
from seqlab.tasks.base import Example
from seqlab.tasks.forecasting import ForecastingTask, Series

__all__ = ["GlobalForecastConfig", "GlobalForecastModel"]

FORECAST_ONLY = ("combine", "nonnegative")  # settings of forecasting alone: a run resumes across them


@dataclass(frozen=True)
class GlobalForecastConfig:
    """``encoder``: "nbeats" or a sequence family; N-BEATS: ``stacks`` generic / interpretable,
    ``blocks`` (per stack when interpretable), ``width``, ``layers`` per block, trend ``degree``,
    ``harmonics`` (None: floor(h/2) - 1), or the harmonics of a season of ``period`` steps
    (:class:`~seqlab.forecast.nbeats.NBeats`); a sequence encoder: its width ``d_model`` (an RNN's
    hidden size too), ``encoder_options`` (its family's settings, which win, e.g.
    ``{"num_layers": 2}``) and ``patch``. ``lookbacks``: window lengths in steps
    (empty: the task's lookback); ``history``: origins among the last ``history`` x h steps
    (None: anywhere). ``skip``: add the window's last value to every forecast (the naive
    forecast as a skip connection: an sMAPE-trained network starts from naive instead of a dead
    zone, where a forecast below zero has no sMAPE gradient). ``nonnegative``: a series whose
    history (the window's observed values) has no negative value gets its forecasts floored at 0
    (sales, counts: all of M3). The rest: see the module doc."""

    encoder: str = "nbeats"
    stacks: Literal["generic", "interpretable"] = "generic"
    blocks: int = 4
    width: int = 128
    layers: int = 4
    degree: int = 3
    harmonics: int | None = None
    period: int | None = None
    d_model: int = 64
    encoder_options: dict[str, Any] = field(default_factory=dict)
    patch: int = 1
    lookbacks: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0,)
    combine: Literal["median", "mean"] = "median"
    loss: str = "mae"
    quantiles: tuple[float, ...] = ()
    scale: Literal["mean_abs", "last", "none"] = "mean_abs"
    history: float | None = None
    steps: int = 300
    steps_per_epoch: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    skip: bool = False
    nonnegative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookbacks", tuple(int(v) for v in self.lookbacks))
        object.__setattr__(self, "seeds", tuple(int(v) for v in self.seeds))
        object.__setattr__(self, "quantiles", tuple(float(v) for v in self.quantiles))
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)}, found {self.encoder!r}")
        if self.stacks not in ("generic", "interpretable"):
            raise ConfigError(f"stacks must be 'generic' or 'interpretable', found {self.stacks!r}")
        check_at_least(self, 1, "blocks", "width", "layers", "d_model", "patch", "steps", "steps_per_epoch", "batch_size")
        check_at_least(self, 0, "degree")
        if any(v < 1 for v in self.lookbacks):
            raise ConfigError(f"lookbacks are window lengths >= 1, found {self.lookbacks}")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ConfigError(f"seeds: at least one seed >= 0, found {self.seeds}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, found {self.loss!r}")
        if self.quantiles:
            if self.loss != "pinball":
                raise ConfigError(f"quantiles are trained by loss='pinball', found loss={self.loss!r}")
            if any(not 0 < q < 1 for q in self.quantiles) or 0.5 not in self.quantiles:
                raise ConfigError(f"quantiles lie in (0, 1) and include 0.5 (the point forecast), found {self.quantiles}")
        elif self.loss == "pinball":
            raise ConfigError("loss='pinball' needs quantiles, e.g. quantiles=(0.1, 0.5, 0.9)")
        if self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {', '.join(SCALES)}, found {self.scale!r}")
        if self.combine not in ("median", "mean"):
            raise ConfigError(f"combine must be 'median' or 'mean', found {self.combine!r}")
        if self.period is not None and self.period < 2:
            raise ConfigError(f"period is a season length >= 2 (or None), found {self.period}")
        if self.history is not None and self.history <= 0:
            raise ConfigError(f"history must be > 0 (horizons) or None, found {self.history}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0:
            raise ConfigError(f"lr must be > 0 and weight_decay >= 0, found {self.lr}, {self.weight_decay}")


class _Member(nn.Module):
    """One ensemble member: the network, and quantile outputs sorted per step."""

    def __init__(self, net: nn.Module, quantiles: tuple[float, ...], loss: str, skip: bool = False) -> None:
        super().__init__()
        self.net = net
        self.loss_kind = loss
        self.skip = skip
        self.q: Tensor
        self.register_buffer("q", torch.tensor(quantiles or (0.5,), dtype=torch.float32), persistent=False)

    def forward(self, batch: dict[str, Tensor], loss: bool = False) -> Any:
        out = self.net(batch["x"], batch["observed"])  # (B, Q, H)
        if self.skip:  # the naive forecast as a skip connection: the window's last value
            out = out + batch["x"][:, -1, None, None]
        if out.shape[1] > 1:
            out = out.sort(dim=1).values  # monotone rearrangement: quantiles never cross
        return forecast_loss(self.loss_kind, out, batch, self.q) if loss else out


class _WindowSource:
    """The trainer's batch source: batch ``step`` of ``epoch`` is windows drawn by a generator
    seeded from (seed, epoch, step), so a resumed run sees the batches an unbroken one would."""

    def __init__(self, panel: Panel, config: GlobalForecastConfig, lookback: int, horizon: int, seed: int) -> None:
        self.panel, self.c, self.lookback, self.horizon, self.seed = panel, config, lookback, horizon, seed

    def batches(self, epoch: int) -> list[list[int]]:
        return [[s] for s in range(self.c.steps_per_epoch)]

    def collate(self, indices: Sequence[int], epoch: int, step: int) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.seed, epoch, step])
        return sample_windows(self.panel, rng, self.c.batch_size, self.lookback, self.horizon, self.c.history, self.c.scale)


class GlobalForecastModel(ClassicalModel):
    serves = (ForecastingTask,)
    kind = "neural"
    task: ForecastingTask
    config: GlobalForecastConfig

    def __init__(self, family: str, task: Any, config: GlobalForecastConfig) -> None:
        super().__init__(family, task, config)
        self.members_: list[_Member] = []
        self.specs_: list[tuple[int, int]] = []  # (lookback, seed) per member
        self.cpu_seconds_ = 0.0
        self._run: tuple[Path | None, bool] = (None, True)

    # --- members ----------------------------------------------------------------------------
    def member_specs(self) -> list[tuple[int, int]]:
        """(lookback, seed) of every member, lookbacks outer."""
        lookbacks = self.config.lookbacks or (self.task.lookback,)
        return [(lb, s) for lb in lookbacks for s in self.config.seeds]

    def _new_member(self, lookback: int, seed: int) -> _Member:
        c, h = self.config, self.task.h
        rows = len(c.quantiles) or 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net: nn.Module
            if c.encoder == "nbeats":
                net = NBeats(lookback, h, kind=c.stacks, blocks=c.blocks, width=c.width, layers=c.layers, rows=rows,
                             degree=c.degree, harmonics=c.harmonics, period=c.period)
            else:
                net = EncoderForecaster(c.encoder, dict(c.encoder_options), lookback, h, rows, c.patch, c.d_model)
            return _Member(net, c.quantiles, c.loss, c.skip)

    def _series(self, examples: Sequence[Any], extra: int = 0) -> list[Series]:
        out = [self.task.series(ex, i, extra=extra) for i, ex in enumerate(examples)]
        for s in out:
            if s.has_covariates:
                raise ConfigError(f"series {s.id!r} has {'/'.join(s.roles())} covariates, which the global "
                                  f"{self.family} forecaster cannot use; remove them (none is ever ignored)")
        return out

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, train: Sequence[Example], valid: Sequence[Example] | None = None, *,
            run_dir: str | Path | None = None, resume: bool = True) -> GlobalForecastModel:
        """Train every member (see :meth:`fit_members`); ``valid`` is not used (a step budget)."""
        self._run = (None if run_dir is None else Path(run_dir), resume)
        return super().fit(train, valid, run_dir=run_dir, resume=resume)

    def _fit(self, train: Sequence[Example], valid: Sequence[Example] | None) -> list[dict[str, float]] | None:
        run_dir, resume = self._run
        left = self.fit_members(train, run_dir, resume=resume)
        assert left == 0
        return None

    def fit_members(self, train: Sequence[Example], run_dir: str | Path | None = None, *, resume: bool = True,
                    limit: int | None = None) -> int:
        """Train the members not finished yet (at most ``limit`` of them); returns how many are
        left. With ``run_dir`` a finished member is kept there and reused by the next call."""
        series = self._series(train)
        panel = Panel.of([s.y for s in series], [s.m for s in series])
        root = None if run_dir is None else Path(run_dir)
        if root is not None:
            self._check_run(root, series, resume)
        specs = self.member_specs()
        members: list[_Member] = []
        cpu = 0.0
        trained = 0
        for k, (lookback, seed) in enumerate(specs):
            done = None if root is None else root / f"member{k}" / "final.safetensors"
            member = self._new_member(lookback, seed)
            if done is not None and done.exists() and resume:
                member.load_state_dict(read_tensors(done))
                cpu += float(json.loads((done.parent / "final.json").read_text())["cpu_seconds"])
            elif limit is not None and trained >= limit:
                continue
            else:
                spent = self._train_member(member, panel, lookback, seed, None if root is None else root / f"member{k}", resume)
                cpu += spent
                trained += 1
                if done is not None:
                    write_tensors(done, member.state_dict())
                    write_json(done.parent / "final.json", {"cpu_seconds": spent, "lookback": lookback, "seed": seed})
            members.append(member.eval())
        left = len(specs) - len(members)
        if left == 0:
            self.members_, self.specs_, self.cpu_seconds_ = members, specs, cpu
            self.fitted_ = True
        return left

    def _check_run(self, root: Path, series: Sequence[Series], resume: bool) -> None:
        from seqlab.train.identity import check_identity, fingerprint

        trains = {k: v for k, v in to_dict(self.config).items() if k not in FORECAST_ONLY}
        settings = {"family": self.family, "task": to_dict(self.task.config), "model": trains}
        data = fingerprint([[s.id, s.m, s.y.tolist()] for s in series])
        root.mkdir(parents=True, exist_ok=True)
        check_identity(root, settings, data, resume=resume, has_checkpoint=any(root.glob("member*")))

    def _train_member(self, member: _Member, panel: Panel, lookback: int, seed: int, run_dir: Path | None,
                      resume: bool) -> float:
        from seqlab.train.trainer import TrainConfig, Trainer

        c = self.config
        cfg = TrainConfig(epochs=-(-c.steps // c.steps_per_epoch), max_steps=c.steps, batch_size=c.batch_size, lr=c.lr,
                          weight_decay=c.weight_decay, clip_norm=c.clip_norm, patience=None, seed=seed, progress=False)
        source = _WindowSource(panel, c, lookback, self.task.h, seed)

        def loss_fn(module: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            total, units = module(batch, loss=True)
            return total, units

        start = time.process_time()
        Trainer(member, loss_fn, cfg, run_dir=run_dir).fit(source, resume=resume)
        return time.process_time() - start

    # --- forecasting ------------------------------------------------------------------------
    def _raw(self, panel: Panel, rows: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """(B, Q, h) combined forecasts in the original units for windows cut at ``origins``."""
        self._check_fitted()
        outs = []
        for member, (lookback, _) in zip(self.members_, self.specs_):
            parts = []
            for lo in range(0, len(rows), 8192):
                batch = windows_at(panel, rows[lo:lo + 8192], origins[lo:lo + 8192], lookback, self.task.h, self.config.scale)
                with torch.no_grad():
                    out = member(batch).double().numpy()  # (b, Q, h)
                out = out * batch["scale"].numpy()[:, None, None]
                if self.config.nonnegative:
                    seen = batch["x"].numpy() * batch["observed"].numpy()  # (b, L)
                    out = np.where((seen.min(axis=1) >= 0)[:, None, None], np.maximum(out, 0.0), out)
                parts.append(out)
            outs.append(np.concatenate(parts))
        stacked = np.stack(outs)  # (members, B, Q, h)
        return np.median(stacked, axis=0) if self.config.combine == "median" else stacked.mean(axis=0)

    def quantile_forecasts(self, inputs: Sequence[Any]) -> np.ndarray:
        """(N, Q, h) forecasts of each quantile (Q = 1: the point forecast) from each input's end."""
        series = self._series(inputs, extra=self.task.h)
        panel = Panel.of([s.y for s in series], [s.m for s in series])
        return self._raw(panel, np.arange(len(series)), panel.lengths.copy())

    def _to_forecast(self, q: np.ndarray, levels: Sequence[float]) -> Forecast:
        qs = self.config.quantiles
        point = q[qs.index(0.5)] if qs else q[0]
        intervals = {}
        for level in levels:
            lo, hi = self._pair(level)
            if lo is not None and hi is not None:
                intervals[float(level)] = (q[lo], q[hi])
        return Forecast(point, intervals)

    def _pair(self, level: float) -> tuple[int | None, int | None]:
        """Indices of the quantiles (1 - level/100)/2 and (1 + level/100)/2, if both are there."""
        want = ((100 - level) / 200, (100 + level) / 200)
        found = [next((i for i, q in enumerate(self.config.quantiles) if abs(q - w) < 1e-9), None) for w in want]
        return found[0], found[1]

    def forecast(self, inputs: Sequence[Any], levels: Sequence[float] | None = None) -> list[Forecast]:
        """Point forecasts and the intervals the quantile head gives (``levels``: the task's)."""
        lv = tuple(self.task.config.levels) if levels is None else tuple(levels)
        return [self._to_forecast(q, lv) for q in self.quantile_forecasts(inputs)]

    def _predict(self, inputs: Sequence[Any]) -> list[Any]:
        return [fc.mean.tolist() for fc in self.forecast(inputs, levels=())]

    def _tallies(self, pairs: Sequence[tuple[Series, np.ndarray]], q: np.ndarray) -> tuple[list[Any], list[Any], float, int]:
        tallies, refs, sq, n = [], [], 0.0, 0
        for (hist, target), qi in zip(pairs, q):
            fc = self._to_forecast(qi, self.task.config.levels)
            tallies.append({"mean": fc.mean.tolist(),
                            "intervals": {lv: [lo.tolist(), hi.tolist()] for lv, (lo, hi) in fc.intervals.items()}})
            refs.append(self.task.reference(hist, target))
            sq += float(np.sum((target - fc.mean) ** 2))
            n += len(target)
        return tallies, refs, sq, n

    def _score(self, examples: Sequence[Example]) -> tuple[list[Any], list[Any], float, int]:
        pairs = [self.task.split_series(ex, i) for i, ex in enumerate(examples)]
        for hist, _ in pairs:
            if hist.has_covariates:
                raise ConfigError(f"series {hist.id!r} has {'/'.join(hist.roles())} covariates, which the global "
                                  f"{self.family} forecaster cannot use; remove them (none is ever ignored)")
        panel = Panel.of([hist.y for hist, _ in pairs], [hist.m for hist, _ in pairs])
        return self._tallies(pairs, self._raw(panel, np.arange(len(pairs)), panel.lengths.copy()))

    def evaluate_windows(self, examples: Sequence[Example], cuts: Sequence[int]) -> list[dict[str, float]]:
        """The task's metrics at several forecast origins, all windows in one batched pass: for
        cut c, each series loses its last c values and its next-to-last h are scored (as
        ``evaluate`` on the series cut short would score them; the network is not refitted)."""
        h = self.task.h
        series = self._series(examples)
        panel = Panel.of([s.y for s in series], [s.m for s in series])
        k, n = len(cuts), len(series)
        rows = np.tile(np.arange(n), k)  # (K*N,)
        origins = np.concatenate([panel.lengths - c - h for c in cuts])
        if (origins < 1).any():
            raise ConfigError(f"a cut of {max(cuts)} plus h = {h} leaves a series without history")
        q = self._raw(panel, rows, origins)  # (K*N, Q, h)
        out = []
        for j, c in enumerate(cuts):
            pairs = []
            for s in series:
                end = len(s.y) - c
                pairs.append((Series(s.id, s.y[:end - h], s.m, {}, {}, {}), s.y[end - h:end]))
            tallies, refs, sq, units = self._tallies(pairs, q[j * n:(j + 1) * n])
            out.append(self.task.metrics(tallies, refs, sq, units))
        return out

    # --- the shared API's remaining pieces -----------------------------------------------------
    def tokenize(self, value: Any) -> list[str]:
        return [repr(v) for v in self.task.series(value, 0).y]

    def output_labels(self) -> list[str]:
        return [f"t+{k}" for k in range(1, self.task.h + 1)]

    def distributions(self, inputs: Sequence[Any]) -> list[Tensor]:
        raise ConfigError("a forecaster gives values and quantiles, not probability distributions")

    @property
    def n_parameters(self) -> int:
        self._check_fitted()
        return sum(p.numel() for m in self.members_ for p in m.parameters())

    def _get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors = {f"member{k}.{name}": t for k, m in enumerate(self.members_) for name, t in m.state_dict().items()}
        return tensors, {"members": [list(s) for s in self.specs_], "cpu_seconds": self.cpu_seconds_}

    def _set_state(self, tensors: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.specs_ = [(int(lb), int(s)) for lb, s in extra["members"]]
        self.members_ = []
        for k, (lookback, seed) in enumerate(self.specs_):
            member = self._new_member(lookback, seed)
            prefix = f"member{k}."
            state = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
            try:
                member.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise SeqlabError(f"saved member {k} does not fit the saved configuration: {e}") from None
            self.members_.append(member.eval())
        self.cpu_seconds_ = float(extra.get("cpu_seconds", 0.0))
