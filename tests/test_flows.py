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
        (lambda: flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2)).sample(0), "n must be a positive"),
        (lambda: flows.Scale(3)(torch.zeros(4, 2)), r"z must have shape \[batch, 3\]"),
        (lambda: flows.PlanarFlow(2)(torch.zeros(4, 2, dtype=torch.long)), "floating-point"),
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
