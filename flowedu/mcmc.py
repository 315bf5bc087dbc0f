"""Hamiltonian Monte Carlo, vectorised over chains, and its diagnostics (``book/hmc.md``).

Notation (``book/hmc.md``): target density pi(theta) = exp(-U(theta)) / Z with potential
U = -log pi, momentum p ~ N(0, I), Hamiltonian H(theta, p) = U(theta) + |p|^2 / 2. Every chain is a
row of a ``[chains, dim]`` tensor, so one leapfrog step moves all chains at once and the
accept/reject step is a single ``torch.where``.

References: Neal (2011), "MCMC using Hamiltonian dynamics" (leapfrog, the Metropolis correction,
random step sizes); Hoffman & Gelman (2014), JMLR 15, Algorithm 5 (dual averaging); Geyer (1992)
(initial monotone sequence); Gelman et al., BDA3 section 11.4, and Vehtari et al. (2021) (split-R-hat).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import trange

__all__ = ["DualAveraging", "HMCResult", "ess", "hmc", "hmc_accept", "hmc_accepted_only", "leapfrog",
           "log_prob_and_grad", "split_rhat"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


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
    if theta.dim() != 2:
        raise ValueError(f"theta must have shape [chains, dim], got {tuple(theta.shape)}")
    differentiable = theta.requires_grad and torch.is_grad_enabled()
    with torch.enable_grad():
        x = theta if differentiable else theta.detach().requires_grad_(True)
        lp = log_prob(x)
        if lp.shape != theta.shape[:1]:
            raise ValueError(f"log_prob must return shape [chains] = {tuple(theta.shape[:1])}, got {tuple(lp.shape)}")
        (grad,) = torch.autograd.grad(lp.sum(), x, create_graph=differentiable)
    return (lp, grad) if differentiable else (lp.detach(), grad.detach())


def _check_step_size(step_size, theta: torch.Tensor) -> torch.Tensor | float:
    if isinstance(step_size, torch.Tensor) and step_size.dim() > 0:
        if step_size.shape != theta.shape[:1]:
            raise ValueError(f"step_size must be a number or have shape [chains] = {tuple(theta.shape[:1])}, "
                             f"got {tuple(step_size.shape)}")
        if not (torch.isfinite(step_size).all() and (step_size > 0).all()):
            raise ValueError("step_size must be finite and > 0 for every chain")
        return step_size[:, None]
    value = float(step_size)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"step_size must be finite and > 0, got {value}")
    return value


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def leapfrog(theta: torch.Tensor, momentum: torch.Tensor, grad_log_prob: Callable[[torch.Tensor], torch.Tensor],
             step_size, n_leapfrog: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_leapfrog`` leapfrog steps of Hamiltonian dynamics with unit mass, dtheta/dt = p, dp/dt = grad log pi.

    Each step is a half step in momentum, a full step in position and a half step in momentum
    (Neal, 2011, eq. 5.18-5.20); consecutive half steps are merged:
    p <- p + (eps/2) grad log pi(theta); theta <- theta + eps p; p <- p + (eps/2) grad log pi(theta).
    The map is volume-preserving and reversible (negate p, run again, negate p: back to the start).

    Args:
        theta: positions ``[chains, dim]``.
        momentum: momenta ``[chains, dim]``.
        grad_log_prob: ``theta [chains, dim] -> grad log pi(theta) [chains, dim]``.
        step_size: eps > 0, a number or one per chain ``[chains]``.
        n_leapfrog: L >= 1.

    Returns:
        ``(theta, momentum)`` after L steps, each ``[chains, dim]``.
    """
    if theta.dim() != 2 or momentum.shape != theta.shape:
        raise ValueError(f"theta and momentum must both have shape [chains, dim], got {tuple(theta.shape)} "
                         f"and {tuple(momentum.shape)}")
    eps = _check_step_size(step_size, theta)
    n_leapfrog = _check_count(n_leapfrog, "n_leapfrog", 1)
    p = momentum + 0.5 * eps * grad_log_prob(theta)
    for step in range(n_leapfrog):
        theta = theta + eps * p
        weight = eps if step < n_leapfrog - 1 else 0.5 * eps  # the last momentum update is a half step
        p = p + weight * grad_log_prob(theta)
    return theta, p


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


class DualAveraging:
    """Dual-averaging step-size adaptation (Hoffman & Gelman, 2014, Algorithm 5 and eq. 6), one per chain.

    After iteration m with acceptance statistic alpha_m (one per chain):
    Hbar_m = (1 - 1/(m + t0)) Hbar_{m-1} + (delta - alpha_m)/(m + t0),
    log eps_m = mu - sqrt(m)/gamma * Hbar_m, log epsbar_m = m^-kappa log eps_m + (1 - m^-kappa) log epsbar_{m-1},
    with mu = log(10 eps_0). Sample with ``eps`` during warm-up and with ``final`` afterwards.

    Args:
        step_size: the initial eps_0 > 0, a number or a tensor ``[chains]``.
        target_accept: delta in (0, 1); 0.65 in the paper, 0.8 in Stan.
    """

    def __init__(self, step_size, target_accept: float = 0.8, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75):
        if not 0 < target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
        step_size = torch.as_tensor(step_size, dtype=torch.float64)
        if not (torch.isfinite(step_size).all() and (step_size > 0).all()):
            raise ValueError(f"step_size must be finite and > 0, got {step_size}")
        self.mu, self.delta, self.gamma, self.t0, self.kappa = (10 * step_size).log(), target_accept, gamma, t0, kappa
        self.m, self.log_eps = 0, step_size.log()
        self.h_bar, self.log_eps_bar = torch.zeros_like(step_size), torch.zeros_like(step_size)

    def update(self, accept_stat: torch.Tensor) -> torch.Tensor:
        """Feed the acceptance probabilities of one iteration; returns the next eps."""
        self.m += 1
        w = 1.0 / (self.m + self.t0)
        alpha = torch.as_tensor(accept_stat, dtype=torch.float64, device=self.h_bar.device)
        self.h_bar = (1 - w) * self.h_bar + w * (self.delta - alpha)
        self.log_eps = self.mu - math.sqrt(self.m) / self.gamma * self.h_bar
        eta = self.m ** (-self.kappa)
        self.log_eps_bar = eta * self.log_eps + (1 - eta) * self.log_eps_bar
        return self.log_eps.exp()

    @property
    def eps(self) -> torch.Tensor:
        return self.log_eps.exp()

    @property
    def final(self) -> torch.Tensor:
        return self.log_eps_bar.exp() if self.m else self.eps


class HMCResult(NamedTuple):
    """What :func:`hmc` returns.

    samples: ``[chains, draws, dim]``; accept_rate: ``[chains]``, fraction of accepted proposals after
    warm-up; step_size: ``[chains]``, each chain's eps after warm-up; n_divergent: ``[chains]``,
    post-warm-up proposals whose energy error exceeded 1000 (or was not finite).
    """

    samples: torch.Tensor
    accept_rate: torch.Tensor
    step_size: torch.Tensor
    n_divergent: torch.Tensor


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn(like.shape, device=like.device, dtype=like.dtype)
    return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def _rand(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = like.device if generator is None else generator.device
    return torch.rand(n, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _start(log_prob: LogProb, init: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(init, torch.Tensor) or init.dim() != 2 or init.shape[0] < 1 or init.shape[1] < 1:
        shape = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
        raise ValueError(f"init must be a tensor of shape [chains, dim] with chains, dim >= 1, got {shape}")
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


def hmc_accept(theta: torch.Tensor, log_prob: torch.Tensor, momentum: torch.Tensor, theta_prop: torch.Tensor,
               log_prob_prop: torch.Tensor, momentum_prop: torch.Tensor, log_u: torch.Tensor):
    """The Metropolis accept/reject step of HMC for every chain at once, in log space.

    With H(theta, p) = -log pi(theta) + |p|^2 / 2, the proposal is accepted when
    log u < H(theta, p) - H(theta', p'), i.e. with probability min(1, exp(H - H')). A rejected chain
    **repeats its current state**: that repetition is what makes pi invariant. A non-finite
    proposal (the leapfrog diverged) is rejected.

    Args:
        theta, momentum: current state and the momentum drawn for it, ``[chains, dim]``.
        log_prob: log pi(theta), ``[chains]``.
        theta_prop, momentum_prop: the end of the leapfrog trajectory, ``[chains, dim]``.
        log_prob_prop: log pi(theta'), ``[chains]``.
        log_u: log of uniform(0, 1) draws, ``[chains]``.

    Returns:
        ``(theta_next [chains, dim], log_prob_next [chains], accepted [chains] bool,
        accept_prob [chains])``.
    """
    log_ratio = (log_prob_prop - 0.5 * (momentum_prop**2).sum(-1)) - (log_prob - 0.5 * (momentum**2).sum(-1))
    finite = torch.isfinite(log_ratio) & torch.isfinite(theta_prop).all(-1)
    log_ratio = torch.where(finite, log_ratio, torch.full_like(log_ratio, -math.inf))
    accepted = log_u < log_ratio
    theta_next = torch.where(accepted[:, None], theta_prop, theta)
    log_prob_next = torch.where(accepted, log_prob_prop, log_prob)
    return theta_next, log_prob_next, accepted, log_ratio.clamp(max=0).exp()


def _hmc_step(theta, lp, grad_fn: _Gradient, eps, n_leapfrog: int, generator):
    """One HMC transition for all chains: fresh momentum, leapfrog, accept/reject. Also flags divergences."""
    p0 = _randn(theta, generator)
    theta_new, p_new = leapfrog(theta, p0, grad_fn, eps, n_leapfrog)
    lp_new = grad_fn.log_prob_at_last(theta_new)
    log_u = torch.log(_rand(len(theta), theta, generator))
    theta, lp, accept, accept_prob = hmc_accept(theta, lp, p0, theta_new, lp_new, p_new, log_u)
    energy_error = (lp_new - 0.5 * (p_new**2).sum(1)) - (lp - 0.5 * (p0**2).sum(1))
    divergent = ~torch.isfinite(energy_error) | (energy_error < -1000)
    return theta, lp, accept, accept_prob, theta_new, divergent


def _check_hmc_args(step_size, n_leapfrog, n_samples, n_warmup, jitter):
    step_size = float(step_size)
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be finite and > 0, got {step_size}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    return (step_size, _check_count(n_leapfrog, "n_leapfrog", 1), _check_count(n_samples, "n_samples", 1),
            _check_count(n_warmup, "n_warmup", 0))


def hmc(log_prob: LogProb, init: torch.Tensor, step_size: float, n_leapfrog: int, n_samples: int,
        n_warmup: int = 500, adapt_step_size: bool = True, target_accept: float = 0.8, jitter: float = 0.1,
        generator: torch.Generator | None = None, grad_log_prob: Callable | None = None,
        progress: bool = False) -> HMCResult:
    """Hamiltonian Monte Carlo (Neal, 2011) on many chains at once, gradients by autograd.

    Each iteration draws p ~ N(0, I) for every chain, runs ``n_leapfrog`` leapfrog steps and accepts
    the proposal (theta', p') with probability min(1, exp(H(theta, p) - H(theta', p'))); a rejected
    chain repeats its current state. During the ``n_warmup`` warm-up iterations each chain's step
    size is tuned by dual averaging (Hoffman & Gelman, 2014) towards an acceptance probability of
    ``target_accept``, as Stan does per chain; warm-up draws are discarded. ``jitter`` draws each chain's step size
    uniformly from eps * [1 - jitter, 1 + jitter] at every iteration, which randomises the path length
    eps * L (Neal, 2011, section 5.4.2.2).

    Args:
        log_prob: ``theta [chains, dim] -> log pi(theta) [chains]``, up to a constant, differentiable.
        init: starting points ``[chains, dim]``; ``log_prob(init)`` must be finite.
        step_size: eps > 0 (the initial value when adapting).
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
    n_accept = torch.zeros(chains, device=theta.device, dtype=torch.long)
    n_divergent = torch.zeros(chains, device=theta.device, dtype=torch.long)
    for it in trange(n_warmup + n_samples, desc="HMC", disable=not progress):
        eps_chain = eps * (1 + jitter * (2 * _rand(chains, theta, generator) - 1)) if jitter > 0 else eps
        theta, lp, accept, accept_prob, _, divergent = _hmc_step(theta, lp, grad_fn, eps_chain, n_leapfrog, generator)
        if it < n_warmup:
            if adapt_step_size:
                eps = adapter.update(accept_prob).to(theta.dtype)
                if it == n_warmup - 1:
                    eps = adapter.final.to(theta.dtype)
            continue
        samples[:, it - n_warmup] = theta
        n_accept += accept
        n_divergent += divergent
    return HMCResult(samples, n_accept.to(theta.dtype) / n_samples, eps, n_divergent)


def hmc_accepted_only(log_prob: LogProb, init: torch.Tensor, step_size: float, n_leapfrog: int, n_samples: int,
                      n_warmup: int = 500, generator: torch.Generator | None = None,
                      grad_log_prob: Callable | None = None) -> torch.Tensor:
    """THE WRONG SAMPLER, kept to show the mistake: HMC that records only accepted proposals.

    It runs the same transitions as :func:`hmc` (fixed step size, no jitter) for ``n_warmup``
    burn-in and then ``n_samples`` iterations, but in the second phase appends a state to the output
    only when a proposal is accepted and records nothing on a rejection. Each distinct state is then
    counted once instead of once per iteration the chain holds it; regions where proposals are often
    rejected (here: the narrow, curved tails of the banana) are under-represented and the draws are
    **biased**.

    Args: as :func:`hmc`.

    Returns:
        ``[n_accepted, dim]``: the accepted proposals of all chains, pooled (biased; do not use).
    """
    step_size, n_leapfrog, n_samples, n_warmup = _check_hmc_args(step_size, n_leapfrog, n_samples, n_warmup, 0.0)
    theta, lp = _start(log_prob, init)
    grad_fn = _Gradient(log_prob, grad_log_prob)
    kept = []
    for it in range(n_warmup + n_samples):
        theta, lp, accept, *_ = _hmc_step(theta, lp, grad_fn, step_size, n_leapfrog, generator)
        if it >= n_warmup:
            kept.append(theta[accept])  # the mistake: a rejection records nothing
    return torch.cat(kept)


def _as_draws(samples, name: str = "samples") -> np.ndarray:
    x = samples.detach().cpu().double().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, float)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape [chains, draws, dim], got {x.shape}")
    if x.shape[1] < 4:
        raise ValueError(f"{name} needs at least 4 draws per chain, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance along axis 1 of ``[chains, draws, dim]`` by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n


def ess(samples) -> np.ndarray:
    """Effective sample size per coordinate, with Geyer's initial monotone sequence (Geyer, 1992).

    Multi-chain autocorrelations as in Stan (Vehtari et al., 2021, eq. 10):
    rho_t = 1 - (W - mean_m acov_m(t)) / var_plus, with W the mean within-chain variance and
    var_plus = (N - 1)/N W + B/N. Pairs Gamma_k = rho_2k + rho_2k+1 are summed while positive and made
    monotone (Gamma_k <- min(Gamma_k, Gamma_{k-1})); ESS = M N / (-1 + 2 sum_k Gamma_k).
    Independent draws give about M N; an AR(1) chain with coefficient phi gives about
    M N (1 - phi) / (1 + phi).

    Args:
        samples: ``[chains, draws, dim]`` (tensor or array), draws >= 4.

    Returns:
        ``[dim]`` NumPy array.
    """
    x = _as_draws(samples)
    m, n, _ = x.shape
    acov = _autocovariance(x)  # [chains, draws, dim]
    w = acov[:, 0].mean(axis=0) * n / (n - 1)  # mean within-chain variance (unbiased)
    var_plus = w * (n - 1) / n + (x.mean(axis=1).var(axis=0, ddof=1) if m > 1 else 0.0)
    if np.any(var_plus <= 0):
        raise ValueError("samples must not be constant along the draws for any coordinate")
    rho = 1 - (w - acov.mean(axis=0)) / var_plus  # [draws, dim]
    n_pairs = n // 2
    gamma = rho[0 : 2 * n_pairs : 2] + rho[1 : 2 * n_pairs : 2]  # [pairs, dim]
    positive = np.cumprod(gamma > 0, axis=0).astype(bool)  # initial positive sequence
    monotone = np.minimum.accumulate(np.where(positive, gamma, 0.0), axis=0)
    tau = -1 + 2 * monotone.sum(axis=0)
    tau = np.maximum(tau, 1 / np.log10(m * n))  # Stan's cap for antithetic chains
    return m * n / tau


def split_rhat(samples) -> np.ndarray:
    """Split-R-hat per coordinate (Gelman et al., BDA3, section 11.4).

    Each chain is cut into two halves (dropping the middle draw if odd), giving 2M chains of N'
    draws; R-hat = sqrt(var_plus / W) with W the mean within-chain variance and
    var_plus = (N' - 1)/N' W + B/N'. Values above 1.01 signal chains that disagree (Vehtari et al., 2021).

    Args:
        samples: ``[chains, draws, dim]``, draws >= 4.

    Returns:
        ``[dim]`` NumPy array.
    """
    x = _as_draws(samples)
    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, -half:]], axis=0)
    w = split.var(axis=1, ddof=1).mean(axis=0)
    if np.any(w <= 0):
        raise ValueError("samples must not be constant within a chain half")
    b_over_n = split.mean(axis=1).var(axis=0, ddof=1)
    var_plus = w * (half - 1) / half + b_over_n
    return np.sqrt(var_plus / w)
