"""flowedu.hmc: leapfrog, the HMC transition and sampler (vectorised over chains), dual averaging.

The diagnostics (ESS, split-R-hat) are tested in ``test_mcmc_diagnostics.py``, the jump chain of the
accepted-only sampler in ``test_mcmc_jump_chain.py``.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import hmc

COV = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
PREC = torch.linalg.inv(COV)
MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)


def gauss_log_prob(theta):
    d = theta - MEAN
    return -0.5 * ((d @ PREC) * d).sum(-1)


def gauss_grad(theta):
    return -(theta - MEAN) @ PREC


def exact_draws(n, seed):
    g = torch.Generator().manual_seed(seed)
    return MEAN + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(COV).T


def hamiltonian(theta, p):
    return -gauss_log_prob(theta) + 0.5 * (p**2).sum(-1)


def test_hmc_leaves_a_correlated_gaussian_invariant():
    # Start 4000 chains at exact draws: every later state must still be an exact draw.
    chains = 4000
    result = hmc.hmc(gauss_log_prob, exact_draws(chains, 1), step_size=0.5, n_leapfrog=4, n_samples=10,
                      n_warmup=0, adapt_step_size=False, generator=torch.Generator().manual_seed(2))
    assert result.samples.shape == (chains, 10, 2)
    last = result.samples[:, -1]
    se = torch.sqrt(torch.diag(COV) / chains)
    assert ((last.mean(0) - MEAN).abs() < 4 * se).all(), last.mean(0)
    cov = torch.cov(last.T)
    # standard error of a sample covariance entry: sqrt((s_ii s_jj + s_ij^2) / n)
    se_cov = torch.sqrt((torch.outer(torch.diag(COV), torch.diag(COV)) + COV**2) / chains)
    assert ((cov - COV).abs() < 4 * se_cov).all(), cov
    assert 0.3 < result.accept_rate.mean() < 0.999


def test_accepted_only_sampler_is_biased_where_hmc_is_not():
    # 1-D standard normal, one big leapfrog step: how often a proposal is rejected depends on the
    # state, so counting each accepted state once (instead of once per iteration it is held)
    # changes the variance; the correct chain keeps it at 1.
    def log_prob(theta):
        return -0.5 * (theta**2).sum(-1)

    init = torch.randn(4000, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    right = hmc.hmc(log_prob, init, 1.8, 1, 20, 0, adapt_step_size=False, jitter=0.0,
                     generator=torch.Generator().manual_seed(4)).samples
    wrong = hmc.hmc_accepted_only(log_prob, init, 1.8, 1, 20, 0, generator=torch.Generator().manual_seed(4))
    assert wrong.shape[1] == 1 and 0 < len(wrong) < right.numel()
    var_right, var_wrong = right.var().item(), wrong.var().item()
    assert abs(var_right - 1) < 0.05, var_right
    assert abs(var_wrong - 1) > 0.1, var_wrong


def test_leapfrog_is_reversible_and_nearly_conserves_energy():
    theta = exact_draws(50, 5)
    p = torch.randn(50, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    errors = []
    for eps in (0.1, 0.05):
        t1, p1 = hmc.leapfrog(theta, p, gauss_grad, eps, int(round(1 / eps)))
        t2, p2 = hmc.leapfrog(t1, -p1, gauss_grad, eps, int(round(1 / eps)))
        torch.testing.assert_close(t2, theta, atol=1e-10, rtol=0)
        torch.testing.assert_close(-p2, p, atol=1e-10, rtol=0)
        errors.append((hamiltonian(t1, p1) - hamiltonian(theta, p)).abs().max().item())
    assert errors[0] < 0.05
    assert 3 < errors[0] / errors[1] < 5  # second order: halving eps divides the error by about 4


def test_leapfrog_preserves_volume_by_autograd():
    def flow(state):
        theta, p = state[:2][None], state[2:][None]
        grad = lambda t: hmc.log_prob_and_grad(gauss_log_prob, t)[1]  # noqa: E731 - autograd gradient
        t1, p1 = hmc.leapfrog(theta, p, grad, 0.3, 5)
        return torch.cat([t1[0], p1[0]])

    state = torch.tensor([0.3, -1.0, 0.5, 2.0], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(flow, state)
    assert abs(torch.linalg.det(jac).item() - 1) < 1e-10
    assert not torch.allclose(jac, torch.eye(4, dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(eps=st.floats(0.01, 0.5), n=st.integers(1, 20), x=st.floats(-3, 3), v=st.floats(-3, 3))
def test_leapfrog_reversibility_property(eps, n, x, v):
    theta = torch.tensor([[x, -x]], dtype=torch.float64)
    p = torch.tensor([[v, 0.5]], dtype=torch.float64)
    t1, p1 = hmc.leapfrog(theta, p, gauss_grad, eps, n)
    t2, p2 = hmc.leapfrog(t1, -p1, gauss_grad, eps, n)
    torch.testing.assert_close(t2, theta, atol=1e-9, rtol=0)


def test_autograd_gradient_matches_closed_form():
    theta = exact_draws(7, 8)
    lp, grad = hmc.log_prob_and_grad(gauss_log_prob, theta)
    torch.testing.assert_close(lp, gauss_log_prob(theta))
    torch.testing.assert_close(grad, gauss_grad(theta))


def test_dual_averaging_solves_for_the_target_acceptance():
    # A known, noiseless acceptance curve alpha(eps) = exp(-eps): the target 0.8 is at eps = -log 0.8.
    adapter = hmc.DualAveraging(torch.tensor([5.0, 0.01]), target_accept=0.8)
    for _ in range(1000):
        adapter.update(torch.exp(-adapter.eps))
    torch.testing.assert_close(adapter.final, torch.full((2,), -math.log(0.8), dtype=torch.float64), atol=1e-2, rtol=0)


def test_hmc_adapts_each_chains_step_size():
    init = exact_draws(200, 9)
    result = hmc.hmc(gauss_log_prob, init, step_size=2.0, n_leapfrog=3, n_samples=50, n_warmup=150,
                      target_accept=0.8, generator=torch.Generator().manual_seed(10))
    # Dual averaging brings the noisy iterates' mean acceptance to 0.8; sampling at eps-bar, the centre of
    # their scatter in log eps, lands a little above it where acceptance is concave in log eps (book/hmc.md).
    assert 0.75 < result.accept_rate.mean().item() < 0.97, result.accept_rate.mean()
    assert result.step_size.shape == (200,) and (result.step_size < 0.9).all()  # the stability limit is 0.89


def test_same_generator_same_samples():
    init = exact_draws(3, 11)
    runs = [hmc.hmc(gauss_log_prob, init, 0.3, 3, 5, 5, generator=torch.Generator().manual_seed(0)).samples
            for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


@pytest.mark.parametrize("step_size", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_step_size_raises(step_size):
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        hmc.hmc(gauss_log_prob, torch.zeros(2, 2, dtype=torch.float64), step_size, 3, 10, 0)
    with pytest.raises(ValueError, match="step_size"):
        hmc.leapfrog(torch.zeros(2, 2), torch.zeros(2, 2), gauss_grad, step_size, 3)


@pytest.mark.parametrize("init", [torch.zeros(2), torch.zeros(1, 2, 2), torch.zeros(0, 2)])
def test_misshaped_init_raises(init):
    with pytest.raises(ValueError, match=r"init must be a tensor of shape \[chains, dim\]"):
        hmc.hmc(gauss_log_prob, init, 0.1, 3, 10, 0)


def test_nonfinite_log_prob_raises():
    def log_prob(theta):
        return torch.where(theta[:, 0] > 0, -float("inf"), 0.0 * theta[:, 0])

    init = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"log_prob\(init\) must be finite for every chain; chains \[0\]"):
        hmc.hmc(log_prob, init, 0.1, 3, 10, 0)
    with pytest.raises(ValueError, match="log_prob must return shape"):
        hmc.hmc(lambda t: t.sum(), init, 0.1, 3, 10, 0)


def test_other_bad_arguments_raise():
    init = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_leapfrog must be an integer >= 1"):
        hmc.hmc(gauss_log_prob, init, 0.1, 0, 10, 0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        hmc.hmc(gauss_log_prob, init, 0.1, 3, 0, 0)
    with pytest.raises(ValueError, match="target_accept must be in"):
        hmc.hmc(gauss_log_prob, init, 0.1, 3, 10, 10, target_accept=1.5)
    with pytest.raises(ValueError, match="jitter must be in"):
        hmc.hmc(gauss_log_prob, init, 0.1, 3, 10, 10, jitter=1.0)


def test_nonfinite_proposals_are_rejected_not_propagated():
    # log pi = -theta^4: the leapfrog blows up for a large step; chains must stay finite.
    def log_prob(theta):
        return -(theta**4).sum(-1)

    result = hmc.hmc(log_prob, torch.full((20, 1), 1.5, dtype=torch.float64), 3.0, 10, 20, 0,
                      adapt_step_size=False, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(result.samples).all()
    assert result.n_divergent.sum() > 0
    torch.testing.assert_close(result.n_divergent, result.divergent.sum(1))


def standard_normal_log_prob(theta):
    return -0.5 * (theta**2).sum(-1)


def test_accurate_trajectory_from_the_far_tail_is_accepted_and_not_divergent():
    # From theta = 50 (U = 1250) an accurate trajectory (eps = 0.01, time 1.5) rolls down to |theta| < 10:
    # U falls by more than 1000 and the kinetic energy rises by as much, while Delta H stays near 0.
    # Divergence is about Delta H = H(new) - H(current); a sampler that compared the energies after the
    # accepted state replaced the current one saw only the kinetic change and flagged all of these.
    init = torch.full((100, 1), 50.0, dtype=torch.float64)
    result = hmc.hmc(standard_normal_log_prob, init, step_size=0.01, n_leapfrog=150, n_samples=1, n_warmup=0,
                      adapt_step_size=False, jitter=0.0, generator=torch.Generator().manual_seed(0))
    assert (result.samples[:, 0, 0].abs() < 10).all()  # the proposals rolled far down the potential
    assert result.accept_rate.mean() > 0.9, result.accept_rate.mean()
    assert result.n_divergent.sum() == 0 and not result.divergent.any(), result.n_divergent.sum()


def test_hmc_step_names_delta_energy_before_the_state_changes():
    theta = torch.tensor([[50.0], [0.5]], dtype=torch.float64)
    lp = standard_normal_log_prob(theta)
    gen = torch.Generator().manual_seed(1)
    rho = torch.randn(2, 1, generator=gen, dtype=torch.float64)  # the momenta hmc_step draws first
    theta_end, rho_end = hmc.leapfrog(theta, rho, lambda t: -t, 0.01, 150)
    want = hmc.hamiltonian(standard_normal_log_prob(theta_end), rho_end) - hmc.hamiltonian(lp, rho)
    step = hmc.hmc_step(standard_normal_log_prob, theta, lp, 0.01, 150, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(step.delta_energy, want)
    assert step.delta_energy.abs().max() < 0.1 and not step.divergent.any()
    assert step.accepted[0] and (step.log_prob - lp)[0] > 1000  # accepted, and U fell by more than 1000


def test_an_unstable_trajectory_is_divergent_and_rejected():
    # eps = 2.5 > 2 is beyond the leapfrog's stability limit for a unit-curvature Gaussian: the
    # energy error grows geometrically with the number of steps.
    init = torch.randn(50, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    step = hmc.hmc_step(standard_normal_log_prob, init, standard_normal_log_prob(init), 2.5, 40,
                         generator=torch.Generator().manual_seed(3))
    assert step.divergent.all() and not step.accepted.any()
    assert (step.delta_energy > hmc.MAX_DELTA_ENERGY).all()
    torch.testing.assert_close(step.theta, init)
    with pytest.raises(ValueError, match="max_delta_energy must be finite and > 0"):
        hmc.hmc_step(standard_normal_log_prob, init, standard_normal_log_prob(init), 0.1, 3, max_delta_energy=0.0)
    with pytest.raises(ValueError, match=r"log_prob_theta must be a tensor of shape \[chains\]"):
        hmc.hmc_step(standard_normal_log_prob, init, torch.zeros(3), 0.1, 3)


def test_hand_gradient_gives_the_same_chain_as_autograd():
    init = exact_draws(5, 12)
    runs = [hmc.hmc(gauss_log_prob, init, 0.3, 4, 20, 10, generator=torch.Generator().manual_seed(1),
                     grad_log_prob=grad).samples for grad in (None, gauss_grad)]
    torch.testing.assert_close(runs[0], runs[1])


def test_hmc_accept_repeats_the_state_on_rejection():
    theta = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    prop = theta + 0.5
    zeros = torch.zeros(2, dtype=torch.float64)
    p = torch.zeros(2, 2, dtype=torch.float64)
    # Delta H = H' - H = 1 for both chains: accept iff log u < -1
    log_u = torch.tensor([-1.5, -0.5], dtype=torch.float64)
    nxt, lp, acc, prob, delta_energy = hmc.hmc_accept(theta, zeros, p, prop, zeros - 1, p, log_u)
    assert acc.tolist() == [True, False]
    torch.testing.assert_close(nxt, torch.stack([prop[0], theta[1]]))
    torch.testing.assert_close(lp, torch.tensor([-1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(prob, torch.full((2,), math.exp(-1), dtype=torch.float64))
    torch.testing.assert_close(delta_energy, torch.ones(2, dtype=torch.float64))
    nan_prop = torch.full_like(prop, float("nan"))
    rejected = hmc.hmc_accept(theta, zeros, p, nan_prop, zeros, p, zeros - 10)
    assert not rejected.accepted.any() and torch.isposinf(rejected.delta_energy).all()
    assert (rejected.accept_prob == 0).all()
