"""Chapter: book/hmc.md — step-size adaptation by dual averaging (Hoffman & Gelman, 2014).

Reference: Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15, section 3.2.1 and Algorithm 5.
"""

from __future__ import annotations

import math

import torch

from flowedu.validate import real

__all__ = ["DualAveraging"]


class DualAveraging:
    """Dual-averaging step-size adaptation (Hoffman & Gelman, 2014, Algorithm 5 and eq. 6), one per chain.

    Warm-up iteration j >= 1 runs with eps_{j-1} and yields the acceptance statistic alpha_j (one per
    chain); then Hbar_j = (1 - 1/(j + t0)) Hbar_{j-1} + (delta - alpha_j)/(j + t0),
    log eps_j = mu - sqrt(j)/gamma * Hbar_j, log epsbar_j = j^-kappa log eps_j + (1 - j^-kappa) log epsbar_{j-1},
    with mu = log(10 eps_0), Hbar_0 = 0, log epsbar_0 = 0. Unrolled,
    Hbar_j = sum_{i <= j} (delta - alpha_i) / (j + t0): every warm-up iteration, the first ones
    included, weighs the same. Sample with ``eps`` during warm-up and with ``final`` afterwards.

    Args:
        step_size: the initial eps_0 > 0, a number or a tensor ``[chains]``.
        target_accept: delta in (0, 1); 0.65 in the paper, 0.8 in Stan.
        gamma, t0, kappa: the paper's constants (0.05, 10, 0.75).
    """

    def __init__(self, step_size, target_accept: float = 0.8, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75):
        if not 0 < target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
        for name, value in (("gamma", gamma), ("t0", t0)):
            real(value, name, above=0)
        if not 0.5 < kappa <= 1:
            raise ValueError(f"kappa must be in (0.5, 1], got {kappa}")
        step_size = torch.as_tensor(step_size, dtype=torch.float64)
        if not (torch.isfinite(step_size).all() and (step_size > 0).all()):
            raise ValueError(f"step_size must be finite and > 0, got {step_size}")
        self.mu, self.delta, self.gamma, self.t0, self.kappa = (10 * step_size).log(), target_accept, gamma, t0, kappa
        self.j, self.log_eps = 0, step_size.log()
        self.h_bar, self.log_eps_bar = torch.zeros_like(step_size), torch.zeros_like(step_size)

    def update(self, accept_stat: torch.Tensor) -> torch.Tensor:
        """Feed alpha_j, one acceptance probability per chain; return the next eps."""
        self.j += 1
        w = 1.0 / (self.j + self.t0)
        alpha = torch.as_tensor(accept_stat, dtype=torch.float64, device=self.h_bar.device)
        self.h_bar = (1 - w) * self.h_bar + w * (self.delta - alpha)  # Hbar_j
        # log eps_j
        self.log_eps = self.mu - math.sqrt(self.j) / self.gamma * self.h_bar
        eta = self.j ** (-self.kappa)
        # log epsbar_j
        self.log_eps_bar = eta * self.log_eps + (1 - eta) * self.log_eps_bar
        return self.log_eps.exp()

    @property
    def eps(self) -> torch.Tensor:
        """The step size to use in the next warm-up iteration."""
        return self.log_eps.exp()

    @property
    def final(self) -> torch.Tensor:
        """The step size to sample with after warm-up: epsbar (eps before any update)."""
        return self.log_eps_bar.exp() if self.j else self.eps
