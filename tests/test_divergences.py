"""flowedu.hmc.divergences: the kNN KL estimator against closed forms, and exact KL on a grid."""

import math

import numpy as np
import pytest
import torch

from flowedu.hmc import BananaPosterior, banana_data, grid_kl, knn_kl


def gauss_kl(m0, s0, m1, s1):
    """KL(N(m0, S0) || N(m1, S1)) in closed form."""
    s1_inv = np.linalg.inv(s1)
    d = m1 - m0
    return 0.5 * (np.trace(s1_inv @ s0) + d @ s1_inv @ d - len(m0) + math.log(np.linalg.det(s1) / np.linalg.det(s0)))


@pytest.mark.parametrize("k", [1, 3])
def test_knn_kl_matches_the_gaussian_closed_form(k):
    rng = np.random.default_rng(k)
    m0, s0 = np.zeros(2), np.array([[1.0, 0.5], [0.5, 1.0]])
    m1, s1 = np.array([0.5, -0.3]), np.array([[2.0, 0.0], [0.0, 0.5]])
    x = rng.multivariate_normal(m0, s0, 20_000)
    z = rng.multivariate_normal(m1, s1, 20_000)
    exact = gauss_kl(m0, s0, m1, s1)
    # at n = m = 20000 in 2-D the bias and spread are a few hundredths of a nat
    assert abs(knn_kl(x, z, k=k) - exact) < 0.04, (knn_kl(x, z, k=k), exact)
    assert abs(knn_kl(x, rng.multivariate_normal(m0, s0, 20_000), k=k)) < 0.03


def test_knn_kl_bias_grows_with_k():
    # a larger k smooths the density estimates: here the estimate falls clearly below the truth
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 2))
    z = rng.standard_normal((20_000, 2)) * np.array([np.sqrt(2.0), np.sqrt(0.5)]) + np.array([0.5, -0.3])
    exact = gauss_kl(np.zeros(2), np.eye(2), np.array([0.5, -0.3]), np.diag([2.0, 0.5]))
    assert knn_kl(x, z, k=50) < exact - 0.05 < knn_kl(x, z, k=1), (knn_kl(x, z, k=50), exact)


def test_knn_kl_rejects_repeated_points_and_bad_k():
    x = np.repeat(np.random.default_rng(0).standard_normal((50, 2)), 2, axis=0)
    with pytest.raises(ValueError, match="repeated points"):
        knn_kl(x, x + 0.5, k=1)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 9\]"):
        knn_kl(np.zeros((10, 2)) + np.arange(10)[:, None], np.ones((20, 2)), k=10)
    with pytest.raises(ValueError, match="same dim"):
        knn_kl(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="samples_q must be finite"):
        knn_kl(np.random.default_rng(0).standard_normal((10, 2)), np.full((10, 2), np.nan))


def test_grid_kl_is_zero_for_the_target_and_matches_monte_carlo_for_a_gaussian():
    post = BananaPosterior(banana_data(100))
    grid = post.grid(400)
    assert abs(grid_kl(lambda t: post.log_prob(t) - grid.log_z, grid)) < 1e-10
    q = torch.distributions.MultivariateNormal(torch.tensor([0.0, 0.0], dtype=torch.float64),
                                               torch.diag(torch.tensor([0.4, 0.6], dtype=torch.float64)))
    exact = grid_kl(q.log_prob, grid)
    draws = q.sample((200_000,))
    mc = (q.log_prob(draws) - post.log_prob(draws) + grid.log_z).mean().item()  # log Z - ELBO
    assert exact > 0.5 and abs(exact - mc) < 0.05 * exact, (exact, mc)
    with pytest.raises(ValueError, match="q integrates to"):
        wide = torch.distributions.Normal(0.0, 10.0)
        grid_kl(lambda t: wide.log_prob(t).sum(-1), grid)
