"""HMM estimators against textbook answers, brute-force enumeration, planted structure and
exact sampling probabilities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.errors import ConfigError, DataError
from seqlab.models.classical.hmm import CategoricalHMM, GaussianHMM


def _ice_cream() -> CategoricalHMM:
    """Jurafsky & Martin (SLP3, appendix A): HOT = 0, COLD = 1; ice creams 1, 2, 3 -> symbols 0, 1, 2."""
    m = CategoricalHMM(2, 3)
    m.startprob_ = torch.tensor([0.8, 0.2], dtype=torch.float64)
    m.transmat_ = torch.tensor([[0.6, 0.4], [0.5, 0.5]], dtype=torch.float64)
    m.emissionprob_ = torch.tensor([[0.2, 0.4, 0.4], [0.5, 0.4, 0.1]], dtype=torch.float64)
    return m


def test_ice_cream_forward_and_viterbi_textbook() -> None:
    m = _ice_cream()
    obs = [torch.tensor([2, 0, 2])]  # 3 1 3 ice creams
    # forward, by hand: a1 = (.32, .02); a2 = (.0404, .069); a3 = (.023496, .005066)
    assert math.exp(m.score(obs)) == pytest.approx(0.023496 + 0.005066, rel=1e-12)
    # Viterbi, by hand: v1 = (.32, .02), v2 = (.0384, .064), v3 = (.0128, .0032) -> HOT COLD HOT
    paths, scores = m.decode(obs)
    assert paths[0].tolist() == [0, 1, 0]
    assert math.exp(float(scores[0])) == pytest.approx(0.0128, rel=1e-12)


def _random_hmm(data: st.DataObject, n: int, v: int) -> CategoricalHMM:
    def dist(k: int) -> torch.Tensor:
        w = torch.tensor(data.draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)), dtype=torch.float64)
        return w / w.sum()

    m = CategoricalHMM(n, v, batch_size=2)
    m.startprob_ = dist(n)
    m.transmat_ = torch.stack([dist(n) for _ in range(n)])
    m.emissionprob_ = torch.stack([dist(v) for _ in range(n)])
    return m


def _joint(m: CategoricalHMM, x: list[int], path: tuple[int, ...]) -> float:
    assert m.startprob_ is not None and m.transmat_ is not None
    p = float(m.startprob_[path[0]]) * float(m.emissionprob_[path[0], x[0]])
    for t in range(1, len(x)):
        p *= float(m.transmat_[path[t - 1], path[t]]) * float(m.emissionprob_[path[t], x[t]])
    return p


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_score_viterbi_posteriors_equal_brute_force(data: st.DataObject) -> None:
    n, v = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    m = _random_hmm(data, n, v)
    seqs = data.draw(st.lists(st.lists(st.integers(0, v - 1), min_size=1, max_size=4), min_size=1, max_size=4))
    ll = m.score_samples(seqs)
    best_paths, best_scores = m.decode(seqs)
    post = m.predict_proba(seqs)
    for i, x in enumerate(seqs):
        paths = list(itertools.product(range(n), repeat=len(x)))
        joint = [_joint(m, x, p) for p in paths]
        z = sum(joint)
        assert float(ll[i]) == pytest.approx(math.log(z), abs=1e-9)
        assert max(joint) == pytest.approx(_joint(m, x, tuple(best_paths[i].tolist())), rel=1e-9)
        assert float(best_scores[i]) == pytest.approx(math.log(max(joint)), abs=1e-9)
        marg = np.zeros((len(x), n))
        for p, j in zip(paths, joint):
            marg[np.arange(len(x)), list(p)] += j / z
        np.testing.assert_allclose(post[i].numpy(), marg, atol=1e-9)


def test_sequence_alone_or_in_a_padded_batch_scores_the_same() -> None:
    m = _ice_cream()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 3, size=k) for k in (1, 7, 3, 12, 2)]
    together = m.score_samples(seqs)
    alone = torch.stack([m.score_samples([s])[0] for s in seqs])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-12)


def test_empty_sequences_score_zero_and_change_nothing() -> None:
    m = _ice_cream()
    seqs = [torch.tensor([2, 0, 2]), torch.tensor([], dtype=torch.long), torch.tensor([1])]
    ll = m.score_samples(seqs)
    assert float(ll[1]) == 0.0
    torch.testing.assert_close(ll[[0, 2]], m.score_samples([seqs[0], seqs[2]]))
    assert m.predict(seqs)[1].tolist() == [] and m.predict_proba(seqs)[1].shape == (0, 2)
    only_empty = CategoricalHMM(2, 3, n_iter=2)
    with pytest.raises(DataError, match="non-empty"):
        only_empty.fit([[], []])
    fitted = CategoricalHMM(2, 3, n_iter=3, seed=0).fit([[0, 1, 2], [], [2, 2]])
    alone = CategoricalHMM(2, 3, n_iter=3, seed=0).fit([[0, 1, 2], [2, 2]])
    assert fitted.history_ == pytest.approx(alone.history_, abs=1e-12)


def _planted_categorical(seed: int, n_seqs: int = 40) -> list[torch.Tensor]:
    truth = CategoricalHMM(3, 5, seed=seed)
    truth.startprob_ = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    truth.transmat_ = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], dtype=torch.float64)
    truth.emissionprob_ = torch.tensor([[0.5, 0.4, 0.05, 0.03, 0.02], [0.02, 0.03, 0.5, 0.4, 0.05], [0.1, 0.1, 0.1, 0.1, 0.6]], dtype=torch.float64)
    obs, _ = truth.sample(n_seqs, 25, seed=seed)
    return [row[: 10 + i % 15] for i, row in enumerate(obs)]  # different lengths


def test_baum_welch_loglik_never_decreases_and_restarts_keep_the_best() -> None:
    seqs = _planted_categorical(1)
    m = CategoricalHMM(3, 5, n_iter=25, tol=-math.inf, n_init=3, seed=7).fit(seqs)
    assert len(m.restarts_) == 3
    for hist in m.restarts_:
        assert len(hist) == 25
        assert all(b >= a - 1e-9 * abs(a) for a, b in zip(hist, hist[1:])), hist
    best = max(m.restarts_, key=lambda h: h[-1])
    assert m.history_ == best
    # the kept parameters are the best restart's: one more E-step scores at least its last value
    assert m.score(seqs) >= best[-1] - 1e-9


def test_gaussian_baum_welch_loglik_never_decreases() -> None:
    rng = np.random.default_rng(2)
    seqs = [np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (15, 2))]) for _ in range(6)]
    m = GaussianHMM(2, covar_prior=0.0, min_covar=0.0, n_iter=15, tol=-math.inf, seed=1).fit(seqs)
    hist = m.history_
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(hist, hist[1:])), hist


def test_tol_stops_early() -> None:
    seqs = _planted_categorical(3)
    m = CategoricalHMM(3, 5, n_iter=500, tol=1e-3, seed=0).fit(seqs)
    assert m.converged_ and len(m.history_) < 500
    assert m.history_[-1] - m.history_[-2] < 1e-3


def test_gaussian_segmentation_recovers_planted_segments() -> None:
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    series, truths = [], []
    for _ in range(8):
        labels = np.repeat(rng.permutation(3), rng.integers(15, 40, size=3))
        series.append(means[labels] + rng.normal(0, 1, (len(labels), 2)))
        truths.append(labels)
    m = GaussianHMM(3, n_iter=50, n_init=2, seed=0).fit(series)
    paths = m.predict(series)
    pred, true = np.concatenate([p.numpy() for p in paths]), np.concatenate(truths)
    best = max(np.mean(np.array(perm)[pred] == true) for perm in itertools.permutations(range(3)))
    assert best >= 0.98


def test_sampling_frequencies_match_exact_probabilities() -> None:
    m = _ice_cream()
    n = 20000
    obs, states = m.sample(n, 3, seed=0)
    assert obs.shape == (n, 3) and states.shape == (n, 3)
    p_pi, p_a, p_b = m.startprob_.numpy(), m.transmat_.numpy(), m.emissionprob_.numpy()  # type: ignore[union-attr]
    codes = (states[:, 0] * 4 + states[:, 1] * 2 + states[:, 2]).numpy()
    freq = np.bincount(codes, minlength=8) / n
    for s in itertools.product(range(2), repeat=3):
        p = p_pi[s[0]] * p_a[s[0], s[1]] * p_a[s[1], s[2]]
        assert abs(freq[s[0] * 4 + s[1] * 2 + s[2]] - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-3
    for k in range(2):  # symbols given the state
        sel = obs[states == k].numpy()
        emp = np.bincount(sel, minlength=3) / len(sel)
        np.testing.assert_allclose(emp, p_b[k], atol=4 * math.sqrt(0.25 / len(sel)))
    again, _ = m.sample(n, 3, seed=0)
    assert torch.equal(obs, again)


def test_bad_input_gets_clear_errors() -> None:
    m = _ice_cream()
    with pytest.raises(DataError, match="list of sequences"):
        m.score(torch.tensor([[0, 1]]))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="n_symbols=3"):
        m.score([[0, 3]])
    with pytest.raises(DataError, match="integer symbols"):
        m.score([[0.5, 1.0]])
    with pytest.raises(ConfigError, match="n_states"):
        CategoricalHMM(0)
    with pytest.raises(ConfigError, match="no parameters"):
        CategoricalHMM(2).score([[0]])
    with pytest.raises(DataError, match="finite"):
        GaussianHMM(2).fit([np.array([[0.0], [np.nan]])])


def test_gaussian_samples_have_the_state_moments() -> None:
    m = GaussianHMM(2, 2)
    m.startprob_ = torch.tensor([0.5, 0.5], dtype=torch.float64)
    m.transmat_ = torch.tensor([[0.9, 0.1], [0.3, 0.7]], dtype=torch.float64)
    means, covars = torch.tensor([[0.0, 5.0], [-3.0, 1.0]]), torch.tensor([[1.0, 0.25], [4.0, 0.5]])
    m.set_gaussians(means, covars)
    obs, states = m.sample(4000, 5, seed=1)
    assert obs.shape == (4000, 5, 2)
    for k in range(2):
        x = obs[states == k]  # (M, 2)
        se = (covars[k].double() / len(x)).sqrt()
        assert bool(((x.mean(0) - means[k]).abs() < 5 * se).all())
        torch.testing.assert_close(x.var(0), covars[k].double(), rtol=0.06, atol=0)


@pytest.mark.parametrize("make", [CategoricalHMM, GaussianHMM])
def test_float32_fit_follows_float64(make: type) -> None:
    if make is CategoricalHMM:
        seqs: list = _planted_categorical(4, n_seqs=10)
        kw: dict = {"n_symbols": 5}
    else:
        rng = np.random.default_rng(4)
        seqs = [np.concatenate([rng.normal(0, 1, (12, 2)), rng.normal(4, 1, (9, 2))]) for _ in range(5)]
        kw = {}
    h64 = make(3, n_iter=5, tol=-math.inf, seed=3, **kw).fit(seqs).history_
    m32 = make(3, n_iter=5, tol=-math.inf, seed=3, dtype=torch.float32, **kw).fit(seqs)
    np.testing.assert_allclose(m32.history_, h64, rtol=1e-4)
    assert m32.transmat_.dtype == torch.float32 and m32.score_samples(seqs).dtype == torch.float32


def test_gaussian_hmm_refuses_values_whose_squares_overflow() -> None:
    """Finite values above ~1e155 used to fail deep inside torch.multinomial (k-means seeding)."""
    import numpy as np
    import pytest

    from seqlab.errors import DataError
    from seqlab.models.classical.hmm_core import GaussianHMM

    rng = np.random.default_rng(0)
    big = [rng.normal(size=(30, 1)) * 1e160 for _ in range(3)]
    with pytest.raises(DataError, match="rescale the data"):
        GaussianHMM(2, seed=0).fit(big)
    # the same data rescaled fits, and the fit is scale-equivariant in the means
    small = GaussianHMM(2, seed=0, min_covar=0.0, covar_prior=0.0).fit([b / 1e160 for b in big])
    assert small.means_.isfinite().all()
