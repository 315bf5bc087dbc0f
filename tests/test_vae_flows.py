"""Tests of flowedu.vae_flows: the flow-posterior ELBO is a bound, the course's objective is not."""

import math

import torch
from torch import nn

from flowedu.checks import check_flow_layer
from flowedu.distributions.linear_gaussian import LinearGaussian, LinearGaussianDecoder
from flowedu.flows import PlanarFlow, SequentialFlow, Translate, realnvp
from flowedu.gk import GandK
from flowedu.vae import GaussianEncoder, StandardNormalPrior, iwae_bound, log_likelihood
from flowedu.vae_flows import AmortisedPlanar, FlowVAE, GandKPrior

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
    # book/proofs.md, rem-flow-vae-wrong-prior: q_0 = N(0, Σ), f(z) = z + μ makes q_K the exact posterior;
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
