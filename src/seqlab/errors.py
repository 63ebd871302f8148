"""The one error type a user sees, and its few refinements.

Every problem a user can act on (a malformed file, an unknown configuration key, a missing
optional dependency) raises a :class:`SeqlabError` whose message says where, what was expected
and what was found. Nothing deeper (IndexError, KeyError, UnicodeDecodeError) escapes a reader.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SeqlabError", "DataError", "ConfigError", "MissingDependencyError", "TrainingError"]


class SeqlabError(Exception):
    """Base class of every error seqlab raises on purpose."""


class DataError(SeqlabError, ValueError):
    """Malformed input data: names the file, the line, what was expected and what was found."""

    def __init__(
        self,
        path: str | Path | None,
        line: int | None,
        expected: str,
        found: str,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}, line {line}"
        found_show = found if len(found) <= 120 else found[:117] + "..."
        super().__init__(f"{where}: expected {expected}; found {found_show}")


class ConfigError(SeqlabError, ValueError):
    """An invalid configuration: an unknown key, a wrong type or an out-of-range value."""


class MissingDependencyError(SeqlabError, ImportError):
    """An optional dependency is missing; the message names the extra or command to install it."""


class TrainingError(SeqlabError, RuntimeError):
    """Training cannot go on (a NaN or inf loss, for example); the last good checkpoint is kept."""
