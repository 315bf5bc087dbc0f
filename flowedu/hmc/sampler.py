"""Chapter: book/hmc.md — the HMC transition, vectorised over chains, and the sampler built from it.

A transition for every chain at once: draw rho ~ N(0, I), run the leapfrog, compute the energy change
Delta H = H(theta', rho') - H(theta, rho) *before* anything changes, accept with probability
min(1, exp(-Delta H)) (a rejected chain repeats its state), and flag a divergence when Delta H is not
finite or exceeds ``MAX_DELTA_ENERGY``. Also here: the wrong "accepted-only" sampler the chapter
studies, and the acceptance probability alpha(theta) that explains its bias.

References: Neal (2011), arXiv:1206.1901 (HMC, random step sizes, section 5.4.2.2); Hoffman & Gelman
(2014), JMLR 15 (dual averaging); Stan Reference Manual, "Divergent transitions" (threshold 1000).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from tqdm.auto import trange

from flowedu.hmc.adaptation import DualAveraging
from flowedu.hmc.integrator import LogProb, hamiltonian, leapfrog, log_prob_and_grad
from flowedu.validate import integer, real

__all__ = ["MAX_DELTA_ENERGY", "Acceptance", "HMCResult", "HMCStep", "acceptance_probability", "hmc", "hmc_accept",
           "hmc_accepted_only", "hmc_step"]

MAX_DELTA_ENERGY = 1000.0
"""A proposal with Delta H = H(new) - H(current) above this (or not finite) is divergent (Stan's value)."""


def _check_state(theta: torch.Tensor, name: str = "theta") -> None:
    """A floating tensor ``[chains, dim]`` with chains, dim >= 1."""
    if not isinstance(theta, torch.Tensor) or theta.dim() != 2 or theta.shape[0] < 1 or theta.shape[1] < 1:
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"{name} must be a tensor of shape [chains, dim] with chains, dim >= 1, got {shape}")


class Acceptance(NamedTuple):
    """What :func:`hmc_accept` returns; each field has one entry per chain.

    theta: next states ``[chains, dim]``; log_prob: log pi of them ``[chains]``; accepted: ``[chains]``
    bool; accept_prob: min(1, exp(-Delta H)) ``[chains]`` (0 for a non-finite proposal);
    delta_energy: Delta H = H(theta', rho') - H(theta, rho) ``[chains]`` (+inf for a non-finite proposal).
    """

    theta: torch.Tensor
    log_prob: torch.Tensor
    accepted: torch.Tensor
    accept_prob: torch.Tensor
    delta_energy: torch.Tensor


def hmc_accept(theta: torch.Tensor, log_prob: torch.Tensor, momentum: torch.Tensor, theta_prop: torch.Tensor,
               log_prob_prop: torch.Tensor, momentum_prop: torch.Tensor, log_u: torch.Tensor) -> Acceptance:
    """The Metropolis accept/reject step of HMC for every chain at once, in log space.

    With H(theta, rho) = -log pi(theta) + |rho|^2 / 2 and Delta H = H(theta', rho') - H(theta, rho),
    the proposal is accepted when log u < -Delta H, i.e. with probability min(1, exp(-Delta H)). A
    rejected chain **repeats its current state**: that repetition is what makes pi invariant. A
    non-finite proposal (the leapfrog diverged) is rejected.

    Args:
        theta, momentum: current state and the momentum drawn for it, ``[chains, dim]``.
        log_prob: log pi(theta), ``[chains]``.
        theta_prop, momentum_prop: the end of the leapfrog trajectory, ``[chains, dim]``.
        log_prob_prop: log pi(theta'), ``[chains]``.
        log_u: log of uniform(0, 1) draws, ``[chains]``.

    Returns:
        :class:`Acceptance` ``(theta, log_prob, accepted, accept_prob, delta_energy)``.
    """
    # Name each quantity once, before the state changes.
    energy_current = hamiltonian(log_prob, momentum)
    energy_proposal = hamiltonian(log_prob_prop, momentum_prop)
    delta_energy = energy_proposal - energy_current
    finite = torch.isfinite(delta_energy) & torch.isfinite(theta_prop).all(-1)
    delta_energy = torch.where(finite, delta_energy, torch.full_like(delta_energy, math.inf))
    accepted = log_u < -delta_energy
    theta_next = torch.where(accepted[:, None], theta_prop, theta)
    log_prob_next = torch.where(accepted, log_prob_prop, log_prob)
    return Acceptance(theta_next, log_prob_next, accepted, (-delta_energy).clamp(max=0).exp(), delta_energy)


class HMCStep(NamedTuple):
    """What :func:`hmc_step` returns: :class:`Acceptance`'s fields and ``divergent [chains]`` bool."""

    theta: torch.Tensor
    log_prob: torch.Tensor
    accepted: torch.Tensor
    accept_prob: torch.Tensor
    delta_energy: torch.Tensor
    divergent: torch.Tensor


class _Gradient:
    """grad log pi for the leapfrog: by autograd (remembering log pi at the last point, the proposal,
    to save one call), or a hand-derived ``grad_log_prob``."""

    def __init__(self, log_prob: LogProb, grad_log_prob: Callable | None = None):
        self.log_prob, self.grad_log_prob, self.last_log_prob = log_prob, grad_log_prob, None

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        if self.grad_log_prob is not None:
            return self.grad_log_prob(theta)
        self.last_log_prob, grad = log_prob_and_grad(self.log_prob, theta)
        return grad

    def log_prob_at_last(self, theta: torch.Tensor) -> torch.Tensor:
        if self.grad_log_prob is None:
            return self.last_log_prob
        with torch.no_grad():
            return self.log_prob(theta)


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn(like.shape, device=like.device, dtype=like.dtype)
    return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def _rand(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = like.device if generator is None else generator.device
    return torch.rand(n, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _step(theta, lp, grad_fn: _Gradient, eps, n_leapfrog: int, generator, max_delta_energy: float) -> HMCStep:
    rho = _randn(theta, generator)  # 1. fresh momentum
    theta_prop, rho_prop = leapfrog(theta, rho, grad_fn, eps, n_leapfrog)  # 2. the trajectory
    lp_prop = grad_fn.log_prob_at_last(theta_prop)
    log_u = torch.log(_rand(len(theta), theta, generator))
    accept = hmc_accept(theta, lp, rho, theta_prop, lp_prop, rho_prop, log_u)  # 3.-4. Delta H, then accept
    divergent = accept.delta_energy > max_delta_energy  # +inf for a non-finite proposal
    return HMCStep(*accept, divergent)


def hmc_step(log_prob: LogProb, theta: torch.Tensor, log_prob_theta: torch.Tensor, step_size, n_leapfrog: int, *,
             generator: torch.Generator | None = None, grad_log_prob: Callable | None = None,
             max_delta_energy: float = MAX_DELTA_ENERGY) -> HMCStep:
    """One HMC transition for every chain: fresh momentum, ``n_leapfrog`` leapfrog steps, accept/reject.

    The energy change Delta H = H(theta', rho') - H(theta, rho) is computed once, before the state
    changes; the transition is *divergent* when Delta H > ``max_delta_energy`` or is not finite
    (checked at the end of the trajectory only; Stan checks every leapfrog step). A divergent
    proposal is always rejected (its acceptance probability is below e^-1000).

    Args:
        log_prob: ``theta [chains, dim] -> log pi(theta) [chains]``.
        theta: current states ``[chains, dim]``.
        log_prob_theta: log pi(theta) ``[chains]``.
        step_size: eps > 0, a number or one per chain ``[chains]``.
        n_leapfrog: L >= 1.
        generator: a ``torch.Generator`` for the momenta and the uniforms.
        grad_log_prob: optional hand-derived gradient ``[chains, dim] -> [chains, dim]``.
        max_delta_energy: the divergence threshold (> 0).

    Returns:
        :class:`HMCStep` ``(theta, log_prob, accepted, accept_prob, delta_energy, divergent)``.
    """
    _check_state(theta)
    if not isinstance(log_prob_theta, torch.Tensor) or log_prob_theta.shape != theta.shape[:1]:
        raise ValueError(f"log_prob_theta must be a tensor of shape [chains] = {tuple(theta.shape[:1])}")
    return _step(theta, log_prob_theta, _Gradient(log_prob, grad_log_prob), step_size,
                 integer(n_leapfrog, "n_leapfrog", 1), generator, real(max_delta_energy, "max_delta_energy",
                                                                                   above=0))


class HMCResult(NamedTuple):
    """What :func:`hmc` returns.

    samples: ``[chains, draws, dim]``; accept_rate: ``[chains]``, fraction of accepted proposals after
    warm-up; step_size: ``[chains]``, each chain's eps after warm-up; n_divergent: ``[chains]``,
    post-warm-up divergent transitions (Delta H > ``MAX_DELTA_ENERGY`` or not finite); divergent:
    ``[chains, draws]`` bool, True where the transition that produced the draw was divergent (the
    draw then repeats the state the divergent trajectory started from); accept_prob: ``[chains]``,
    mean acceptance probability min(1, exp(-Delta H)) after warm-up (the statistic dual averaging
    steers, whose mean the accept rate estimates).
    """

    samples: torch.Tensor
    accept_rate: torch.Tensor
    step_size: torch.Tensor
    n_divergent: torch.Tensor
    divergent: torch.Tensor
    accept_prob: torch.Tensor


def _start(log_prob: LogProb, init: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _check_state(init, "init")
    if not torch.isfinite(init).all():
        raise ValueError("init must be finite")
    theta = init.detach().clone()
    with torch.no_grad():
        lp = log_prob(theta)
    if lp.shape != theta.shape[:1]:
        raise ValueError(f"log_prob must return shape [chains] = {tuple(theta.shape[:1])}, got {tuple(lp.shape)}")
    bad = (~torch.isfinite(lp)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"log_prob(init) must be finite for every chain; chains {bad[:10]} give "
                         f"{lp[bad[:10]].tolist()}")
    return theta, lp.detach()


def _check_hmc_args(step_size, n_leapfrog, n_samples, n_warmup, jitter):
    step_size = real(step_size, "step_size", above=0)
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    return (step_size, integer(n_leapfrog, "n_leapfrog", 1), integer(n_samples, "n_samples", 1),
            integer(n_warmup, "n_warmup", 0))


def hmc(log_prob: LogProb, init: torch.Tensor, step_size: float, n_leapfrog: int, n_samples: int,
        n_warmup: int = 500, adapt_step_size: bool = True, target_accept: float = 0.8, jitter: float = 0.1,
        generator: torch.Generator | None = None, grad_log_prob: Callable | None = None,
        progress: bool = False) -> HMCResult:
    """Hamiltonian Monte Carlo (Neal, 2011) on many chains at once, gradients by autograd.

    Each iteration is one :func:`hmc_step`: rho ~ N(0, I) for every chain, ``n_leapfrog`` leapfrog
    steps, accept with probability min(1, exp(-Delta H)); a rejected chain repeats its current state.
    During the ``n_warmup`` warm-up iterations each chain's step size is tuned by dual averaging
    (Hoffman & Gelman, 2014) towards a mean acceptance probability of ``target_accept``, as Stan does
    per chain; warm-up draws are discarded. ``jitter`` draws each chain's step size uniformly from
    eps * [1 - jitter, 1 + jitter] at every iteration, which randomises the path length eps * L
    (Neal, 2011, section 5.4.2.2).

    Args:
        log_prob: ``theta [chains, dim] -> log pi(theta) [chains]``, up to a constant, differentiable.
        init: starting points ``[chains, dim]``; ``log_prob(init)`` must be finite.
        step_size: eps > 0 (the initial eps_0 when adapting).
        n_leapfrog: L >= 1 leapfrog steps per iteration.
        n_samples: draws kept per chain (>= 1).
        n_warmup: warm-up iterations (>= 0).
        adapt_step_size: tune eps during warm-up.
        target_accept: delta in (0, 1) for dual averaging.
        jitter: in [0, 1); 0 keeps eps fixed.
        generator: a ``torch.Generator`` for reproducible runs.
        grad_log_prob: optional hand-derived gradient ``[chains, dim] -> [chains, dim]`` (check it
            against autograd first); by default the gradient is taken by autograd.
        progress: show a ``tqdm`` bar.

    Returns:
        :class:`HMCResult` with ``samples [chains, n_samples, dim]``.
    """
    step_size, n_leapfrog, n_samples, n_warmup = _check_hmc_args(step_size, n_leapfrog, n_samples, n_warmup, jitter)
    theta, lp = _start(log_prob, init)
    chains = len(theta)
    eps = torch.full((chains,), step_size, device=theta.device, dtype=theta.dtype)
    adapter = DualAveraging(eps, target_accept)
    grad_fn = _Gradient(log_prob, grad_log_prob)
    samples = torch.empty(chains, n_samples, theta.shape[1], device=theta.device, dtype=theta.dtype)
    divergent = torch.zeros(chains, n_samples, device=theta.device, dtype=torch.bool)
    n_accept = torch.zeros(chains, device=theta.device, dtype=torch.long)
    sum_accept_prob = torch.zeros(chains, device=theta.device, dtype=theta.dtype)
    for it in trange(n_warmup + n_samples, desc="HMC", disable=not progress):
        eps_chain = eps * (1 + jitter * (2 * _rand(chains, theta, generator) - 1)) if jitter > 0 else eps
        step = _step(theta, lp, grad_fn, eps_chain, n_leapfrog, generator, MAX_DELTA_ENERGY)
        theta, lp = step.theta, step.log_prob
        if it < n_warmup:
            if adapt_step_size:
                eps = adapter.update(step.accept_prob).to(theta.dtype)
                if it == n_warmup - 1:
                    eps = adapter.final.to(theta.dtype)
            continue
        samples[:, it - n_warmup] = theta
        divergent[:, it - n_warmup] = step.divergent
        n_accept += step.accepted
        sum_accept_prob += step.accept_prob
    return HMCResult(samples, n_accept.to(theta.dtype) / n_samples, eps, divergent.sum(1), divergent,
                     sum_accept_prob / n_samples)


def hmc_accepted_only(log_prob: LogProb, init: torch.Tensor, step_size: float, n_leapfrog: int, n_samples: int,
                      n_warmup: int = 500, generator: torch.Generator | None = None,
                      grad_log_prob: Callable | None = None, return_chain: bool = False):
    """THE WRONG SAMPLER, kept to show the mistake: HMC that records only accepted proposals.

    It runs the same transitions as :func:`hmc` (fixed step size, no jitter) for ``n_warmup``
    burn-in and then ``n_samples`` iterations, but in the second phase appends a state to the output
    only when a proposal is accepted and records nothing on a rejection. Each distinct state is then
    counted once instead of once per iteration the chain holds it, so the output samples
    pi(theta) alpha(theta) / E_pi[alpha] (the jump chain; ``book/hmc.md``), not pi: regions where
    proposals are often rejected (here: the narrow, curved tails of the banana) are under-represented
    and the draws are **biased**.

    Args: as :func:`hmc`, and ``return_chain``: also return which chain recorded each draw.

    Returns:
        ``[n_accepted, dim]``: the accepted proposals of all chains, pooled (biased; do not use); with
        ``return_chain``, the pair ``(draws, chain [n_accepted])`` (chain indices, for error bars
        from the spread of the chains' means).
    """
    step_size, n_leapfrog, n_samples, n_warmup = _check_hmc_args(step_size, n_leapfrog, n_samples, n_warmup, 0.0)
    theta, lp = _start(log_prob, init)
    grad_fn = _Gradient(log_prob, grad_log_prob)
    kept, chain = [], []
    for it in range(n_warmup + n_samples):
        step = _step(theta, lp, grad_fn, step_size, n_leapfrog, generator, MAX_DELTA_ENERGY)
        theta, lp = step.theta, step.log_prob
        if it >= n_warmup:
            kept.append(theta[step.accepted])  # the mistake: a rejection records nothing
            chain.append(step.accepted.nonzero().flatten())
    return (torch.cat(kept), torch.cat(chain)) if return_chain else torch.cat(kept)


def acceptance_probability(log_prob: LogProb, points: torch.Tensor, step_size: float, n_leapfrog: int,
                           n_momenta: int = 64, generator: torch.Generator | None = None,
                           grad_log_prob: Callable | None = None, batch: int = 262_144) -> torch.Tensor:
    """Monte Carlo estimate of alpha(theta) = E_rho[min(1, exp(-Delta H))] at each point.

    alpha(theta) is the probability that an HMC iteration (fixed eps, L) started at theta moves. For
    each point, ``n_momenta`` momenta rho ~ N(0, I) are drawn and all trajectories run as one batch
    (in chunks of ``batch`` trajectories); a non-finite end counts as a rejection.

    Args:
        log_prob: ``theta [n, dim] -> [n]``.
        points: ``[n_points, dim]``.
        step_size: eps > 0.
        n_leapfrog: L >= 1.
        n_momenta: momenta per point (>= 1).
        generator: a ``torch.Generator`` (CPU or on the points' device).
        grad_log_prob: optional hand-derived gradient (autograd otherwise).
        batch: trajectories per chunk (>= 1).

    Returns:
        ``[n_points]``, each in [0, 1].
    """
    _check_state(points, "points")
    step_size = real(step_size, "step_size", above=0)
    n_leapfrog = integer(n_leapfrog, "n_leapfrog", 1)
    n_momenta, batch = integer(n_momenta, "n_momenta", 1), integer(batch, "batch", 1)
    grad_fn = _Gradient(log_prob, grad_log_prob)
    starts = points.detach().repeat(n_momenta, 1)  # momentum k of point i sits at row k * n_points + i
    probs = []
    for chunk in starts.split(batch):
        rho = _randn(chunk, generator)
        with torch.no_grad():
            lp = log_prob(chunk)
        theta_end, rho_end = leapfrog(chunk, rho, grad_fn, step_size, n_leapfrog)
        delta_energy = hamiltonian(grad_fn.log_prob_at_last(theta_end), rho_end) - hamiltonian(lp, rho)
        delta_energy = torch.where(torch.isfinite(delta_energy), delta_energy, torch.full_like(delta_energy, math.inf))
        probs.append((-delta_energy).clamp(max=0).exp())
    return torch.cat(probs).reshape(n_momenta, len(points)).mean(0)
