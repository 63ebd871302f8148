"""``seqlab.datasets``: the dataset catalog under its short name, as the README writes it
(``seqlab.datasets.load("wnut16")``, ``from seqlab.datasets import load_files``). The code lives in
:mod:`seqlab.data.datasets`; the seeded generators are ``seqlab.datasets.synthetic``
(:mod:`seqlab.data.synthetic`)."""

from seqlab.data import synthetic
from seqlab.data.datasets import (
    TASKS,
    Dataset,
    DatasetInfo,
    catalog,
    load,
    load_files,
    names,
    split_examples,
)

__all__ = ["Dataset", "DatasetInfo", "TASKS", "load", "load_files", "catalog", "names", "split_examples", "synthetic"]
