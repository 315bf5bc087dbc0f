"""Image GAN models and the training loop (tiny sizes)."""

import pytest
import torch

from flowedu.gan import DCGANCritic, DCGANGenerator, critic_loss, generator_loss, r1_penalty, train_gan


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_shapes(shape):
    g, d = DCGANGenerator(8, shape, 4), DCGANCritic(shape, 4, spectral_norm=True)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, *shape) and x.min() >= 0 and x.max() <= 1
    assert d(x).shape == (3,)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="image_shape"):
        DCGANGenerator(8, (1, 16, 16))
    with pytest.raises(ValueError, match="z must"):
        DCGANGenerator(8, (1, 8, 8))(torch.randn(2, 3))
    x = torch.rand(70, 1, 8, 8)
    g, d = DCGANGenerator(4, (1, 8, 8), 4), DCGANCritic((1, 8, 8), 4)
    with pytest.raises(ValueError, match="gamma"):
        train_gan(g, d, x, 1, reg="r1", gamma=-1.0)
    with pytest.raises(ValueError, match="n_critic"):
        train_gan(g, d, x, 1, update="simultaneous", n_critic=2)
    with pytest.raises(ValueError, match="loss"):
        critic_loss(torch.zeros(2), torch.zeros(2), "kl")


def test_losses_at_an_uninformative_critic():
    zero = torch.zeros(5)
    assert critic_loss(zero, zero, "jsd").item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    assert generator_loss(zero, "jsd").item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert critic_loss(zero, zero, "w1").item() == 0.0


def test_r1_penalty_of_a_linear_critic():
    lin = torch.nn.Linear(4, 1)
    x = torch.randn(6, 4)
    expected = 0.5 * 2.0 * lin.weight.pow(2).sum()
    torch.testing.assert_close(r1_penalty(lin, x, 2.0), expected)


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_training_runs_and_evaluates(update):
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    g, d = DCGANGenerator(4, (1, 8, 8), 4), DCGANCritic((1, 8, 8), 4)
    before = [p.detach().clone() for p in g.parameters()]
    h = train_gan(g, d, x, 3, loss="w1", reg="gp", gamma=1.0, update=update, batch_size=16, ema_beta=0.5,
                  evaluate=lambda m: {"mean": m(torch.randn(8, 4)).mean().item()}, eval_every=2, progress=False)
    assert len(h["d_loss"]) == 3 and [e["step"] for e in h["evals"]] == [2, 3]
    assert "ema_mean" in h["evals"][0]
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))


def test_vae_gan_runs_and_validates():
    from flowedu import vae as vae_lib
    from flowedu.gan import train_vae_gan

    torch.manual_seed(0)
    x = (torch.randint(0, 17, (64, 1, 8, 8)) / 16).float()
    model = vae_lib.make_vae((1, 8, 8), 2, likelihood="categorical", hidden=(16,))
    critic = DCGANCritic((1, 8, 8), 4, spectral_norm=True)
    h = train_vae_gan(model, critic, x, 3, adv_weight=1.0, batch_size=16, progress=False)
    assert len(h["neg_elbo"]) == 3 and all(v > 0 for v in h["neg_elbo"])
    with pytest.raises(ValueError, match="adv_weight"):
        train_vae_gan(model, critic, x, 1, adv_weight=-1.0)


def _tiny(sn=False, seed=0):
    torch.manual_seed(seed)
    return DCGANGenerator(4, (1, 8, 8), 4), DCGANCritic((1, 8, 8), 4, spectral_norm=sn)


def test_recorded_losses_are_those_of_the_first_batch():
    # The loss history is read back in bulk; its first entries must be the losses of the first step,
    # recomputed here by hand with the same random draws (order of the batches, then the latents).
    import copy

    from flowedu.gan import sample_latent

    x = torch.rand(96, 1, 8, 8)
    g, d = _tiny()
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    h = train_gan(g, d, x, 3, loss="jsd", batch_size=32, seed=7, progress=False)
    rng = torch.Generator().manual_seed(7)
    order = torch.randperm(96, generator=rng)
    x_real = x[order[:32]]
    with torch.no_grad():
        x_fake = g0(sample_latent(32, 4, "cpu", rng))
        expected = critic_loss(d0(x_real), d0(x_fake), "jsd").item()
    assert h["d_loss"][0] == pytest.approx(expected, rel=1e-6)
    assert len(h["g_loss"]) == 3 and all(isinstance(v, float) for v in h["g_loss"])


class _NaNAfter(torch.nn.Module):
    """A critic whose scores become NaN from its ``n``-th call on (to test the finiteness guard)."""

    def __init__(self, critic, n):
        super().__init__()
        self.critic, self.n, self.calls = critic, n, 0

    def forward(self, x):
        self.calls += 1
        out = self.critic(x)
        return out * float("nan") if self.calls > self.n else out


def test_a_non_finite_loss_is_reported_with_its_first_step():
    g, d = _tiny()
    # alternating, one critic step, no penalty: 3 critic calls per step; calls 13.. are NaN -> step 5
    with pytest.raises(FloatingPointError, match="step 5"):
        train_gan(g, _NaNAfter(d, 12), torch.rand(64, 1, 8, 8), 8, batch_size=16, progress=False)


def test_keep_best_keeps_the_state_of_the_best_evaluation():
    import copy

    x = torch.rand(64, 1, 8, 8)
    g, d = _tiny()
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))

    def score(m):
        return {"mean": m(z).mean().item()}

    h = train_gan(g, d, x, 6, batch_size=16, lr=1e-2, evaluate=score, eval_every=1, keep_best="mean", progress=False)
    values = [e["mean"] for e in h["evals"]]
    assert h["best"]["value"] == min(values) and h["best"]["step"] == values.index(min(values)) + 1
    best = copy.deepcopy(g)
    best.load_state_dict(h["best"]["state"])
    best.eval()
    with torch.no_grad():
        assert score(best)["mean"] == pytest.approx(h["best"]["value"], rel=1e-6)
    with pytest.raises(ValueError, match="keep_best"):
        train_gan(g, d, x, 1, keep_best="fcd", progress=False)


def test_mlp_models_and_their_validation():
    from flowedu.gan import MLPCritic, MLPGenerator

    g, d = MLPGenerator(3, 2, 8, 2), MLPCritic(2, 8, 1, spectral_norm=True)
    x = g(torch.randn(5, 3))
    assert x.shape == (5, 2) and d(x).shape == (5,)
    with pytest.raises(ValueError, match="z must"):
        g(torch.randn(5, 2))
    with pytest.raises(ValueError, match="x must"):
        d(torch.randn(5, 3))
    with pytest.raises(ValueError, match="hidden"):
        MLPGenerator(2, 2, 0)


def _changed(before, module):
    return {name: not torch.equal(before[name], p.detach()) for name, p in module.named_parameters()}


def test_rewrapped_spectral_norm_trains_only_the_biases():
    # The course's hand-written spectral norm replaces the weight by a fresh nn.Parameter in every
    # forward pass: the optimiser's weight tensors never get a gradient; only the biases learn.
    from flowedu.gan import rewrapped_spectral_norm

    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    for wrap in ("course", "parametrization"):
        g, d = _tiny(sn=wrap == "parametrization")
        if wrap == "course":
            d = rewrapped_spectral_norm(d)
        params = dict(d.named_parameters())
        before = {name: p.detach().clone() for name, p in params.items()}
        train_gan(g, d, x, 5, batch_size=16, lr=1e-2, progress=False)
        changed = {name: not torch.equal(before[name], p.detach()) for name, p in params.items()}
        weights = [changed[n] for n in changed if "weight" in n or "original" in n]
        biases = [changed[n] for n in changed if n.endswith("bias")]
        assert weights and biases and all(biases), changed
        assert (not any(weights)) if wrap == "course" else all(weights), (wrap, changed)


def test_rewrapped_spectral_norm_normalises_like_the_power_iteration():
    from flowedu.gan import RewrappedSpectralNorm

    torch.manual_seed(1)
    layer = torch.nn.Linear(6, 4)
    wrapped = RewrappedSpectralNorm(layer)
    for _ in range(50):  # power iteration converges to the top singular value
        wrapped(torch.randn(2, 6))
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()
    assert sigma == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match="layer"):
        RewrappedSpectralNorm(torch.nn.ReLU())


@pytest.mark.parametrize("shape", [(8,), (8, 5), (8, 1, 2, 2)])
def test_course_vae_gan_objective_is_ours_with_weight_over_b_times_p(shape):
    from flowedu.gan import course_vae_gan_objective, effective_adversarial_weight, vae_gan_objective

    torch.manual_seed(2)
    theta = torch.randn(3, requires_grad=True)
    neg_elbo = (torch.randn(8, 3) @ theta).exp()
    adv = torch.nn.functional.softplus(torch.randn(*shape) * theta.sum())
    per_example = 1 if len(shape) == 1 else int(torch.tensor(shape[1:]).prod())
    lam = 2.0
    w = effective_adversarial_weight(lam, 8, per_example)
    assert w == pytest.approx(lam / (8 * per_example))
    (g_course,) = torch.autograd.grad(course_vae_gan_objective(neg_elbo, adv, lam), theta, retain_graph=True)
    (g_ours,) = torch.autograd.grad(vae_gan_objective(neg_elbo, adv, w), theta)
    torch.testing.assert_close(g_course / 8, g_ours)  # the same objective up to the factor B (which Adam ignores)
    with pytest.raises(ValueError, match="batch_size"):
        effective_adversarial_weight(1.0, 0)
    with pytest.raises(ValueError, match="neg_elbo"):
        vae_gan_objective(neg_elbo, adv[:3], 1.0)


def test_vae_gan_without_weight_ignores_the_critic_and_with_weight_does_not():
    from flowedu import vae as vae_lib
    from flowedu.gan import train_vae_gan

    x = (torch.randint(0, 17, (64, 1, 8, 8)) / 16).float()

    def run(weight, critic_seed):
        torch.manual_seed(0)
        model = vae_lib.make_vae((1, 8, 8), 2, likelihood="categorical", hidden=(16,))
        torch.manual_seed(critic_seed)
        critic = DCGANCritic((1, 8, 8), 4, spectral_norm=True)
        h = train_vae_gan(model, critic, x, 4, adv_weight=weight, batch_size=16, progress=False)
        return h, [p.detach().clone() for p in model.parameters()]

    (h_a, p_a), (h_b, p_b) = run(0.0, 1), run(0.0, 2)
    assert all(torch.equal(a, b) for a, b in zip(p_a, p_b, strict=True)) and h_a["neg_elbo"] == h_b["neg_elbo"]
    assert h_a["d_loss"] != h_b["d_loss"]  # the critics differ, the VAEs do not
    _, p_c = run(5.0, 1)
    assert any(not torch.equal(a, c) for a, c in zip(p_a, p_c, strict=True))
    model = vae_lib.make_vae((1, 8, 8), 2, likelihood="categorical", hidden=(16,))
    with pytest.raises(ValueError, match="batch_size"):
        train_vae_gan(model, DCGANCritic((1, 8, 8), 4), x, 1, batch_size=65)


def test_sample_quality_scores_real_images_as_real():
    from flowedu import data
    from flowedu.gan import SampleQuality
    from flowedu.metrics import ClassifierFeatures

    torch.manual_seed(0)
    x, y = data.load_images("digits", "train", device="cpu")
    clf = ClassifierFeatures(x.shape[1:], 10, feature_dim=16, width=4)
    clf.fit(x[:300], y[:300], n_epochs=1, progress=False)
    quality = SampleQuality(clf, x[:400], latent_dim=4, n_samples=50)
    same = quality.scores(x[:400])
    assert same["fcd"] == pytest.approx(0.0, abs=1e-6) and 1.0 <= same["is"] <= 10.0
    g = DCGANGenerator(4, (1, 8, 8), 4)
    fixed, again, fresh = quality(g), quality(g), quality(g, seed=5)
    assert fixed == again and fixed != fresh and fixed["fcd"] > 0
    with pytest.raises(ValueError, match="n_samples"):
        SampleQuality(clf, x[:10], 4, n_samples=1)


def test_fraction_far_counts_points_without_a_close_neighbour():
    from flowedu.gan import fraction_far

    reference = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    points = torch.tensor([[0.05, 0.0], [0.5, 0.0], [1.0, 0.3], [3.0, 3.0]])
    assert fraction_far(points, reference, 0.25) == 0.75  # all but (0.05, 0)
    assert fraction_far(points, reference, 0.5) == 0.25  # distance exactly 0.5 is not farther
    assert fraction_far(reference, reference, 1e-9) == 0.0
    with pytest.raises(ValueError, match="radius"):
        fraction_far(points, reference, 0.0)
    with pytest.raises(ValueError, match="same d"):
        fraction_far(points, torch.zeros(3, 3), 1.0)
