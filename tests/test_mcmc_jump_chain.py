"""The jump chain of book/hmc.md ({prf:ref}`hmc-prop-jump-chain`): recording only accepted proposals samples pi alpha.

Checked exactly on finite state spaces (by enumeration), then on HMC for a 1-D Gaussian, where alpha(theta)
is a one-dimensional integral over the momentum.
"""

import math

import numpy as np
import pytest
import torch

from flowedu import hmc


def metropolis_kernel(pi: np.ndarray, proposal: np.ndarray) -> np.ndarray:
    """Metropolis-Hastings kernel T on a finite set, with proposal matrix ``proposal`` (rows sum to 1)."""
    ratio = (pi[None, :] * proposal.T) / (pi[:, None] * proposal)
    t = proposal * np.minimum(1.0, np.nan_to_num(ratio, nan=0.0, posinf=1.0))
    np.fill_diagonal(t, 0.0)
    np.fill_diagonal(t, 1.0 - t.sum(1))
    return t


def jump_kernel(t: np.ndarray) -> np.ndarray:
    """T~(theta, .) = T(theta, . minus {theta}) / alpha(theta), alpha = 1 - T(theta, {theta}) (needs alpha > 0)."""
    alpha = 1.0 - np.diag(t)
    off = t - np.diag(np.diag(t))
    return off / alpha[:, None]


@pytest.mark.parametrize("seed", range(5))
def test_jump_chain_is_stationary_at_pi_alpha_on_a_finite_set(seed):
    rng = np.random.default_rng(seed)
    n = 7
    pi = rng.dirichlet(np.ones(n))
    proposal = rng.dirichlet(np.ones(n), size=n)
    t = metropolis_kernel(pi, proposal)
    np.testing.assert_allclose(pi @ t, pi, atol=1e-14)  # the hypothesis: T leaves pi invariant
    alpha = 1.0 - np.diag(t)
    assert alpha.min() > 0 and pi @ alpha > 0  # the proposition's hypotheses
    target = pi * alpha / (pi @ alpha)
    np.testing.assert_allclose(target @ jump_kernel(t), target, atol=1e-14)
    assert np.abs(target - pi).max() > 1e-3  # ... and pi alpha differs from pi: the bias is real


def test_without_alpha_positive_the_jump_chain_is_not_defined():
    # State 0 is absorbing (alpha(0) = 0) while pi(0) > 0: T still leaves pi invariant, but a chain
    # started at 0 never moves, so the accepted-only output of that chain is empty, whatever pi
    # alpha / int pi alpha says. With alpha = 0 everywhere (T = I) there is nothing to normalise.
    pi = np.array([0.2, 0.3, 0.5])
    t = np.eye(3)
    t[1:, 1:] = metropolis_kernel(pi[1:] / pi[1:].sum(), np.full((2, 2), 0.5))
    np.testing.assert_allclose(pi @ t, pi, atol=1e-15)
    alpha = 1.0 - np.diag(t)
    assert alpha[0] == 0 and pi[0] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        assert not np.isfinite(jump_kernel(t)[0]).all()
    assert pi @ (1.0 - np.diag(np.eye(3))) == 0  # T = I: int pi alpha = 0


def test_simulated_accepted_only_frequencies_match_pi_alpha():
    rng = np.random.default_rng(7)
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    t = metropolis_kernel(pi, np.full((4, 4), 0.25))
    alpha = 1.0 - np.diag(t)
    target = pi * alpha / (pi @ alpha)
    state, counts, n = 3, np.zeros(4), 200_000
    cumulative = np.cumsum(t, axis=1)
    for u in rng.random(n):
        new = int(np.searchsorted(cumulative[state], u * cumulative[state, -1]))
        if new != state:
            counts[new] += 1
        state = new
    freq = counts / counts.sum()
    se = np.sqrt(target * (1 - target) / counts.sum())
    assert (np.abs(freq - target) < 6 * se).all(), (freq, target)
    assert (np.abs(freq - pi) > 6 * se).any()


def gauss_alpha(theta: float, eps: float) -> float:
    """alpha(theta) for one leapfrog step on U = theta^2 / 2, by quadrature over rho ~ N(0, 1)."""
    rho = np.linspace(-12, 12, 48001)
    half = rho - 0.5 * eps * theta
    theta_new = theta + eps * half
    rho_new = half - 0.5 * eps * theta_new
    delta_energy = 0.5 * (theta_new**2 + rho_new**2) - 0.5 * (theta**2 + rho**2)
    weights = np.exp(-0.5 * rho**2) / math.sqrt(2 * math.pi)
    return float(np.trapezoid(np.minimum(1.0, np.exp(-delta_energy)) * weights, rho))


def test_acceptance_probability_matches_quadrature():
    points = torch.tensor([[-2.0], [0.0], [0.7], [2.5]], dtype=torch.float64)
    got = hmc.acceptance_probability(lambda t: -0.5 * (t**2).sum(-1), points, 1.8, 1, n_momenta=40_000,
                                     generator=torch.Generator().manual_seed(0), batch=50_000)
    want = torch.tensor([gauss_alpha(float(p), 1.8) for p in points[:, 0]], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=0.01, rtol=0)  # Monte Carlo error about 0.0025
    tiny = hmc.acceptance_probability(lambda t: -0.5 * (t**2).sum(-1), points, 1e-3, 3, n_momenta=8)
    assert (tiny > 0.999).all()
    with pytest.raises(ValueError, match="n_momenta must be an integer >= 1"):
        hmc.acceptance_probability(lambda t: -0.5 * (t**2).sum(-1), points, 0.1, 3, n_momenta=0)


def test_accepted_only_hmc_samples_pi_alpha():
    # One big leapfrog step on N(0, 1): alpha(theta) varies with theta, the accepted-only output's
    # variance is that of pi alpha (by quadrature), not 1.
    grid = np.linspace(-8, 8, 801)
    alpha = np.array([gauss_alpha(x, 1.8) for x in grid])
    weights = np.exp(-0.5 * grid**2) * alpha
    var_pi_alpha = float((weights * grid**2).sum() / weights.sum())
    init = torch.randn(4000, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    wrong = hmc.hmc_accepted_only(lambda t: -0.5 * (t**2).sum(-1), init, 1.8, 1, 20, 0,
                                  generator=torch.Generator().manual_seed(4))
    se = var_pi_alpha * math.sqrt(2 / len(wrong)) * 3  # chains are correlated: a generous error
    assert abs(wrong.var().item() - var_pi_alpha) < 4 * se, (wrong.var().item(), var_pi_alpha, se)
    assert abs(var_pi_alpha - 1) > 5 * se  # and pi alpha is not pi
