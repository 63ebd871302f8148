"""Datasets built from the user's files: :func:`load_files` reads them by extension (or by
``format``), checks each example has the keys its task needs, and carves missing valid/test
splits out of train. Import it from :mod:`seqlab.data.datasets`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from seqlab.data.readers import read_conll, read_csv, read_jsonl, read_text
from seqlab.data.splits import (
    TASKS,
    Dataset,
    DatasetInfo,
    Example,
    Fractions,
    TaskSpec,
    check_fractions,
    contiguous_split,
    split_examples,
)
from seqlab.errors import ConfigError, DataError
from seqlab.tasks import TASKS as TASK_REGISTRY

__all__ = ["load_files"]


_FORMATS: dict[str, Callable[..., list[Example]]] = {
    "conll": read_conll,
    "jsonl": read_jsonl,
    "text": read_text,
    "csv": read_csv,
}
_EXTENSIONS = {
    ".conll": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".jsonl": "jsonl",
    ".csv": "csv",
}


def _format_of(path: Path, task: str, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise ConfigError(f"unknown format {format!r}; valid formats: {', '.join(_FORMATS)}")
        return format
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return TASK_REGISTRY[task][0].txt_format
    if suffix not in _EXTENSIONS:
        known = ", ".join([*_EXTENSIONS, ".txt"])
        raise ConfigError(f"cannot tell the format of {str(path)!r} ({known}); pass format=")
    return _EXTENSIONS[suffix]


def _read_user(
    path: str | Path, task: str, format: str | None, options: Mapping[str, Any]
) -> list[Example]:
    p = Path(path)
    own = getattr(TASK_REGISTRY[task][0], "read_file", None)  # a task that reads its own files (audio lists)
    if own is not None and format is None and own(p, None) is not None:
        return own(p, options)
    reader = _FORMATS[_format_of(p, task, format)]
    params = [k for k in inspect.signature(reader).parameters if k != "path"]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"unknown reader option(s) {unknown} for {reader.__name__}; valid: {params}"
        )
    if reader is read_jsonl and "shapes" not in options:
        options = {**options, "shapes": TASK_REGISTRY[task][0].file_shapes}  # the task's own key sets
    examples = reader(p, **options)
    shapes = TASK_REGISTRY[task][0].file_shapes
    for i, ex in enumerate(examples):
        if not any(all(k in ex for k in keys) for keys in shapes):
            expected = f"examples for task {task!r} with keys " + " or ".join(map(str, shapes))
            raise DataError(p, None, expected, f"example {i} with keys {sorted(ex)}")
    return examples


def load_files(
    task: str,
    train: str | Path,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    format: str | None = None,
    *,
    seed: int = 0,
    fractions: Fractions = (0.8, 0.1, 0.1),
    reader_options: Mapping[str, Any] | None = None,
    name: str | None = None,
    task_options: Mapping[str, Any] | None = None,
) -> Dataset:
    """Build a Dataset from the user's files, read by extension or by ``format``.

    Extensions: ``.conll``/``.bio``/``.iob`` (CoNLL), ``.jsonl``, ``.csv``, and ``.txt``,
    read as the task declares (``Task.txt_format``: CoNLL for labeling, plain text otherwise). ``reader_options`` go to
    the reader (e.g. ``{"mode": "line"}``, ``{"encoding": "latin-1"}``). A missing valid or
    test split is carved out of ``train`` at random with ``seed``, taking its share of
    ``fractions``, unless the task carves its own (``Task.carve(examples, task_options)``:
    forecasting cuts every series by time); given splits are used as they are.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    fr = check_fractions(fractions)
    opts = dict(reader_options or {})
    train_ex = _read_user(train, task, format, opts)
    valid_ex = None if valid is None else _read_user(valid, task, format, opts)
    test_ex = None if test is None else _read_user(test, task, format, opts)
    carve_task = getattr(TASK_REGISTRY[task][0], "carve", None)  # a task's own split (forecasting: by time)
    if carve_task is not None and (valid_ex is None or test_ex is None):
        t_train, t_valid, t_test = carve_task(train_ex, dict(task_options or {}))
        train_ex, valid_ex, test_ex = t_train, valid_ex or t_valid, test_ex or t_test
    if valid_ex is None or test_ex is None:
        carve = (
            fr[0]
            + (fr[1] if valid_ex is not None else 0.0)
            + (fr[2] if test_ex is not None else 0.0),
            fr[1] if valid_ex is None else 0.0,
            fr[2] if test_ex is None else 0.0,
        )
        whole = train_ex
        train_ex, v, t = split_examples(whole, seed, carve)
        if ((carve[1] and not v) or (carve[2] and not t)) and TASK_REGISTRY[task][0].splits_text:
            # too few documents for a random split (one .txt file): cut each text contiguously
            train_ex, v, t = contiguous_split(whole, carve)
        valid_ex = v if valid_ex is None else valid_ex
        test_ex = t if test_ex is None else test_ex
    total = len(train_ex) + len(valid_ex) + len(test_ex)
    info = DatasetInfo(
        name=name or Path(train).stem,
        task=task,
        description="user files",
        source=str(train),
        licence="(user's)",
        extra="",
        size=f"{total:,} examples",
    )
    return Dataset(info.name, TaskSpec(task), train_ex, valid_ex, test_ex, info)


def recorded_data(run_dir: str | Path) -> dict[str, Any]:
    """The data a run was trained on, as its ``run.json`` recorded it: ``dataset``, ``seed``,
    ``valid``, ``test``, ``format`` and ``reader`` (the reader options, or None). Commands that
    score a run on its own data (evaluate, the forecasting probes) read it here."""
    from seqlab.io import read_json

    run = read_json(Path(run_dir) / "run.json")
    return {"dataset": run["dataset"], "seed": run.get("seed", 0), "valid": run.get("valid"),
            "test": run.get("test"), "format": run.get("format"), "reader": run.get("reader") or None}
