"""Classical families: n-gram language models, hidden Markov models, feature-based CRFs.

They are estimators fitted by counting, EM or L-BFGS rather than by the neural trainer, but they
answer the same calls (``build / fit / evaluate / predict / save / load``) through
:class:`~seqlab.models.classical.base.ClassicalModel`, so they sit in the same tables as the
neural models.
"""

from seqlab.models.classical.base import ClassicalModel, ClassicalResult

__all__ = ["ClassicalModel", "ClassicalResult"]
