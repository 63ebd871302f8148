"""Typed configuration: frozen dataclasses filled from dicts, TOML files and dotted overrides.

``from_dict(Cls, {...})`` builds a (possibly nested) dataclass, converting values to the
annotated types and rejecting unknown keys with the list of valid ones. ``parse_overrides``
turns ``["--model.hidden_size", "256"]`` into ``{"model": {"hidden_size": 256}}``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from seqlab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "check_at_least",
    "check_fraction",
    "from_dict",
    "to_dict",
    "load_toml",
    "parse_overrides",
    "merge",
    "check_keys",
    "coerce",
]

T = TypeVar("T")


def check_at_least(config: Any, low: int, *names: str) -> None:
    """Config validation: each named field is a number >= ``low``."""
    for name in names:
        if getattr(config, name) < low:
            raise ConfigError(f"{name} must be >= {low}, found {getattr(config, name)}")


def check_fraction(config: Any, *names: str) -> None:
    """Config validation: each named field (a dropout rate, ...) lies in [0, 1)."""
    for name in names:
        if not 0.0 <= getattr(config, name) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), found {getattr(config, name)}")


def check_keys(given: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    """Raise :class:`ConfigError` naming each unknown key and listing the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)} in {where}; "
            f"valid keys: {', '.join(sorted(valid))}"
        )


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert ``value`` to annotated type ``tp`` (str from the CLI, or TOML scalars)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, name)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{name}: cannot read {value!r} as {tp}")
    if origin is typing.Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ConfigError(f"{name}: expected one of {list(args)}, found {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, found {value!r}")
        inner = args[0] if args else Any
        items = [coerce(v, inner, name) for v in value]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a table of settings, found {value!r}")
        return from_dict(tp, value, where=name)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, found {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected an integer, found {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, found {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, found {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, found {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{name}: expected a string, found {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str | None = None) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise :class:`ConfigError`."""
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    where = where or cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, list(fields), where)
    hints = typing.get_type_hints(cls)
    kwargs = {k: coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: {e}") from e


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) dataclass instance."""
    out = dataclasses.asdict(obj)
    return json.loads(json.dumps(out))


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a syntax error names the file and line."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: a TOML file must be UTF-8 text; found an undecodable byte at offset {e.start}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {p} is a directory, not a TOML file") from None


def _parse_scalar(text: str) -> Any:
    """Read a CLI value as JSON where it parses (numbers, booleans, lists), else as a string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """``["--model.hidden_size", "256", "--train.lr=1e-3"]`` to a nested dict.

    A flag with no value (followed by another flag or nothing) means ``true``.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--") or len(tok) <= 2:
            raise ConfigError(f"expected an option like --section.key VALUE, found {tok!r}")
        key, eq, val = tok[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                val = args[i + 1]
                i += 1
            else:
                val = "true"
        i += 1
        parts = key.replace("-", "_").split(".")
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--{key}: {p} is a value, not a section")
            node = nxt
        node[parts[-1]] = _parse_scalar(val)
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base``."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
