"""The course mistakes of flowedu.vae.mistakes: each is wrong in the way its docstring says, and right
exactly at the boundary where the mistake becomes invisible."""

import math

import pytest
import torch

from flowedu.vae import VAE, BernoulliDecoder, GaussianEncoder, MixturePrior, StandardNormalPrior, mistakes


def _prior(m=3, d=2, seed=0, log_vars=None):
    torch.manual_seed(seed)
    prior = MixturePrior(m, d, init_scale=2.0).double()
    with torch.no_grad():
        if log_vars is not None:
            prior.log_vars.copy_(torch.as_tensor(log_vars, dtype=torch.float64))
        prior.logits.copy_(torch.linspace(-0.5, 0.5, m, dtype=torch.float64))
    return prior


def _mass(log_prob, half_width=12.0, n=601):
    t = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1)
    with torch.no_grad():
        return (torch.exp(log_prob(grid)).sum() * (t[1] - t[0]) ** 2).item()


def test_jensen_form_is_below_the_log_density_and_loses_mass():
    prior = _prior(log_vars=[[0.3, -0.2], [0.0, 0.5], [-0.4, 0.1]])
    z = torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        assert (mistakes.mixture_log_prob_jensen(prior, z) < prior.log_prob(z)).all()
    assert abs(_mass(prior.log_prob) - 1) < 1e-6
    assert _mass(lambda g: mistakes.mixture_log_prob_jensen(prior, g)) < 0.9


def test_jensen_form_is_exact_with_one_component():
    prior = _prior(m=1)
    z = torch.randn(20, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mistakes.mixture_log_prob_jensen(prior, z), prior.log_prob(z))


def test_per_coordinate_form_is_a_normalised_but_different_model():
    prior = _prior(log_vars=[[-1.0, -1.0], [-1.0, -1.0], [-1.0, -1.0]])
    wrong = lambda g: mistakes.mixture_log_prob_per_coordinate(prior, g)  # noqa: E731
    # It integrates to 1 (a product of 1-D mixtures), so a normalisation test cannot catch it ...
    assert abs(_mass(wrong) - 1) < 1e-6
    # ... but it is not the mixture: it puts mass on the M^d = 9 corners of the grid of coordinate means.
    corners = torch.stack(torch.meshgrid(prior.means[:, 0], prior.means[:, 1], indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        gap = wrong(corners.detach()) - prior.log_prob(corners.detach())
    assert gap.max() > 5, gap  # off-diagonal corners: likely under the wrong model, unlikely under the mixture


def test_per_coordinate_form_is_exact_in_one_dimension_and_with_one_component():
    for m, d in ((4, 1), (1, 3)):
        prior = _prior(m=m, d=d)
        z = torch.randn(50, d, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(mistakes.mixture_log_prob_per_coordinate(prior, z), prior.log_prob(z))


def test_variance_as_std_has_the_fourth_power_and_is_right_at_unit_variance():
    log_vars = torch.tensor([[1.0, -1.0], [0.5, -2.0], [-0.5, 0.3]], dtype=torch.float64)
    prior = _prior(log_vars=log_vars)
    n = 200_000
    wrong = mistakes.mixture_sample_variance_as_std(prior, n, torch.Generator().manual_seed(0))
    right = prior.sample(n, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pi = torch.softmax(prior.logits, 0)[:, None]
        mean = (pi * prior.means).sum(0)
        var_wrong = (pi * (torch.exp(2 * log_vars) + prior.means**2)).sum(0) - mean**2  # σ⁴ in place of σ²
        var_right = (pi * (torch.exp(log_vars) + prior.means**2)).sum(0) - mean**2
    torch.testing.assert_close(wrong.var(0), var_wrong, rtol=0.03, atol=0)
    torch.testing.assert_close(right.var(0), var_right, rtol=0.03, atol=0)
    # At log σ² = 0 (the initialisation) the two samplers draw the same points.
    unit = _prior(log_vars=torch.zeros(3, 2))
    torch.testing.assert_close(mistakes.mixture_sample_variance_as_std(unit, 50, torch.Generator().manual_seed(1)),
                               unit.sample(50, generator=torch.Generator().manual_seed(1)))


def test_mixture_mistakes_reject_other_priors():
    for bad in (lambda: mistakes.mixture_log_prob_jensen(StandardNormalPrior(2), torch.zeros(1, 2)),
                lambda: mistakes.mixture_log_prob_per_coordinate("prior", torch.zeros(1, 2)),
                lambda: mistakes.mixture_sample_variance_as_std(StandardNormalPrior(2), 3)):
        with pytest.raises(ValueError, match="prior must be a MixturePrior"):
            bad()


def test_binary_entropy_is_the_minimum_of_the_cross_entropy():
    t = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    p = torch.linspace(1e-9, 1 - 1e-9, 200_001, dtype=torch.float64)[:, None]
    bce = -(torch.xlogy(t, p) + torch.xlogy(1 - t, 1 - p))
    torch.testing.assert_close(bce.min(0).values, mistakes.binary_entropy(t), atol=1e-8, rtol=0)
    assert mistakes.binary_entropy(t)[2].item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mistakes.binary_entropy(torch.tensor([-0.5]))


def _bce_vae():
    torch.manual_seed(0)
    shape = (1, 4, 4)
    return VAE(GaussianEncoder(shape, 2, (8,)), BernoulliDecoder(2, shape, (8,)), StandardNormalPrior(2))


def test_normalized_targets_make_the_bce_loss_unbounded_below():
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.4  # all targets 2x - 1 < 0
    course = mistakes.BCEOnIntensities(_bce_vae(), normalize=True)
    values = []
    for shift in (0.0, -10.0, -100.0, -1000.0):
        with torch.no_grad():
            course.vae.decoder.net[-1].bias.fill_(shift)
            values.append(course.elbo(x).mean().item())
    # The "ELBO" grows without bound as the logits go to -inf: the loss -ELBO has no minimum.
    assert all(b > a + 1 for a, b in zip(values[:-1], values[1:], strict=True)), values
    assert values[-1] > 1000


def test_bce_on_intensities_is_bounded_by_the_entropy_of_the_targets():
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    model = mistakes.BCEOnIntensities(_bce_vae(), normalize=False)
    floor = mistakes.binary_entropy(x.reshape(6, -1)).sum(-1)
    for shift in (0.0, -10.0, 10.0):
        with torch.no_grad():
            model.vae.decoder.net[-1].bias.fill_(shift)
            assert (model.elbo(x) <= -floor).all()
    with pytest.raises(ValueError, match="intensities"):
        model.elbo(x + 1)


def test_bce_on_intensities_needs_a_bernoulli_vae():
    with pytest.raises(ValueError, match="BernoulliDecoder"):
        mistakes.BCEOnIntensities("not a vae", normalize=True)


# --- the memorising model of vae_evaluation.ipynb -------------------------------------------------------------


def test_memoriser_is_a_normalised_distribution_and_its_samples_follow_it():
    import itertools

    from flowedu.vae.memoriser import memoriser_log_likelihood, memoriser_sample

    levels = 3  # 3 levels, 3 pixels: 27 images, enumerated
    train = torch.tensor([[0, 1, 2], [2, 2, 0]], dtype=torch.float64)[:, None] / (levels - 1)
    every = torch.tensor(list(itertools.product(range(levels), repeat=3)), dtype=torch.float64)[:, None] / 2
    log_p = memoriser_log_likelihood(every, train, alpha=0.3, n_levels=levels)
    assert abs(torch.logsumexp(log_p, 0).item()) < 1e-12  # sums to one
    draws = memoriser_sample(train, 0.3, levels, 60_000, generator=torch.Generator().manual_seed(0))
    index = (draws.reshape(-1, 3) * 2).round().long() @ torch.tensor([9, 3, 1])
    freq = torch.bincount(index, minlength=27).double() / len(draws)
    torch.testing.assert_close(freq, torch.exp(log_p), atol=0.006, rtol=0)
    # alpha = 1 forgets the training set: every image has probability L^-D.
    torch.testing.assert_close(memoriser_log_likelihood(every, train, 1.0, levels),
                               torch.full((27,), -3 * math.log(3), dtype=torch.float64))


def test_memoriser_validates():
    from flowedu.vae.memoriser import memoriser_log_likelihood, memoriser_sample

    x = torch.zeros(2, 1, 2, 2)
    for kwargs, match in [({"alpha": 0.0}, "alpha"), ({"n_levels": 1}, "n_levels")]:
        with pytest.raises(ValueError, match=match):
            memoriser_log_likelihood(x, x, **{"alpha": 0.1, "n_levels": 2, **kwargs})
    with pytest.raises(ValueError, match="on the grid"):
        memoriser_log_likelihood(x + 0.3, x, 0.1, 2)
    with pytest.raises(ValueError, match="same number of pixels"):
        memoriser_log_likelihood(x, torch.zeros(2, 1, 3, 3), 0.1, 2)
    with pytest.raises(ValueError, match="n must be"):
        memoriser_sample(x, 0.1, 2, 0)
