"""Local methods by name: the model registry is the one table.

Every forecasting family entry in :mod:`seqlab.models.registry` names its method as
``"module:Class"`` in ``defaults["method"]``; :func:`method_by_name` builds it from there, so a
new method (part B's ``ets``, ``arima``, ``structural``) is one registry line and nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from seqlab.errors import ConfigError
from seqlab.forecast.local import LocalMethod

__all__ = ["load_method", "method_by_name", "method_names"]


def load_method(spec: str, options: Mapping[str, Any] | None = None) -> LocalMethod:
    """The method class ``"module:Class"`` built with ``options`` (its dataclass fields); an
    unknown option is an error naming the valid ones."""
    module, _, cls_name = spec.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    opts = dict(options or {})
    valid = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(map(repr, unknown))} for method {cls.name!r}; "
                          f"valid: {', '.join(valid) or 'none'}")
    for key, value in opts.items():  # JSON gives lists where a tuple is declared
        if isinstance(value, list):
            opts[key] = tuple(value)
    method: LocalMethod = cls(**opts)
    return method


def method_names() -> list[str]:
    """The registry names of every local forecasting method."""
    from seqlab.models.registry import FAMILIES

    return [name for name, fam in FAMILIES.items() if "method" in fam.defaults]


def method_by_name(name: str, options: Mapping[str, Any] | None = None) -> LocalMethod:
    """The local method a registry entry names (``"theta"``, ``"naive2"``, ...)."""
    from seqlab.models.registry import ALIASES, FAMILIES

    fam = FAMILIES.get(ALIASES.get(name, name))
    if fam is None or "method" not in fam.defaults:
        raise ConfigError(f"unknown forecasting method {name!r}; valid: {', '.join(method_names())}")
    return load_method(str(fam.defaults["method"]), options)
