"""A linear-Gaussian latent-variable model, where everything a VAE only estimates is exact.

    z ~ N(0, I_d),    x | z ~ N(W z + b, σ² I_D)

(probabilistic PCA, Tipping & Bishop 1999). Marginal and posterior are Gaussian:

    p(x) = N(x; b, W Wᵀ + σ² I_D),
    p(z | x) = N(z; Σ Wᵀ (x - b) / σ², Σ),   Σ = (I_d + Wᵀ W / σ²)⁻¹.

The book uses it to test the ELBO, the IWAE bound L_K and importance-sampled log-likelihoods against the
exact log p(x) (``book/vae.md``); the flow-VAE chapter uses the exact posterior as a target.
"""

from __future__ import annotations

import math

import torch

from flowedu import validate
from flowedu.distributions.elementary import LOG_2PI, log_normal_diag, log_standard_normal
from flowedu.validate import integer, real

__all__ = ["HalfPosteriorProposal", "LinearGaussian", "LinearGaussianDecoder", "LinearGaussianProposal"]



class LinearGaussian:
    """z ~ N(0, I_d), x | z ~ N(W z + b, σ² I_D), with exact ``log_prob`` (= log p(x)) and posterior.

    Has ``torch.distributions`` semantics for x: ``sample(n)`` and ``log_prob(x)``.

    Args:
        weight: W, [data_dim, latent_dim], finite.
        bias: b, [data_dim]; ``None`` means zeros.
        sigma: the noise standard deviation σ > 0.

    Example:
        ``model = LinearGaussian.random(data_dim=5, latent_dim=2, sigma=0.5, seed=0, dtype=torch.float64)``
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, sigma: float = 1.0):
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or 0 in weight.shape:
            raise ValueError(f"weight must be a tensor [data_dim, latent_dim] with both >= 1, got {_shape(weight)}")
        if not torch.is_floating_point(weight) or not torch.isfinite(weight).all():
            raise ValueError("weight must be a finite floating-point tensor")
        data_dim = weight.shape[0]
        if bias is None:
            bias = torch.zeros(data_dim, device=weight.device, dtype=weight.dtype)
        if not isinstance(bias, torch.Tensor) or bias.shape != (data_dim,):
            raise ValueError(f"bias must be a tensor [data_dim] = [{data_dim}], got {_shape(bias)}")
        if not torch.isfinite(bias).all():
            raise ValueError("bias must be finite")
        sigma = float(sigma)
        if not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
        self.weight, self.bias, self.sigma = weight, bias.to(weight), sigma

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, sigma: float = 0.5, seed: int = 0,
               dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> LinearGaussian:
        """A model with W, b drawn from N(0, 1) (seeded), for tests and demonstrations."""
        for value, name in ((data_dim, "data_dim"), (latent_dim, "latent_dim")):
            integer(value, name, 1)
        g = torch.Generator().manual_seed(seed)
        weight = torch.randn(data_dim, latent_dim, generator=g, dtype=dtype).to(device)
        bias = torch.randn(data_dim, generator=g, dtype=dtype).to(device)
        return cls(weight, bias, sigma)

    @property
    def data_dim(self) -> int:
        return self.weight.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.data_dim:
            raise ValueError(f"x must be a tensor [..., data_dim] with data_dim = {self.data_dim}, got {_shape(x)}")

    def _check_z(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must be a tensor [..., latent_dim] with latent_dim = {self.latent_dim}, "
                             f"got {_shape(z)}")

    def marginal_covariance(self) -> torch.Tensor:
        """W Wᵀ + σ² I, [data_dim, data_dim]."""
        eye = torch.eye(self.data_dim, device=self.weight.device, dtype=self.weight.dtype)
        return self.weight @ self.weight.T + self.sigma**2 * eye

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; b, W Wᵀ + σ² I).  x: [..., data_dim] -> [...] in nats."""
        self._check_x(x)
        chol = torch.linalg.cholesky(self.marginal_covariance())
        r = (x - self.bias).to(chol.dtype)
        y = torch.linalg.solve_triangular(chol, r.reshape(-1, self.data_dim).T, upper=False).T
        log_det = 2 * torch.log(torch.diagonal(chol)).sum()
        out = -0.5 * (self.data_dim * LOG_2PI + log_det + (y**2).sum(-1))
        return out.reshape(x.shape[:-1]).to(x.dtype)

    log_marginal = log_prob

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) = log N(x; W z + b, σ² I).  x: [..., data_dim], z: [..., latent_dim] -> [...]."""
        self._check_x(x)
        self._check_z(z)
        log_var = torch.full((1,), 2 * math.log(self.sigma), device=x.device, dtype=x.dtype)
        return log_normal_diag(x, z @ self.weight.T + self.bias, log_var)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(x | z) + log N(z; 0, I).  Shapes as in :meth:`log_likelihood`."""
        return self.log_likelihood(x, z) + log_standard_normal(z)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior p(z | x) = N(mean, cov).

        Args:
            x: [..., data_dim].

        Returns:
            ``mean`` [..., latent_dim] = Σ Wᵀ (x - b) / σ², and ``cov`` [latent_dim, latent_dim] = Σ
            (the same for every x).
        """
        self._check_x(x)
        eye = torch.eye(self.latent_dim, device=self.weight.device, dtype=self.weight.dtype)
        cov = torch.linalg.inv(eye + self.weight.T @ self.weight / self.sigma**2)
        cov = 0.5 * (cov + cov.T)
        mean = (x - self.bias) @ self.weight @ cov / self.sigma**2
        return mean, cov

    def posterior_log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(z | x).  z: [..., latent_dim], x: [..., data_dim] (broadcasting) -> [...]."""
        self._check_z(z)
        mean, cov = self.posterior(x)
        dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
        return dist.log_prob(z)

    def sample_joint(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (z, x): z [n, latent_dim] ~ N(0, I), x [n, data_dim] ~ p(x | z)."""
        n = integer(n, "n", 1)
        kwargs = {"generator": generator, "dtype": self.weight.dtype}
        z = torch.randn(n, self.latent_dim, **kwargs).to(self.weight.device)
        noise = torch.randn(n, self.data_dim, **kwargs).to(self.weight.device)
        return z, z @ self.weight.T + self.bias + self.sigma * noise

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw x ``[*sample_shape, data_dim]`` from the marginal p(x) (``sample(n)``: ``[n, data_dim]``)."""
        shape = validate.sample_shape(sample_shape)
        return self.sample_joint(max(math.prod(shape), 1), generator)[1][:math.prod(shape)].reshape(
            *shape, self.data_dim)

    @property
    def dim(self) -> int:
        """The size of x, what :meth:`sample` and :meth:`log_prob` work on (= ``data_dim``)."""
        return self.data_dim

    def decoder(self) -> LinearGaussianDecoder:
        """p(x | z) as a module with the decoder interface of ``flowedu.vae`` (``log_prob(x, z)``)."""
        return LinearGaussianDecoder(self)


class LinearGaussianDecoder(torch.nn.Module):
    """The likelihood p(x | z) = N(W z + b, σ² I) of a :class:`LinearGaussian`, as a fixed decoder.

    ``log_prob(x [..., data_dim], z [..., latent_dim]) -> [...]``, the interface that ``flowedu.vae.VAE``
    and ``flowedu.gk.FlowVAE`` call, so exact models can stand in for learned decoders.
    """

    def __init__(self, model: LinearGaussian):
        super().__init__()
        if not isinstance(model, LinearGaussian):
            raise ValueError(f"model must be a LinearGaussian, got {type(model).__name__}")
        self.model, self.latent_dim = model, model.latent_dim

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.log_likelihood(x, z)


class LinearGaussianProposal:
    """A Gaussian proposal q(z | x) = N(μ(x) + shift, scale² Σ) around the exact posterior N(μ(x), Σ).

    With ``shift = 0`` and ``scale = 1`` it is the posterior itself, so every importance weight equals
    p(x) and every bound is exact; otherwise KL(q || p(z | x)) is known in closed form, which makes the
    ELBO-gap identity and the multi-sample bounds checkable to Monte Carlo precision.
    ``log_weights`` is the interface of ``flowedu.vae.iwae_bound`` and ``log_likelihood``.

    The weights are bounded exactly when scale > 1, or scale = 1 and shift = 0 (:meth:`max_log_weight`):
    in whitened coordinates y = Σ^{-1/2}(z - μ), e = Σ^{-1/2} δ (δ the shift vector),

        log w - log p(x) = -½‖y‖² + ½‖y - e‖²/s² + d log s,

    a concave quadratic for s > 1, linear in y (unbounded unless e = 0) for s = 1, convex for s < 1.

    Args:
        model: the :class:`LinearGaussian`.
        shift: added to every coordinate of the posterior mean (finite).
        scale: multiplies the posterior standard deviations (> 0).
    """

    def __init__(self, model: LinearGaussian, shift: float = 0.0, scale: float = 1.0):
        if not isinstance(model, LinearGaussian):
            raise ValueError(f"model must be a LinearGaussian, got {type(model).__name__}")
        if not math.isfinite(shift):
            raise ValueError(f"shift must be finite, got {shift}")
        scale = real(scale, "scale", above=0)
        self.model, self.shift, self.scale = model, float(shift), float(scale)

    def _mean_and_cholesky(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ(x) + shift: [batch, latent_dim], and the Cholesky factor of scale² Σ: [latent_dim, latent_dim]."""
        mean, cov = self.model.posterior(x)
        return mean + self.shift, torch.linalg.cholesky(self.scale**2 * cov)

    def distribution(self, x: torch.Tensor) -> torch.distributions.MultivariateNormal:
        """q(z | x) for x [batch, data_dim], as a torch distribution with batch shape [batch]."""
        mean, chol = self._mean_and_cholesky(x)
        return torch.distributions.MultivariateNormal(mean, scale_tril=chol)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = log p(x, z) - log q(z | x) for k draws z ~ q(z | x).  x: [batch, data_dim] -> [k, batch]."""
        k = integer(k, "k", 1)
        mean, chol = self._mean_and_cholesky(x)
        eps = torch.randn(k, *mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        z = mean + eps @ chol.T  # [k, batch, latent_dim]
        log_q = torch.distributions.MultivariateNormal(mean, scale_tril=chol).log_prob(z)
        return self.model.log_joint(x, z) - log_q

    def log_weight(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log w(z) = log p(x, z) - log q(z | x) at given points.  x: [batch, data_dim], z: [..., batch, latent_dim]."""
        return self.model.log_joint(x, z) - self.distribution(x).log_prob(z)

    def max_log_weight(self, x: torch.Tensor) -> torch.Tensor:
        """sup_z log w(z), in closed form: ``[batch]``, ``+inf`` where the weights are unbounded.

        With s = scale, d = latent_dim and ‖e‖² = δᵀ Σ^{-1} δ: log p(x) + d log s + ‖e‖² / (2 (s² - 1)) for
        s > 1 (attained at y = -e / (s² - 1)); log p(x) for s = 1 and δ = 0 (every weight equals p(x));
        +inf for s = 1 with δ ≠ 0 (log w linear in z) and for s < 1.
        """
        log_px = self.model.log_prob(x)
        if self.scale == 1.0 and self.shift == 0.0:
            return log_px
        if self.scale <= 1.0:
            return torch.full_like(log_px, math.inf)
        _, cov = self.model.posterior(x)
        delta = torch.full((self.model.latent_dim,), self.shift, device=cov.device, dtype=cov.dtype)
        e_sq = delta @ torch.linalg.solve(cov, delta)
        s_sq = self.scale**2
        return log_px + self.model.latent_dim * math.log(self.scale) + e_sq / (2 * (s_sq - 1))


class HalfPosteriorProposal:
    """The exact posterior cut in half: q(z | x) = 2 p(z | x) on {z : z_1 > μ_1(x)}, 0 elsewhere.

    Every weight equals w = p(x, z) / q(z | x) = p(x) / 2, so L_K = log p(x) - log 2 for every K: the
    multi-sample bounds converge, but to log ∫_{q > 0} p(x, z) dz, not to log p(x). It breaks the
    hypothesis "q > 0 wherever p(x, z) > 0" of the limit theorem (``book/proofs.md``, thm-iwae-limit)
    and nothing else. Draws: z = μ + L ε reflected through μ when z_1 < μ_1 (Σ = L Lᵀ); the reflection
    maps the Gaussian to itself, so the result has density 2 p(z | x) on the half-space.

    Args:
        model: the :class:`LinearGaussian`.
    """

    def __init__(self, model: LinearGaussian):
        if not isinstance(model, LinearGaussian):
            raise ValueError(f"model must be a LinearGaussian, got {type(model).__name__}")
        self.model = model

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = log p(x, z) - log q(z | x) for k draws z ~ q(z | x).  x: [batch, data_dim] -> [k, batch]."""
        k = integer(k, "k", 1)
        mean, cov = self.model.posterior(x)
        chol = torch.linalg.cholesky(cov)
        eps = torch.randn(k, *mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        offset = eps @ chol.T  # [k, batch, latent_dim]
        offset = torch.where(offset[..., :1] < 0, -offset, offset)  # reflect into the half-space z_1 > μ_1
        z = mean + offset
        log_q = math.log(2.0) + torch.distributions.MultivariateNormal(mean, scale_tril=chol).log_prob(z)
        return self.model.log_joint(x, z) - log_q


def _shape(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__
