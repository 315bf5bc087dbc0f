"""Chapter: book/gk.md — the elementwise g-and-k transform as a monotone flow layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.flows.base import FlowLayer, check_input
from flowedu.gk.core import C_DEFAULT, gk_quantile_derivative, gk_solve_z, gk_transform
from flowedu.validate import integer

__all__ = ["GandKTransform"]


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


class GandKTransform(FlowLayer):
    """Elementwise g-and-k transform x_j = Q(z_j; A_j, B_j, g_j, k_j), a monotone flow layer.

    ``forward`` maps standard-normal scores to g-and-k values, with
    log|det J| = Σ_j log Q′(z_j) (the Jacobian is diagonal); ``inverse`` solves Q(z_j) = x_j by
    safeguarded Newton and returns −Σ_j log Q′(z_j). N(0, I) pushed through ``forward`` is the
    multivariate g-and-k with independent margins (Rayner & MacGillivray 2002), a learnable prior or
    flow base. Parameterisation: B = exp(log_b), k = k_min + softplus(k_raw) with k_min ≥ 0, so Q is
    monotone for every g (c = 0.8 ≤ 0.83) and training can never leave the valid region.

    Args:
        dim: number of coordinates d.
        a, b, g, k: initial parameters, numbers or ``[d]`` (b > 0, k > k_min).
        k_min: lower bound of k, ≥ 0.
        c: the skewness constant, in [0, 0.83].

    Shapes: ``forward(z)`` and ``inverse(x)`` take ``[batch, d]`` and return ``([batch, d], [batch])``.
    """

    def __init__(self, dim: int, a=0.0, b=1.0, g=0.0, k=0.1, k_min: float = 0.0, c: float = C_DEFAULT):
        super().__init__()
        dim = integer(dim, "dim", 1)
        if not 0 <= k_min < float("inf"):
            raise ValueError(f"k_min must be >= 0 (Q is then monotone for every g), got {k_min}")
        if not 0 <= c <= 0.83:
            raise ValueError(f"c must be in [0, 0.83] (monotone for k >= 0), got {c}")
        self.dim, self.k_min, self.c = dim, float(k_min), float(c)
        self.a = nn.Parameter(torch.zeros(dim, dtype=torch.float32))
        self.log_b = nn.Parameter(torch.zeros(dim, dtype=torch.float32))
        self.g = nn.Parameter(torch.zeros(dim, dtype=torch.float32))
        self.k_raw = nn.Parameter(torch.zeros(dim, dtype=torch.float32))
        self.set_params(a, b, g, k)

    @torch.no_grad()
    def set_params(self, a, b, g, k) -> None:
        """Set (A, B, g, k) (numbers or ``[d]``), e.g. from :func:`flowedu.gk.fit_quantiles_lm`."""
        values = [torch.as_tensor(v, dtype=self.a.dtype, device=self.a.device).expand(self.dim) for v in (a, b, g, k)]
        a, b, g, k = values
        if not all(torch.isfinite(v).all() for v in values):
            raise ValueError("a, b, g, k must be finite")
        if (b <= 0).any():
            raise ValueError(f"b must be > 0, got {b.min().item():.4g}")
        if (k <= self.k_min).any():
            raise ValueError(f"k must be > k_min = {self.k_min}, got {k.min().item():.4g}")
        self.a.copy_(a)
        self.log_b.copy_(b.log())
        self.g.copy_(g)
        self.k_raw.copy_(_inverse_softplus(k - self.k_min))

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(A, B, g, k), each ``[d]``, differentiable."""
        return self.a, self.log_b.exp(), self.g, self.k_min + F.softplus(self.k_raw)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = Q(z) elementwise; log_det = Σ_j log Q′(z_j), ``[batch]``."""
        check_input(z, self.dim, "z")
        a, b, g, k = (p.to(z.dtype) for p in self.params())
        x = gk_transform(z, a, b, g, k, self.c, validate=False)  # valid by construction: B > 0, k >= 0
        log_slope = torch.log(gk_quantile_derivative(z, a, b, g, k, self.c, validate=False))
        log_det = torch.zeros(len(z), device=z.device, dtype=z.dtype) + log_slope.sum(1)
        return x, log_det

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = Q⁻¹(x) elementwise (safeguarded Newton); log_det = −Σ_j log Q′(z_j), ``[batch]``."""
        check_input(x, self.dim, "x")
        a, b, g, k = (p.to(x.dtype) for p in self.params())
        z = gk_solve_z(x, a, b, g, k, self.c)  # safeguarded Newton, elementwise
        slope = gk_quantile_derivative(z, a, b, g, k, self.c, validate=False)
        log_det = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        log_det = log_det - slope.log().sum(1)  # −Σ_j log Q′(z_j)
        return z, log_det
