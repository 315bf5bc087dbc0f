"""flowedu.hmc.banana: the banana posterior, its hand-derived gradient and its grid normalisation."""

import math

import pytest
import torch

from flowedu.hmc import BANANA_THETA, BananaPosterior, banana_data


@pytest.fixture(scope="module")
def post():
    return BananaPosterior(banana_data(100))


def test_data_are_reproducible_and_centred_on_the_truth():
    y = banana_data(100)
    torch.testing.assert_close(y, banana_data(100, 2019), rtol=0, atol=0)
    assert not torch.equal(y, banana_data(100, 1))
    assert abs(BANANA_THETA[0] + BANANA_THETA[1] ** 2 - 1) < 1e-12
    assert abs(banana_data(100_000, 3).mean().item() - 1) < 0.03  # sigma_y / sqrt(n) = 0.006


def test_log_prob_is_the_log_joint(post):
    theta = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lik = torch.distributions.Normal(theta[:, :1] + theta[:, 1:] ** 2, 2.0).log_prob(post.y).sum(1)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(theta).sum(1)
    torch.testing.assert_close(post.log_prob(theta), lik + prior)
    torch.testing.assert_close(post.potential(theta), -(lik + prior))


def test_hand_gradient_matches_autograd(post):
    theta = (3 * torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).requires_grad_()
    (auto,) = torch.autograd.grad(post.log_prob(theta).sum(), theta)
    torch.testing.assert_close(post.grad_log_prob(theta.detach()), auto)


def test_grid_density_integrates_to_one_and_log_z_converges(post):
    grid = post.grid(400)
    assert abs(grid.density.sum().item() * grid.cell_area - 1) < 1e-12
    d1, d2 = grid.marginals()
    assert abs(d1.sum().item() * (grid.theta1[1] - grid.theta1[0]).item() - 1) < 1e-12
    assert abs(post.grid(200).log_z - grid.log_z) < 1e-6
    # the box holds the mass: the density on its border is negligible
    border = torch.cat([grid.density[0], grid.density[-1], grid.density[:, 0], grid.density[:, -1]])
    assert border.max() < 1e-6 * grid.density.max()
    mean, cov = grid.moments()
    assert abs(mean[1].item()) < 1e-10 and abs(cov[0, 1].item()) < 1e-10  # symmetric in theta_2


def test_grid_log_z_matches_adaptive_quadrature():
    # The evidence of one observation by scipy's adaptive 2-D quadrature, against the grid.
    from scipy import integrate

    post = BananaPosterior(torch.tensor([0.7], dtype=torch.float64), sigma_y=1.0, sigma_theta=1.0)

    def density(t2, t1):
        return math.exp(post.log_prob(torch.tensor([t1, t2], dtype=torch.float64)).item())

    z, _ = integrate.dblquad(density, -7, 7, -7, 7, epsabs=1e-10)
    assert abs(post.grid(400, ((-7, 7), (-7, 7))).log_z - math.log(z)) < 1e-6


def test_grid_draws_and_ks_distance(post):
    grid = post.grid(300)
    mean, cov = grid.moments()
    draws = grid.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (200_000, 2) and draws.dtype == torch.float64
    se = (torch.diagonal(cov) / len(draws)).sqrt()
    assert ((draws.mean(0) - mean).abs() < 4 * se).all(), (draws.mean(0), mean)
    # exact draws are within the KS distance's sampling error of the exact CDF (1.36 / sqrt(n) at 5 %)
    assert max(grid.ks_distance(draws, a) for a in (0, 1)) < 1.63 / len(draws) ** 0.5
    shifted = draws + torch.tensor([0.1, 0.0], dtype=torch.float64)
    assert grid.ks_distance(shifted, 0) > 0.05
    cdf1, cdf2 = grid.cdfs()
    assert abs(cdf1[-1].item() - 1) < 1e-10 and abs(cdf2[-1].item() - 1) < 1e-10
    with pytest.raises(ValueError, match="axis must be 0 or 1"):
        grid.ks_distance(draws, 2)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        grid.sample(0)


def test_bad_arguments_raise(post):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        banana_data(0)
    with pytest.raises(ValueError, match="sigma_y must be finite and > 0"):
        BananaPosterior(torch.zeros(3), sigma_y=0.0)
    with pytest.raises(ValueError, match=r"y must have shape \[n\]"):
        BananaPosterior(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"theta must be a tensor of shape \[..., 2\]"):
        post.log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="n_points must be an integer >= 10"):
        post.grid(5)
    with pytest.raises(ValueError, match="bounds must be finite numbers with lo < hi"):
        post.grid(20, ((1, 0), (0, 1)))
