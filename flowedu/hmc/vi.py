"""Chapter: book/hmc.md — variational inference with a flow: the reparameterized ELBO and its training loop.

For an unnormalised target log p~(theta) = log p(y, theta) with evidence Z = p(y) and a flow
q = f_# N(0, I), theta = f(z):

    ELBO(q) = E_{z ~ N(0, I)}[log p~(f(z)) - log q(f(z))],   log q(f(z)) = log N(z; 0, I) - log|det J_f(z)|,

and log Z - ELBO(q) = KL(q || p) >= 0 exactly. Because z does not depend on the flow's parameters
phi, grad_phi ELBO = E_z[grad_phi (log p~(f_phi(z)) - log q_phi(f_phi(z)))] (the reparameterization
trick, Kingma & Welling 2014; Rezende & Mohamed 2015).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm.auto import trange

from flowedu.loops import History, LossLog
from flowedu.validate import integer, optional_integer, real

__all__ = ["elbo_terms", "fit_elbo"]


def elbo_terms(flow, log_prob: Callable[[torch.Tensor], torch.Tensor], n_samples: int,
               generator: torch.Generator | None = None):
    """Reparameterized draws from the flow and the ELBO's integrand at each.

    Args:
        flow: a ``flowedu.flows.NormalizingFlow`` (anything with ``sample_and_log_prob(n)``).
        log_prob: the unnormalised target, ``theta [n, dim] -> [n]``.
        n_samples: S >= 1 draws.
        generator: for the base draws (None: torch's global generator).

    Returns:
        ``(theta [S, dim], terms [S])`` with ``terms = log p~(theta) - log q(theta)``; its mean is an
        unbiased estimate of the ELBO whose gradient is the reparameterized gradient.
    """
    n_samples = integer(n_samples, "n_samples", 1)
    if generator is None:
        theta, log_q = flow.sample_and_log_prob(n_samples)
    else:
        theta, log_q = flow.sample_and_log_prob(n_samples, generator=generator)
    return theta, log_prob(theta) - log_q


def fit_elbo(flow, log_prob: Callable[[torch.Tensor], torch.Tensor], steps: int, n_samples: int = 100,
             lr: float = 1e-2, cosine: bool = True, clip: float | None = 10.0, progress: bool = True,
             stop: Callable[[int], bool] | None = None, anneal: int | None = None,
             weight_decay: float = 0.0, generator: torch.Generator | None = None) -> History:
    """Maximise the ELBO of ``flow`` for the target ``log_prob`` with Adam.

    Args:
        flow: a ``NormalizingFlow`` whose parameters are trained in place.
        log_prob: the unnormalised target ``theta [n, dim] -> [n]``.
        steps: number of Adam steps (>= 1).
        n_samples: S, draws per step (the PKU problem-set solution used S = 100).
        lr: Adam's learning rate (> 0).
        cosine: decay the learning rate to 0 along a cosine (otherwise constant).
        clip: clip the gradient norm at this value (None: no clipping).
        progress: show a ``tqdm`` bar.
        stop: optional ``stop(step) -> bool`` called after each step; True ends training early.
        anneal: if given (>= 1), maximise E_q[beta_t log p~ - log q] with the inverse temperature
            beta_t = min(1, 0.01 + (t - 1) / anneal) at step t (Rezende & Mohamed 2015's public
            code), which lets the flow spread out before the target's valleys pull it in. The
            recorded history is always the un-annealed ELBO estimate.
        weight_decay: Adam's L2 penalty on the parameters (>= 0; the PKU problem-set solution used 1e-5).
        generator: CPU generator for the flow's base draws (None: torch's global one).

    Returns:
        :class:`~flowedu.loops.History` ``{"elbo": [per-step ELBO estimates], "steps": steps taken,
        "seconds": training wall time}`` (the loop convention of :mod:`flowedu.loops`).

    Raises:
        NonFiniteLossError: at the first step whose ELBO estimate is not finite (before that step's update).
    """
    steps = integer(steps, "steps", 1)
    lr = real(lr, "lr", above=0)
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 or None, got {clip}")
    anneal = optional_integer(anneal, "anneal", 1)
    weight_decay = real(weight_decay, "weight_decay", at_least=0)
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cosine else None
    device = next(iter(flow.parameters()), torch.zeros(())).device
    log, start, step = LossLog(("elbo", "loss"), steps, device), time.perf_counter(), 0
    for step in trange(1, steps + 1, desc="ELBO", leave=False, disable=not progress):
        if anneal is None:
            _, terms = elbo_terms(flow, log_prob, n_samples, generator)
            loss = -terms.mean()
        else:
            if generator is None:
                theta, log_q = flow.sample_and_log_prob(n_samples)
            else:
                theta, log_q = flow.sample_and_log_prob(n_samples, generator=generator)
            log_p = log_prob(theta)
            terms = (log_p - log_q).detach()
            beta = min(1.0, 0.01 + (step - 1) / anneal)
            loss = -(beta * log_p - log_q).mean()
        log.record(step - 1, elbo=terms.mean(), loss=loss)
        log.maybe_check(step, "fit_elbo: the ELBO estimate")  # every step on the CPU: no update from a NaN loss
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(flow.parameters(), clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if stop is not None and stop(step):
            break
    log.check(step, "fit_elbo: the ELBO estimate")
    return History(elbo=log.tolist(step)["elbo"], steps=step, seconds=time.perf_counter() - start)

