"""The numeric checks of book/proofs.md as property tests, and the notebook's exercise checks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import checks, markov
from flowedu.flows import PlanarFlow, SequentialFlow
from flowedu.vae import iwae_bound

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@SETTINGS
@given(d=st.integers(1, 16), seed=seeds)
def test_matrix_determinant_lemma(d, seed):
    """det(A + u v^T) = (1 + v^T A^{-1} u) det A on random matrices (lem-matrix-determinant)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64) + 3 * torch.eye(d, dtype=torch.float64)
    u, v = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    lhs = torch.linalg.det(A + torch.outer(u, v))
    rhs = (1 + v @ torch.linalg.solve(A, u)) * torch.linalg.det(A)
    torch.testing.assert_close(lhs, rhs, rtol=1e-9, atol=1e-9)
    eye = torch.eye(d, dtype=torch.float64)
    torch.testing.assert_close(torch.linalg.det(eye + torch.outer(u, v)), 1 + v @ u, rtol=1e-9, atol=1e-9)


def test_check_kl_finite_accepts_the_reference_and_rejects_mistakes():
    checks.check_kl_finite(markov.kl)

    def no_zero_convention(q, p):  # 0 * log 0 = nan
        return float(np.sum(q * np.log(q / p)))

    def reversed_arguments(q, p):
        return markov.kl(p, q)

    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(AssertionError):
            checks.check_kl_finite(no_zero_convention)
    with pytest.raises(AssertionError):
        checks.check_kl_finite(reversed_arguments)


def test_check_metropolis_kernel_accepts_the_reference_and_rejects_mistakes():
    checks.check_metropolis_kernel(markov.metropolis_kernel)

    def no_rejection_mass(p, Q):
        T = markov.metropolis_kernel(p, Q)
        np.fill_diagonal(T, 0.0)
        return T

    def no_proposal_ratio(p, Q):  # correct only for symmetric Q
        accept = np.minimum(1.0, p[None, :] / p[:, None])
        T = Q * accept
        np.fill_diagonal(T, 0.0)
        T[np.diag_indices_from(T)] = 1 - T.sum(axis=1)
        return T

    with pytest.raises(AssertionError, match="sum to"):
        checks.check_metropolis_kernel(no_rejection_mass)
    with pytest.raises(AssertionError, match="proposal"):
        checks.check_metropolis_kernel(no_proposal_ratio)


@SETTINGS
@given(d=st.integers(1, 12), seed=seeds, scale=st.floats(0.1, 5.0))
def test_planar_log_det_matches_autograd(d, seed, scale):
    """The O(d) planar log-det (determinant lemma) equals log|det| of the autograd Jacobian (prop-planar)."""
    layer = PlanarFlow(d, init_scale=scale, generator=torch.Generator().manual_seed(seed)).double()
    z = torch.randn(4, d, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    _, log_det = layer(z)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: layer(v[None])[0][0]))(z)
    torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, log_det, rtol=1e-9, atol=1e-9)
    assert (layer.w @ layer.u_hat()).item() > -1


@settings(max_examples=10, deadline=None)
@given(n_layers=st.integers(1, 4), seed=seeds)
def test_change_of_variables_density_integrates_to_one(n_layers, seed):
    """log q_K = log q_0(f^-1(x)) + inverse log-dets is a density: it integrates to 1 (1-D quadrature)."""
    g = torch.Generator().manual_seed(seed)
    flow = SequentialFlow(*[PlanarFlow(1, init_scale=1.5, generator=g) for _ in range(n_layers)]).double()
    x = torch.linspace(-15, 15, 30001, dtype=torch.float64)[:, None]  # init_scale 1.5 keeps w^T u_hat >= -0.9
    with torch.no_grad():
        z0, log_det = flow.inverse(x)
        density = torch.exp(-0.5 * z0[:, 0] ** 2 - 0.5 * np.log(2 * np.pi) + log_det)
        wrong = torch.exp(-0.5 * z0[:, 0] ** 2 - 0.5 * np.log(2 * np.pi) - log_det)
    mass = torch.trapezoid(density, x[:, 0]).item()
    assert abs(mass - 1) < 1e-4, mass
    if log_det.abs().max() > 0.5:  # a layer that really bends: the wrong sign is not a density
        assert abs(torch.trapezoid(wrong, x[:, 0]).item() - 1) > 1e-3


class _LogNormalWeights:
    """Weights w = exp(mu + s eps): E[w] = exp(mu + s^2/2) plays p(x), E[log w] = mu plays the ELBO."""

    def __init__(self, mu, s):
        self.mu, self.s = mu, s

    def log_weights(self, x, k, generator=None):
        return self.mu + self.s * torch.randn(k, len(x), generator=generator, dtype=torch.float64)


@settings(max_examples=10, deadline=None)
@given(s=st.floats(0.3, 1.5), seed=seeds)
def test_iwae_bounds_rise_with_k_towards_log_p(s, seed):
    """L_1 <= L_4 <= L_64 <= log E[w] (thm-iwae-monotone), with L_1 = E log w and L_64 close to the limit."""
    g = torch.Generator().manual_seed(seed)
    weights, log_p = _LogNormalWeights(0.0, s), s**2 / 2
    x = torch.zeros(20_000, 1)
    bounds = [iwae_bound(weights, x, k, generator=g).mean().item() for k in (1, 4, 64)]
    assert abs(bounds[0]) < 5 * s / np.sqrt(len(x))
    assert bounds[0] < bounds[1] < bounds[2] < log_p + 0.01, (bounds, log_p)
    assert log_p - bounds[2] < 0.5 * (log_p - bounds[1])


@SETTINGS
@given(n_blocks=st.integers(1, 20), k=st.integers(1, 16), seed=seeds)
def test_subset_averaging_inequality(n_blocks, k, seed):
    """The proof's mechanism, sample by sample: log of a 2K-mean >= average log of its two K-means."""
    w = np.random.default_rng(seed).lognormal(0.0, 2.0, size=(n_blocks, 2, k))
    big = np.log(w.reshape(n_blocks, 2 * k).mean(axis=1))
    small = np.log(w.mean(axis=2)).mean(axis=1)
    assert np.all(big >= small - 1e-12)
