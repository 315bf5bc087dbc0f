"""Planar flows (Rezende & Mohamed, 2015, arXiv:1505.05770, Sec. 4.1).

``f(z) = z + û h(wᵀz + b)`` with ``h = tanh``. By the matrix determinant lemma
``det(I + û ψᵀ) = 1 + ψᵀû`` with ``ψ = h'(wᵀz + b) w``, so ``log |det J| = log |1 + h'(wᵀz + b) wᵀû|``
costs O(d). The map is invertible when ``wᵀû >= -1``; the paper's reparameterization guarantees it:
``û = u + (m(wᵀu) - wᵀu) w / ||w||²``, ``m(x) = -1 + softplus(x)``, so that ``wᵀû = m(wᵀu) > -1``.
(Dividing by ``||w||`` instead of ``||w||²`` is a bug found in several public implementations.)

The inverse has no closed form, but it reduces to a scalar root: with ``a = wᵀz + b``, ``x = f(z)``
gives ``wᵀx + b = a + wᵀû tanh(a)``, an increasing function of ``a``; solve it, then ``z = x - û tanh(a)``.

The functions take parameters of shape ``[dim]`` or ``[batch, dim]`` (``b``: scalar or ``[batch]``),
so an encoder can output them per example (amortised flows, as in Rezende & Mohamed's VAE experiments).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.flows.base import FlowLayer, check_dim, check_input

__all__ = ["PlanarFlow", "planar_u_hat", "planar_forward", "planar_inverse"]

_EPS = 1e-12


def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``û = u + (m(wᵀu) - wᵀu) w / ||w||²`` with ``m(x) = -1 + softplus(x)``, so ``wᵀû > -1``.

    Args:
        u, w: ``[dim]`` or ``[batch, dim]`` (broadcast against each other).

    Returns:
        ``û``, the broadcast shape of ``u`` and ``w``.
    """
    wu = (w * u).sum(-1, keepdim=True)
    w_norm_sq = (w * w).sum(-1, keepdim=True).clamp_min(_EPS)
    return u + (-1 + F.softplus(wu) - wu) * w / w_norm_sq


def _affine(z, w, b):
    b = torch.as_tensor(b, dtype=z.dtype, device=z.device)
    return (z * w).sum(-1) + b.reshape(-1) if b.dim() > 0 else (z * w).sum(-1) + b


def planar_forward(z: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(z) = z + û tanh(wᵀz + b)`` and ``log |1 + (1 - tanh²(wᵀz + b)) wᵀû|``.

    Args:
        z: ``[batch, dim]``; u_hat, w: ``[dim]`` or ``[batch, dim]`` (``u_hat`` from :func:`planar_u_hat`);
        b: a scalar, ``[1]`` or ``[batch]``.

    Returns:
        ``(x [batch, dim], log_det [batch])``.
    """
    a = _affine(z, w, b)
    h = torch.tanh(a)
    x = z + u_hat * h[:, None]
    kappa = (w * u_hat).sum(-1)
    log_det = torch.log((1 + (1 - h**2) * kappa).abs().clamp_min(_EPS))
    return x, log_det


def planar_inverse(x: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b, n_bisect: int = 60,
                   n_newton: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`planar_forward`, by a scalar root along ``w``.

    Solves ``g(a) = a + κ tanh(a) - c = 0`` (``κ = wᵀû >= -1``, ``c = wᵀx + b``) for each sample: ``g`` is
    increasing and its root lies in ``[c - |κ|, c + |κ|]`` because ``|tanh| <= 1``. Bisection (in float64,
    without gradient) then Newton steps find it; one last Newton step taken *with* gradient gives exact
    first-order derivatives with respect to ``x`` and the parameters (implicit differentiation: at the
    root ``g = 0``, so ``d(a* - g/g')`` = ``-dg/g'``).

    Returns:
        ``(z [batch, dim], log_det [batch])`` with ``log_det = -log |1 + (1 - tanh²(a)) κ|``.
    """
    kappa = (w * u_hat).sum(-1)
    c = _affine(x, w, b)
    with torch.no_grad():
        k64 = kappa.double().expand_as(c)
        c64 = c.double()
        lo, hi = c64 - k64.abs(), c64 + k64.abs()
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            positive = mid + k64 * torch.tanh(mid) - c64 > 0
            hi = torch.where(positive, mid, hi)
            lo = torch.where(positive, lo, mid)
        a = 0.5 * (lo + hi)
        for _ in range(n_newton):
            slope = (1 + k64 * (1 - torch.tanh(a) ** 2)).clamp_min(1e-12)
            a = (a - (a + k64 * torch.tanh(a) - c64) / slope).clamp(lo, hi)
        a = a.to(x.dtype)
    h = torch.tanh(a)
    slope = 1 + (1 - h**2) * kappa
    a = a - (a + kappa * h - c) / slope.clamp_min(1e-12)  # value unchanged at the root; carries the gradient
    h = torch.tanh(a)
    z = x - u_hat * h[:, None]
    log_det = -torch.log((1 + (1 - h**2) * kappa).abs().clamp_min(_EPS))
    return z, log_det


class PlanarFlow(FlowLayer):
    """Planar flow (Rezende & Mohamed, 2015, arXiv:1505.05770): ``f(z) = z + û tanh(wᵀz + b)``.

    ``forward`` is closed form with an O(d) log-det (matrix determinant lemma); ``inverse`` is a scalar
    root along ``w`` (see :func:`planar_inverse`). For variational inference use it as it is (samples
    from the base are pushed forward); for density estimation wrap it, ``Inverse(PlanarFlow(d))``, so
    that the closed form runs from data to base.

    Args:
        dim: number of coordinates.
        init_scale: parameters ``u, w`` start uniform in ``[-init_scale, init_scale] / sqrt(dim)``, ``b = 0``.
        generator: a ``torch.Generator`` for that initialisation (default: torch's global one).
    """

    def __init__(self, dim: int, init_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.dim = check_dim(dim)
        if not init_scale >= 0:
            raise ValueError(f"init_scale must be >= 0, got {init_scale}")
        bound = init_scale / math.sqrt(dim)
        self.u = nn.Parameter((2 * torch.rand(dim, generator=generator) - 1) * bound)
        self.w = nn.Parameter((2 * torch.rand(dim, generator=generator) - 1) * bound)
        self.b = nn.Parameter(torch.zeros(1))

    def u_hat(self) -> torch.Tensor:
        """The constrained ``û: [dim]`` with ``wᵀû > -1``."""
        return planar_u_hat(self.u, self.w)

    def forward(self, z):
        check_input(z, self.dim)
        return planar_forward(z, self.u_hat().to(z.dtype), self.w.to(z.dtype), self.b.to(z.dtype))

    def inverse(self, z):
        check_input(z, self.dim)
        return planar_inverse(z, self.u_hat().to(z.dtype), self.w.to(z.dtype), self.b.to(z.dtype))
