"""seqlab: one toolkit for sequence modeling.

>>> import seqlab
>>> ds = seqlab.datasets.load("wnut16")
>>> model = seqlab.build("lstm", task=ds, bidirectional=True)
>>> model.fit(ds.train, valid=ds.valid).evaluate(ds.test)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqlab._version import __version__

__all__ = ["__version__", "build", "load", "datasets"]

if TYPE_CHECKING:
    from seqlab import datasets
    from seqlab.models.registry import build, load


def __getattr__(name: str) -> Any:
    # Lazy: `import seqlab` stays cheap (no torch import) until a model or dataset is used.
    if name in ("build", "load"):
        from seqlab.models import registry

        return getattr(registry, name)
    if name == "datasets":  # the submodule seqlab.datasets (importing it binds the attribute)
        import importlib

        return importlib.import_module("seqlab.datasets")
    raise AttributeError(f"module 'seqlab' has no attribute {name!r}")
