"""Chapter: book/flows.md — Planar flows (Rezende & Mohamed, 2015, arXiv:1505.05770, Sec. 4.1).

``f(z) = z + û h(wᵀz + b)`` with ``h = tanh``. By the matrix determinant lemma
``det(I + û ψᵀ) = 1 + ψᵀû`` with ``ψ = h'(wᵀz + b) w``, so ``log |det J| = log |1 + h'(wᵀz + b) wᵀû|``
costs O(d). Along ``w`` the map is the scalar ``a -> a + wᵀû h(a)`` (``a = wᵀz + b``), whose derivative
``1 + wᵀû h'(a)`` is positive for every ``a`` iff ``wᵀû > -1``: then ``f`` is a diffeomorphism. At
``wᵀû = -1`` it is still a bijection, but its Jacobian is singular on the line ``wᵀz + b = 0``, so it is
not a diffeomorphism (the proofs chapter, ``prop-planar``). The paper's reparameterization keeps
``wᵀû > -1``: ``û = u + (m(wᵀu) - wᵀu) w / ||w||²``, ``m(x) = -1 + softplus(x)``, so that
``wᵀû = m(wᵀu) > -1``. (Dividing by ``||w||`` instead of ``||w||²`` is a bug found in several public
implementations.)

Expansion or contraction: since ``h' ∈ (0, 1]``, ``log |det J|`` has the sign of ``wᵀû`` everywhere.
It is the component of ``û`` along ``w`` that decides, not ``||u||``: a ``û`` orthogonal to ``w`` gives a
shear with ``det J = 1``, however long it is.

The inverse has no closed form, but it reduces to a scalar root: with ``a = wᵀz + b``, ``x = f(z)``
gives ``wᵀx + b = a + wᵀû tanh(a)``, an increasing function of ``a``; solve it, then ``z = x - û tanh(a)``.

The functions take parameters of shape ``[dim]`` or ``[batch, dim]`` (``b``: scalar or ``[batch]``),
so an encoder can output them per example (amortised flows, as in Rezende & Mohamed's VAE experiments),
or ``[copies, dim]`` with ``z: [batch, copies, dim]``: independent flows trained side by side
(``PlanarFlow(dim, copies=m)``, see :func:`planar`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.flows.base import FlowLayer, Inverse, SequentialFlow, check_input
from flowedu.validate import integer, optional_integer

__all__ = ["PlanarFlow", "planar", "planar_u_hat", "planar_forward", "planar_inverse"]

_EPS = 1e-12


def planar_u_hat(u: torch.Tensor, w: torch.Tensor, return_kappa: bool = False):
    """The constrained ``û`` of the planar layer, with ``wᵀû > -1`` for every ``u``.

    ``û = u + (m(wᵀu) - wᵀu) w / ||w||²`` with ``m(x) = -1 + softplus(x)``, so that
    ``wᵀû = m(wᵀu) > -1``.

    Args:
        u, w: ``[dim]`` or ``[batch, dim]`` (broadcast against each other).
        return_kappa: also return ``κ = wᵀû`` (``[]`` or ``[batch]``), which the
            layer needs anyway.

    Returns:
        ``û``, the broadcast shape of ``u`` and ``w`` (and ``κ`` if asked).
    """
    wu = (w * u).sum(-1, keepdim=True)
    kappa = F.softplus(wu) - 1  # m(wᵀu), which will be wᵀû
    u_hat = u + (kappa - wu) * w / (w * w).sum(-1, keepdim=True).clamp_min(_EPS)
    return (u_hat, kappa.squeeze(-1)) if return_kappa else u_hat


def _affine(z, w, b):
    b = torch.as_tensor(b, dtype=z.dtype, device=z.device)
    return (z * w).sum(-1) + b.reshape(-1) if b.dim() > 0 else (z * w).sum(-1) + b


def planar_forward(z: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b,
                   kappa: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(z) = z + û tanh(wᵀz + b)`` and ``log |1 + (1 - tanh²(wᵀz + b)) wᵀû|``.

    Args:
        z: ``[batch, dim]``; u_hat, w: ``[dim]`` or ``[batch, dim]`` (``u_hat`` from :func:`planar_u_hat`);
        b: a scalar, ``[1]`` or ``[batch]``. For ``m`` independent copies: ``z: [batch, m, dim]``,
        ``u_hat, w: [m, dim]``, ``b: [m]``.
        kappa: ``wᵀû`` if the caller has it (``[]``, ``[batch]`` or ``[m]``); computed when ``None``.

    Returns:
        ``(x [batch, dim], log_det [batch])`` (``[batch, m, dim]`` and ``[batch, m]`` for copies).
    """
    a = _affine(z, w, b)  # a = wᵀz + b
    h = torch.tanh(a)
    x = z + u_hat * h[..., None]  # f(z) = z + û h(a)
    kappa = (w * u_hat).sum(-1) if kappa is None else kappa  # wᵀû
    # log |det J| = log |1 + h'(a) wᵀû|, with h'(a) = 1 - tanh²(a)
    log_det = torch.log((1 + (1 - h * h) * kappa).abs().clamp_min(_EPS))
    return x, log_det


def planar_inverse(x: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor, b, n_bisect: int = 60,
                   n_newton: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`planar_forward`, by a scalar root along ``w``.

    Solves ``g(a) = a + κ tanh(a) - c = 0`` (``κ = wᵀû >= -1``, ``c = wᵀx + b``) for each sample: ``g`` is
    increasing and its root lies in ``[c - |κ|, c + |κ|]`` because ``|tanh| <= 1``. Bisection (in float64,
    without gradient) then Newton steps find it; one last Newton step taken *with* gradient gives exact
    first-order derivatives with respect to ``x`` and the parameters (implicit differentiation: at the
    root ``g = 0``, so ``d(a* - g/g')`` = ``-dg/g'``).

    Args:
        x: ``[batch, dim]`` (or ``[batch, m, dim]`` for ``m`` copies); u_hat, w, b: as in :func:`planar_forward`.
        n_bisect, n_newton: iterations of bisection and Newton (the defaults reach float64 precision).

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
    z = x - u_hat * h[..., None]
    log_det = -torch.log((1 + (1 - h**2) * kappa).abs().clamp_min(_EPS))
    return z, log_det


class PlanarFlow(FlowLayer):
    """Planar flow (Rezende & Mohamed, 2015, arXiv:1505.05770): ``f(z) = z + û tanh(wᵀz + b)``.

    ``forward`` is closed form with an O(d) log-det (matrix determinant lemma); ``inverse`` is a scalar
    root along ``w`` (see :func:`planar_inverse`). For variational inference use it as it is (samples
    from the base are pushed forward); for density estimation wrap it, ``Inverse(PlanarFlow(d))``, so
    that the closed form runs from data to base. :func:`planar` builds stacks of either kind.

    Args:
        dim: number of coordinates.
        init_scale: parameters ``u, w`` start uniform in ``[-init_scale, init_scale] / sqrt(dim)``, ``b = 0``.
        generator: a ``torch.Generator`` for that initialisation (default: torch's global one).
        copies: ``None`` for one flow on ``z: [batch, dim]``; an integer ``m >= 1`` for ``m`` independent
            flows with their own parameters (``u, w: [m, dim]``, ``b: [m]``) on ``z: [batch, m, dim]``,
            with ``log_det: [batch, m]``. Copy ``i`` computes exactly what a single layer with copy ``i``'s
            parameters computes on ``z[:, i]``, so ``m`` fits run as one (summed losses give each copy its
            own gradient).
    """

    def __init__(self, dim: int, init_scale: float = 1.0, generator: torch.Generator | None = None,
                 copies: int | None = None):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        self.copies = optional_integer(copies, "copies", 1)
        if not init_scale >= 0:
            raise ValueError(f"init_scale must be >= 0, got {init_scale}")
        bound = init_scale / math.sqrt(dim)
        shape = (dim,) if copies is None else (copies, dim)
        self.u = nn.Parameter((2 * torch.rand(shape, generator=generator) - 1) * bound)
        self.w = nn.Parameter((2 * torch.rand(shape, generator=generator) - 1) * bound)
        self.b = nn.Parameter(torch.zeros(1 if copies is None else copies))

    def u_hat(self) -> torch.Tensor:
        """The constrained ``û: [dim]`` (``[copies, dim]``) with ``wᵀû > -1``."""
        return planar_u_hat(self.u, self.w)

    def forward(self, z):
        check_input(z, self.dim, copies=self.copies)
        u, w = self.u.to(z.dtype), self.w.to(z.dtype)
        u_hat, kappa = planar_u_hat(u, w, return_kappa=True)
        return planar_forward(z, u_hat, w, self.b.to(z.dtype), kappa)

    def inverse(self, z):
        check_input(z, self.dim, copies=self.copies)
        return planar_inverse(z, self.u_hat().to(z.dtype), self.w.to(z.dtype), self.b.to(z.dtype))


def planar(dim: int, n_layers: int, inverse: bool = False, copies: int | None = None, init_scale: float = 1.0,
           generator: torch.Generator | None = None) -> SequentialFlow:
    """A stack of ``n_layers`` planar layers, like :func:`flowedu.flows.realnvp` for couplings.

    Args:
        dim: number of coordinates.
        n_layers: ``k >= 1``, the number of layers.
        inverse: ``False`` for variational inference and sampling (the closed form runs base -> data);
            ``True`` for density estimation: every layer is ``Inverse(PlanarFlow(...))``, so the closed
            form runs data -> base, where ``log_prob`` needs it.
        copies: ``None``, or ``m`` independent stacks side by side (see :class:`PlanarFlow`); use the base
            ``StandardNormal(dim, copies=m)``.
        init_scale, generator: passed to each :class:`PlanarFlow`.

    Returns:
        A ``SequentialFlow``; wrap it in ``NormalizingFlow(StandardNormal(dim), ...)``.
    """
    integer(n_layers, "n_layers", 1)
    if not isinstance(inverse, bool):
        raise ValueError(f"inverse must be True or False, got {inverse!r}")
    layers = [PlanarFlow(dim, init_scale, generator, copies) for _ in range(n_layers)]
    return SequentialFlow(*(Inverse(layer) for layer in layers) if inverse else layers)
