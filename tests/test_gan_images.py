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
