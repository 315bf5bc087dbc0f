"""Chapter: book/proofs.md — when a planar layer is invertible, and what the ‖w‖ bug in û does.

The planar layer f(z) = z + û tanh(wᵀz + b) (Rezende & Mohamed 2015, arXiv:1505.05770) acts along ``w``
through the scalar map g(a) = a + κ tanh(a), a = wᵀz + b, κ = wᵀû. It is a bijection iff κ >= -1 and a
diffeomorphism iff κ > -1 (``prop-planar``). The reparametrisation û = u + (m(wᵀu) - wᵀu) w / ‖w‖²,
m(τ) = -1 + softplus(τ), gives κ = m(wᵀu) > -1. Dividing by ‖w‖ instead gives

    κ_bug = (1 - ‖w‖) wᵀu + ‖w‖ m(wᵀu),

and κ_bug < -1 exactly when ‖w‖ (1 - log(1 + e^{-wᵀu})) > 1 + wᵀu (``prop-planar-norm-bug``, which writes
τ = wᵀu and ℓ = ‖w‖).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq

__all__ = [
    "NORM_BUG_SAFE_RANGE",
    "kappa_with_norm_bug",
    "norm_bug_breaks_invertibility",
    "norm_bug_threshold",
    "planar_collision",
]

NORM_BUG_SAFE_RANGE = (-1.0, -math.log(math.e - 1.0))
"""The values of wᵀu for which the ‖w‖ bug keeps κ >= -1 whatever ‖w‖ is: [-1, -log(e - 1)] ≈ [-1, -0.541]."""


def _arrays(w_dot_u, w_norm=None):
    tau = np.asarray(w_dot_u, dtype=np.float64)
    if not np.all(np.isfinite(tau)):
        raise ValueError("w_dot_u must be finite")
    if w_norm is None:
        return tau
    ell = np.asarray(w_norm, dtype=np.float64)
    if not np.all(np.isfinite(ell)) or np.any(ell <= 0):
        raise ValueError(f"w_norm must be finite and > 0, got min {np.min(ell):.3g}")
    return tau, ell


def kappa_with_norm_bug(w_dot_u, w_norm) -> np.ndarray:
    """κ_bug = wᵀû when û divides by ‖w‖ instead of ‖w‖²: ``(1 - ‖w‖) wᵀu + ‖w‖ m(wᵀu)``.

    Args:
        w_dot_u: wᵀu, any shape (float64 after conversion).
        w_norm: ‖w‖ > 0, broadcast against ``w_dot_u``.

    Returns:
        κ_bug, the broadcast shape. With ‖w‖ = 1 it equals the correct κ = m(wᵀu) > -1.
    """
    tau, ell = _arrays(w_dot_u, w_norm)
    m = -1.0 + np.logaddexp(0.0, tau)  # m(τ) = -1 + softplus(τ)
    return (1.0 - ell) * tau + ell * m


def norm_bug_breaks_invertibility(w_dot_u, w_norm) -> np.ndarray:
    """True where the ‖w‖ bug gives κ_bug < -1, i.e. ``‖w‖ (1 - log(1 + e^{-wᵀu})) > 1 + wᵀu``.

    κ_bug + 1 = (1 + τ) - ℓ Δ(τ) with τ = wᵀu, ℓ = ‖w‖ and Δ(τ) = 1 + τ - softplus(τ) = 1 - log(1 + e^{-τ}),
    linear in ℓ. So it happens in two regions: τ < -1 with ℓ below :func:`norm_bug_threshold` (< 1),
    and τ > -log(e - 1) with ℓ above it (> 1); never for τ in ``NORM_BUG_SAFE_RANGE``.
    """
    tau, ell = _arrays(w_dot_u, w_norm)
    return ell * (1.0 - np.logaddexp(0.0, -tau)) > 1.0 + tau


def norm_bug_threshold(w_dot_u) -> np.ndarray:
    """The ‖w‖ at which the bug gives exactly κ_bug = -1: ℓ*(τ) = ``(1 + τ) / (1 - log(1 + e^{-τ}))``, τ = wᵀu.

    At that ‖w‖ the layer is a bijection but not a diffeomorphism. Returns NaN where no ‖w‖ > 0 reaches
    -1, i.e. for τ in ``NORM_BUG_SAFE_RANGE`` (closed interval; at its right end, where the denominator
    vanishes, rounding may give a huge finite value instead).
    """
    tau = _arrays(w_dot_u)
    slope = 1.0 - np.logaddexp(0.0, -tau)  # Δ(τ)
    with np.errstate(divide="ignore", invalid="ignore"):
        ell = (1.0 + tau) / slope
    return np.where((ell > 0) & np.isfinite(ell), ell, np.nan)


def planar_collision(u_hat: torch.Tensor, w: torch.Tensor, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two different points with the same image under f(z) = z + û tanh(wᵀz + b), when κ = wᵀû < -1.

    The proof of ``prop-planar`` made executable: g(a) = a + κ tanh(a) has g(0) = 0 and, for κ < -1, a
    second root a₀ in (0, -κ) of a = -κ tanh(a). Take z₁ = -b w/‖w‖² (so a₁ = wᵀz₁ + b = 0, f(z₁) = z₁) and
    z₂ = z₁ - û tanh(a₀): then wᵀz₂ + b = -κ tanh(a₀) = a₀ and f(z₂) = z₂ + û tanh(a₀) = z₁ = f(z₁).

    Args:
        u_hat, w: ``[dim]`` tensors with w ≠ 0 and wᵀû < -1.
        b: the bias, a number.

    Returns:
        ``(z1, z2)``, each ``[dim]``, dtype and device of ``w``; ``z1 != z2`` and f(z1) = f(z2).
    """
    if not isinstance(w, torch.Tensor) or w.dim() != 1 or not isinstance(u_hat, torch.Tensor) \
            or u_hat.shape != w.shape:
        raise ValueError("u_hat and w must be tensors of the same shape [dim]")
    w_norm_sq = float((w * w).sum())
    if w_norm_sq == 0:
        raise ValueError("w must be non-zero")
    kappa = float((w * u_hat).sum())
    if not kappa < -1:
        raise ValueError(f"w^T u_hat must be < -1 for two points to collide, got {kappa:.6g}")
    a0 = brentq(lambda a: a + kappa * math.tanh(a), 1e-12, -kappa, xtol=1e-15, rtol=1e-15)  # g < 0 < g
    z1 = -float(b) * w / w_norm_sq
    z2 = z1 - u_hat.to(w) * math.tanh(a0)
    return z1, z2
