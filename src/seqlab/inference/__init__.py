"""Dynamic programs over linear chains, shared by HMMs and CRFs (see :mod:`.chain`)."""

from seqlab.inference.chain import (
    ChainPosteriors,
    forward_backward,
    forward_backward_ref,
    forward_filter,
    forward_filter_ref,
    log_partition,
    log_partition_ref,
    nbest,
    sample,
    score,
    viterbi,
    viterbi_ref,
)
from seqlab.inference.constraints import Constraints, span_constraints

__all__ = [
    "ChainPosteriors", "Constraints", "forward_backward", "forward_backward_ref", "forward_filter",
    "forward_filter_ref", "log_partition",
    "log_partition_ref", "nbest", "sample", "score", "span_constraints", "viterbi", "viterbi_ref",
]
