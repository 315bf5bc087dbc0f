"""Tests of flowedu.gk.vae_flows: the flow-posterior ELBO is a bound; the flow-VAE course project's objective
(the prior at z_0) is not."""

import math

import pytest
import torch
from torch import nn

from flowedu.checks import check_flow_layer
from flowedu.distributions.linear_gaussian import LinearGaussian, LinearGaussianDecoder
from flowedu.flows import PlanarFlow, SequentialFlow, Translate, realnvp
from flowedu.gk import (
    POSTERIOR_FLOWS,
    AmortisedPlanar,
    FlowVAE,
    GandK,
    GandKPosteriorBase,
    GandKPrior,
    PriorAtZ0Objective,
    active_units,
    fit_gk_prior,
    latent_codes,
    make_flow_vae,
    posterior_flow,
)
from flowedu.vae import BernoulliDecoder, GaussianEncoder, StandardNormalPrior, iwae_bound, log_likelihood

F64 = torch.float64


class FixedEncoder(nn.Module):
    """q_0 = N(mean, diag exp(log_var)) for every x."""

    def __init__(self, mean, log_var):
        super().__init__()
        self.mean, self.log_var, self.latent_dim = mean, log_var, len(mean)

    def forward(self, x):
        return self.mean.expand(len(x), -1), self.log_var.expand(len(x), -1)

    def log_prob(self, z, mean, log_var):
        return (-0.5 * (z - mean) ** 2 / log_var.exp() - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_trained_flow_vae_elbo_is_below_the_exact_log_likelihood():
    torch.manual_seed(0)
    model = LinearGaussian.random(data_dim=5, latent_dim=2, sigma=0.5, seed=0, dtype=F64)
    x = model.sample(16, generator=torch.Generator().manual_seed(1))
    log_px = model.log_prob(x)
    for context_flow in (False, True):
        flow = (SequentialFlow(*[AmortisedPlanar(2, 4) for _ in range(3)]) if context_flow
                else SequentialFlow(*[PlanarFlow(2) for _ in range(3)]))
        vae = FlowVAE(GaussianEncoder(5, 2, hidden=(16,)), LinearGaussianDecoder(model), StandardNormalPrior(2),
                      flow).double()
        optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
        for _ in range(300):
            loss = -vae.elbo(x, k=4).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            log_w = vae.log_weights(x, k=4000, generator=torch.Generator().manual_seed(2))
        elbo, se = log_w.mean(0), log_w.std(0) / math.sqrt(4000)
        assert (elbo <= log_px + 4 * se + 1e-9).all(), (elbo - log_px, se)
        assert (log_px - elbo).mean() < 0.5, "training should bring the ELBO near log p(x)"
        with torch.no_grad():
            iw = log_likelihood(vae, x, k=200, generator=torch.Generator().manual_seed(3))
        assert (iw >= elbo - 4 * se).all() and ((iw - log_px).abs() < 0.3).all()


def test_the_course_objective_exceeds_log_p_x():
    # book/proofs.md, rem-flow-vae-wrong-prior: q_0 = N(0, Σ), f(z) = z + μ makes q_M the exact posterior;
    # then the ELBO equals log p(x) and the objective with the prior at z_0 equals log p(x) + ½‖μ‖².
    model = LinearGaussian.random(data_dim=4, latent_dim=1, sigma=0.5, seed=3, dtype=F64)
    x = model.sample(1, generator=torch.Generator().manual_seed(0))
    mu, cov = model.posterior(x)
    encoder = FixedEncoder(torch.zeros(1, dtype=F64), cov.diagonal().log())
    vae = FlowVAE(encoder, LinearGaussianDecoder(model), StandardNormalPrior(1), Translate(1, shift=mu[0])).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        elbo = vae.elbo(x, k=20_000, generator=generator)
        wrong = vae.wrong_objective_prior_at_z0(x, k=20_000, generator=generator)
    log_px = model.log_prob(x)
    assert torch.allclose(elbo, log_px, atol=1e-9)  # exact posterior: every weight equals p(x)
    excess = (wrong - log_px).item()
    assert excess > 0 and abs(excess - 0.5 * mu.pow(2).sum().item()) < 0.05 * (1 + mu.abs().sum().item()), excess


def test_amortised_planar_is_a_flow_layer():
    layer = AmortisedPlanar(3, 6).double()
    with torch.no_grad():
        layer.net.weight.normal_()
    g = torch.Generator().manual_seed(0)
    check_flow_layer(layer, torch.randn(6, 3, generator=g, dtype=F64), context=torch.randn(6, 6, generator=g,
                     dtype=F64), verbose=False)


def test_gk_prior_density_and_fit():
    prior = GandKPrior(2).double()
    truth = [GandK(3.0, 1.0, 2.0, 0.5), GandK(-1.0, 0.5, -1.0, 0.2)]
    g = torch.Generator().manual_seed(0)
    z = torch.stack([d.sample(5000, generator=g) for d in truth], 1)
    fits = prior.fit_to(z)
    assert abs(fits[0].g - 2) < 0.3 and abs(fits[1].g + 1) < 0.3
    a, b, gg, k = prior.transform.params()
    expected = sum(GandK(a[j].item(), b[j].item(), gg[j].item(), k[j].item()).log_prob(z[:10, j]) for j in range(2))
    assert torch.allclose(prior.log_prob(z[:10]), expected, rtol=1e-9)
    assert prior.log_prob(z[:10].reshape(2, 5, 2)).shape == (2, 5)
    assert prior.sample(7).shape == (7, 2)


def test_flow_vae_shapes_and_iwae_with_realnvp_and_gk_prior():
    torch.manual_seed(0)
    from flowedu.vae import CategoricalDecoder

    vae = FlowVAE(GaussianEncoder((1, 8, 8), 4, hidden=(32,)), CategoricalDecoder(4, (1, 8, 8), 17, hidden=(32,)),
                  GandKPrior(4), realnvp(4, n_couplings=2, hidden=8, context_dim=8))
    x = torch.randint(0, 17, (5, 1, 8, 8)).float() / 16
    assert vae.elbo(x).shape == (5,)
    assert vae.log_weights(x, 3).shape == (3, 5)
    assert torch.isfinite(iwae_bound(vae, x, 4)).all()
    assert vae.sample(2).shape == (2, 1, 8, 8)


def test_gk_posterior_base_density_is_the_product_of_gk_margins():
    # q_0(z_0 | x) = prod_j gk(z_0j; A = mu_j, B = sigma_j, g_j, k_j): compare the reparameterised log-density
    # with the density by numerical inversion (GandK.log_prob), an independent route.
    base = GandKPosteriorBase(3, k_init=0.3).double()
    with torch.no_grad():
        base.g.copy_(torch.tensor([1.5, -0.7, 0.0], dtype=F64))
    g = torch.Generator().manual_seed(0)
    mean, log_var = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64)
    eps = torch.randn(4, 5, 3, generator=g, dtype=F64)
    z0, log_q0 = base(eps, mean, log_var)
    assert z0.shape == (4, 5, 3) and log_q0.shape == (4, 5)
    gg, k = (p.detach() for p in base.params())
    expected = sum(GandK(mean[:, j], (0.5 * log_var[:, j]).exp(), gg[j], k[j]).log_prob(z0[..., j]) for j in range(3))
    assert torch.allclose(log_q0, expected, rtol=1e-9, atol=1e-9)


def test_gk_posterior_base_starts_near_the_gaussian_and_validates():
    base = GandKPosteriorBase(2, k_init=1e-9).double()
    mean, log_var = torch.zeros(3, 2, dtype=F64), torch.full((3, 2), 0.4, dtype=F64)
    eps = torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    z0, log_q0 = base(eps, mean, log_var)
    gauss = GaussianEncoder(4, 2, hidden=(3,)).double()
    assert torch.allclose(z0, mean + (0.5 * log_var).exp() * eps, atol=1e-7)
    assert torch.allclose(log_q0, gauss.log_prob(z0, mean, log_var), atol=1e-7)
    for bad in (0.0, -1.0, 20.0):
        with pytest.raises(ValueError, match="k_init"):
            GandKPosteriorBase(2, k_init=bad)
    with pytest.raises(ValueError, match="base must"):
        FlowVAE(GaussianEncoder(4, 2, (3,)), BernoulliDecoder(2, 4, (3,)), StandardNormalPrior(2), base=nn.Linear(2, 2))


def test_trained_flow_vae_with_gk_base_stays_below_the_exact_log_likelihood():
    torch.manual_seed(0)
    model = LinearGaussian.random(data_dim=5, latent_dim=2, sigma=0.5, seed=0, dtype=F64)
    x = model.sample(16, generator=torch.Generator().manual_seed(1))
    vae = FlowVAE(GaussianEncoder(5, 2, hidden=(16,)), LinearGaussianDecoder(model), StandardNormalPrior(2),
                  posterior_flow("realnvp", 2, n_couplings=2, coupling_hidden=8), GandKPosteriorBase(2)).double()
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
    for _ in range(200):
        loss = -vae.elbo(x, k=4).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        log_w = vae.log_weights(x, k=4000, generator=torch.Generator().manual_seed(2))
    elbo, se = log_w.mean(0), log_w.std(0) / math.sqrt(4000)
    log_px = model.log_prob(x)
    assert (elbo <= log_px + 4 * se + 1e-9).all(), (elbo - log_px, se)
    assert (log_px - elbo).mean() < 0.5


@pytest.mark.parametrize("prior", ["standard", "mixture", "gk"])
@pytest.mark.parametrize("flow", [None, *POSTERIOR_FLOWS])
def test_make_flow_vae_builds_every_combination(prior, flow):
    torch.manual_seed(0)
    vae = make_flow_vae((1, 4, 4), 3, "categorical", (8,), prior=prior, flow=flow, base="gk" if flow else "gaussian",
                        n_flows=2, n_couplings=2, coupling_hidden=4)
    x = torch.randint(0, 17, (5, 1, 4, 4)).float() / 16
    assert vae.elbo(x).shape == (5,) and torch.isfinite(vae.elbo(x)).all()
    assert vae.log_weights(x, 3).shape == (3, 5)
    assert vae.sample(2).shape == (2, 1, 4, 4)
    assert latent_codes(vae, x, k=2).shape == (5, 3)


def test_builders_validate_their_arguments():
    for kwargs, match in ((dict(prior="vamp"), "prior must"), (dict(base="laplace"), "base must"),
                          (dict(flow="maf"), "kind must")):
        with pytest.raises(ValueError, match=match):
            make_flow_vae(4, 2, **kwargs)
    with pytest.raises(ValueError, match="n_flows"):
        posterior_flow("planar", 2, n_flows=0)
    with pytest.raises(ValueError, match="codes must"):
        active_units(torch.zeros(5))
    with pytest.raises(ValueError, match="vae must"):
        PriorAtZ0Objective(nn.Linear(2, 2))


def test_realnvp_posterior_changes_every_coordinate():
    torch.manual_seed(0)
    flow = posterior_flow("realnvp", 5, n_couplings=4, coupling_hidden=8).double()
    for layer in flow.layers:
        for p in layer.parameters():
            with torch.no_grad():
                p.normal_()
    z = torch.randn(6, 5, dtype=F64)
    context = torch.randn(6, 10, dtype=F64)
    out, _ = flow(z, context)
    assert ((out - z).abs() > 1e-6).all(dim=0).all()  # no coordinate passes through untouched
    check_flow_layer(flow, z, context=context, verbose=False)


def test_fit_gk_prior_installs_a_fitted_prior():
    torch.manual_seed(0)
    vae = make_flow_vae((1, 4, 4), 2, "bernoulli", (8,))
    x = torch.rand(50, 1, 4, 4)
    fits = fit_gk_prior(vae, x, binarize=True, generator=torch.Generator().manual_seed(0))
    assert isinstance(vae.prior, GandKPrior) and len(fits) == 2
    a, b, _, _ = vae.prior.transform.params()
    assert torch.allclose(a.detach().double(), torch.tensor([f.a for f in fits], dtype=F64), atol=1e-5)
    assert torch.isfinite(vae.elbo((x > 0.5).float())).all()


def test_active_units_follow_the_variance_of_the_posterior_means():
    codes = torch.stack([torch.linspace(-1, 1, 100), torch.full((100,), 0.3), 0.05 * torch.linspace(-1, 1, 100)], 1)
    assert active_units(codes).tolist() == [True, False, False]  # variances 0.34, 0, 0.00086


def test_course_objective_wrapper():
    torch.manual_seed(0)
    vae = make_flow_vae(6, 2, "bernoulli", (4,), flow="planar", n_flows=2)
    x = (torch.rand(3, 6) > 0.5).float()
    torch.manual_seed(5)
    wrapped = PriorAtZ0Objective(vae).elbo(x)
    torch.manual_seed(5)
    assert torch.equal(wrapped, vae.wrong_objective_prior_at_z0(x))


def test_gk_prior_is_a_normalizing_flow():
    from flowedu.flows import NormalizingFlow

    prior = GandKPrior(3)
    assert isinstance(prior, NormalizingFlow)
    z = prior.sample(4, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4, 3) and prior.log_prob(z.expand(2, 4, 3)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"must have shape \[\.\.\., 3\]"):
        prior.log_prob(torch.zeros(4, 2))
