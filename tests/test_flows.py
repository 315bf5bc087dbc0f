"""Every flow layer: round trip, log-det cancellation, autograd slogdet, dtype, batch of one; and the
flow-based distribution: normalised, samples agree with log_prob, forward and inverse agree."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import checks, flows
from flowedu.distributions import grid_log_normalizer

LAYERS = {
    "scale": lambda d: flows.Scale(d, torch.linspace(0.5, 3.0, d)),
    "translate": lambda d: flows.Translate(d, torch.linspace(-1.0, 2.0, d)),
    "swap": lambda d: flows.Swap(d),
    "swap_uneven": lambda d: flows.Swap(d, split=1),
    "permute": lambda d: flows.Permute(d, seed=1),
    "additive": lambda d: flows.AdditiveCoupling(d, 8, zero_init=False),
    "affine": lambda d: flows.AffineCoupling(d, 8, zero_init=False),
    "affine_mask": lambda d: flows.AffineCoupling(d, 8, mask=torch.arange(d) % 2 == 1, zero_init=False),
    "planar": lambda d: flows.PlanarFlow(d, init_scale=3.0),
    "radial": lambda d: flows.RadialFlow(d, init_scale=2.0),
    "inverse_planar": lambda d: flows.Inverse(flows.PlanarFlow(d, init_scale=3.0)),
    "realnvp": lambda d: flows.realnvp(d, 3, 8, zero_init=False),
    "nice": lambda d: flows.nice(d, 3, 8, zero_init=False),
    "split": lambda d: flows.Split(d),
}


@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_contract_float64(name, dim):
    torch.manual_seed(0)
    layer = LAYERS[name](dim).double()
    checks.check_flow_layer(layer, 1.5 * torch.randn(16, dim, dtype=torch.float64), verbose=False)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_contract_float32_batch_of_one(name):
    torch.manual_seed(1)
    layer = LAYERS[name](3)
    checks.check_flow_layer(layer, torch.randn(1, 3), verbose=False)


def test_merge_is_split_inverted():
    z = torch.randn(6, 4, dtype=torch.float64)
    checks.check_flow_layer(flows.Merge(4, split=1), (z[:, :1], z[:, 1:]), verbose=False)


def test_conditional_coupling_uses_its_context():
    torch.manual_seed(0)
    flow = flows.realnvp(3, 2, 8, context_dim=2, zero_init=False).double()
    z, c = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    checks.check_flow_layer(flow, z, context=c, verbose=False)
    assert not torch.allclose(flow(z, c)[0], flow(z, c + 1)[0])
    with pytest.raises(ValueError, match="context must have shape"):
        flow(z)


class WrongSign(flows.Scale):
    def forward(self, z):
        x, log_det = super().forward(z)
        return x, -log_det


class NoDevice(flows.Translate):
    def forward(self, z):
        return z + self.shift, torch.zeros(len(z), dtype=torch.float32)


def test_check_flow_layer_catches_bugs():
    z = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="cancel|log_det"):
        checks.check_flow_layer(WrongSign(2, 2.0).double(), z, verbose=False)
    with pytest.raises(AssertionError, match="dtype"):
        checks.check_flow_layer(NoDevice(2).double(), z, verbose=False)
    broken = flows.AffineCoupling(2, 4, zero_init=False).double()
    broken.inverse = lambda x: (x, torch.zeros(len(x), dtype=x.dtype))
    with pytest.raises(AssertionError, match="inverse\\(forward\\(z\\)\\)"):
        checks.check_flow_layer(broken, z, verbose=False)


def test_planar_stays_invertible_for_adversarial_parameters():
    layer = flows.PlanarFlow(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([3.0, -1.0]))
        layer.u.copy_(-10 * layer.w)  # wᵀu = -100 << -1: the raw map would fold the plane
        layer.b.fill_(0.3)
    # m(-100) = -1 + softplus(-100) rounds to -1: the boundary wᵀû = -1, where f is still a bijection
    # (a - tanh(a) is strictly increasing) whose Jacobian is singular only on the line wᵀz + b = 0
    assert (layer.w @ layer.u_hat()).item() >= -1 - 1e-12
    z = torch.randn(64, 2, dtype=torch.float64)
    checks.check_flow_layer(layer, z, verbose=False)
    # the common bug, dividing by ||w|| instead of ||w||², gives wᵀû = wᵀu + (m - wᵀu) ||w||: below -1
    # whenever ||w|| < 1 and wᵀu << -1
    w = torch.tensor([0.3, -0.1], dtype=torch.float64)
    u = -100 * w
    wu = w @ u
    buggy = u + (-1 + torch.nn.functional.softplus(wu) - wu) * w / w.norm()
    assert (w @ buggy).item() < -1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=5, max_size=5))
def test_planar_inverse_round_trip_property(params):
    u = torch.tensor(params[:2], dtype=torch.float64)
    w = torch.tensor(params[2:4], dtype=torch.float64)
    if w.norm() < 1e-3:
        w = w + 1.0
    u_hat = flows.planar_u_hat(u, w)
    z = 3 * torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, ld = flows.planar_forward(z, u_hat, w, params[4])
    back, ld_inv = flows.planar_inverse(x, u_hat, w, params[4])
    torch.testing.assert_close(back, z, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(ld + ld_inv, torch.zeros_like(ld), atol=1e-7, rtol=0)


def test_numerical_inverses_are_differentiable():
    """The root-found inverses give the right gradients (gradcheck against finite differences)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    u = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, u, w, b: flows.planar_inverse(x, flows.planar_u_hat(u, w), w, b),
                                    (x, u, w, b))
    z0 = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(-0.6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(flows.radial_inverse, (x, z0, alpha, beta))


@pytest.mark.parametrize("beta", [-0.4999, -0.25, 0.0, 3.0, 50.0])
def test_radial_root_solves_the_scalar_equation(beta):
    alpha = 0.5  # beta >= -alpha
    r = torch.logspace(-6, 3, 50, dtype=torch.float64)
    rho = r + beta * r / (alpha + r)
    torch.testing.assert_close(flows.radial_root(rho, alpha, beta), r, rtol=1e-8, atol=1e-12)


def make_flows():
    torch.manual_seed(0)
    base = flows.StandardNormal(2)
    return {
        "realnvp": flows.NormalizingFlow(base, flows.realnvp(2, 4, 16, zero_init=False)),
        "planar": flows.NormalizingFlow(base, *[flows.Inverse(flows.PlanarFlow(2, 2.0)) for _ in range(3)]),
        "radial": flows.NormalizingFlow(base, *[flows.RadialFlow(2, 1.5) for _ in range(3)]),
    }


@pytest.mark.parametrize("name", ["realnvp", "planar", "radial"])
def test_flow_density_integrates_to_one(name):
    flow = make_flows()[name].double()
    log_z = grid_log_normalizer(flow.log_prob, bounds=((-9, 9), (-9, 9)), n=300)
    assert abs(log_z) < 2e-3, log_z


@pytest.mark.parametrize("name", ["realnvp", "planar"])
def test_samples_agree_with_log_prob(name):
    """A histogram of samples against the density integrated over each bin."""
    flow = make_flows()[name].double()
    torch.manual_seed(1)
    n, edges = 40_000, torch.linspace(-3, 3, 7, dtype=torch.float64)
    x = flow.sample(n)
    counts = torch.histogramdd(x, bins=[edges, edges]).hist
    fine = torch.linspace(-3, 3, 121, dtype=torch.float64)
    centres = (fine[1:] + fine[:-1]) / 2
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = (flow.log_prob(grid).exp() * 0.05**2).reshape(120, 120)
    expected = n * mass.reshape(6, 20, 6, 20).sum((1, 3))
    assert ((counts - expected).abs() <= 5 * expected.sqrt() + 5).all(), (counts - expected).abs().max()


def test_sample_and_log_prob_matches_log_prob():
    for flow in make_flows().values():
        flow = flow.double()
        x, log_q = flow.sample_and_log_prob(64)
        assert x.shape == (64, 2) and log_q.shape == (64,) and x.requires_grad
        torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-7, rtol=1e-7)
        assert flow.sample((5,)).shape == (5, 2) and not flow.sample(5).requires_grad


def test_uniform_base_works_like_a_torch_distribution():
    base = torch.distributions.Independent(
        torch.distributions.Uniform(-torch.ones(2), torch.ones(2), validate_args=False), 1)
    flow = flows.NormalizingFlow(base, flows.Scale(2, 2.0))
    x = flow.sample(100)
    assert x.abs().max() <= 2
    torch.testing.assert_close(flow.log_prob(x), torch.full((100,), -math.log(16.0)))
    assert flow.log_prob(torch.tensor([[2.5, 0.0]])).item() == -math.inf  # outside the support
    # with torch's argument validation on (its default) the same point raises instead (book/flows.md)
    validated = flows.NormalizingFlow(torch.distributions.Independent(
        torch.distributions.Uniform(-torch.ones(2), torch.ones(2), validate_args=True), 1), flows.Scale(2, 2.0))
    with pytest.raises(ValueError, match="support"):
        validated.log_prob(torch.tensor([[2.5, 0.0]]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: flows.Scale(2, 0.0), "scale must be > 0"),
        (lambda: flows.Scale(2, [1.0, -1.0]), "scale must be > 0"),
        (lambda: flows.Scale(2, [1.0, 2.0, 3.0]), r"scale must be a number or have shape \[2\]"),
        (lambda: flows.Scale(0), "dim must be an integer >= 1"),
        (lambda: flows.PlanarFlow(2.5), "dim must be an integer >= 1"),
        (lambda: flows.Split(1), "dim must be an integer >= 2"),
        (lambda: flows.Swap(4, split=4), r"split must be an integer in \[1, 3\]"),
        (lambda: flows.Permute(3, [0, 0, 1]), "perm must be a permutation"),
        (lambda: flows.AffineCoupling(2, 8, mask=[True, True]), "mask must keep at least one"),
        (lambda: flows.AffineCoupling(2, 8, scale_bound=0.0), "scale_bound must be > 0"),
        (lambda: flows.AffineCoupling(2, 0), "hidden must be an integer >= 1"),
        (lambda: flows.SequentialFlow(), "layers must hold at least one"),
        (lambda: flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2)).sample(-1), "sample_shape must be"),
        (lambda: flows.Scale(3)(torch.zeros(4, 2)), r"z must have shape \[batch, 3\]"),
        (lambda: flows.PlanarFlow(2)(torch.zeros(4, 2, dtype=torch.long)), "floating-point"),
        (lambda: flows.PlanarFlow(2, copies=0), "copies must be None or an integer >= 1"),
        (lambda: flows.PlanarFlow(2, copies=3)(torch.zeros(4, 2)), r"z must have shape \[batch, 3, 2\]"),
        (lambda: flows.StandardNormal(2, copies=True), "copies must be None"),
        (lambda: flows.planar(2, 0), "n_layers must be an integer >= 1"),
        (lambda: flows.planar(2, 2, inverse=1), "inverse must be True or False"),
        (lambda: flows.radial_forward(torch.zeros(3, 2), torch.zeros(2), 0.0, 1.0), "alpha must be > 0"),
        (lambda: flows.radial_forward(torch.zeros(3, 2), torch.zeros(2), 0.5, -0.5), "beta must be > -alpha"),
        (lambda: flows.radial_inverse(torch.zeros(3, 2), torch.zeros(2), 0.5, -0.7), "beta must be > -alpha"),
    ],
)
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_fit_density_learns_a_shifted_scaled_gaussian():
    """Maximum likelihood with Scale and Translate recovers N(3, 0.5^2): the NLL reaches its entropy."""
    from flowedu.flows import fit_density

    torch.manual_seed(0)
    x = 3.0 + 0.5 * torch.randn(4000, 2)
    model = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2), flows.Translate(2))  # x = s z + t
    run = fit_density(model, x, steps=400, lr=5e-2, batch_size=256, progress=False,
                      generator=torch.Generator().manual_seed(0))
    entropy = 2 * (0.5 * math.log(2 * math.pi * math.e) + math.log(0.5))
    with torch.no_grad():
        nll = -model.log_prob(x).mean().item()
    assert len(run["nll"]) == 400 and run["nll"][-1] < run["nll"][0]
    assert abs(nll - entropy) < 0.02, (nll, entropy)


@pytest.mark.parametrize(("kwargs", "match"), [({"steps": 0}, "steps"), ({"steps": 1, "lr": 0.0}, "lr"),
                                              ({"steps": 1, "batch_size": 10_000}, "batch_size")])
def test_fit_density_validates(kwargs, match):
    from flowedu.flows import fit_density

    model = flows.NormalizingFlow(flows.StandardNormal(2), flows.Inverse(flows.Translate(2)))
    with pytest.raises(ValueError, match=match):
        fit_density(model, torch.zeros(100, 2), **kwargs)


def _single_planar(copies_layer, i):
    single = flows.PlanarFlow(copies_layer.dim).double()
    with torch.no_grad():
        single.u.copy_(copies_layer.u[i])
        single.w.copy_(copies_layer.w[i])
        single.b.copy_(copies_layer.b[i : i + 1])
    return single


def test_planar_copies_compute_what_single_layers_compute():
    torch.manual_seed(0)
    layer = flows.PlanarFlow(2, init_scale=3.0, copies=3).double()
    z = 2 * torch.randn(16, 3, 2, dtype=torch.float64)
    x, log_det = layer(z)
    z_back, log_det_inv = layer.inverse(x)
    assert x.shape == (16, 3, 2) and log_det.shape == (16, 3)
    torch.testing.assert_close(z_back, z, atol=1e-10, rtol=0)
    torch.testing.assert_close(log_det + log_det_inv, torch.zeros_like(log_det), atol=1e-10, rtol=0)
    for i in range(3):
        single = _single_planar(layer, i)
        checks.check_flow_layer(single, z[:, i], verbose=False)
        x_i, log_det_i = single(z[:, i])
        torch.testing.assert_close(x[:, i], x_i, atol=1e-14, rtol=0)
        torch.testing.assert_close(log_det[:, i], log_det_i, atol=1e-14, rtol=0)


def test_planar_copies_train_independently():
    """The summed loss of m copies gives each copy exactly the gradient of its own loss."""
    torch.manual_seed(1)
    flow = flows.NormalizingFlow(flows.StandardNormal(2, copies=3), flows.planar(2, 4, copies=3)).double()
    x = torch.randn(32, 3, 2, dtype=torch.float64)
    (-flow.log_prob(x).mean(0).sum()).backward()
    for i in range(3):
        singles = [_single_planar(layer, i) for layer in flow.flow.layers]
        alone = flows.NormalizingFlow(flows.StandardNormal(2), *singles).double()
        (-alone.log_prob(x[:, i]).mean()).backward()
        for layer, single in zip(flow.flow.layers, singles, strict=True):
            torch.testing.assert_close(layer.u.grad[i], single.u.grad, atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(layer.w.grad[i], single.w.grad, atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(layer.b.grad[i : i + 1], single.b.grad, atol=1e-12, rtol=1e-10)


def test_planar_factory_builds_both_directions():
    vi_stack = flows.planar(2, 3)
    density_stack = flows.planar(2, 3, inverse=True)
    assert len(vi_stack) == 3 and all(isinstance(layer, flows.PlanarFlow) for layer in vi_stack.layers)
    assert all(isinstance(layer, flows.Inverse) for layer in density_stack.layers)
    flow = flows.NormalizingFlow(flows.StandardNormal(2, copies=4), flows.planar(2, 2, copies=4))
    x, log_q = flow.sample_and_log_prob(5)
    assert x.shape == (5, 4, 2) and log_q.shape == (5, 4)
    torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-5, rtol=1e-5)
    assert flows.StandardNormal(2, copies=4).sample((3,)).shape == (3, 4, 2)


def test_planar_log_det_has_the_sign_of_w_dot_u_hat():
    """Expansion or contraction is decided by the sign of wᵀû, not by ||u|| (book/flows.md)."""
    g = torch.Generator().manual_seed(2)
    z = 3 * torch.randn(500, 2, dtype=torch.float64, generator=g)
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    # m(wᵀu) = 0 needs softplus(wᵀu) = 1, i.e. wᵀu = log(e - 1): a raw u orthogonal to w is *not* a shear
    shear = math.log(math.e - 1) * w / (w @ w) + torch.tensor([-20.0, 10.0], dtype=torch.float64)
    assert (w @ flows.planar_u_hat(torch.tensor([-20.0, 10.0], dtype=torch.float64), w)).item() < -0.3
    for u, sign in ((w, 1.0), (-w, -1.0), (shear, 0.0)):
        u_hat = flows.planar_u_hat(u, w)
        kappa = (w @ u_hat).item()
        x, log_det = flows.planar_forward(z, u_hat, w, 0.4)
        assert math.copysign(1.0, kappa) == sign or (sign == 0 and abs(kappa) < 1e-12)
        if sign == 0:  # û ⊥ w: a shear, det J = 1 although ||û|| = 22 moves points far
            assert log_det.abs().max() < 1e-12 and (x - z).norm(dim=1).max() > 10
        else:  # strictly, wherever h'(a) = 1 - tanh²(a) is not rounded to 0 (far from the line it is)
            near = (z @ w + 0.4).abs() < 5
            assert (torch.sign(log_det[near]) == sign).all() and (torch.sign(log_det) != -sign).all()
            # the extreme value sits on the line wᵀz + b = 0, where h' = 1: det J = 1 + wᵀû
            assert log_det.abs().max() <= abs(math.log1p(kappa)) + 1e-12


def test_planar_at_the_boundary_is_a_bijection_but_not_a_diffeomorphism():
    """wᵀû = -1: the scalar map a -> a - tanh(a) is still invertible, but its slope vanishes at a = 0."""
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    u_hat = -w  # wᵀû = -1 exactly (not reachable through planar_u_hat, which keeps wᵀû > -1)
    z = torch.tensor([[0.0, 0.3], [1e-3, 0.0], [2.0, -1.0]], dtype=torch.float64)
    x, _ = flows.planar_forward(z, u_hat, w, 0.0)
    back, _ = flows.planar_inverse(x, u_hat, w, 0.0)
    # ill-conditioned at a = 0: g(a) ≈ a³/3 loses its sign below a ~ 1e-8 in float64, so the root is
    # found only to about (3 ulp)^(1/3); elsewhere to full precision
    torch.testing.assert_close(back[1:], z[1:], atol=1e-12, rtol=0)
    torch.testing.assert_close(back[:1], z[:1], atol=1e-7, rtol=0)
    # the inverse's difference quotient at 0 grows like (3δ)^(1/3) / δ: no derivative there
    slopes = []
    for delta in (1e-3, 1e-6, 1e-9):
        a, _ = flows.planar_inverse(torch.tensor([[delta, 0.0]], dtype=torch.float64), u_hat, w, 0.0)
        slopes.append(a[0, 0].item() / delta)
        assert a[0, 0].item() == pytest.approx((3 * delta) ** (1 / 3), rel=1e-2)
    assert slopes[0] < slopes[1] < slopes[2] and slopes[2] > 1e5


def _radial_factors(r, alpha, beta):
    """The two factors of det J: A = 1 + β/(α + r) (power d - 1) and B = 1 + αβ/(α + r)²."""
    return 1 + beta / (alpha + r), 1 + alpha * beta / (alpha + r) ** 2


@pytest.mark.parametrize("d", [1, 2, 3])
def test_radial_log_det_is_finite_iff_beta_above_minus_alpha(d):
    alpha = 0.7
    z0 = torch.zeros(d, dtype=torch.float64)
    points = torch.cat([z0[None], torch.randn(50, d, dtype=torch.float64)])
    # just above the boundary: finite everywhere, z0 included, and equal to the formula
    beta = -alpha * (1 - 1e-6)
    _, log_det = flows.radial_forward(points, z0, alpha, beta)
    a_factor, b_factor = _radial_factors(points.norm(dim=1), alpha, beta)
    torch.testing.assert_close(log_det, (d - 1) * a_factor.log() + b_factor.log(), rtol=1e-9, atol=1e-9)
    assert torch.isfinite(log_det).all() and log_det[0] < -10
    # on the boundary: both factors vanish at z0 only (the functions raise rather than return -inf)
    a_factor, b_factor = _radial_factors(torch.tensor([0.0, 1e-3, 1.0], dtype=torch.float64), alpha, -alpha)
    assert a_factor[0] == 0 and b_factor[0] == 0 and (a_factor[1:] > 0).all() and (b_factor[1:] > 0).all()
    with pytest.raises(ValueError, match="beta must be > -alpha"):
        flows.radial_forward(points, z0, alpha, -alpha)
    # below it (β = -2α): B vanishes on the sphere r = (√2 - 1)α, A (which matters for d >= 2) on r = α
    a_factor, b_factor = _radial_factors(torch.tensor([(math.sqrt(2) - 1) * alpha, alpha], dtype=torch.float64),
                                         alpha, -2 * alpha)
    assert abs(b_factor[0].item()) < 1e-12 and abs(a_factor[1].item()) < 1e-12


def test_radial_flow_parameters_stay_inside():
    layer = flows.RadialFlow(2)
    with torch.no_grad():
        layer.beta_raw.fill_(-15.0)
    alpha, beta = layer.alpha_beta()
    assert (beta > -alpha).all()
    checks.check_flow_layer(layer.double(), torch.randn(8, 2, dtype=torch.float64), verbose=False)


def test_fixed_scale_then_translate_is_a_gaussian():
    """x = s z + t with z ~ N(0, I) is N(t, diag s²); the other order gives N(s t, diag s²)."""
    s, t = torch.tensor([2.0, 0.5], dtype=torch.float64), torch.tensor([1.0, -3.0], dtype=torch.float64)
    flow = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2, s, learnable=False),
                                 flows.Translate(2, t, learnable=False)).double()
    x = 3 * torch.randn(100, 2, dtype=torch.float64)
    gaussian = torch.distributions.MultivariateNormal(t, torch.diag(s**2))
    torch.testing.assert_close(flow.log_prob(x), gaussian.log_prob(x), atol=1e-12, rtol=0)
    swapped = flows.NormalizingFlow(flows.StandardNormal(2), flows.Translate(2, t, learnable=False),
                                    flows.Scale(2, s, learnable=False)).double()
    torch.testing.assert_close(swapped.log_prob(x),
                               torch.distributions.MultivariateNormal(s * t, torch.diag(s**2)).log_prob(x),
                               atol=1e-12, rtol=0)
