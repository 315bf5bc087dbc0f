"""Chapter: book/flows.md — Coupling layers: NICE's additive coupling (Dinh et al., 2014, arXiv:1410.8516) and
RealNVP's affine
coupling (Dinh et al., 2017, arXiv:1605.08803), and factories for the stacks built from them.

A coupling splits ``z`` by a binary mask into the part it keeps, ``z_a`` (mask 1), and the part it
changes, ``z_b``, conditioned on ``z_a``:  ``x_a = z_a``, ``x_b = z_b * exp(s(z_a)) + t(z_a)``.
The Jacobian is triangular (after ordering ``a`` before ``b``) with diagonal ``(1, ..., exp(s))``, so
``log |det J| = sum s(z_a)``, and the inverse ``z_b = (x_b - t(x_a)) * exp(-s(x_a))`` needs no inverse
of the networks ``s`` and ``t``.
"""

from __future__ import annotations

import torch
from torch import nn

from flowedu.flows.base import FlowLayer, SequentialFlow, check_input, zero_log_det
from flowedu.flows.elementwise import Scale
from flowedu.nets import mlp
from flowedu.validate import integer

__all__ = ["AdditiveCoupling", "AffineCoupling", "nice", "realnvp", "checkerboard_masks"]


def _network(n_in: int, n_out: int, hidden: int, n_hidden: int, zero_init: bool) -> nn.Sequential:
    """``n_in -> hidden -> ... -> n_out`` with ``n_hidden`` hidden layers (ReLU); last layer zero if asked."""
    hidden, n_hidden = integer(hidden, "hidden", 1), integer(n_hidden, "n_hidden", 1)
    return mlp([n_in, *[hidden] * n_hidden, n_out], zero_last=zero_init)


def _check_mask(mask, dim: int) -> torch.Tensor:
    if mask is None:
        mask = torch.arange(dim) < dim // 2
    mask = torch.as_tensor(mask).bool()
    if mask.shape != (dim,):
        raise ValueError(f"mask must have shape [{dim}], got {tuple(mask.shape)}")
    if mask.all() or not mask.any():
        raise ValueError(f"mask must keep at least one and change at least one coordinate, got {mask.int().tolist()}")
    return mask


class _Coupling(FlowLayer):
    def __init__(self, dim, hidden, n_hidden, mask, context_dim, zero_init, n_params):
        super().__init__()
        self.dim = integer(dim, "dim", 2)
        mask = _check_mask(mask, dim)
        context_dim = integer(context_dim, "context_dim", 0)
        self.context_dim = context_dim
        self.conditional = context_dim > 0
        self.register_buffer("idx_a", torch.nonzero(mask).flatten())
        self.register_buffer("idx_b", torch.nonzero(~mask).flatten())
        self.net = _network(len(self.idx_a) + context_dim, n_params * len(self.idx_b), hidden, n_hidden, zero_init)

    def _conditioner(self, z_a, context):
        if self.conditional:
            if context is None or context.shape != (len(z_a), self.context_dim):
                raise ValueError(f"context must have shape [{len(z_a)}, {self.context_dim}], "
                                 f"got {None if context is None else tuple(context.shape)}")
            z_a = torch.cat((z_a, context.to(z_a.dtype)), dim=1)
        return self.net(z_a.to(self.net[0].weight.dtype)).to(z_a.dtype)

    def _assemble(self, z_a, x_b):
        x = torch.empty(len(z_a), self.dim, device=z_a.device, dtype=z_a.dtype)
        x[:, self.idx_a] = z_a
        x[:, self.idx_b] = x_b
        return x

    def _shift_log_scale(self, z_a, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, z, context=None):
        """``z: [batch, dim]`` -> ``(x [batch, dim], log_det [batch])``."""
        check_input(z, self.dim)
        z_a, z_b = z[:, self.idx_a], z[:, self.idx_b]
        t, s = self._shift_log_scale(z_a, context)
        log_det = zero_log_det(z) if s is None else s.sum(1)
        x_b = z_b + t if s is None else z_b * s.exp() + t
        return self._assemble(z_a, x_b), log_det

    def inverse(self, z, context=None):
        """``x: [batch, dim]`` -> ``(z [batch, dim], log_det [batch])`` (exact, no iteration)."""
        check_input(z, self.dim)
        x_a, x_b = z[:, self.idx_a], z[:, self.idx_b]
        t, s = self._shift_log_scale(x_a, context)
        log_det = zero_log_det(z) if s is None else -s.sum(1)
        z_b = x_b - t if s is None else (x_b - t) * (-s).exp()
        return self._assemble(x_a, z_b), log_det


class AdditiveCoupling(_Coupling):
    """NICE's additive coupling ``x_a = z_a``, ``x_b = z_b + t(z_a)``: volume preserving (``log_det = 0``).

    Args:
        dim: number of coordinates (>= 2).
        hidden: width of the conditioner MLP ``t``.
        n_hidden: number of its hidden layers.
        mask: bool ``[dim]``, True for the coordinates kept (default: the first ``dim // 2``).
        context_dim: size of an extra input of ``t`` (amortised flows: ``forward(z, context)``), 0 for none.
        zero_init: start as the identity (last layer zero).
    """

    def __init__(self, dim, hidden=64, n_hidden=2, mask=None, context_dim=0, zero_init=True):
        super().__init__(dim, hidden, n_hidden, mask, context_dim, zero_init, n_params=1)

    def _shift_log_scale(self, z_a, context):
        return self._conditioner(z_a, context), None


class AffineCoupling(_Coupling):
    """RealNVP's affine coupling ``x_a = z_a``, ``x_b = z_b * exp(s(z_a)) + t(z_a)``, ``log_det = sum s``.

    The log-scale is bounded for stability, ``s = c * tanh(s_raw / c)`` with ``c = scale_bound``, so one
    layer changes a coordinate's scale by at most ``e^c``.

    Args:
        dim: number of coordinates (>= 2).
        hidden: width of the conditioner MLP that outputs ``(s_raw, t)``.
        n_hidden: number of its hidden layers.
        mask: bool ``[dim]``, True for the coordinates kept (default: the first ``dim // 2``).
        scale_bound: ``c > 0``.
        context_dim: size of an extra conditioner input (amortised flows), 0 for none.
        zero_init: start as the identity (last layer zero).
    """

    def __init__(self, dim, hidden=64, n_hidden=2, mask=None, scale_bound=2.0, context_dim=0, zero_init=True):
        super().__init__(dim, hidden, n_hidden, mask, context_dim, zero_init, n_params=2)
        if not scale_bound > 0:
            raise ValueError(f"scale_bound must be > 0, got {scale_bound}")
        self.scale_bound = float(scale_bound)

    def _shift_log_scale(self, z_a, context):
        s_raw, t = self._conditioner(z_a, context).chunk(2, dim=1)
        c = self.scale_bound
        return t, c * torch.tanh(s_raw / c)


def checkerboard_masks(dim: int, n: int) -> list[torch.Tensor]:
    """``n`` masks ``[dim]`` alternating between the first half kept and the second half kept."""
    integer(dim, "dim", 2)
    first = torch.arange(dim) < dim // 2
    return [first if i % 2 == 0 else ~first for i in range(integer(n, "n", 1))]


def realnvp(dim: int, n_couplings: int = 4, hidden: int = 16, n_hidden: int = 2, scale_bound: float = 2.0,
            context_dim: int = 0, zero_init: bool = True) -> SequentialFlow:
    """A RealNVP stack: ``n_couplings`` affine couplings with alternating masks (Dinh et al., 2017).

    Alternating masks do what a ``Swap`` between couplings does, without reordering the coordinates:
    every coordinate is changed by every other layer. Wrap in ``NormalizingFlow(StandardNormal(dim), ...)``.
    """
    masks = checkerboard_masks(dim, n_couplings)
    couplings = [AffineCoupling(dim, hidden, n_hidden, m, scale_bound, context_dim, zero_init) for m in masks]
    return SequentialFlow(*couplings)


def nice(dim: int, n_couplings: int = 4, hidden: int = 16, n_hidden: int = 2, context_dim: int = 0,
         zero_init: bool = True) -> SequentialFlow:
    """A NICE stack: ``n_couplings`` additive couplings with alternating masks, then a ``Scale`` layer.

    The couplings preserve volume; the final diagonal scaling is the only layer that changes it
    (Dinh et al., 2014, Sec. 3.3).
    """
    masks = checkerboard_masks(dim, n_couplings)
    couplings = [AdditiveCoupling(dim, hidden, n_hidden, m, context_dim, zero_init) for m in masks]
    return SequentialFlow(*couplings, Scale(dim))
