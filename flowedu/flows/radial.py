"""Chapter: book/flows.md — Radial flows (Rezende & Mohamed, 2015, arXiv:1505.05770, Sec. 4.1).

``f(z) = z + β h(α, r) (z - z0)`` with ``h = 1 / (α + r)``, ``r = ||z - z0||``. The Jacobian is
``(1 + βh) I + βh' (z - z0)(z - z0)ᵀ / r`` (``h' = -1/(α + r)²``), so by the determinant lemma
``log |det J| = (d - 1) log(1 + βh) + log(1 + βh + βh' r)``, and ``1 + βh + βh' r = 1 + αβ/(α + r)²``.
With ``α > 0``, the log-det is finite for every ``z`` iff ``β > -α``: at ``β = -α`` both factors vanish at
``z = z0`` (the map is still a bijection, but not a diffeomorphism), and for ``β < -α`` a factor vanishes on
a whole sphere around ``z0`` and the map folds. We use ``α = softplus(α')``, ``β = -α + softplus(β')``,
which gives ``β > -α`` in exact arithmetic. (In float32, ``-α + softplus(β')`` rounds to ``-α`` once
``softplus(β')`` drops below the rounding unit of ``α``, i.e. for ``β'`` below about -17; the functions
below then raise instead of returning an infinite log-det.)

The inverse is a scalar root along ``r``: ``x - z0 = (1 + βh(r)) (z - z0)`` gives
``ρ = ||x - z0|| = r + βr / (α + r)``, increasing in ``r``. Multiplying by ``α + r`` turns it into the
quadratic ``r² + (α + β - ρ) r - αρ = 0``, whose one non-negative root we take in a cancellation-free
form; then ``z = z0 + (x - z0) / (1 + βh(r))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.flows.base import FlowLayer, check_input
from flowedu.validate import integer

__all__ = ["RadialFlow", "radial_forward", "radial_inverse", "radial_root"]


def _as_batch(p, z):
    p = torch.as_tensor(p, dtype=z.dtype, device=z.device)
    return p.reshape(-1) if p.dim() > 0 else p


def _check_alpha_beta(alpha: torch.Tensor, beta: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``α > 0`` and ``β > -α`` (where the log-det is finite for every z)."""
    with torch.no_grad():
        if not bool((alpha > 0).all()):
            raise ValueError(f"alpha must be > 0, got min {alpha.min().item():.6g}")
        if not bool((beta > -alpha).all()):
            raise ValueError(f"beta must be > -alpha (log-det finite for every z), got min beta + alpha "
                             f"{(beta + alpha).min().item():.6g}")


def radial_forward(z: torch.Tensor, z0: torch.Tensor, alpha, beta) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(z) = z + β/(α + r) (z - z0)`` and its log-det.

    Args:
        z: ``[batch, dim]``; z0: ``[dim]`` or ``[batch, dim]``; alpha (> 0), beta (> -alpha): scalars,
            ``[1]`` or ``[batch]``.

    Returns:
        ``(x [batch, dim], log_det [batch])``.

    Raises:
        ValueError: unless ``alpha > 0`` and ``beta > -alpha``.
    """
    alpha, beta = _as_batch(alpha, z), _as_batch(beta, z)
    _check_alpha_beta(alpha, beta)
    diff = z - z0
    r = diff.norm(dim=-1)
    bh = beta / (alpha + r)
    x = z + bh[:, None] * diff
    d = z.shape[-1]
    log_det = (d - 1) * torch.log1p(bh) + torch.log1p(alpha * beta / (alpha + r) ** 2)
    return x, log_det


def radial_root(rho: torch.Tensor, alpha, beta) -> torch.Tensor:
    """The ``r >= 0`` with ``r + βr/(α + r) = ρ``: the non-negative root of ``r² + (α + β - ρ) r - αρ``.

    Args:
        rho: ``[batch]``, radii ``ρ >= 0`` after the map; alpha (> 0), beta (> -alpha): as in
            :func:`radial_forward` (unchecked here: the callers check them).
    """
    B = alpha + beta - rho
    disc = torch.sqrt(B**2 + 4 * alpha * rho)
    # (-B + disc) / 2 cancels when B > 0; there use the equal form 2αρ / (B + disc).
    return torch.where(B > 0, 2 * alpha * rho / (B + disc).clamp_min(1e-30), (disc - B) / 2)


def radial_inverse(x: torch.Tensor, z0: torch.Tensor, alpha, beta) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`radial_forward` (root along ``r``, then a rescaling of ``x - z0``).

    Returns:
        ``(z [batch, dim], log_det [batch])``, the log-det of the inverse map.

    Raises:
        ValueError: unless ``alpha > 0`` and ``beta > -alpha``.
    """
    alpha, beta = _as_batch(alpha, x), _as_batch(beta, x)
    _check_alpha_beta(alpha, beta)
    diff = x - z0
    r = radial_root(diff.norm(dim=-1), alpha, beta)
    bh = beta / (alpha + r)
    z = z0 + diff / (1 + bh)[:, None]
    d = x.shape[-1]
    log_det = -((d - 1) * torch.log1p(bh) + torch.log1p(alpha * beta / (alpha + r) ** 2))
    return z, log_det


class RadialFlow(FlowLayer):
    """Radial flow (Rezende & Mohamed, 2015, arXiv:1505.05770): ``f(z) = z + β (z - z0) / (α + ||z - z0||)``.

    Contracts (``β < 0``) or expands (``β > 0``) space around ``z0``. Parameters ``α = softplus(α')`` and
    ``β = -α + softplus(β')`` keep ``α > 0`` and ``β > -α``: a diffeomorphism with a finite log-det everywhere.

    Args:
        dim: number of coordinates.
        init_scale: ``z0`` starts uniform in ``[-init_scale, init_scale] / sqrt(dim)``; ``α' , β'`` start
            uniform in ``[-init_scale, init_scale]``.
        generator: a ``torch.Generator`` for that initialisation.
    """

    def __init__(self, dim: int, init_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        if not init_scale >= 0:
            raise ValueError(f"init_scale must be >= 0, got {init_scale}")
        self.z0 = nn.Parameter((2 * torch.rand(dim, generator=generator) - 1) * init_scale / math.sqrt(dim))
        self.alpha_raw = nn.Parameter((2 * torch.rand(1, generator=generator) - 1) * init_scale)
        self.beta_raw = nn.Parameter((2 * torch.rand(1, generator=generator) - 1) * init_scale)

    def alpha_beta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α, β)``, each ``[1]``, with ``α > 0`` and ``β > -α``."""
        alpha = F.softplus(self.alpha_raw)
        return alpha, -alpha + F.softplus(self.beta_raw)

    def forward(self, z):
        check_input(z, self.dim)
        alpha, beta = self.alpha_beta()
        return radial_forward(z, self.z0.to(z.dtype), alpha.to(z.dtype), beta.to(z.dtype))

    def inverse(self, z):
        check_input(z, self.dim)
        alpha, beta = self.alpha_beta()
        return radial_inverse(z, self.z0.to(z.dtype), alpha.to(z.dtype), beta.to(z.dtype))
