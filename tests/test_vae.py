"""The VAE parts, the ELBO, the IWAE bound and the log-likelihood estimate, tested against exact answers."""

import math

import pytest
import torch

import flowedu.checks
from flowedu.distributions import LinearGaussian, LinearGaussianProposal, log_normal_diag
from flowedu.vae import (
    VAE,
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianEncoder,
    MixturePrior,
    StandardNormalPrior,
    VampPrior,
    gradient_samples,
    iwae_bound,
    log_likelihood,
    make_vae,
    reparameterize,
    train_vae,
)


@pytest.fixture
def lg():
    return LinearGaussian.random(data_dim=6, latent_dim=2, sigma=0.5, seed=0)


def test_iwae_bound_is_exact_with_the_true_posterior(lg):
    x = lg.sample(4, generator=torch.Generator().manual_seed(0))
    exact = lg.log_prob(x)
    for k in (1, 3, 50):
        torch.testing.assert_close(iwae_bound(LinearGaussianProposal(lg), x, k), exact)


def test_iwae_bound_rises_with_k_and_its_error_shrinks(lg):
    torch.manual_seed(0)
    x = lg.sample(3, generator=torch.Generator().manual_seed(1)).repeat(400, 1)  # 400 draws per point
    proposal = LinearGaussianProposal(lg, shift=0.3, scale=1.5)
    exact = lg.log_prob(x[:3])
    means = [iwae_bound(proposal, x, k).reshape(400, 3).mean(0) for k in (1, 5, 50, 500)]
    for small, large in zip(means[:-1], means[1:], strict=True):
        assert (large > small).all(), (small, large)
    errors = [(exact - m).abs().max().item() for m in means]
    assert all(e2 < e1 for e1, e2 in zip(errors[:-1], errors[1:], strict=True)), errors
    assert (means[0] < exact).all() and errors[-1] < 0.02, errors


def test_log_likelihood_is_an_unbiased_estimate_of_p_x(lg):
    x = lg.sample(2, generator=torch.Generator().manual_seed(2))
    proposal = LinearGaussianProposal(lg, shift=0.2, scale=1.3)
    g = torch.Generator().manual_seed(3)
    reps = 4000
    estimates = log_likelihood(proposal, x.repeat(reps, 1), k=7, chunk=3, batch_size=2000, generator=g)
    ratio = torch.exp(estimates - lg.log_prob(x).repeat(reps)).reshape(reps, 2)  # p̂(x) / p(x)
    se = ratio.std(0) / math.sqrt(reps)
    assert ((ratio.mean(0) - 1).abs() < 4 * se + 1e-3).all(), (ratio.mean(0), se)
    # ... while log p̂(x) itself is biased downwards (Jensen).
    assert (torch.log(ratio).mean(0) < 0).all()


def test_k_must_be_a_positive_integer(lg):
    x = lg.sample(2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            iwae_bound(LinearGaussianProposal(lg), x, bad)
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            log_likelihood(LinearGaussianProposal(lg), x, k=bad)
    with pytest.raises(ValueError, match="chunk must be"):
        log_likelihood(LinearGaussianProposal(lg), x, k=5, chunk=0)


def test_reparameterize_moments_and_gradient():
    mean, log_var = torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0])
    z = reparameterize(mean.expand(100_000, 2), log_var.expand(100_000, 2))
    torch.testing.assert_close(z.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), torch.exp(log_var), atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(mean, log_var[:1])
    with pytest.raises(ValueError, match="eps must have shape"):
        reparameterize(mean, log_var, torch.zeros(3))


def test_mixture_prior_log_prob_matches_a_sum_of_densities_and_integrates_to_one():
    torch.manual_seed(0)
    prior = MixturePrior(3, 2, init_scale=2.0).double()
    with torch.no_grad():
        prior.log_vars.copy_(torch.tensor([[0.2, -0.5], [-0.3, 0.4], [0.0, -1.0]]))
        prior.logits.copy_(torch.tensor([0.5, -0.2, 1.0]))
    z = torch.randn(10, 2, dtype=torch.float64)
    pi = torch.softmax(prior.logits, 0)
    dens = sum(pi[k] * torch.exp(log_normal_diag(z, prior.means[k], prior.log_vars[k])) for k in range(3))
    torch.testing.assert_close(prior.log_prob(z), torch.log(dens))
    # 2-D quadrature on a grid wide enough for every component.
    t = torch.linspace(-12, 12, 801, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1)
    with torch.no_grad():
        mass = torch.exp(prior.log_prob(grid)).sum() * (t[1] - t[0]) ** 2
    assert abs(mass.item() - 1) < 1e-6, mass


def test_mixture_prior_log_prob_integrates_to_one_in_one_dimension():
    torch.manual_seed(1)
    prior = MixturePrior(4, 1, init_scale=3.0).double()
    t = torch.linspace(-25, 25, 20001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        mass = torch.trapezoid(torch.exp(prior.log_prob(t)), t[:, 0])
    assert abs(mass.item() - 1) < 1e-8, mass


def test_mixture_prior_samples_have_the_mixture_moments():
    torch.manual_seed(2)
    prior = MixturePrior(3, 2, init_scale=2.0)
    with torch.no_grad():
        prior.log_vars.copy_(torch.tensor([[1.0, -1.0], [0.0, 0.5], [-2.0, 0.0]]))
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        z = prior.sample(200_000, generator=torch.Generator().manual_seed(0))
        pi = torch.softmax(prior.logits, 0)[:, None]
        mean = (pi * prior.means).sum(0)
        second = (pi * (torch.exp(prior.log_vars) + prior.means**2)).sum(0)  # σ² = exp(log σ²)
    torch.testing.assert_close(z.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), second - mean**2, atol=0.05, rtol=0.02)


def _small_vae(prior="standard", decoder="bernoulli"):
    torch.manual_seed(0)
    shape, d = (1, 4, 4), 2
    enc = GaussianEncoder(shape, d, (16,))
    dec = BernoulliDecoder(d, shape, (16,)) if decoder == "bernoulli" else CategoricalDecoder(d, shape, 17, (16,))
    p = {"standard": StandardNormalPrior(d), "mixture": MixturePrior(3, d), "vamp": VampPrior(enc, 4)}[prior]
    return VAE(enc, dec, p)


@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp"])
@pytest.mark.parametrize("decoder", ["bernoulli", "categorical"])
def test_vae_shapes(prior, decoder):
    model = _small_vae(prior, decoder)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(5, 1, 4, 4, generator=g) < 0.5).float()
    assert model.elbo(x).shape == (5,)
    assert iwae_bound(model, x, 3).shape == (5,)
    assert log_likelihood(model, x, k=7, chunk=2).shape == (5,)
    s = model.sample(6)
    assert s.shape == (6, 1, 4, 4) and s.min() >= 0 and s.max() <= 1
    assert model.sample(6, mean=False).shape == (6, 1, 4, 4)
    assert model.reconstruct(x).shape == x.shape


def test_elbo_estimators_agree_and_k1_iwae_is_the_elbo():
    model = _small_vae("standard")
    x = (torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float().repeat(20000, 1, 1, 1)
    with torch.no_grad():
        analytic, mc, k1 = model.elbo(x), model.elbo(x, analytic_kl=False), iwae_bound(model, x, 1)
    se = mc.std() / math.sqrt(len(x))
    assert abs(analytic.mean() - mc.mean()) < 4 * se and abs(k1.mean() - mc.mean()) < 4 * se


def test_which_elbo_estimator_is_less_noisy_depends_on_q():
    """Kingma & Welling's estimator A (Monte Carlo) vs B (closed-form KL): neither is always less noisy."""
    from flowedu.distributions import kl_normal_standard

    # q = p(z), an encoder that ignores x: the two estimators are the same number for every draw.
    model = _small_vae("standard")
    with torch.no_grad():
        model.encoder.net[-1].weight.zero_()
        model.encoder.net[-1].bias.zero_()
    x = (torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    eps = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.elbo(x, eps=eps, analytic_kl=True), model.elbo(x, eps=eps, analytic_kl=False))
    # q = p(z | x) exactly (linear-Gaussian model with orthogonal columns: diagonal posterior): A = log p(x).
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(5, 2, generator=g, dtype=torch.float64))[0]
    lg = LinearGaussian(basis * torch.tensor([2.0, 1.0], dtype=torch.float64), None, sigma=0.5)
    xs = lg.sample(3, generator=g)
    mean, cov = lg.posterior(xs)
    var = torch.diagonal(cov)
    for shift, scale, a_less_noisy in ((0.0, 1.0, True), (0.0, 2.0, True), (2.0, 0.25, False)):
        m, log_var = mean + shift * var.sqrt(), torch.log(scale * var).expand_as(mean)
        z = reparameterize(m, log_var, torch.randn(20_000, *m.shape, generator=g, dtype=torch.float64))
        a = lg.log_joint(xs, z) - log_normal_diag(z, m, log_var)
        b = lg.log_likelihood(xs, z) - kl_normal_standard(m, log_var)
        if shift == 0.0 and scale == 1.0:
            torch.testing.assert_close(a, lg.log_prob(xs).expand_as(a))  # zero variance
        assert ((a.std(0) < b.std(0)) == a_less_noisy).all(), (shift, scale, a.std(0), b.std(0))


def test_vae_validates_its_parts_and_inputs():
    with pytest.raises(ValueError, match="same latent_dim"):
        VAE(GaussianEncoder(16, 2), BernoulliDecoder(3, 16), StandardNormalPrior(2))
    with pytest.raises(ValueError, match="same data_shape"):
        VAE(GaussianEncoder(16, 2), BernoulliDecoder(2, 15), StandardNormalPrior(2))
    model = _small_vae()
    with pytest.raises(ValueError, match="x must have shape"):
        model.elbo(torch.zeros(3, 1, 5, 5))
    with pytest.raises(ValueError, match="only 0 and 1"):
        model.elbo(torch.full((3, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="on the grid"):
        _small_vae(decoder="categorical").elbo(torch.full((3, 1, 4, 4), 0.03))
    with pytest.raises(ValueError, match="n_components"):
        MixturePrior(0, 2)
    with pytest.raises(ValueError, match="latent_dim"):
        GaussianEncoder(16, 0)
    with pytest.raises(ValueError, match="z must have shape"):
        StandardNormalPrior(2).log_prob(torch.zeros(3, 4))


def test_gradient_estimators_are_unbiased_and_reparameterization_is_less_noisy():
    mean, log_var = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([0.0, -0.5], dtype=torch.float64)
    score, reparam = gradient_samples(lambda z: (z**2).sum(-1), mean, log_var, 100_000,
                                      generator=torch.Generator().manual_seed(0))
    exact = 2 * mean  # d/dμ E[Σ z²] = d/dμ Σ (μ² + σ²)
    for est in (score, reparam):
        se = est.std(0) / math.sqrt(len(est))
        assert ((est.mean(0) - exact).abs() < 4 * se).all()
    assert (score.var(0) > 5 * reparam.var(0)).all()


def test_training_lowers_the_loss_and_rejects_bad_settings():
    model = _small_vae("mixture")
    x = (torch.rand(256, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    history = train_vae(model, x, x[:64], epochs=15, lr=1e-2, batch_size=32,
                        generator=torch.Generator().manual_seed(0), progress=False)
    assert len(history["train"]) == 15 and len(history["val"]) == 15
    assert history["train"][-1] < history["train"][0] - 1.0, history["train"]
    with pytest.raises(ValueError, match="lr must be"):
        train_vae(model, x, lr=0.0)
    with pytest.raises(ValueError, match="epochs must be"):
        train_vae(model, x, epochs=0)


def test_checks_accept_the_reference_and_reject_the_known_mistakes():
    flowedu.checks.check_reparameterize(reparameterize)
    with pytest.raises(AssertionError):  # σ = exp(log σ²) instead of exp(½ log σ²)
        flowedu.checks.check_reparameterize(lambda m, lv, e: m + torch.exp(lv) * e)
    with pytest.raises(AssertionError):  # sampled without a path for the gradient
        flowedu.checks.check_reparameterize(lambda m, lv, e: (m + torch.exp(0.5 * lv) * e).detach())

    def elbo(model, x, eps):
        mean, log_var = model.encoder(x)
        z = reparameterize(mean, log_var, eps)
        return model.decoder.log_prob(x, z) + model.prior.log_prob(z) - log_normal_diag(z, mean, log_var)

    flowedu.checks.check_elbo(elbo)
    with pytest.raises(AssertionError):  # the KL term with the wrong sign
        flowedu.checks.check_elbo(lambda model, x, eps: elbo(model, x, eps) + 2 * (
            log_normal_diag(reparameterize(*model.encoder(x), eps), *model.encoder(x))
            - model.prior.log_prob(reparameterize(*model.encoder(x), eps))))


def test_linear_gaussian_proposal_validates_and_matches_its_distribution(lg):
    x = lg.sample(3, generator=torch.Generator().manual_seed(1))
    proposal = LinearGaussianProposal(lg, shift=0.3, scale=2.0)
    log_w = proposal.log_weights(x, 5, generator=torch.Generator().manual_seed(2))
    assert log_w.shape == (5, 3) and torch.isfinite(log_w).all()
    for kwargs, match in [({"scale": 0.0}, "scale"), ({"shift": float("nan")}, "shift")]:
        with pytest.raises(ValueError, match=match):
            LinearGaussianProposal(lg, **kwargs)
    with pytest.raises(ValueError, match="k must be"):
        proposal.log_weights(x, 0)
    with pytest.raises(ValueError, match="model must be a LinearGaussian"):
        LinearGaussianProposal("not a model")


def test_draw_uses_the_generator_and_stays_on_the_device():
    from flowedu.vae.parts import draw

    expected = torch.randn(3, 2, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(draw("randn", (3, 2), torch.Generator().manual_seed(4), torch.float32, "cpu"), expected)
    torch.manual_seed(5)
    first = draw("rand", (4,), None, torch.float64, "cpu")
    torch.manual_seed(5)
    torch.testing.assert_close(first, torch.rand(4, dtype=torch.float64))
    if torch.cuda.is_available():  # a CPU generator gives the same numbers on the GPU; a CUDA one draws there
        on_gpu = draw("randn", (3, 2), torch.Generator().manual_seed(4), torch.float32, "cuda")
        torch.testing.assert_close(on_gpu.cpu(), expected)
        cuda_generator = torch.Generator(device="cuda").manual_seed(0)
        assert draw("rand", (3,), cuda_generator, torch.float32, "cuda").device.type == "cuda"


@pytest.mark.parametrize("likelihood", ["bernoulli", "categorical"])
def test_decoder_draws_follow_their_probabilities(likelihood):
    """x ~ p(x | z) pixel by pixel: the frequency of each level matches its probability (20,000 draws)."""
    torch.manual_seed(0)
    decoder = make_vae((1, 2, 2), 2, likelihood, (8,)).decoder
    z = torch.randn(1, 2).expand(20_000, 2)
    draws = decoder.sample(z, generator=torch.Generator().manual_seed(1)).reshape(20_000, 4)
    with torch.no_grad():
        if likelihood == "bernoulli":
            probs = torch.stack([1 - decoder.mean(z[:1]), decoder.mean(z[:1])], -1).reshape(4, 2)
        else:
            probs = torch.softmax(decoder(z[:1]), -1).reshape(4, -1)
    levels = probs.shape[-1]
    frequencies = torch.stack([(draws * (levels - 1)).round().eq(c).double().mean(0) for c in range(levels)], -1)
    assert torch.allclose(frequencies, probs.double(), atol=4 * (0.25 / 20_000) ** 0.5)
    again = decoder.sample(z, generator=torch.Generator().manual_seed(1)).reshape(20_000, 4)
    assert torch.equal(draws, again), "the same generator seed gives the same draws"
