"""Probes: how a trained model uses its context (sensitivity to edits, influence, saliency), and
audits of the known failure modes (long-range dependency, length generalization, padding and
truncation, exposure bias), with curated example sets.

Each probe works on every registry family through the model methods ``tokenize``,
``distributions`` and ``output_labels``; the ``seqlab probe`` command's sub-commands are listed
in :data:`seqlab.probes.commands.COMMANDS`.
"""

from __future__ import annotations

from seqlab.probes.audits import PaddingAudit, TruncationAudit, padding_audit, truncation_audit
from seqlab.probes.examples import minimal_pairs, sense_pairs, short_and_long
from seqlab.probes.exposure import ExposureResult, exposure_bias, scheduled_sampling_gap
from seqlab.probes.length import LengthResult, length_generalization
from seqlab.probes.longrange import LongRangeResult, long_range_dependency
from seqlab.probes.sensitivity import (
    InfluenceResult,
    SensitivityResult,
    influence_matrix,
    kl_divergence,
    saliency,
    sensitivity,
    total_variation,
)
from seqlab.probes.values import value_saliency, value_sensitivity

__all__ = [
    "SensitivityResult", "InfluenceResult", "sensitivity", "influence_matrix", "saliency", "kl_divergence",
    "total_variation", "PaddingAudit", "TruncationAudit", "padding_audit", "truncation_audit", "LongRangeResult",
    "long_range_dependency", "LengthResult", "length_generalization", "ExposureResult", "exposure_bias",
    "scheduled_sampling_gap", "minimal_pairs", "sense_pairs", "short_and_long", "value_saliency", "value_sensitivity",
]
