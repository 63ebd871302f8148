"""Emission families of a hidden Markov model, kept apart from the transition dynamics.

An emission object knows how to score observations under each state, how to collect the
expected sufficient statistics of an E-step and how to re-estimate itself from them (M-step),
and how to draw observations for given states. The chain (start and transition probabilities,
forward-backward, Viterbi) lives in :mod:`seqlab.models.classical.hmm_core`; the split follows
hmmlearn's design, so a new emission family is one small class.

Shapes: B batch, T time (padded), N states, V symbols, D features.
Observations: categorical ``(B, T)`` long; Gaussian ``(B, T, D)`` float. ``mask`` ``(B, T)``
bool, True = real position. Posteriors ``(B, T, N)`` are 0 on padding.

The M-step formulas follow hmmlearn (0.3) so that the two agree to rounding from the same start:
categorical rows are normalised expected counts (plus an optional additive ``smoothing``);
Gaussian diagonal covariances use the prior ``covar_prior`` (hmmlearn's ``covars_prior``,
default 1e-2, with ``covars_weight=1`` and no mean prior):
``var = (covar_prior + sum_t g_t (x_t - mu)^2) / max(sum_t g_t, 1e-5)``, then floored at
``min_covar`` (hmmlearn only uses ``min_covar`` at initialisation; the floor is an addition that
keeps a collapsing state finite, and is inactive in the parity tests).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError, DataError

__all__ = ["Emission", "CategoricalEmission", "GaussianEmission", "kmeans_init"]


class Emission(ABC):
    """One emission family. Learned tensors end in ``_`` and are set by :meth:`init_params`."""

    kind: str = ""

    @abstractmethod
    def check(self, x: Tensor, where: str) -> Tensor:
        """Validate one observation sequence and return it with the family's dtype."""

    @abstractmethod
    def init_params(self, n_states: int, obs: Tensor, generator: torch.Generator, dtype: torch.dtype) -> None:
        """Random initial parameters from the flat real observations ``obs`` ((M,) or (M, D))."""

    @abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """(B, T[, D]) observations -> (B, T, N) log p(x_t | state)."""

    @abstractmethod
    def new_stats(self) -> dict[str, Tensor]:
        """Zeroed expected sufficient statistics."""

    @abstractmethod
    def accumulate(self, stats: dict[str, Tensor], x: Tensor, node: Tensor, mask: Tensor) -> None:
        """Add the statistics of a batch: ``node`` (B, T, N) posteriors, 0 on padding."""

    @abstractmethod
    def m_step(self, stats: dict[str, Tensor]) -> None:
        """Re-estimate the parameters from accumulated statistics."""

    @abstractmethod
    def sample(self, states: Tensor, generator: torch.Generator) -> Tensor:
        """(B, T) long states -> (B, T[, D]) observations."""

    @abstractmethod
    def tensors(self) -> dict[str, Tensor]:
        """The learned tensors, by name (for saving)."""

    @abstractmethod
    def set_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore the learned tensors saved by :meth:`tensors`."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-ready constructor arguments."""

    @property
    def n_parameters(self) -> int:
        """Free parameters (for information criteria)."""
        return sum(t.numel() for t in self.tensors().values())


class CategoricalEmission(Emission):
    """Discrete symbols ``0 .. V-1``: ``probs_`` (N, V), rows sum to 1.

    ``smoothing`` adds a pseudo-count to every (state, symbol) cell in the M-step (0 = maximum
    likelihood, hmmlearn's default ``emissionprob_prior=1``).
    """

    kind = "categorical"

    def __init__(self, n_symbols: int | None = None, smoothing: float = 0.0) -> None:
        if n_symbols is not None and n_symbols < 1:
            raise ConfigError(f"n_symbols must be >= 1, found {n_symbols}")
        if smoothing < 0:
            raise ConfigError(f"smoothing must be >= 0, found {smoothing}")
        self.n_symbols = n_symbols
        self.smoothing = smoothing
        self.probs_: Tensor | None = None

    def _probs(self) -> Tensor:
        if self.probs_ is None:
            raise ConfigError("the emission has no parameters yet: fit the model or set probs_")
        return self.probs_

    def check(self, x: Tensor, where: str) -> Tensor:
        x = torch.as_tensor(x)
        if x.dim() != 1 or (x.numel() and (x.is_floating_point() or x.is_complex())):
            raise DataError(None, None, f"{where}: a 1-D sequence of integer symbols", f"shape {tuple(x.shape)}, dtype {x.dtype}")
        x = x.long()
        if x.numel() and int(x.min()) < 0:
            raise DataError(None, None, f"{where}: symbols >= 0", f"symbol {int(x.min())}")
        if x.numel() and self.n_symbols is not None and int(x.max()) >= self.n_symbols:
            raise DataError(None, None, f"{where}: symbols < n_symbols={self.n_symbols}", f"symbol {int(x.max())}")
        return x

    def init_params(self, n_states: int, obs: Tensor, generator: torch.Generator, dtype: torch.dtype) -> None:
        if self.n_symbols is None:
            self.n_symbols = int(obs.max()) + 1 if obs.numel() else 1
        p = torch.rand(n_states, self.n_symbols, generator=generator, dtype=torch.float64)  # (N, V)
        self.probs_ = (p / p.sum(-1, keepdim=True)).to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        return self._probs().log().T[x]  # (B, T, N)

    def new_stats(self) -> dict[str, Tensor]:
        p = self._probs()
        return {"obs": torch.zeros_like(p)}  # (N, V)

    def accumulate(self, stats: dict[str, Tensor], x: Tensor, node: Tensor, mask: Tensor) -> None:
        n = node.shape[-1]
        # (N, V) += sum over real positions of posterior rows, by symbol
        stats["obs"].T.index_add_(0, x.reshape(-1), node.reshape(-1, n).to(stats["obs"].dtype))

    def m_step(self, stats: dict[str, Tensor]) -> None:
        counts = stats["obs"] + self.smoothing  # (N, V)
        total = counts.sum(-1, keepdim=True)  # (N, 1)
        # A state that was never visited keeps its previous row (hmmlearn would zero it).
        self.probs_ = torch.where(total > 0, counts / total.clamp(min=1e-300), self._probs())

    def sample(self, states: Tensor, generator: torch.Generator) -> Tensor:
        rows = self._probs()[states.reshape(-1)].double()  # (B*T, V)
        draws = torch.multinomial(rows, 1, generator=generator)  # (B*T, 1)
        return draws.reshape(states.shape)

    def tensors(self) -> dict[str, Tensor]:
        return {"probs": self._probs()}

    def set_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.probs_ = tensors["probs"]
        self.n_symbols = int(self.probs_.shape[1])

    def settings(self) -> dict[str, Any]:
        return {"n_symbols": self.n_symbols, "smoothing": self.smoothing}

    @property
    def n_parameters(self) -> int:
        p = self._probs()
        return int(p.shape[0] * (p.shape[1] - 1))


def kmeans_init(obs: Tensor, k: int, generator: torch.Generator, n_iter: int = 10) -> Tensor:
    """k-means++ seeding plus a few Lloyd steps: (M, D) points -> (k, D) centres.

    Written here (a dozen lines) because scikit-learn is not a runtime dependency of seqlab;
    it only gives Gaussian HMM a data-driven start, as hmmlearn does with KMeans.
    """
    m = obs.shape[0]
    first = int(torch.randint(m, (1,), generator=generator))
    centres = [obs[first]]
    d2 = ((obs - centres[0]) ** 2).sum(-1)  # (M,)
    for _ in range(1, k):
        w = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        nxt = int(torch.multinomial(w.double(), 1, generator=generator))
        centres.append(obs[nxt])
        d2 = torch.minimum(d2, ((obs - obs[nxt]) ** 2).sum(-1))
    c = torch.stack(centres)  # (k, D)
    for _ in range(n_iter):
        assign = torch.cdist(obs, c).argmin(-1)  # (M,)
        sums = torch.zeros_like(c).index_add_(0, assign, obs)  # (k, D)
        counts = torch.bincount(assign, minlength=k).to(obs.dtype)[:, None]  # (k, 1)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return c


#: The Gaussian emission works with squared values (k-means seeding, the log-density, the M-step's
#: second moments); above this magnitude they overflow float64 even before summing.
MAX_ABS_VALUE = 1e150


class GaussianEmission(Emission):
    """Real vectors with a diagonal-covariance Gaussian per state: ``means_``, ``covars_`` (N, D).

    ``covar_prior`` and ``min_covar`` as in hmmlearn's ``GaussianHMM(covariance_type="diag")``
    (see the module docstring for the exact update).
    """

    kind = "gaussian"

    def __init__(self, n_features: int | None = None, covar_prior: float = 1e-2, min_covar: float = 1e-3) -> None:
        if n_features is not None and n_features < 1:
            raise ConfigError(f"n_features must be >= 1, found {n_features}")
        if covar_prior < 0 or min_covar < 0:
            raise ConfigError(f"covar_prior and min_covar must be >= 0, found {covar_prior}, {min_covar}")
        self.n_features = n_features
        self.covar_prior = covar_prior
        self.min_covar = min_covar
        self.means_: Tensor | None = None
        self.covars_: Tensor | None = None

    def _params(self) -> tuple[Tensor, Tensor]:
        if self.means_ is None or self.covars_ is None:
            raise ConfigError("the emission has no parameters yet: fit the model or set means_ and covars_")
        return self.means_, self.covars_

    def check(self, x: Tensor, where: str) -> Tensor:
        x = torch.as_tensor(x)
        if x.dim() == 1:
            x = x[:, None]
        if x.dim() != 2 or (self.n_features is not None and x.shape[1] != self.n_features):
            want = f"(T, {self.n_features})" if self.n_features else "(T, D)"
            raise DataError(None, None, f"{where}: a float array of shape {want}", f"shape {tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.double()
        if x.numel() and not bool(torch.isfinite(x).all()):
            raise DataError(None, None, f"{where}: finite values", "NaN or inf")
        if x.numel() and float(x.abs().max()) > MAX_ABS_VALUE:
            raise DataError(None, None, f"{where}: values of magnitude at most {MAX_ABS_VALUE:.0e} (their squares "
                            "and sums of squares must stay finite in float64); rescale the data",
                            f"{float(x.abs().max()):.3e}")
        return x

    def init_params(self, n_states: int, obs: Tensor, generator: torch.Generator, dtype: torch.dtype) -> None:
        obs = obs.double()
        self.n_features = int(obs.shape[1])
        if obs.shape[0] < n_states:
            raise DataError(None, None, f"at least n_states={n_states} observations to initialise", f"{obs.shape[0]}")
        var = obs.var(0, correction=0) + self.min_covar if obs.shape[0] > 1 else torch.ones(self.n_features, dtype=torch.float64)
        self.means_ = kmeans_init(obs, n_states, generator).to(dtype)  # (N, D)
        self.covars_ = var.expand(n_states, -1).clone().to(dtype)  # (N, D)

    def log_prob(self, x: Tensor) -> Tensor:
        mu, var = self._params()
        x = x.to(mu.dtype)
        d = mu.shape[1]
        prec = 1.0 / var  # (N, D)
        const = -0.5 * (d * math.log(2 * math.pi) + var.log().sum(-1) + (mu * mu * prec).sum(-1))  # (N,)
        quad = (x * x) @ prec.T - 2.0 * (x @ (mu * prec).T)  # (B, T, N)
        return const - 0.5 * quad  # (B, T, N)

    def new_stats(self) -> dict[str, Tensor]:
        mu, _ = self._params()
        n, d = mu.shape
        z = torch.zeros
        return {"post": z(n, dtype=mu.dtype), "obs": z(n, d, dtype=mu.dtype), "obs2": z(n, d, dtype=mu.dtype)}

    def accumulate(self, stats: dict[str, Tensor], x: Tensor, node: Tensor, mask: Tensor) -> None:
        x = x.to(node.dtype)
        g = node.reshape(-1, node.shape[-1])  # (B*T, N)
        flat = x.reshape(-1, x.shape[-1])  # (B*T, D), padding rows have g = 0
        stats["post"] += g.sum(0).to(stats["post"].dtype)
        stats["obs"] += (g.T @ flat).to(stats["obs"].dtype)  # (N, D)
        stats["obs2"] += (g.T @ (flat * flat)).to(stats["obs2"].dtype)  # (N, D)

    def m_step(self, stats: dict[str, Tensor]) -> None:
        mu_old, var_old = self._params()
        post = stats["post"][:, None]  # (N, 1)
        seen = post > 0
        mu = torch.where(seen, stats["obs"] / post.clamp(min=1e-300), mu_old)  # (N, D)
        num = self.covar_prior + stats["obs2"] - 2 * mu * stats["obs"] + mu * mu * post
        var = torch.where(seen, num / post.clamp(min=1e-5), var_old)  # (N, D)
        self.means_, self.covars_ = mu, var.clamp(min=self.min_covar) if self.min_covar > 0 else var

    def sample(self, states: Tensor, generator: torch.Generator) -> Tensor:
        mu, var = self._params()
        noise = torch.randn(*states.shape, mu.shape[1], generator=generator, dtype=mu.dtype)  # (B, T, D)
        return mu[states] + noise * var[states].sqrt()  # (B, T, D)

    def tensors(self) -> dict[str, Tensor]:
        mu, var = self._params()
        return {"means": mu, "covars": var}

    def set_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.means_, self.covars_ = tensors["means"], tensors["covars"]
        self.n_features = int(self.means_.shape[1])

    def settings(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "covar_prior": self.covar_prior, "min_covar": self.min_covar}
