"""Elementary log-densities against torch.distributions, Monte Carlo and edge cases; the linear-Gaussian model."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu.distributions import (
    LinearGaussian,
    kl_normal_standard,
    log_bernoulli,
    log_categorical,
    log_normal_diag,
    log_standard_normal,
)

D = torch.distributions


def test_log_normal_diag_matches_torch_with_broadcasting():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, 3, generator=g, dtype=torch.float64)
    mean, log_var = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g)
    expected = D.Normal(mean, torch.exp(0.5 * log_var.double())).log_prob(x).sum(-1)
    got = log_normal_diag(x, mean, log_var.double())
    assert got.shape == (7, 4)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(log_standard_normal(x), D.Normal(0.0, 1.0).log_prob(x).sum(-1))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6))
def test_log_normal_diag_with_zero_mean_unit_variance_is_standard(values):
    x = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(log_normal_diag(x, torch.zeros_like(x), torch.zeros_like(x)), log_standard_normal(x))


def test_log_bernoulli_matches_torch_and_is_stable():
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(5, 10, generator=g)
    x = (torch.rand(5, 10, generator=g) < 0.5).float()
    torch.testing.assert_close(log_bernoulli(x, logits), D.Bernoulli(logits=logits).log_prob(x).sum(-1))
    big = torch.tensor([[1000.0, -1000.0, 1000.0]])
    out = log_bernoulli(torch.tensor([[1.0, 0.0, 0.0]]), big)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([-1000.0]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        log_bernoulli(torch.full((1, 3), 0.5), big)


def test_log_categorical_matches_torch():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 6, 17, generator=g)
    x = torch.randint(0, 17, (4, 6), generator=g)
    got = log_categorical(x, logits)
    assert got.shape == (3, 4)
    torch.testing.assert_close(got, D.Categorical(logits=logits).log_prob(x).sum(-1))
    with pytest.raises(ValueError, match="classes in"):
        log_categorical(torch.full((4, 6), 17), logits)
    with pytest.raises(ValueError, match="integer"):
        log_categorical(x.float(), logits)


def test_kl_closed_form_equals_monte_carlo_and_torch():
    g = torch.Generator().manual_seed(3)
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    log_var = torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64)
    exact = kl_normal_standard(mean, log_var)
    q = D.Normal(mean, torch.exp(0.5 * log_var))
    torch.testing.assert_close(exact, D.kl_divergence(q, D.Normal(0.0, 1.0)).sum())
    z = mean + torch.exp(0.5 * log_var) * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    terms = log_normal_diag(z, mean, log_var) - log_standard_normal(z)
    se = terms.std() / math.sqrt(len(terms))
    assert abs(terms.mean() - exact) < 4 * se, (terms.mean(), exact, se)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-8, 8)), min_size=1, max_size=5))
def test_kl_is_nonnegative_and_zero_only_at_the_standard_normal(pairs):
    mean = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    log_var = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    assert kl_normal_standard(mean, log_var) >= -1e-12
    assert kl_normal_standard(torch.zeros_like(mean), torch.zeros_like(mean)) == 0


def test_shapes_that_do_not_broadcast_raise():
    with pytest.raises(ValueError, match="x and mean must broadcast"):
        log_normal_diag(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="mean and log_var"):
        kl_normal_standard(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="x must be a torch.Tensor"):
        log_standard_normal([0.0, 1.0])


# --- the linear-Gaussian model -------------------------------------------------------------------------


@pytest.fixture
def lg():
    return LinearGaussian.random(data_dim=4, latent_dim=2, sigma=0.7, seed=0)


def test_linear_gaussian_marginal_is_the_multivariate_normal(lg):
    x = lg.sample(5, generator=torch.Generator().manual_seed(0))
    mvn = D.MultivariateNormal(lg.bias, covariance_matrix=lg.weight @ lg.weight.T + 0.49 * torch.eye(4).double())
    torch.testing.assert_close(lg.log_prob(x), mvn.log_prob(x))
    assert lg.log_prob(x[None]).shape == (1, 5)


def test_linear_gaussian_posterior_satisfies_bayes_rule(lg):
    g = torch.Generator().manual_seed(1)
    x = lg.sample(3, generator=g)
    z = torch.randn(6, 3, 2, generator=g, dtype=torch.float64)
    # log p(x) = log p(x, z) - log p(z | x) for every z.
    torch.testing.assert_close(lg.log_joint(x, z) - lg.posterior_log_prob(z, x), lg.log_prob(x).expand(6, 3))


def test_linear_gaussian_marginal_integrates_the_joint_in_one_dimension():
    lg1 = LinearGaussian.random(data_dim=3, latent_dim=1, sigma=0.5, seed=4)
    x = lg1.sample(2, generator=torch.Generator().manual_seed(2))
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64)[:, None, None]
    joint = torch.exp(lg1.log_joint(x, z))  # [grid, 2]
    integral = torch.trapezoid(joint, dx=20 / 20000, dim=0)
    torch.testing.assert_close(torch.log(integral), lg1.log_prob(x), rtol=1e-6, atol=1e-6)


def test_linear_gaussian_samples_have_the_right_moments(lg):
    x = lg.sample(100_000, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(x.mean(0), lg.bias, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), lg.marginal_covariance(), atol=0.1, rtol=0.03)


def test_linear_gaussian_validates(lg):
    with pytest.raises(ValueError, match="sigma must be"):
        LinearGaussian(torch.ones(3, 2), sigma=0.0)
    with pytest.raises(ValueError, match="weight must be"):
        LinearGaussian(torch.ones(3))
    with pytest.raises(ValueError, match="bias must be"):
        LinearGaussian(torch.ones(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="x must be"):
        lg.log_prob(torch.zeros(2, 3, dtype=torch.float64))
    assert lg.sample(0).shape == (0, lg.data_dim)  # an empty sample_shape is allowed (distribution contract)
    with pytest.raises(ValueError, match="sample_shape must be"):
        lg.sample(-1)
