"""One distribution contract, tested once for every distribution class of the package (like normflows'
``FlowTest`` mixin, but for distributions).

The contract: ``sample(sample_shape=(), generator=None) -> [*sample_shape, dim]``; ``rsample`` the same,
differentiable in the parameters, where the class is reparameterizable; ``log_prob(x: [..., dim]) -> [...]``
over any leading shape; ``.dim``; dtype (and device) following the parameters (``.double()``); the same
draws for the same generator seed; and ``log_prob`` agreeing with the sampler: on a 2-D grid it integrates
to 1 and its mean equals the sample mean.

Unnormalised targets (the energies U1-U4, the banana posterior) have no sampler and no normalising
constant: only the ``log_prob`` part of the contract applies to them (shape over leading axes, dtype).
Distributions without parameters that are fixed to float64 on the CPU (the toy data sets) are not
asked to follow ``.double()``.
"""

import math

import pytest
import torch

from flowedu import distributions, flows, gk, hmc, vae
from flowedu.grids import Grid2D


def _gk_prior():
    prior = gk.GandKPrior(2).double()
    prior.transform.set_params([0.2, -0.1], [0.8, 1.0], [0.5, -0.5], [0.1, 0.05])
    return prior


def _vamp():
    # the VampPrior shares the VAE's encoder without registering it, so the encoder is converted on its own
    # (inside a VAE, ``vae.double()`` converts both)
    torch.manual_seed(0)
    return vae.VampPrior(vae.GaussianEncoder(6, 2, (8,)).double(), 4).double()


def _mixture():
    torch.manual_seed(0)
    return vae.MixturePrior(3, 2).double()


def _realnvp():
    torch.manual_seed(0)
    return flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, 2, hidden=8, zero_init=False)).double()


def _planar():
    flow = flows.planar(2, 4, inverse=True, generator=torch.Generator().manual_seed(0))
    return flows.NormalizingFlow(flows.StandardNormal(2), flow).double()


def _affine():
    return flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2, torch.tensor([2.0, 0.5])),
                                 flows.Translate(2, torch.tensor([1.0, -1.0]))).double()


GK_PARAMS = dict(a=[0.5, -0.2], b=[1.0, 0.7], g=[0.8, -0.4], k=[0.1, 0.2])
CORR = [[1.0, 0.5], [0.5, 1.0]]


class IndependentGandK:
    """``GandK`` is univariate (event shape ``()``, one distribution per parameter entry, like torch's
    ``Normal``), so its ``log_prob`` is per coordinate; this test-only view sums it over the last axis (what
    ``torch.distributions.Independent`` does, which cannot pass a ``generator``) to check the same contract."""

    def __init__(self, **params):
        self.margins = gk.GandK(**params)
        self.dim = self.margins.batch_shape[-1]

    def sample(self, sample_shape=(), generator=None):
        return self.margins.sample(sample_shape, generator=generator)

    def rsample(self, sample_shape=(), generator=None):
        return self.margins.rsample(sample_shape, generator=generator)

    def log_prob(self, x):
        return self.margins.log_prob(x).sum(-1)


def _params(requires_grad=False):
    return {n: torch.tensor(v, dtype=torch.float64, requires_grad=requires_grad) for n, v in GK_PARAMS.items()}


def _gandk(requires_grad=False):
    return IndependentGandK(**_params(requires_grad))


def _mv_gandk(requires_grad=False):
    return gk.MultivariateGandK(**_params(requires_grad), corr=torch.tensor(CORR, dtype=torch.float64))


# name: (factory, reparameterizable, follows .double(), grid box half-width)
SAMPLERS = {
    "StandardNormal": (lambda: flows.StandardNormal(2).double(), False, True, 8.0),
    "MixturePrior": (_mixture, False, True, 8.0),
    "VampPrior": (_vamp, False, False, 10.0),  # its encoder belongs to the VAE: converted with the VAE
    "NormalizingFlow(realnvp)": (_realnvp, True, True, 10.0),
    "NormalizingFlow(planar, inverse)": (_planar, True, True, 10.0),
    "NormalizingFlow(Scale, Translate)": (_affine, True, True, 12.0),
    "GandKPrior": (_gk_prior, True, True, 12.0),
    "GandK (independent margins)": (_gandk, True, True, 12.0),
    "MultivariateGandK": (_mv_gandk, True, True, 12.0),
    "LinearGaussian": (lambda: distributions.LinearGaussian.random(2, 1, sigma=0.5, seed=1), False, True, 10.0),
    "TwoMoons": (lambda: distributions.TwoMoons(), False, False, 4.0),
}

UNNORMALISED = {
    "U1": lambda: distributions.U1(),
    "U2": lambda: distributions.U2(),
    "U3": lambda: distributions.U3(),
    "U4": lambda: distributions.U4(),
    "BananaPosterior": lambda: hmc.BananaPosterior(hmc.banana_data()),
}


def _dim(dist):
    return dist.dim if hasattr(dist, "dim") else dist.event_shape[-1]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_one_standard_normal_for_the_whole_package():
    assert vae.StandardNormalPrior is flows.StandardNormal is distributions.StandardNormal
    prior = vae.StandardNormalPrior(3)
    assert prior.latent_dim == prior.dim == 3 and prior.sample(4).shape == (4, 3)


@pytest.mark.parametrize("name", SAMPLERS)
def test_sample_shapes_dim_and_log_prob_over_leading_axes(name):
    dist = SAMPLERS[name][0]()
    dim = _dim(dist)
    assert dim == 2
    assert dist.sample().shape == (dim,)
    assert dist.sample(5).shape == (5, dim) and dist.sample((5,)).shape == (5, dim)
    x = dist.sample((2, 3), generator=_gen(0))
    assert x.shape == (2, 3, dim)
    log_p = dist.log_prob(x)
    assert log_p.shape == (2, 3)
    torch.testing.assert_close(log_p.reshape(-1), dist.log_prob(x.reshape(6, dim)))
    assert dist.log_prob(x[0, 0]).shape == ()


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_same_generator_seed_gives_the_same_draws(name):
    dist = SAMPLERS[name][0]()
    a, b, c = (dist.sample(64, generator=_gen(s)) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", SAMPLERS)
def test_rsample_carries_gradients_to_the_parameters(name):
    dist, reparameterizable = SAMPLERS[name][0](), SAMPLERS[name][1]
    if not reparameterizable:
        pytest.skip(f"{name} is not reparameterizable (discrete component choice, or no parameters)")
    if isinstance(dist, torch.nn.Module):
        params = list(dist.parameters())
    else:  # the g-and-k distributions take their parameters as tensors: rebuild them with leaves
        dist = SAMPLERS[name][0](requires_grad=True)
        margins = dist.margins
        params = [margins.a, margins.b, margins.g, margins.k]
    x = dist.rsample((16,), generator=_gen(0))
    grads = torch.autograd.grad(x.sum(), params, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{name}.rsample is detached"
    assert not dist.sample(4).requires_grad


@pytest.mark.parametrize("name", SAMPLERS)
def test_dtype_follows_the_parameters(name):
    dist, follows = SAMPLERS[name][0](), SAMPLERS[name][2]
    x = dist.sample(8, generator=_gen(0))
    assert x.dtype == torch.float64 and dist.log_prob(x).dtype == torch.float64
    if follows and isinstance(dist, torch.nn.Module):
        single = dist.float()
        y = single.sample(8, generator=_gen(0))
        assert y.dtype == torch.float32 and single.log_prob(y).dtype == torch.float32


@pytest.mark.parametrize("name", ["StandardNormal", "NormalizingFlow(realnvp)", "NormalizingFlow(Scale, Translate)"])
def test_device_follows_the_module(name):
    dist = SAMPLERS[name][0]().to("meta")
    x = dist.sample((3,))
    assert x.device.type == "meta" and x.shape == (3, 2)
    assert dist.log_prob(x).device.type == "meta"


@pytest.mark.parametrize("name", SAMPLERS)
def test_log_prob_agrees_with_the_sampler(name):
    """On a 2-D grid, exp(log_prob) integrates to 1 and has the mean of 40,000 draws (within 5 standard errors
    plus the quadrature error): a log_prob that is off by a constant, or belongs to another distribution than
    the sampler draws from, fails."""
    dist, _, _, half = SAMPLERS[name]
    dist = dist()
    grid = Grid2D(((-half, half), (-half, half)), 400, dtype=torch.float64)
    with torch.no_grad():
        log_p = grid.evaluate(lambda z: dist.log_prob(z.to(torch.float64)))
        assert abs(grid.log_integral(log_p)) < 2e-3, f"{name}: ∫ p = exp({grid.log_integral(log_p):.4f})"
        weights = (log_p - log_p.max()).exp()
        weights = weights / weights.sum()
        grid_mean = (weights[:, None] * grid.points).sum(0)
        draws = dist.sample(40_000, generator=_gen(3)).to(torch.float64)
    standard_error = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - grid_mean).abs() < 5 * standard_error + 1e-2).all(), (name, draws.mean(0), grid_mean)


@pytest.mark.parametrize("name", UNNORMALISED)
def test_unnormalised_targets_have_the_log_prob_contract(name):
    target = UNNORMALISED[name]()
    z = torch.randn(2, 3, 2, dtype=torch.float64, generator=_gen(0))
    log_p = target.log_prob(z)
    assert log_p.shape == (2, 3) and log_p.dtype == torch.float64
    torch.testing.assert_close(log_p.reshape(-1), target.log_prob(z.reshape(6, 2)))
    assert target.log_prob(z.float()).dtype == torch.float32 or name == "BananaPosterior"


def _tiny_vae_parts(d=2):
    torch.manual_seed(0)
    return vae.GaussianEncoder(8, d, (16,)), vae.BernoulliDecoder(d, 8, (16,))


def _binary_data():
    g = _gen(0)
    centres = (torch.rand(2, 8, generator=g) < 0.5).float()
    flips = torch.rand(64, 8, generator=g) < 0.1
    return (centres[torch.arange(64) % 2] + flips.float()) % 2


def test_a_normalizing_flow_is_a_vae_prior_without_glue():
    encoder, decoder = _tiny_vae_parts()
    prior = flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, 2, hidden=8))
    model = vae.VAE(encoder, decoder, prior)
    x = _binary_data()
    assert model.log_weights(x[:5], 3, generator=_gen(0)).shape == (3, 5)  # prior.log_prob on [k, batch, d]
    assert model.sample(4, generator=_gen(1)).shape == (4, 8)  # prior.sample(n, generator=...)
    history = vae.train_vae(model, x, x, epochs=15, lr=1e-2, batch_size=16, generator=_gen(2), progress=False)
    assert history["val"][-1] < history["val"][0] - 0.5, history["val"]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.parameters())


def test_a_normalizing_flow_is_a_flow_vae_posterior_base_without_glue():
    encoder, decoder = _tiny_vae_parts()
    x = _binary_data()[:10]
    prior = vae.StandardNormalPrior(2)
    identity_base = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2))  # u = ε: the Gaussian q_0
    gaussian = gk.FlowVAE(encoder, decoder, prior)
    with_base = gk.FlowVAE(encoder, decoder, prior, base=identity_base)
    torch.testing.assert_close(with_base.elbo(x, 4, _gen(5)), gaussian.elbo(x, 4, _gen(5)))
    # a non-trivial base trains: its parameters get gradients and the ELBO rises
    base = flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, 2, hidden=8, zero_init=False))
    model = gk.FlowVAE(encoder, decoder, prior, base=base)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = model.elbo(x, 8, _gen(0)).mean().item()
    for step in range(60):
        loss = -model.elbo(x, 1, _gen(step)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in base.parameters())
    assert model.elbo(x, 8, _gen(0)).mean().item() > start + 0.5
