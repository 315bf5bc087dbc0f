"""Chapter: book/flows.md — Element-wise flows: ``Scale`` (changes volume) and ``Translate`` (volume preserving)."""

from __future__ import annotations

import torch
from torch import nn

from flowedu.flows.base import FlowLayer, check_input, zero_log_det
from flowedu.validate import integer

__all__ = ["Scale", "Translate"]


def _initial(value, dim: int, name: str, positive: bool) -> torch.Tensor:
    """``value`` as a ``[dim]`` tensor: a float64 tensor stays float64, anything else becomes float32."""
    t = torch.as_tensor(value)
    t = t if t.dtype == torch.float64 else t.to(torch.float32)
    if t.dim() == 0:
        t = t.expand(dim)
    if t.shape != (dim,):
        raise ValueError(f"{name} must be a number or have shape [{dim}], got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    if positive and (t <= 0).any():
        raise ValueError(f"{name} must be > 0 in every coordinate, got {t.tolist()}")
    return t.clone()


class Scale(FlowLayer):
    """Element-wise scaling ``f(z) = s * z`` with ``s = exp(log_scale) > 0``.

    The Jacobian is ``diag(s)``, so ``log |det J| = sum_i log s_i``, the same for every sample: the
    scaling changes area by the factor ``prod_i s_i`` (the NICE paper's final layer, Dinh et al., 2014).

    Args:
        dim: number of coordinates.
        scale: initial scales, a positive number or ``[dim]`` (default 1); a float64 tensor keeps float64.
        learnable: whether ``log_scale`` is a parameter.
    """

    def __init__(self, dim: int, scale=1.0, learnable: bool = True):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        log_scale = _initial(scale, dim, "scale", positive=True).log()
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, z):
        """``z: [batch, dim]`` -> ``(s * z, log_det [batch])``."""
        check_input(z, self.dim)
        log_scale = self.log_scale.to(z.dtype)
        return z * log_scale.exp(), zero_log_det(z) + log_scale.sum()

    def inverse(self, z):
        """``x: [batch, dim]`` -> ``(x / s, -sum log s [batch])``."""
        check_input(z, self.dim)
        log_scale = self.log_scale.to(z.dtype)
        return z * (-log_scale).exp(), zero_log_det(z) - log_scale.sum()


class Translate(FlowLayer):
    """Element-wise shift ``f(z) = z + t``; the Jacobian is the identity, so ``log |det J| = 0``.

    Args:
        dim: number of coordinates.
        shift: initial shift, a number or ``[dim]`` (default 0); a float64 tensor keeps float64.
        learnable: whether ``shift`` is a parameter.
    """

    def __init__(self, dim: int, shift=0.0, learnable: bool = True):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        t = _initial(shift, dim, "shift", positive=False)
        if learnable:
            self.shift = nn.Parameter(t)
        else:
            self.register_buffer("shift", t)

    def forward(self, z):
        check_input(z, self.dim)
        return z + self.shift.to(z.dtype), zero_log_det(z)

    def inverse(self, z):
        check_input(z, self.dim)
        return z - self.shift.to(z.dtype), zero_log_det(z)
