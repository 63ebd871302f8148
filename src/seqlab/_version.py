"""The package version, in a leaf module that imports nothing (so model code can record it)."""

__version__ = "0.1.0"
