"""Parity with hmmlearn on the same parameters and data (float64): log-likelihoods, Viterbi
paths, posteriors and a 10-iteration Baum-Welch trajectory from the same initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hmmlearn import hmm as peer

from seqlab.models.classical.hmm import CategoricalHMM, GaussianHMM

N_ITER = 10


def _chain(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n), size=n)


def _categorical_pair(seed: int, n: int = 4, v: int = 6) -> tuple[peer.CategoricalHMM, CategoricalHMM, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    pi, a = _chain(rng, n)
    b = rng.dirichlet(np.ones(v), size=n)
    ref = peer.CategoricalHMM(n_components=n, n_features=v, init_params="", n_iter=N_ITER, tol=-np.inf, implementation="scaling")
    ref.startprob_, ref.transmat_, ref.emissionprob_ = pi, a, b
    ours = CategoricalHMM(n, v, n_iter=N_ITER, tol=-np.inf, batch_size=5)  # several batches
    ours.startprob_, ours.transmat_ = torch.tensor(pi), torch.tensor(a)
    ours.emissionprob_ = torch.tensor(b)
    seqs = [rng.integers(0, v, size=int(rng.integers(1, 30))) for _ in range(12)]
    return ref, ours, seqs


def _gaussian_pair(seed: int, n: int = 3, d: int = 2) -> tuple[peer.GaussianHMM, GaussianHMM, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    pi, a = _chain(rng, n)
    means = rng.normal(0, 3, size=(n, d))
    covars = rng.uniform(0.5, 2.0, size=(n, d))
    ref = peer.GaussianHMM(n_components=n, covariance_type="diag", init_params="", n_iter=N_ITER, tol=-np.inf, implementation="scaling")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = pi, a, means, covars
    ours = GaussianHMM(n, d, min_covar=0.0, n_iter=N_ITER, tol=-np.inf, batch_size=5)
    ours.startprob_, ours.transmat_ = torch.tensor(pi), torch.tensor(a)
    ours.set_gaussians(torch.tensor(means), torch.tensor(covars))
    seqs = [rng.normal(0, 3, size=(int(rng.integers(1, 30)), d)) for _ in range(12)]
    return ref, ours, seqs


def _flat(seqs: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    x = np.concatenate(seqs)
    return (x[:, None] if x.ndim == 1 else x), [len(s) for s in seqs]


PAIRS = [pytest.param(_categorical_pair, id="categorical"), pytest.param(_gaussian_pair, id="gaussian")]


@pytest.mark.parametrize("make", PAIRS)
@pytest.mark.parametrize("seed", [0, 1])
def test_loglik_paths_posteriors_match_hmmlearn(make: object, seed: int) -> None:
    ref, ours, seqs = make(seed)  # type: ignore[operator]
    x, lengths = _flat(seqs)
    per_seq = ours.score_samples(seqs).numpy()
    expected = [ref.score(s[:, None] if s.ndim == 1 else s) for s in seqs]
    np.testing.assert_allclose(per_seq, expected, rtol=0, atol=1e-6)
    assert ours.score(seqs) == pytest.approx(ref.score(x, lengths), abs=1e-6)
    ref_paths = ref.predict(x, lengths)
    ours_paths = np.concatenate([p.numpy() for p in ours.predict(seqs)])
    np.testing.assert_array_equal(ours_paths, ref_paths)
    post = np.concatenate([p.numpy() for p in ours.predict_proba(seqs)])
    np.testing.assert_allclose(post, ref.predict_proba(x, lengths), atol=1e-9)


@pytest.mark.parametrize("emission", ["categorical", "gaussian"])
def test_baum_welch_trajectory_matches_hmmlearn(emission: str) -> None:
    """From the same start, 10 EM iterations: every log-likelihood and the final parameters."""
    ref, ours, seqs = _categorical_pair(3) if emission == "categorical" else _gaussian_pair(4)
    x, lengths = _flat(seqs)
    ref.fit(x, lengths)
    ours.fit(seqs, init=False)
    assert len(ours.history_) == N_ITER
    np.testing.assert_allclose(ours.history_, list(ref.monitor_.history), rtol=0, atol=1e-6)
    assert ours.startprob_ is not None and ours.transmat_ is not None
    pairs = [(ours.startprob_, ref.startprob_), (ours.transmat_, ref.transmat_)]
    if emission == "categorical":
        pairs.append((ours.emissionprob_, ref.emissionprob_))
    else:
        pairs += [(ours.means_, ref.means_), (ours.covars_, ref._covars_)]
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine.numpy(), theirs, atol=1e-6)


def test_log_implementation_agrees_too() -> None:
    """hmmlearn's log-space implementation gives the same numbers as its scaling one and ours."""
    ref, ours, seqs = _categorical_pair(5)
    ref.implementation = "log"
    x, lengths = _flat(seqs)
    assert ours.score(seqs) == pytest.approx(ref.score(x, lengths), abs=1e-6)
