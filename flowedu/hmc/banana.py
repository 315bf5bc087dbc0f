"""Chapter: book/hmc.md — the banana-shaped posterior, its gradient, and its exact normalisation on a grid.

Model: y_i ~ N(theta_1 + theta_2^2, sigma_y^2), i = 1..n, prior theta ~ N(0, sigma_theta^2 I).
The data only inform m(theta) = theta_1 + theta_2^2, so the posterior concentrates along the
parabola theta_1 = ybar - theta_2^2: a banana. In two dimensions it can be normalised on a grid,
which gives the exact log evidence log Z = log p(y), exact marginals, exact draws and the exact KL
of any approximation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from flowedu.grids import log_midpoint_integral
from flowedu.validate import integer, real

__all__ = ["BANANA_SEED", "BANANA_THETA", "BananaGrid", "BananaPosterior", "banana_data"]

BANANA_SEED = 2019
"""The seed of the book's data set: ``banana_data(100, BANANA_SEED)``."""

BANANA_THETA = (0.5, math.sqrt(0.5))
"""The true parameter of the book's data set; theta_1 + theta_2^2 = 1."""


def banana_data(n: int = 100, seed: int = BANANA_SEED, theta=BANANA_THETA, sigma_y: float = 2.0) -> torch.Tensor:
    """Simulate y_i ~ N(theta_1 + theta_2^2, sigma_y^2), i = 1..n (the PKU MCMC problem set's data file is not public).

    The book uses ``banana_data(100, 2019)``: n = 100 draws at theta = (0.5, sqrt(0.5)), so that
    theta_1 + theta_2^2 = 1, with a CPU ``torch.Generator`` seeded with 2019 (reproducible across machines).

    Args:
        n: number of observations (>= 1).
        seed: integer in [0, 2**63).
        theta: the true (theta_1, theta_2).
        sigma_y: observation noise (> 0).

    Returns:
        ``y: [n]``, float64 on the CPU.
    """
    n = integer(n, "n", 1)
    seed = integer(seed, "seed", 0, 2**63 - 1)
    sigma_y = real(sigma_y, "sigma_y", above=0)
    theta1, theta2 = (float(t) for t in theta)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, generator=generator, dtype=torch.float64)
    return theta1 + theta2**2 + sigma_y * noise


class BananaGrid(NamedTuple):
    """The posterior normalised on a regular grid (midpoint rule).

    theta1: ``[n1]`` and theta2: ``[n2]`` cell centres; log_density: ``[n1, n2]`` normalised
    log p(theta | y) at the centres (row i is theta1[i]); density: its exponential; log_z: log p(y);
    cell_area: the area of one cell. ``density.sum() * cell_area == 1``.
    """

    theta1: torch.Tensor
    theta2: torch.Tensor
    log_density: torch.Tensor
    density: torch.Tensor
    log_z: float
    cell_area: float

    def points(self) -> torch.Tensor:
        """All cell centres ``[n1 * n2, 2]`` in the order of ``log_density.flatten()``."""
        t1, t2 = torch.meshgrid(self.theta1, self.theta2, indexing="ij")
        return torch.stack([t1.flatten(), t2.flatten()], dim=1)

    def marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Marginal densities of theta_1 ``[n1]`` and theta_2 ``[n2]``."""
        d1 = self.density.sum(1) * (self.theta2[1] - self.theta2[0])
        d2 = self.density.sum(0) * (self.theta1[1] - self.theta1[0])
        return d1, d2

    def cdfs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact marginal CDFs of theta_1 ``[n1]`` and theta_2 ``[n2]`` at the cells' upper edges."""
        d1, d2 = self.marginals()
        return torch.cumsum(d1, 0) * (self.theta1[1] - self.theta1[0]), torch.cumsum(d2, 0) * (
            self.theta2[1] - self.theta2[0])

    def ks_distance(self, samples: torch.Tensor, axis: int) -> float:
        """Kolmogorov-Smirnov distance sup_t |F_n(t) - F(t)| of one coordinate of ``samples [n, 2]``.

        F is the exact marginal CDF and F_n the empirical CDF of the samples, both evaluated at the
        grid's cell edges (the grid's resolution limits the distance it can see).
        """
        if axis not in (0, 1):
            raise ValueError(f"axis must be 0 or 1, got {axis!r}")
        if not isinstance(samples, torch.Tensor) or samples.dim() != 2 or samples.shape[1] != 2 or len(samples) < 1:
            raise ValueError("samples must be a tensor of shape [n, 2] with n >= 1")
        centres = self.theta1 if axis == 0 else self.theta2
        edges = (centres + (centres[1] - centres[0]) / 2).contiguous()
        values = samples[:, axis].detach().cpu().to(edges.dtype).sort().values.contiguous()
        empirical = torch.searchsorted(values, edges, right=True) / len(values)
        return (empirical - self.cdfs()[axis]).abs().max().item()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Independent draws from the grid's density ``[n, 2]`` (float64, CPU): a cell with probability
        density * cell_area, then a uniform point inside it. Exact up to the grid's resolution."""
        n = integer(n, "n", 1)
        weights = (self.density.flatten() * self.cell_area).clamp(min=0)
        cells = torch.multinomial(weights, n, replacement=True, generator=generator)
        h = torch.stack([self.theta1[1] - self.theta1[0], self.theta2[1] - self.theta2[0]])
        offset = torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5
        return self.points()[cells] + offset * h

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior mean ``[2]`` and covariance ``[2, 2]`` by quadrature."""
        x, w = self.points(), self.density.flatten() * self.cell_area
        mean = (w[:, None] * x).sum(0)
        centred = x - mean
        return mean, (w[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0)


class BananaPosterior:
    """Posterior p(theta | y) of y_i ~ N(theta_1 + theta_2^2, sigma_y^2), theta ~ N(0, sigma_theta^2 I).

    ``log_prob`` is the log joint log p(y | theta) + log p(theta) (all constants included), so the
    posterior is exp(log_prob) / Z with Z = p(y), the evidence; U(theta) = -log_prob(theta) is the
    potential of HMC. With m = theta_1 + theta_2^2 and lambda = n (ybar - m) / sigma_y^2:
    grad_1 = lambda - theta_1/sigma_theta^2, grad_2 = 2 theta_2 lambda - theta_2/sigma_theta^2.

    Args:
        y: observations ``[n]``.
        sigma_y: observation noise (> 0), 2 in the PKU MCMC problem set.
        sigma_theta: prior scale (> 0), 1 in the PKU MCMC problem set.
    """

    def __init__(self, y: torch.Tensor, sigma_y: float = 2.0, sigma_theta: float = 1.0):
        y = torch.as_tensor(y, dtype=torch.float64)
        if y.dim() != 1 or len(y) < 1:
            raise ValueError(f"y must have shape [n] with n >= 1, got {tuple(y.shape)}")
        if not torch.isfinite(y).all():
            raise ValueError("y must be finite")
        for name, value in (("sigma_y", sigma_y), ("sigma_theta", sigma_theta)):
            real(value, name, above=0)
        self.y, self.sigma_y, self.sigma_theta = y, float(sigma_y), float(sigma_theta)
        self.n, self.sum_y, self.sum_y2 = len(y), float(y.sum()), float((y**2).sum())
        self.dim = 2

    def _check(self, theta: torch.Tensor) -> None:
        if not isinstance(theta, torch.Tensor) or theta.dim() < 1 or theta.shape[-1] != 2:
            shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
            raise ValueError(f"theta must be a tensor of shape [..., 2], got {shape}")

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """log p(y | theta) + log p(theta) for ``theta: [..., 2]``; returns ``[...]`` (dtype of theta)."""
        self._check(theta)
        m = theta[..., 0] + theta[..., 1] ** 2
        # sum_i (y_i - m)^2 = sum_i y_i^2 - 2 m n ybar + n m^2, so the cost does not grow with n.
        squares = self.sum_y2 - 2 * m * self.sum_y + self.n * m**2
        log_lik = -0.5 * squares / self.sigma_y**2 - self.n * (math.log(self.sigma_y) + 0.5 * math.log(2 * math.pi))
        log_prior = -0.5 * (theta**2).sum(-1) / self.sigma_theta**2 - 2 * math.log(self.sigma_theta) - math.log(
            2 * math.pi)
        return log_lik + log_prior

    def grad_log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """The gradient of ``log_prob``, derived by hand: ``[..., 2]``."""
        self._check(theta)
        m = theta[..., 0] + theta[..., 1] ** 2
        # lambda = n (ybar - m) / sigma_y^2
        lam = (self.sum_y - self.n * m) / self.sigma_y**2
        prior = theta / self.sigma_theta**2
        return torch.stack([lam - prior[..., 0], 2 * theta[..., 1] * lam - prior[..., 1]], dim=-1)

    def potential(self, theta: torch.Tensor) -> torch.Tensor:
        """U(theta) = -log p(y | theta) - log p(theta), ``[...]``."""
        return -self.log_prob(theta)

    def grid(self, n_points: int = 600, bounds=((-6.0, 2.5), (-3.0, 3.0))) -> BananaGrid:
        """Normalise the posterior on a regular ``n_points x n_points`` grid (midpoint rule, float64).

        The default box holds all but a negligible part of the mass for the book's data (the
        notebook checks the density on the border).

        Args:
            n_points: cells per axis (>= 10).
            bounds: ``((lo_1, hi_1), (lo_2, hi_2))`` with lo < hi.

        Returns:
            :class:`BananaGrid`, with ``log_z = log p(y)``.
        """
        n_points = integer(n_points, "n_points", 10)
        try:
            (lo1, hi1), (lo2, hi2) = ((float(a), float(b)) for a, b in bounds)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bounds must be ((lo_1, hi_1), (lo_2, hi_2)), got {bounds!r}") from err
        if not (lo1 < hi1 and lo2 < hi2) or not all(map(math.isfinite, (lo1, hi1, lo2, hi2))):
            raise ValueError(f"bounds must be finite numbers with lo < hi on each axis, got {bounds!r}")
        h1, h2 = (hi1 - lo1) / n_points, (hi2 - lo2) / n_points
        theta1 = lo1 + h1 * (0.5 + torch.arange(n_points, dtype=torch.float64))
        theta2 = lo2 + h2 * (0.5 + torch.arange(n_points, dtype=torch.float64))
        # "ij": the arrays are [n1, n2] with row i at theta1[i] (BananaGrid's layout, which the notebooks index)
        t1, t2 = torch.meshgrid(theta1, theta2, indexing="ij")
        log_joint = self.log_prob(torch.stack([t1, t2], dim=-1))
        log_z = log_midpoint_integral(log_joint, h1 * h2)
        log_density = log_joint - log_z
        return BananaGrid(theta1, theta2, log_density, log_density.exp(), log_z, h1 * h2)
