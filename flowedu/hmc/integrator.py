"""Chapter: book/hmc.md — Hamiltonian dynamics: the Hamiltonian, autograd gradients and the leapfrog.

Notation (``book/hmc.md``): target density pi(theta) = exp(-U(theta)) / Z with potential U = -log pi,
momentum rho ~ N(0, I) (unit mass), Hamiltonian H(theta, rho) = U(theta) + |rho|^2 / 2. Every chain
is a row of a ``[chains, dim]`` tensor, so one leapfrog step moves all chains at once.

Reference: Neal (2011), "MCMC using Hamiltonian dynamics", arXiv:1206.1901, section 5.2.3.3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.validate import integer, real

__all__ = ["hamiltonian", "leapfrog", "log_prob_and_grad"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


def _check_step_size(step_size, theta: torch.Tensor) -> torch.Tensor | float:
    """eps > 0: a number, or one per chain ``[chains]`` (returned as ``[chains, 1]`` to broadcast)."""
    if isinstance(step_size, torch.Tensor) and step_size.dim() > 0:
        if step_size.shape != theta.shape[:1]:
            raise ValueError(f"step_size must be a number or have shape [chains] = {tuple(theta.shape[:1])}, "
                             f"got {tuple(step_size.shape)}")
        if not (torch.isfinite(step_size).all() and (step_size > 0).all()):
            raise ValueError("step_size must be finite and > 0 for every chain")
        return step_size[:, None]
    return real(step_size, "step_size", above=0)


def hamiltonian(log_prob: torch.Tensor, momentum: torch.Tensor) -> torch.Tensor:
    """H(theta, rho) = U(theta) + |rho|^2 / 2 = -log pi(theta) + |rho|^2 / 2, for every chain.

    Args:
        log_prob: log pi(theta) (unnormalised is fine: a constant shifts every H alike), ``[chains]``.
        momentum: rho, ``[chains, dim]``.

    Returns:
        ``[chains]``.
    """
    return -log_prob + 0.5 * (momentum**2).sum(-1)


def log_prob_and_grad(log_prob: LogProb, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(theta) and its gradient by autograd, for every chain at once.

    If ``theta`` already requires grad (for example inside ``torch.autograd.functional.jacobian``),
    the gradient keeps its graph (``create_graph=True``), so a map built from it, such as the
    leapfrog, can itself be differentiated.

    Args:
        log_prob: ``theta [chains, dim] -> [chains]``, unnormalised log density.
        theta: ``[chains, dim]``.

    Returns:
        ``(log_prob [chains], grad [chains, dim])``.
    """
    if not isinstance(theta, torch.Tensor) or theta.dim() != 2:
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"theta must have shape [chains, dim], got {shape}")
    differentiable = theta.requires_grad and torch.is_grad_enabled()
    with torch.enable_grad():
        x = theta if differentiable else theta.detach().requires_grad_(True)
        lp = log_prob(x)
        if lp.shape != theta.shape[:1]:
            raise ValueError(f"log_prob must return shape [chains] = {tuple(theta.shape[:1])}, got {tuple(lp.shape)}")
        (grad,) = torch.autograd.grad(lp.sum(), x, create_graph=differentiable)
    return (lp, grad) if differentiable else (lp.detach(), grad.detach())


def leapfrog(theta: torch.Tensor, momentum: torch.Tensor, grad_log_prob: Callable[[torch.Tensor], torch.Tensor],
             step_size, n_leapfrog: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_leapfrog`` leapfrog steps of Hamiltonian dynamics with unit mass: dtheta/dt = rho, drho/dt = -grad U.

    One step of size eps (Neal, 2011, eq. 5.18-5.20), with -grad U = grad log pi:
    rho_{1/2} = rho + (eps/2) grad log pi(theta); theta' = theta + eps rho_{1/2};
    rho' = rho_{1/2} + (eps/2) grad log pi(theta'). The half steps of consecutive steps are merged
    into one full momentum step. The map is volume-preserving and reversible (negate rho, run
    again, negate rho: back to the start).

    Args:
        theta: positions ``[chains, dim]``.
        momentum: momenta rho ``[chains, dim]``.
        grad_log_prob: ``theta [chains, dim] -> grad log pi(theta) [chains, dim]``.
        step_size: eps > 0, a number or one per chain ``[chains]``.
        n_leapfrog: L >= 1.

    Returns:
        ``(theta, momentum)`` after L steps, each ``[chains, dim]``.
    """
    if not isinstance(theta, torch.Tensor) or theta.dim() != 2 or not isinstance(momentum, torch.Tensor) \
            or momentum.shape != theta.shape:
        shapes = [tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__ for x in (theta, momentum)]
        raise ValueError(f"theta and momentum must both have shape [chains, dim], got {shapes[0]} and {shapes[1]}")
    eps = _check_step_size(step_size, theta)
    n_leapfrog = integer(n_leapfrog, "n_leapfrog", 1)
    rho = momentum + 0.5 * eps * grad_log_prob(theta)  # rho_{1/2}
    for step in range(n_leapfrog):
        theta = theta + eps * rho  # theta' = theta + eps rho_{1/2}
        weight = eps if step < n_leapfrog - 1 else 0.5 * eps  # merged half steps
        rho = rho + weight * grad_log_prob(theta)  # rho' (and the next rho_{1/2})
    return theta, rho
