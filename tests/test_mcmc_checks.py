"""flowedu.checks.hmc: the reference passes, the classic mistakes are caught, and no check touches global RNG state."""

import pytest
import torch

from flowedu import checks, hmc


def test_reference_passes():
    checks.check_leapfrog(hmc.leapfrog)
    checks.check_hmc_accept(hmc.hmc_accept)


def test_euler_integrator_fails():
    def symplectic_euler(theta, p, grad, eps, n):
        for _ in range(n):
            p = p + eps * grad(theta)
            theta = theta + eps * p
        return theta, p

    with pytest.raises(AssertionError, match="theta"):
        checks.check_leapfrog(symplectic_euler)


def test_accepted_only_step_fails():
    def drops_rejections(theta, lp, p, theta_prop, lp_prop, p_prop, log_u):
        accepted = log_u < (lp_prop - 0.5 * (p_prop**2).sum(-1)) - (lp - 0.5 * (p**2).sum(-1))
        return theta_prop[accepted], lp_prop[accepted], accepted

    with pytest.raises(AssertionError, match="repeat its current state"):
        checks.check_hmc_accept(drops_rejections)


def test_wrong_sign_fails():
    def wrong_sign(theta, lp, p, theta_prop, lp_prop, p_prop, log_u):
        ratio = (lp - 0.5 * (p**2).sum(-1)) - (lp_prop - 0.5 * (p_prop**2).sum(-1))
        accepted = log_u < ratio  # H' - H instead of H - H'
        return torch.where(accepted[:, None], theta_prop, theta), torch.where(accepted, lp_prop, lp), accepted

    with pytest.raises(AssertionError, match="accept decisions differ"):
        checks.check_hmc_accept(wrong_sign)


def test_elbo_terms_check():
    checks.check_elbo_terms(hmc.elbo_terms)

    def no_reparameterization(flow, log_prob, n):
        theta = flow.sample(n)
        return theta, log_prob(theta) - flow.log_prob(theta)

    with pytest.raises(AssertionError, match="reparameterized gradient"):
        checks.check_elbo_terms(no_reparameterization)


def test_checks_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    checks.check_leapfrog(hmc.leapfrog)
    checks.check_hmc_accept(hmc.hmc_accept)
    checks.check_elbo_terms(hmc.elbo_terms)
    assert torch.equal(torch.get_rng_state(), before)
