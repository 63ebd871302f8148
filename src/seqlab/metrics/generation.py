"""Generation metrics: thin, exact wrappers over sacrebleu and jiwer, plus exact match.

* BLEU (Papineni et al. 2002) and chrF (Popović 2015) are sacrebleu's corpus scores (0-100),
  returned with sacrebleu's signature string so a reported number can be reproduced
  (Post 2018). Token-list outputs are joined with spaces and scored with ``tokenize="none"``.
* WER and CER are jiwer's corpus rates: total edits (substitutions, deletions, insertions) over
  the total reference words or characters. For token-list outputs (phonemes),
  :func:`token_error_rate` treats each token as a jiwer "word": the phoneme error rate.
* :func:`exact_match`: the fraction of outputs equal to their reference. For grapheme-to-
  phoneme conversion, ``1 - exact_match`` is the literature's "word error rate" (one dictionary
  word per example), as in the g2p-seq2seq and Phonetisaurus figures.

Inputs: ``hypotheses`` and ``references`` are parallel lists of strings or of token lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqlab.errors import ConfigError, SeqlabError

__all__ = ["bleu", "chrf", "bleu_signature", "chrf_signature", "wer", "cer", "token_error_rate", "exact_match", "as_text",
           "multi_reference_rates"]

Output = str | Sequence[str]


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise SeqlabError(
            f"generation metrics need {module!r}: pip install sacrebleu jiwer (or seqlab[generation])"
        ) from None


def _pair(hypotheses: Sequence[Output], references: Sequence[Output]) -> None:
    if len(hypotheses) != len(references):
        raise ConfigError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def as_text(value: Output) -> str:
    """A string as is; a token list joined with single spaces."""
    return value if isinstance(value, str) else " ".join(value)


def _tokenized(hypotheses: Sequence[Output], references: Sequence[Output]) -> bool:
    return any(not isinstance(v, str) for v in [*hypotheses, *references])


def bleu(hypotheses: Sequence[Output], references: Sequence[Output], tokenize: str | None = None) -> tuple[float, str]:
    """Corpus BLEU (0-100) and sacrebleu's signature; ``tokenize`` defaults to sacrebleu's
    ``13a`` for text and ``none`` for token lists."""
    _pair(hypotheses, references)
    _need("sacrebleu")
    from sacrebleu.metrics import BLEU

    tok = tokenize or ("none" if _tokenized(hypotheses, references) else "13a")
    metric = BLEU(tokenize=tok)
    score = metric.corpus_score([as_text(h) for h in hypotheses], [[as_text(r) for r in references]])
    return float(score.score), str(metric.get_signature())


def bleu_signature(tokenize: str = "13a") -> str:
    """sacrebleu's BLEU signature for a tokenizer (as :func:`bleu` reports it)."""
    _need("sacrebleu")
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize=tokenize)
    metric.corpus_score(["a"], [["a"]])  # sacrebleu fills the signature (nrefs) on first use
    return str(metric.get_signature())


def chrf_signature() -> str:
    """sacrebleu's chrF signature (as :func:`chrf` reports it)."""
    _need("sacrebleu")
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    metric.corpus_score(["a"], [["a"]])
    return str(metric.get_signature())


def chrf(hypotheses: Sequence[Output], references: Sequence[Output]) -> tuple[float, str]:
    """Corpus chrF (character 6-grams, beta 2; 0-100) and sacrebleu's signature."""
    _pair(hypotheses, references)
    _need("sacrebleu")
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    score = metric.corpus_score([as_text(h) for h in hypotheses], [[as_text(r) for r in references]])
    return float(score.score), str(metric.get_signature())


def _jiwer(fn: str, hypotheses: Sequence[str], references: Sequence[str]) -> float:
    jiwer = _need("jiwer")
    if not references:
        return float("nan")
    return float(getattr(jiwer, fn)(list(references), list(hypotheses)))


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word error rate of whitespace-separated words (jiwer)."""
    _pair(hypotheses, references)
    return _jiwer("wer", hypotheses, references)


def cer(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus character error rate (jiwer)."""
    _pair(hypotheses, references)
    return _jiwer("cer", hypotheses, references)


def _token_rows(*seqs: Sequence[str]) -> list[str]:
    """Token lists as jiwer sentences: each token renamed to a whitespace-free word (one name per
    distinct token, so edit distances are unchanged)."""
    names: dict[str, str] = {}
    return [" ".join(names.setdefault(t, f"t{len(names)}") for t in seq) for seq in seqs]


def token_error_rate(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus edit rate over token lists, each token one jiwer word (phoneme error rate)."""
    _pair(hypotheses, references)
    text = _token_rows(*hypotheses, *references)
    return _jiwer("wer", text[: len(hypotheses)], text[len(hypotheses) :])


def _token_edits(hypothesis: Sequence[str], reference: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning ``reference`` into ``hypothesis`` (jiwer)."""
    if not reference:
        return len(hypothesis)
    hyp, ref = _token_rows(hypothesis, reference)
    out = _need("jiwer").process_words(ref, hyp)
    return int(out.substitutions + out.deletions + out.insertions)


def exact_match(hypotheses: Sequence[Output], references: Sequence[Output]) -> float:
    """Fraction of hypotheses equal to their reference (token lists compared as lists)."""
    _pair(hypotheses, references)
    if not references:
        return float("nan")
    same = sum(
        (h == r) if isinstance(h, str) and isinstance(r, str) else list(h) == list(r)
        for h, r in zip(hypotheses, references)
    )
    return same / len(references)


def multi_reference_rates(
    hypotheses: Sequence[Sequence[str]], reference_sets: Sequence[Sequence[Sequence[str]]],
) -> tuple[float, float]:
    """(word error rate, token error rate) when an input has several right answers (CMUdict
    lists variant pronunciations): an output is correct if it equals any of its references;
    its edits are counted against the reference nearest to it (fewest edits, first on ties),
    and the token error rate is the total of those edits over the total length of those
    references. Edit counts are jiwer's (substitutions + deletions + insertions)."""
    if len(hypotheses) != len(reference_sets):
        raise ConfigError(f"{len(hypotheses)} hypotheses but {len(reference_sets)} reference sets")
    if any(not refs for refs in reference_sets):
        raise ConfigError("every hypothesis needs at least one reference")
    if not hypotheses:
        return float("nan"), float("nan")
    wrong = edits = length = 0
    for hyp, refs in zip(hypotheses, reference_sets):
        h = list(hyp)
        wrong += all(h != list(r) for r in refs)
        best = min(((_token_edits(h, r), len(r)) for r in refs), key=lambda pair: pair[0])  # first on ties
        edits += best[0]
        length += best[1]
    return wrong / len(hypotheses), edits / max(length, 1)
