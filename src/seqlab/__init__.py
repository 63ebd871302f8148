"""seqlab: one toolkit for sequence modeling."""

from __future__ import annotations

__version__ = "0.1.0"
