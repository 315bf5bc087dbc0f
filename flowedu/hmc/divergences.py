"""Chapter: book/hmc.md — KL divergences from samples (k nearest neighbours) or exactly on a grid.

The chapter compares HMC and variational flows on the banana posterior with both.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from flowedu.validate import integer

__all__ = ["grid_kl", "knn_kl"]


def _as_points(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 1:
        raise ValueError(f"{name} must have shape [n, dim] with n >= 2, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite")
    return a


def knn_kl(samples_p, samples_q, k: int = 3) -> float:
    """k-nearest-neighbour estimate of KL(P || Q) from samples (Wang, Kulkarni & Verdu, 2009, eq. 5).

    D = (d/n_P) sum_i log(nu_k(i) / eta_k(i)) + log(n_Q / (n_P - 1)), where eta_k(i) is the distance
    from x_i to its k-th nearest neighbour among the other n_P - 1 samples of P and nu_k(i) its
    distance to the k-th nearest of the n_Q samples of Q (the paper writes rho_k for eta_k). The
    estimator is consistent (n_P, n_Q -> infinity) but biased at finite sizes, and it can be
    negative. Repeated points (for instance the repeated states of an MCMC chain) give eta = 0: pass
    distinct points (e.g. de-duplicate, or thin the chain and pool many chains).
    The ITE toolbox calls it ``BDKL_KnnK``; ``pip install ite`` is an unrelated package.

    Args:
        samples_p: ``[n_P, dim]`` draws from P.
        samples_q: ``[n_Q, dim]`` draws from Q.
        k: neighbour order, 1 <= k <= min(n_P - 1, n_Q).

    Returns:
        The estimate in nats.
    """
    x, w = _as_points(samples_p, "samples_p"), _as_points(samples_q, "samples_q")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"samples_p and samples_q must have the same dim, got {x.shape[1]} and {w.shape[1]}")
    n_p, n_q, d = len(x), len(w), x.shape[1]
    k = integer(k, "k", 1, min(n_p - 1, n_q))
    # eta_k(i): neighbour 0 is the point itself
    eta = cKDTree(x).query(x, k=k + 1)[0][:, k]
    nu = cKDTree(w).query(x, k=k)[0]  # nu_k(i)
    nu = nu[:, k - 1] if k > 1 else nu
    if np.any(eta <= 0):
        raise ValueError(f"samples_p has {int(np.sum(eta <= 0))} points whose k-th neighbour is at distance 0 "
                         "(repeated points); pass distinct samples")
    if np.any(nu <= 0):
        raise ValueError("some points of samples_p coincide with k or more points of samples_q; pass distinct samples")
    return float(d * np.mean(np.log(nu / eta)) + math.log(n_q / (n_p - 1)))


def grid_kl(log_q_fn: Callable[[torch.Tensor], torch.Tensor], target_grid, mass_tol: float = 1e-3) -> float:
    """Exact KL(q || p) by quadrature on the grid where p was normalised (midpoint rule).

    KL(q || p) = sum_cells q(theta) [log q(theta) - log p(theta)] * cell area. The grid must hold
    (almost) all of q's mass: its integral over the grid is checked against 1 within ``mass_tol``.

    Args:
        log_q_fn: ``theta [batch, 2] -> log q(theta) [batch]``, a normalised log density.
        target_grid: a grid with ``points()``, ``log_density`` (normalised) and ``cell_area``, such as
            :meth:`flowedu.hmc.BananaPosterior.grid`.
        mass_tol: allowed |integral of q over the grid - 1| (> 0).

    Returns:
        KL(q || p) in nats.
    """
    if not mass_tol > 0:
        raise ValueError(f"mass_tol must be > 0, got {mass_tol}")
    for attr in ("points", "log_density", "cell_area"):
        if not hasattr(target_grid, attr):
            raise ValueError(f"target_grid must have a {attr!r} attribute (see BananaPosterior.grid)")
    points = target_grid.points()
    log_p = target_grid.log_density.flatten().double()
    with torch.no_grad():
        log_q = torch.cat([log_q_fn(chunk).detach().double().cpu() for chunk in points.split(65536)])
    if log_q.shape != log_p.shape:
        raise ValueError(f"log_q_fn must return shape [batch], got {tuple(log_q.shape)} in all for {len(log_p)} points")
    if torch.isnan(log_q).any() or torch.isposinf(log_q).any():
        raise ValueError("log_q_fn returned NaN or +inf on the grid")
    q = log_q.exp()
    mass = float(q.sum() * target_grid.cell_area)
    if abs(mass - 1) > mass_tol:
        raise ValueError(f"q integrates to {mass:.6f} on the grid, not 1 within mass_tol={mass_tol}: "
                         "widen the grid's bounds or refine it")
    integrand = torch.where(q > 0, q * (log_q - log_p), torch.zeros_like(q))
    return float(integrand.sum() * target_grid.cell_area)
