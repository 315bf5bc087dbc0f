"""Chapter: book/gk.md — the g-and-k distribution and its multivariate version with a Gaussian copula."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints

from flowedu.distributions.elementary import log_standard_normal
from flowedu.gk.core import (
    C_DEFAULT,
    check_gk_params,
    gk_is_valid,
    gk_quantile,
    gk_quantile_derivative,
    gk_solve_z,
    gk_transform,
)

__all__ = ["GandK", "MultivariateGandK"]


def _sample_shape(n) -> torch.Size:
    shape = torch.Size([n]) if isinstance(n, int) and not isinstance(n, bool) else torch.Size(n)
    if any(s < 0 for s in shape):
        raise ValueError(f"n (the sample shape) must be non-negative, got {tuple(shape)}")
    return shape


class GandK(Distribution):
    """The g-and-k distribution (Rayner & MacGillivray 2002), defined by its quantile function.

    X = Q(Z) with Z ~ N(0, 1) and Q(z) = A + B [1 + c tanh(g z/2)] (1 + z²)^k z, c = 0.8.
    There is no closed-form density; ``log_prob`` solves Q(z) = x numerically and returns
    log f(x) = log φ(z) − log Q′(z), differentiable in x and in the parameters (see
    :func:`flowedu.gk.gk_solve_z`).

    Args:
        a, b, g, k: A, B > 0, g, k > −½ (numbers or tensors that broadcast; tensors may require grad).
        c: the skewness constant (0.8).
        validate: check numerically that Q is monotone (needed only for k < 0).

    Raises:
        ValueError: if B ≤ 0, k ≤ −½, or (with ``validate``) Q is not monotone.
    """

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = True

    def __init__(self, a, b, g, k, c: float = C_DEFAULT, validate: bool = True):
        check_gk_params(b, k, c)
        params = [p if isinstance(p, torch.Tensor) else torch.as_tensor(p, dtype=torch.float64) for p in (a, b, g, k)]
        self.a, self.b, self.g, self.k = torch.broadcast_tensors(*params)
        self.c = c
        if validate:
            flat = [p.detach().flatten().tolist() for p in (self.a, self.b, self.g, self.k)]
            for a_i, b_i, g_i, k_i in zip(*flat, strict=True):
                if not gk_is_valid(a_i, b_i, g_i, k_i, c):
                    raise ValueError(f"g={g_i:.4g}, k={k_i:.4g}: Q is not monotone (a negative density); "
                                     "use k >= 0 or another g")
        super().__init__(batch_shape=self.a.shape, validate_args=False)

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples by inversion, X = Q(Z), Z ~ N(0, 1): ``[*sample_shape, *batch_shape]``, reparameterised."""
        shape = _sample_shape(sample_shape) + self.batch_shape
        z = torch.randn(shape, generator=generator, dtype=self.a.dtype).to(self.a.device)
        return gk_transform(z, self.a, self.b, self.g, self.k, self.c, validate=False)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """``[*sample_shape, *batch_shape]`` samples, without gradients."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def icdf(self, value) -> torch.Tensor:
        """Q(u) for u in (0, 1)."""
        value = torch.as_tensor(value, dtype=self.a.dtype, device=self.a.device)
        if torch.isnan(value).any() or (value <= 0).any() or (value >= 1).any():
            raise ValueError("value (a probability) must lie strictly inside (0, 1)")
        return gk_quantile(value, self.a, self.b, self.g, self.k, self.c, validate=False)

    def normal_score(self, value) -> torch.Tensor:
        """z = Q⁻¹(x) = Φ⁻¹(F(x)), differentiable (implicit function theorem)."""
        value = torch.as_tensor(value, dtype=self.a.dtype, device=self.a.device)
        return gk_solve_z(value, self.a, self.b, self.g, self.k, self.c)

    def cdf(self, value) -> torch.Tensor:
        """F(x) = Φ(Q⁻¹(x))."""
        return torch.special.ndtr(self.normal_score(value))

    def log_prob(self, value) -> torch.Tensor:
        """log f(x) = log φ(z) − log Q′(z) with Q(z) = x; shape: broadcast of x and batch_shape."""
        z = self.normal_score(value)
        log_slope = torch.log(gk_quantile_derivative(z, self.a, self.b, self.g, self.k, self.c, validate=False))
        return log_standard_normal(z.unsqueeze(-1)) - log_slope

    @property
    def median(self) -> torch.Tensor:
        """Q(½) = A."""
        return self.a

    def __repr__(self) -> str:
        fmt = lambda t: f"{t.item():.4g}" if t.numel() == 1 else f"tensor{tuple(t.shape)}"  # noqa: E731
        return f"GandK(a={fmt(self.a)}, b={fmt(self.b)}, g={fmt(self.g)}, k={fmt(self.k)})"


class MultivariateGandK(Distribution):
    """Multivariate g-and-k with a Gaussian copula (Drovandi & Pettitt 2011).

    Z ~ N(0, R) with R a correlation matrix, and X_j = Q_j(Z_j) with its own (A_j, B_j, g_j, k_j).
    Each margin is a g-and-k distribution and the dependence is that of the Gaussian scores, so
    log p(x) = log N(z; 0, R) − Σ_j log Q_j′(z_j) with z_j = Q_j⁻¹(x_j).

    Args:
        a, b, g, k: ``[d]`` each (numbers broadcast).
        corr: ``[d, d]`` correlation matrix (symmetric, unit diagonal, positive definite).
        c: the skewness constant (0.8).
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, a, b, g, k, corr, c: float = C_DEFAULT):
        corr = torch.as_tensor(corr, dtype=torch.float64) if not isinstance(corr, torch.Tensor) else corr
        if corr.dim() != 2 or corr.shape[0] != corr.shape[1]:
            raise ValueError(f"corr must be a square matrix [d, d], got shape {tuple(corr.shape)}")
        d = corr.shape[0]
        eye = torch.eye(d, dtype=corr.dtype, device=corr.device)
        if not torch.allclose(corr, corr.T) or not torch.allclose(torch.diagonal(corr), eye.diagonal()):
            raise ValueError("corr must be symmetric with ones on the diagonal")
        scale_tril, info = torch.linalg.cholesky_ex(corr)
        if info.item() != 0:
            raise ValueError("corr must be positive definite")
        params = []
        for name, p in zip("abgk", (a, b, g, k), strict=True):
            p = p if isinstance(p, torch.Tensor) else torch.as_tensor(p, dtype=corr.dtype, device=corr.device)
            p = p.expand(d) if p.dim() == 0 else p
            if p.shape != (d,):
                raise ValueError(f"{name} must be a number or have shape [{d}], got {tuple(p.shape)}")
            params.append(p)
        self.margins = GandK(*params, c=c)
        self.corr, self.scale_tril = corr, scale_tril
        super().__init__(event_shape=torch.Size([d]), validate_args=False)

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """``[*sample_shape, d]`` samples: x_j = Q_j(z_j) with z = L ε, ε ~ N(0, I), R = L Lᵀ."""
        shape = _sample_shape(sample_shape) + self.event_shape
        eps = torch.randn(shape, generator=generator, dtype=self.corr.dtype).to(self.corr.device)
        z = eps @ self.scale_tril.T
        m = self.margins
        return gk_transform(z, m.a, m.b, m.g, m.k, m.c, validate=False)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, value) -> torch.Tensor:
        """log p(x) for x ``[..., d]``; returns ``[...]``."""
        value = torch.as_tensor(value, dtype=self.corr.dtype, device=self.corr.device)
        if value.shape[-1:] != self.event_shape:
            raise ValueError(f"value must have shape [..., {self.event_shape[0]}], got {tuple(value.shape)}")
        m = self.margins
        z = m.normal_score(value)
        gauss = torch.distributions.MultivariateNormal(torch.zeros_like(self.corr[0]), scale_tril=self.scale_tril)
        return gauss.log_prob(z) - torch.log(gk_quantile_derivative(z, m.a, m.b, m.g, m.k, m.c, validate=False)).sum(-1)
