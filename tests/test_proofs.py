"""The numeric checks of book/proofs.md as property tests, and the notebook's exercise checks."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq

from flowedu import checks, proofs
from flowedu.distributions import HalfPosteriorProposal, LinearGaussian, LinearGaussianProposal
from flowedu.flows import PlanarFlow, SequentialFlow, planar_forward, planar_u_hat
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
    checks.check_kl_finite(proofs.kl)

    def no_zero_convention(q, p):  # 0 * log 0 = nan
        return float(np.sum(q * np.log(q / p)))

    def reversed_arguments(q, p):
        return proofs.kl(p, q)

    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(AssertionError):
            checks.check_kl_finite(no_zero_convention)
    with pytest.raises(AssertionError):
        checks.check_kl_finite(reversed_arguments)


def test_check_metropolis_kernel_accepts_the_reference_and_rejects_mistakes():
    checks.check_metropolis_kernel(proofs.metropolis_kernel)

    def no_rejection_mass(p, Q):
        T = proofs.metropolis_kernel(p, Q)
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


# ---- prop-planar and prop-planar-norm-bug ---------------------------------------------------------------


def _vectors_with(w_dot_u, w_norm, d, rng):
    """Random w, u in R^d with the given w^T u and ||w||."""
    w = rng.normal(size=d)
    w *= w_norm / np.linalg.norm(w)
    other = rng.normal(size=d)
    other -= (other @ w) / (w @ w) * w
    u = w_dot_u * w / (w @ w) + other
    return torch.tensor(w), torch.tensor(u)


def _u_hat_divided_by_norm(u, w):
    m = -1 + torch.nn.functional.softplus(w @ u)
    return u + (m - w @ u) * w / w.norm()


@SETTINGS
@given(t=st.floats(-12, 8), log_r=st.floats(-4, 4), d=st.integers(1, 6), seed=seeds)
def test_norm_bug_condition_matches_the_vectors(t, log_r, d, seed):
    """kappa_with_norm_bug is w^T u_hat of the buggy formula, and the condition predicts kappa < -1 exactly."""
    rng = np.random.default_rng(seed)
    r = float(np.exp(log_r))
    w, u = _vectors_with(t, r, d, rng)
    kappa = (w @ _u_hat_divided_by_norm(u, w)).item()
    assert kappa == pytest.approx(proofs.kappa_with_norm_bug(t, r).item(), abs=1e-9 * (1 + abs(t)) * (1 + r))
    if abs(kappa + 1) > 1e-7:
        assert bool(proofs.norm_bug_breaks_invertibility(t, r)) == (kappa < -1)
    # The correct reparametrisation never breaks it.
    assert (w @ planar_u_hat(u, w)).item() > -1


def test_norm_bug_regions_and_boundary():
    # The review's counterexample to "||w|| < 1 and w^T u < 0": w = (0.5, 0), u = (-1, 0).
    w, u = torch.tensor([0.5, 0.0], dtype=torch.float64), torch.tensor([-1.0, 0.0], dtype=torch.float64)
    kappa = (w @ _u_hat_divided_by_norm(u, w)).item()
    assert kappa > -1 and not proofs.norm_bug_breaks_invertibility(-0.5, 0.5)
    # The safe range of w^T u: no ||w|| breaks it.
    ts = np.linspace(*proofs.NORM_BUG_SAFE_RANGE, 201)
    rs = np.geomspace(1e-3, 1e3, 301)
    assert not proofs.norm_bug_breaks_invertibility(ts[:, None], rs[None, :]).any()
    assert (proofs.kappa_with_norm_bug(ts[:, None], rs[None, :]) >= -1 - 1e-12).all()
    # Both other regions exist: w^T u < -1 with ||w|| < 1, and w^T u > -log(e - 1) with ||w|| > 1.
    assert proofs.norm_bug_breaks_invertibility(-3.0, 0.5) and not proofs.norm_bug_breaks_invertibility(-3.0, 1.0)
    assert proofs.norm_bug_breaks_invertibility(0.0, 4.0) and not proofs.norm_bug_breaks_invertibility(0.0, 3.0)
    # On the threshold the buggy kappa is exactly -1.
    t = np.r_[np.linspace(-10, -1.01, 50), np.linspace(-0.5, 10, 50)]
    r_star = proofs.norm_bug_threshold(t)
    assert np.isfinite(r_star).all()
    np.testing.assert_allclose(proofs.kappa_with_norm_bug(t, r_star), -1.0, atol=1e-9)
    assert (r_star[t < -1] < 1).all() and (r_star[t > -0.5] > 2.84).all()
    assert np.isnan(proofs.norm_bug_threshold(np.linspace(-1, -0.55, 10))).all()


@SETTINGS
@given(kappa=st.floats(-6.0, -1.001), d=st.integers(1, 5), b=st.floats(-3, 3), seed=seeds)
def test_planar_collision_when_kappa_below_minus_one(kappa, d, b, seed):
    """wT u_hat < -1: two different points share one image, and 1 + kappa h'(a) < 0 at a = 0."""
    rng = np.random.default_rng(seed)
    w, other = _vectors_with(0.0, float(rng.uniform(0.2, 3)), d, rng)
    u_hat = kappa * w / (w @ w) + other
    z1, z2 = proofs.planar_collision(u_hat, w, b)
    images, log_det = planar_forward(torch.stack([z1, z2]), u_hat, w, b)
    assert (z1 - z2).norm() > 1e-3
    torch.testing.assert_close(images[0], images[1], rtol=0, atol=1e-9)
    assert (w @ z1 + b).abs() < 1e-9  # z1 sits where h' = 1: the Jacobian's determinant is 1 + kappa < 0


def test_planar_boundary_kappa_minus_one_is_a_bijection_but_not_a_diffeomorphism():
    """g(a) = a - tanh(a) is strictly increasing with g'(0) = 0: its inverse has an infinite slope at 0."""
    a = torch.linspace(-4, 4, 80_001, dtype=torch.float64)
    g = a - torch.tanh(a)
    assert (g.diff() > 0).all()
    for y in (1e-3, 1e-6, 1e-9):  # g(a) ~ a^3/3, so g^-1(y) ~ (3y)^(1/3) and g^-1(y)/y -> infinity
        root = brentq(lambda a, y=y: a - np.tanh(a) - y, 0.0, 10.0, xtol=1e-300, rtol=1e-15)
        assert root == pytest.approx((3 * y) ** (1 / 3), rel=0.05)
    assert brentq(lambda a: a - np.tanh(a) - 1e-9, 0.0, 10.0) / 1e-9 > 1e6


def test_invalid_planar_inputs_raise():
    w, u = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([-0.5, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="must be < -1"):
        proofs.planar_collision(u, w, 0.0)
    with pytest.raises(ValueError, match="w_norm"):
        proofs.kappa_with_norm_bug(0.0, 0.0)
    with pytest.raises(ValueError, match="w_dot_u"):
        proofs.norm_bug_threshold(float("nan"))


# ---- thm-iwae-limit: the hypotheses ----------------------------------------------------------------------


def _linear_gaussian(latent_dim=2):
    model = LinearGaussian.random(data_dim=5, latent_dim=latent_dim, sigma=0.5, seed=1, dtype=torch.float64)
    return model, model.sample(3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_half_posterior_weights_are_all_half_the_evidence(latent_dim):
    model, x = _linear_gaussian(latent_dim)
    proposal = HalfPosteriorProposal(model)
    log_w = proposal.log_weights(x, 500, generator=torch.Generator().manual_seed(1))
    expected = model.log_prob(x) - np.log(2)
    torch.testing.assert_close(log_w, expected.expand_as(log_w), rtol=0, atol=1e-9)
    bound = iwae_bound(proposal, x, 64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(bound, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shift, scale", [(0.5, 1.5), (0.0, 1.2), (-1.0, 3.0)])
def test_max_log_weight_is_the_supremum(shift, scale):
    """s > 1: the closed form is attained (zero gradient there) and no draw exceeds it."""
    model, x = _linear_gaussian()
    proposal = LinearGaussianProposal(model, shift=shift, scale=scale)
    sup = proposal.max_log_weight(x)
    mean, _ = model.posterior(x)
    delta = torch.full((2,), shift, dtype=torch.float64)
    z_star = (mean + delta / (1 - scale**2)).requires_grad_(True)  # y* = -e / (s^2 - 1), whitened
    value = proposal.log_weight(x, z_star)
    (grad,) = torch.autograd.grad(value.sum(), z_star)
    torch.testing.assert_close(value.detach(), sup, rtol=0, atol=1e-9)
    assert grad.abs().max() < 1e-9
    draws = proposal.log_weights(x, 20_000, generator=torch.Generator().manual_seed(3))
    assert (draws <= sup + 1e-12).all()


def test_weights_are_unbounded_at_scale_one_with_an_offset():
    """s = 1 and delta != 0: log w is affine in z, so it grows without bound along -Sigma^-1 delta."""
    model, x = _linear_gaussian()
    flat = LinearGaussianProposal(model, shift=0.0, scale=1.0)
    tilted = LinearGaussianProposal(model, shift=0.5, scale=1.0)
    assert torch.isinf(tilted.max_log_weight(x)).all()
    torch.testing.assert_close(flat.max_log_weight(x), model.log_prob(x))
    mean, cov = model.posterior(x)
    direction = -torch.linalg.solve(cov, torch.full((2,), 0.5, dtype=torch.float64))
    steps = torch.tensor([0.0, 10.0, 20.0, 40.0], dtype=torch.float64)
    values = tilted.log_weight(x, mean + steps[:, None, None] * direction)  # [4, batch]
    increments = values.diff(dim=0) / steps.diff()[:, None]
    torch.testing.assert_close(increments, increments[:1].expand_as(increments), rtol=1e-9, atol=1e-9)
    assert (increments > 0).all()
    assert torch.isinf(LinearGaussianProposal(model, shift=0.0, scale=0.9).max_log_weight(x)).all()


def test_bounded_weights_example():
    """w <= 1/e, L_1 = -inf; L_K lies in its exact bracket for K >= 2 and tends to log p(x)."""
    example = proofs.BoundedWeightsExample()
    evidence, _ = quad(lambda z: np.exp(-1.0 / z), 0.0, 1.0, epsabs=1e-13)
    assert example.log_evidence == pytest.approx(np.log(evidence), abs=1e-10)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(20_000, 1, dtype=torch.float64)
    assert (example.log_weights(x, 4, generator=g) <= -1).all()
    for k in (3, 8, 64):
        lower, upper = example.bounds(k)
        draws = iwae_bound(example, x, k, generator=g)
        estimate, se = draws.mean().item(), draws.std().item() / np.sqrt(len(x))
        assert lower - 4 * se < estimate < min(upper, example.log_evidence) + 4 * se, (k, estimate, lower, upper)
    assert example.bounds(1) == (-np.inf, -np.inf)
    # E[log w; z > delta] = -log(1/delta): the truncated ELBO falls without bound as delta -> 0.
    for delta in (1e-2, 1e-4, 1e-6):
        truncated, _ = quad(lambda z: -1.0 / z, delta, 1.0)
        assert truncated == pytest.approx(np.log(delta))


# ---- the chapter's room: flowedu.proofs ------------------------------------------------------------------


PROOFS_MODULES = sorted(Path(proofs.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", PROOFS_MODULES, ids=[p.name for p in PROOFS_MODULES])
def test_proofs_modules_open_with_their_chapter_and_are_small(path):
    source = path.read_text(encoding="utf-8")
    assert (ast.get_docstring(ast.parse(source)) or "").startswith("Chapter: book/proofs.md"), path.name
    assert len(source.splitlines()) <= 400, f"{path.name} has {len(source.splitlines())} lines"


def test_proofs_reexports_every_public_name_explicitly_and_the_old_path_is_gone():
    tree = ast.parse((Path(proofs.__file__).parent / "__init__.py").read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    # the torch-based names are listed explicitly in _LAZY and load on first use
    assert "*" not in imported and not imported & set(proofs._LAZY)
    assert set(proofs.__all__) == imported | set(proofs._LAZY)
    for name, module in proofs._LAZY.items():
        assert getattr(proofs, name) is getattr(importlib.import_module(module), name), name
    for path in PROOFS_MODULES:
        if path.name != "__init__.py":
            module = importlib.import_module(f"flowedu.proofs.{path.stem}")
            assert set(module.__all__) <= set(proofs.__all__), path.stem
    with pytest.raises(ModuleNotFoundError):  # the old path is gone
        importlib.import_module("flowedu.markov")


def test_the_markov_chain_code_imports_without_torch():
    # the chapter page draws its figure with flowedu.proofs.markov: it must not pay for importing torch
    code = "import sys, flowedu.proofs; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 - the legacy global state is what a student's notebook uses
    expected_torch, expected_numpy = torch.rand(3), np.random.rand(3)  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    checks.check_kl_finite(proofs.kl)
    checks.check_metropolis_kernel(proofs.metropolis_kernel)
    torch.testing.assert_close(torch.rand(3), expected_torch)
    np.testing.assert_array_equal(np.random.rand(3), expected_numpy)  # noqa: NPY002
