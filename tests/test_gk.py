"""Tests of flowedu.gk: quantile function, density by inversion, fitting, copula, flow layer."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from flowedu.checks import check_flow_layer
from flowedu.gk import (
    GandK,
    GandKTransform,
    MultivariateGandK,
    fit_mle,
    fit_quantiles_lm,
    fit_sample_mse_wrong,
    gk_boundary_g,
    gk_c_max,
    gk_is_valid,
    gk_quantile,
    gk_quantile_derivative,
    gk_quantile_residuals,
    gk_quantile_residuals_jacobian,
    gk_solve_z,
    gk_transform,
)

F64 = torch.float64
valid_k0 = st.tuples(
    st.floats(-5, 5), st.floats(0.05, 5), st.floats(-6, 6), st.floats(0.0, 2.0)
)  # (A, B, g, k) with k >= 0: monotone for every g (c = 0.8 <= 0.83)
SETTINGS = settings(max_examples=25, deadline=None)


def test_published_quantiles_of_the_standard_case():
    # FACTS.md / Allingham et al. (2009): (3, 1, 2, 0.5) at u = 0.1, 0.25, 0.5, 0.75, 0.9.
    u = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=F64)
    expected = torch.tensor([2.3449, 2.5691, 3.0000, 4.1962, 6.5113], dtype=F64)
    assert torch.allclose(gk_quantile(u, 3, 1, 2, 0.5), expected, atol=6e-5)


@SETTINGS
@given(valid_k0)
def test_derivative_matches_autograd(params):
    a, b, g, k = params
    z = torch.linspace(-6, 6, 41, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(gk_transform(z, a, b, g, k).sum(), z)
    assert torch.allclose(gk_quantile_derivative(z.detach(), a, b, g, k), grad, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(valid_k0)
def test_quantile_is_monotone_for_valid_parameters(params):
    a, b, g, k = params
    assert gk_is_valid(a, b, g, k)
    u = torch.linspace(1e-6, 1 - 1e-6, 4001, dtype=F64)
    q = gk_quantile(u, a, b, g, k)
    assert (q.diff() > 0).all()


@SETTINGS
@given(st.floats(0.2, 8), st.floats(-0.49, -0.01))
def test_negative_k_validity_agrees_with_a_fine_grid(g, k):
    z = torch.linspace(-60, 60, 240001, dtype=F64)
    monotone = bool((gk_quantile_derivative(z, 0, 1, g, k) > 0).all())
    if gk_is_valid(0, 1, g, k):
        assert monotone
    elif monotone:  # the grid of gk_is_valid is finer near 0 and reaches further; never less strict
        pytest.fail(f"gk_is_valid rejects g={g}, k={k} although the fine grid finds Q' > 0")


def test_known_invalid_parameters_are_rejected():
    assert not gk_is_valid(0, 1, 1.0, -0.1)  # Q' < 0 near z = -2.3
    with pytest.raises(ValueError, match="not monotone"):
        GandK(0.0, 1.0, 1.0, -0.1)


@pytest.mark.parametrize("b, k, match", [(0.0, 0.5, "b .*> 0"), (-1.0, 0.5, "b .*> 0"),
                                         (1.0, -0.5, "k must be .*> -0.5"), (1.0, -0.7, "k must be .*> -0.5")])
def test_invalid_scale_or_tail_raise(b, k, match):
    with pytest.raises(ValueError, match=match):
        gk_quantile(0.3, 0, b, 1, k)
    with pytest.raises(ValueError, match=match):
        GandK(0.0, b, 1.0, k)


def test_other_inputs_are_validated():
    with pytest.raises(ValueError, match="u must"):
        gk_quantile(torch.tensor([0.0, 0.5], dtype=F64), 0, 1, 0, 0)
    with pytest.raises(ValueError, match="x must"):
        gk_solve_z(torch.tensor([float("nan")], dtype=F64), 0, 1, 0, 0)
    with pytest.raises(ValueError, match="c must"):
        gk_quantile(0.5, 0, 1, 0, 0, c=1.5)
    with pytest.raises(ValueError, match="x must hold at least 4"):
        fit_quantiles_lm([1.0, 2.0])
    with pytest.raises(ValueError, match="corr must be positive definite"):
        MultivariateGandK([0, 0], 1, 0, 0, [[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="k_min"):
        GandKTransform(2, k_min=-0.2)


@SETTINGS
@given(valid_k0, st.lists(st.floats(1e-6, 1 - 1e-6), min_size=1, max_size=20))
def test_cdf_inverts_icdf(params, us):
    dist = GandK(*params)
    u = torch.tensor(us, dtype=F64)
    assert torch.allclose(dist.cdf(dist.icdf(u)), u, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_log_prob_integrates_to_one(seed):
    rng = np.random.default_rng(seed)
    a, b, g, k = rng.uniform(-2, 2), rng.uniform(0.3, 3), rng.uniform(-4, 4), rng.uniform(-0.3, 1.5)
    if not gk_is_valid(a, b, g, k):
        k = abs(k)
    dist = GandK(a, b, g, k)
    lo, hi = (dist.icdf(torch.tensor(p, dtype=F64)).item() for p in (1e-8, 1 - 1e-8))
    # Simpson's rule in t with x = a + b sinh(t): a grid fine at the centre, coarse in the tails,
    # and independent of Q (a grid in z would make the check circular).
    t = np.linspace(np.arcsinh((lo - a) / b), np.arcsinh((hi - a) / b), 40_001)
    x = a + b * np.sinh(t)
    integrand = dist.log_prob(torch.tensor(x, dtype=F64)).exp().numpy() * b * np.cosh(t)
    mass = integrate.simpson(integrand, x=t)
    # the two tails beyond the grid hold 2e-8 of the mass by construction
    assert mass == pytest.approx(1 - 2e-8, abs=1e-7), (a, b, g, k)


def test_samples_follow_the_cdf():
    dist = GandK(3.0, 1.0, 2.0, 0.5)
    x = dist.sample(5000, generator=torch.Generator().manual_seed(0))
    result = stats.kstest(x.numpy(), lambda t: dist.cdf(torch.as_tensor(t, dtype=F64)).numpy())
    assert result.pvalue > 1e-3


def test_log_prob_gradients_match_finite_differences():
    x = torch.tensor([-1.0, 0.3, 2.5, 9.0], dtype=F64, requires_grad=True)
    params = [torch.tensor(v, dtype=F64, requires_grad=True) for v in (0.5, 1.3, 1.5, 0.4)]

    def log_prob(x, a, b, g, k):
        return GandK(a, b, g, k, validate=False).log_prob(x)

    assert torch.autograd.gradcheck(log_prob, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-5)
    # and the derivative of the CDF in x is the density
    (dcdf,) = torch.autograd.grad(GandK(*params).cdf(x).sum(), x)
    assert torch.allclose(dcdf, GandK(*params).log_prob(x).exp(), rtol=1e-8)


def test_lm_recovers_the_standard_case_from_1e4_samples():
    # Tolerance: 4 standard deviations of the estimator, measured over 20 data sets of 10^4 draws
    # (sd of A, B, g, k: 0.016, 0.043, 0.053, 0.031; the notebook reruns this study).
    x = GandK(3.0, 1.0, 2.0, 0.5).sample(10_000, generator=torch.Generator().manual_seed(1))
    fit = fit_quantiles_lm(x)
    assert fit.success
    assert np.all(np.abs(fit.params - [3, 1, 2, 0.5]) < [0.07, 0.17, 0.21, 0.12]), fit


def test_mle_improves_the_likelihood_over_lm():
    dist = GandK(3.0, 1.0, 2.0, 0.5)
    x = dist.sample(1000, generator=torch.Generator().manual_seed(2))
    lm = fit_quantiles_lm(x)
    mle = fit_mle(x, init=lm)
    ll = [f.distribution().log_prob(x).sum().item() for f in (lm, mle)]
    assert ll[1] >= ll[0] - 1e-8
    # MLE sd at n = 1000 (10 data sets): 0.028, 0.064, 0.088, 0.035; 4 sd
    assert np.all(np.abs(mle.params - [3, 1, 2, 0.5]) < [0.12, 0.26, 0.36, 0.14]), mle


def test_sample_mse_fit_collapses_the_scale():
    x = GandK(3.0, 1.0, 2.0, 0.5).sample(1000, generator=torch.Generator().manual_seed(0))
    wrong = fit_sample_mse_wrong(x, fresh=False)
    assert wrong.b < 0.2 and abs(wrong.a - x.mean().item()) < 0.1, wrong


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gk_transform_passes_the_flow_layer_check(dtype):
    layer = GandKTransform(3, a=[0.0, 1.0, -2.0], b=[1.0, 2.0, 0.5], g=[1.0, -2.0, 0.5], k=[0.1, 0.5, 0.3]).to(dtype)
    check_flow_layer(layer, torch.randn(8, 3, generator=torch.Generator().manual_seed(0)).to(dtype), verbose=False)


def test_gk_transform_matches_the_univariate_density():
    layer = GandKTransform(2, a=[3.0, 0.0], b=[1.0, 2.0], g=[2.0, -1.0], k=[0.5, 0.2]).double()
    x = torch.randn(50, 2, dtype=F64) * 2 + 3
    z, log_det = layer.inverse(x)
    log_p = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + log_det
    expected = GandK(3.0, 1.0, 2.0, 0.5).log_prob(x[:, 0]) + GandK(0.0, 2.0, -1.0, 0.2).log_prob(x[:, 1])
    assert torch.allclose(log_p, expected, rtol=1e-5)  # parameters stored in float32


def test_multivariate_density_is_the_gaussian_copula():
    rho = 0.6
    dist = MultivariateGandK([3, 4], [1, 0.5], [1, 2], [0.5, 0.4], [[1, rho], [rho, 1]])
    x = dist.sample(200, generator=torch.Generator().manual_seed(0))
    m1, m2 = GandK(3.0, 1.0, 1.0, 0.5), GandK(4.0, 0.5, 2.0, 0.4)
    z = torch.stack([m1.normal_score(x[:, 0]), m2.normal_score(x[:, 1])], 1).numpy()
    copula = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).logpdf(z) - stats.norm.logpdf(z).sum(1)
    expected = copula + (m1.log_prob(x[:, 0]) + m2.log_prob(x[:, 1])).numpy()
    assert np.allclose(dist.log_prob(x).numpy(), expected, rtol=1e-9)
    big = dist.sample(20_000, generator=torch.Generator().manual_seed(1))
    scores = torch.stack([m1.normal_score(big[:, 0]), m2.normal_score(big[:, 1])], 1)
    assert abs(np.corrcoef(scores.T.numpy())[0, 1] - rho) < 0.03


def test_standard_normal_quantile_is_accurate_in_the_far_lower_tail():
    # ndtri, not sqrt(2) erfinv(2u - 1): 2u - 1 rounds to -1 for u below 1e-17 and erfinv returns -inf
    u = torch.tensor([1e-300, 1e-20, 1e-10], dtype=F64)
    assert torch.allclose(gk_quantile(u, 0, 1, 0, 0), torch.tensor(stats.norm.ppf(u.numpy())), rtol=1e-12)


def test_validate_false_reaches_the_boundary_k_half():
    z = torch.linspace(-3, 3, 7, dtype=F64)
    with pytest.raises(ValueError, match="k must be"):
        gk_transform(z, 0, 1, 0, -0.5)
    q = gk_transform(z, 0, 1, 0, -0.5, validate=False)
    assert torch.allclose(q, z / torch.sqrt(1 + z**2))  # g = 0, k = -1/2: A + B z / sqrt(1 + z^2)


def test_c_max_is_tanh_of_the_root_of_s_tanh_s_equal_one():
    c_max = gk_c_max()
    s0 = np.arctanh(c_max)
    assert s0 * c_max == pytest.approx(1.0, abs=1e-12)
    s = np.linspace(1e-3, 10, 200_001)
    assert 1 / np.max(np.tanh(s) + s / np.cosh(s) ** 2) == pytest.approx(c_max, rel=1e-9)
    assert 0.83 < c_max < 0.834  # the literature's "c <= 0.83" is the rounded-down value
    # at k = 0 the minimum of Q'/B over z is h(s0) = 1 - c s0 = 1 - c / c_max, for every g != 0
    z = torch.linspace(-40, 40, 400_001, dtype=F64)
    for g in (0.5, 3.0):
        assert gk_quantile_derivative(z, 0, 1, g, 0.0).min().item() == pytest.approx(1 - 0.8 / c_max, abs=1e-6)


@pytest.mark.parametrize("c", [0.5, 0.8, 0.83])
def test_boundary_g_separates_valid_from_invalid_at_k_half(c):
    g_star = gk_boundary_g(c)
    z = torch.cat([-torch.logspace(-5, 3, 100_001, dtype=F64), torch.logspace(-5, 3, 100_001, dtype=F64)])

    def bracket_min(g):  # (1 + z^2)^(3/2) Q'(z) / B at k = -1/2
        return (gk_quantile_derivative(z, 0, 1, g, -0.5, c, validate=False) * (1 + z**2) ** 1.5).min().item()

    assert bracket_min(0.999 * g_star) < 0 < bracket_min(1.001 * g_star)
    assert bracket_min(0.0) > 0 and bracket_min(-1.001 * g_star) > 0 and bracket_min(0.1) < 0


def test_boundary_g_is_infinite_beyond_c_max_and_validates_c():
    assert gk_boundary_g(0.9) == math.inf
    for c in (0.0, 1.0, -0.1, "0.8"):
        with pytest.raises(ValueError, match="c must"):
            gk_boundary_g(c)


def test_residual_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    z = stats.norm.ppf(np.arange(1, 41) / 41)
    x_sorted = np.sort(rng.standard_normal(40))
    for theta in ([3.0, 0.1, 2.0, -0.7], [-1.0, -0.5, -1.5, 0.4]):
        theta = np.array(theta)
        columns = [gk_quantile_residuals(theta + h, z, x_sorted) - gk_quantile_residuals(theta - h, z, x_sorted)
                   for h in np.eye(4) * 1e-6]
        numeric = np.stack(columns, axis=1) / 2e-6
        assert np.allclose(gk_quantile_residuals_jacobian(theta, z, x_sorted), numeric, rtol=1e-6, atol=1e-7)


def test_gk_modules_open_with_their_chapter_and_import_no_private_names():
    import ast
    from pathlib import Path

    import flowedu.gk

    for path in sorted(Path(flowedu.gk.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert (ast.get_docstring(tree) or "").startswith("Chapter: book/gk.md"), path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flowedu"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{path.name} imports private names {private} from {node.module}"
