"""Chapter: book/hmc.md — checks for the leapfrog, accept/reject (``banana_hmc``) and ELBO terms (``banana_flows``).

Every check draws its own random numbers from local generators (or inside ``torch.random.fork_rng``),
so a student's notebook draws the same numbers whether or not a check ran.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu import hmc
from flowedu.checks.core import check_close, leaves_rng_alone

__all__ = ["check_elbo_terms", "check_hmc_accept", "check_leapfrog"]


def _banana_like_grad(theta: torch.Tensor) -> torch.Tensor:
    """grad log pi of the banana-shaped log pi = -(theta_1 + theta_2^2 - 1)^2 - |theta|^2 / 2."""
    r = -2 * (theta[:, 0] + theta[:, 1] ** 2 - 1)
    return torch.stack([r - theta[:, 0], 2 * theta[:, 1] * r - theta[:, 1]], dim=1)


@leaves_rng_alone
def check_leapfrog(leapfrog: Callable) -> None:
    """Check ``leapfrog(theta [chains, dim], momentum [chains, dim], grad_log_prob, step_size, n_leapfrog)``.

    Compares with :func:`flowedu.hmc.leapfrog` on a banana-shaped target for one and many steps,
    a vector of per-chain step sizes and float32 inputs, then checks reversibility.
    """
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(6, 2, generator=g, dtype=torch.float64)
    rho = torch.randn(6, 2, generator=g, dtype=torch.float64)
    per_chain = torch.linspace(0.01, 0.1, 6, dtype=torch.float64)
    cases = [(theta, rho, 0.1, 1), (theta, rho, 0.05, 20), (theta, rho, per_chain, 7),
             (theta.float(), rho.float(), 0.1, 3)]
    for number, (t, m, eps, n) in enumerate(cases):
        got = leapfrog(t, m, _banana_like_grad, eps, n)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError(f"leapfrog must return (theta, momentum), got {type(got).__name__}")
        want = hmc.leapfrog(t, m, _banana_like_grad, eps, n)
        tol = 1e-4 if t.dtype == torch.float32 else 1e-9
        eps_text = eps if isinstance(eps, float) else "per chain"
        check_close(got[0], want[0], f"theta (case {number}, step_size={eps_text}, n_leapfrog={n})", rtol=tol, atol=tol)
        check_close(got[1], want[1], f"momentum (case {number})", rtol=tol, atol=tol)
    t1, rho1 = leapfrog(theta, rho, _banana_like_grad, 0.05, 20)
    t2, _ = leapfrog(t1, -rho1, _banana_like_grad, 0.05, 20)
    check_close(t2, theta, "theta after flipping the momentum and integrating back", atol=1e-8)
    print(f"leapfrog: all {len(cases)} cases agree with the reference, and the integrator is reversible.")


@leaves_rng_alone
def check_hmc_accept(hmc_accept: Callable) -> None:
    """Check ``hmc_accept(theta, log_prob, momentum, theta_prop, log_prob_prop, momentum_prop, log_u)``.

    It must return ``(theta_next, log_prob_next, accepted)`` (more outputs, such as the acceptance
    probability and Delta H, are allowed) as :func:`flowedu.hmc.hmc_accept` does: accept when
    log u < -Delta H = H(theta, rho) - H(theta', rho'), otherwise **repeat** the current state;
    reject non-finite proposals.
    """
    g = torch.Generator().manual_seed(1)
    chains = 200
    theta = torch.randn(chains, 2, generator=g, dtype=torch.float64)
    prop = torch.randn(chains, 2, generator=g, dtype=torch.float64)
    rho = torch.randn(chains, 2, generator=g, dtype=torch.float64)
    rho_prop = torch.randn(chains, 2, generator=g, dtype=torch.float64)
    lp, lp_prop = -torch.rand(chains, generator=g, dtype=torch.float64), -torch.rand(chains, generator=g,
                                                                                        dtype=torch.float64)
    log_u = torch.log(torch.rand(chains, generator=g, dtype=torch.float64))
    prop[:5] = float("nan")  # diverged trajectories
    lp_prop[:5] = float("nan")
    got = hmc_accept(theta, lp, rho, prop, lp_prop, rho_prop, log_u)
    if not (isinstance(got, tuple) and len(got) >= 3):
        raise AssertionError("hmc_accept must return (theta_next, log_prob_next, accepted, ...)")
    want = hmc.hmc_accept(theta, lp, rho, prop, lp_prop, rho_prop, log_u)
    accepted = torch.as_tensor(got[2])
    if accepted.dtype != torch.bool:
        raise AssertionError(f"accepted must be a bool tensor [chains], got dtype {accepted.dtype}")
    if accepted[:5].any():
        raise AssertionError("a proposal with NaN log-probability was accepted; reject non-finite proposals")
    n_diff = int((accepted != want[2]).sum())
    if n_diff:
        raise AssertionError(f"{n_diff} of {chains} accept decisions differ from the reference: accept when "
                             "log u < H(theta, rho) - H(theta', rho') with H = -log pi + |rho|^2 / 2")
    check_close(got[0], want[0], "theta_next (a rejected chain must repeat its current state)")
    check_close(got[1], want[1], "log_prob_next")
    print(f"hmc_accept: all {chains} decisions and next states agree with the reference "
          f"({int(want[2].sum())} accepted, {chains - int(want[2].sum())} rejected).")


@leaves_rng_alone
def check_elbo_terms(elbo_terms: Callable) -> None:
    """Check ``elbo_terms(flow, log_prob, n_samples) -> (theta [S, dim], terms [S])`` against flowedu.hmc.

    Both are called from the same random state, so a correct implementation that draws its base
    samples through the flow (``flow.sample_and_log_prob``, or ``flow.base.sample`` then
    ``flow.flow``) agrees to rounding. Also checks that the terms carry gradients to the flow's
    parameters (the reparameterization trick). The global torch RNG is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        _check_elbo_terms(elbo_terms)


def _check_elbo_terms(elbo_terms: Callable) -> None:
    from flowedu import flows

    torch.manual_seed(0)
    flow = flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, n_couplings=2, hidden=8, zero_init=False))

    def log_prob(theta):
        return -(theta[:, 0] + theta[:, 1] ** 2 - 1) ** 2 - 0.5 * (theta**2).sum(1)

    for n in (1, 50):
        state = torch.get_rng_state()
        got = elbo_terms(flow, log_prob, n)
        torch.set_rng_state(state)
        want = hmc.elbo_terms(flow, log_prob, n)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError(f"elbo_terms must return (theta, terms), got {type(got).__name__}")
        check_close(got[0], want[0], f"theta (n_samples={n})", rtol=1e-5, atol=1e-5)
        check_close(got[1], want[1], f"terms = log p(theta) - log q(theta) (n_samples={n})", rtol=1e-5, atol=1e-5)
    message = ("the gradient of the mean of terms differs from the reparameterized gradient: draw theta with "
               "the flow's forward pass from base samples (not under torch.no_grad() and not with flow.sample)")
    if not got[1].requires_grad:
        raise AssertionError(message)
    params = [p for p in flow.parameters() if p.requires_grad]
    got_grad = torch.autograd.grad(got[1].mean(), params, allow_unused=True)
    want_grad = torch.autograd.grad(want[1].mean(), params)
    for g_got, g_want in zip(got_grad, want_grad, strict=True):
        if g_got is None or not torch.allclose(g_got, g_want, rtol=1e-4, atol=1e-5):
            raise AssertionError(message)
    print("elbo_terms: agrees with the reference and is differentiable in the flow's parameters.")
