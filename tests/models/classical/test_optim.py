"""L-BFGS / OWL-QN against textbook optima: scipy on smooth problems, liblinear on L1 ones."""

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from seqlab.errors import ConfigError
from seqlab.models.classical.optim import minimize_lbfgs, pseudo_gradient


def _logistic(X: np.ndarray, y: np.ndarray, c2: float = 0.0):
    """Summed log-loss of labels y in {0, 1} plus c2 * ||w||^2: (value, gradient)."""

    def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        f = float(np.sum(np.logaddexp(0.0, z) - y * z)) + c2 * float(w @ w)
        p = 1.0 / (1.0 + np.exp(-z))
        return f, X.T @ (p - y) + 2 * c2 * w

    return fg


def _data(seed: int, n: int = 200, d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:4] = [2.0, -1.5, 1.0, 0.5]
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w))).astype(float)
    return X, y


@pytest.mark.parametrize("linesearch", ["morethuente", "backtracking"])
def test_lbfgs_matches_scipy_on_l2_logistic_regression(linesearch: str) -> None:
    X, y = _data(0)
    fg = _logistic(X, y, c2=0.5)
    ours = minimize_lbfgs(fg, np.zeros(X.shape[1]), max_iterations=500, epsilon=1e-8, delta=0.0, linesearch=linesearch)
    ref = scipy.optimize.minimize(fg, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000})
    assert ours.status == "converged"
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-6)
    assert ours.fun == pytest.approx(ref.fun, rel=1e-10)


@pytest.mark.parametrize("linesearch", ["morethuente", "backtracking"])
def test_lbfgs_solves_a_quadratic_exactly(linesearch: str) -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(8, 8))
    H = A @ A.T + np.eye(8)
    b = rng.normal(size=8)
    res = minimize_lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b), np.zeros(8),
                         max_iterations=200, epsilon=1e-10, delta=0.0, linesearch=linesearch)
    np.testing.assert_allclose(res.x, np.linalg.solve(H, b), atol=1e-8)


@pytest.mark.parametrize("c1", [2.0, 8.0, 25.0])
def test_owlqn_matches_liblinear_l1_logistic_regression_with_exact_zeros(c1: float) -> None:
    X, y = _data(2)
    res = minimize_lbfgs(_logistic(X, y), np.zeros(X.shape[1]), c1=c1, max_iterations=1000,
                         epsilon=1e-9, delta=0.0)
    # liblinear minimises ||w||_1 + C * sum log-loss: the same problem with C = 1 / c1
    ref = LogisticRegression(l1_ratio=1.0, C=1.0 / c1, solver="liblinear", fit_intercept=False,
                             tol=1e-10, max_iter=10000).fit(X, y)
    w_ref = ref.coef_.ravel()
    np.testing.assert_allclose(res.x, w_ref, atol=2e-4)
    assert np.array_equal(res.x == 0, np.abs(w_ref) < 1e-8)
    assert (res.x == 0).sum() >= 2  # some of the 8 noise dimensions are cut to exact zeros
    f_ref = _logistic(X, y)(w_ref)[0] + c1 * np.abs(w_ref).sum()
    assert res.fun <= f_ref + 1e-6


def test_owlqn_large_c1_gives_all_zeros() -> None:
    X, y = _data(3)
    res = minimize_lbfgs(_logistic(X, y), np.ones(X.shape[1]), c1=1e4, max_iterations=200)
    assert np.all(res.x == 0)


@pytest.mark.parametrize("linesearch", ["morethuente", "backtracking"])
def test_iterations_are_capped_and_counted(linesearch: str) -> None:
    X, y = _data(4)
    res = minimize_lbfgs(_logistic(X, y, 0.1), np.zeros(X.shape[1]), max_iterations=3, epsilon=0.0, delta=0.0,
                         linesearch=linesearch)
    assert res.n_iterations == 3 and res.status == "max_iterations"
    assert res.n_evaluations >= 4 and len(res.history) == 4
    assert all(b["objective"] <= a["objective"] for a, b in zip(res.history, res.history[1:]))


def test_bad_settings_raise() -> None:
    with pytest.raises(ConfigError, match="c1"):
        minimize_lbfgs(lambda x: (0.0, x), np.zeros(2), c1=-1.0)
    with pytest.raises(ConfigError, match="max_iterations"):
        minimize_lbfgs(lambda x: (0.0, x), np.zeros(2), max_iterations=0)
    with pytest.raises(ConfigError, match="linesearch"):
        minimize_lbfgs(lambda x: (0.0, x), np.zeros(2), linesearch="wolfe")  # type: ignore[arg-type]


def test_more_thuente_steps_meet_the_strong_wolfe_conditions() -> None:
    """Textbook property of the More-Thuente search, checked on every accepted step."""
    X, y = _data(5)
    fg = _logistic(X, y, 0.05)
    res = minimize_lbfgs(fg, np.zeros(X.shape[1]), max_iterations=1, epsilon=0.0, delta=0.0)
    f0, g0 = fg(np.zeros(X.shape[1]))
    d = -g0
    a = float(np.linalg.norm(res.x)) / float(np.linalg.norm(d))  # the accepted step length
    f1, g1 = fg(res.x)
    assert f1 <= f0 + 1e-4 * a * float(g0 @ d)
    assert abs(float(g1 @ d)) <= 0.9 * abs(float(g0 @ d))


_floats = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 2))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-1.0, 0.0, 0.0, 2.0]), _floats), min_size=1, max_size=6),
       st.sampled_from([0.5, 1.0, 2.0]))
def test_pseudo_gradient_is_the_steepest_one_sided_derivative(xg: list, c1: float) -> None:
    """Oracle: one-sided difference quotients of F(x) = g.x + c1 |x|_1 (piecewise linear, so exact)."""
    x = np.array([a for a, _ in xg])
    g = np.array([b for _, b in xg])
    pg = pseudo_gradient(x, g, c1)

    def F(v: np.ndarray) -> float:
        return float(g @ v + c1 * np.abs(v).sum())

    h = 1e-3
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h
        right = (F(x + e) - F(x)) / h
        left = (F(x) - F(x - e)) / h
        want = right if right < 0 else left if left > 0 else 0.0
        assert pg[i] == pytest.approx(want, abs=1e-6)
