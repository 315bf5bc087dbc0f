"""The GAN and VAE-GAN loops do what their docstrings say, step by step, not only "parameters changed":
one step of each is replayed by hand from the documented algorithm with the same random draws, the
reported losses are the losses optimised, the adversarial weight enters as ``mean(−ELBO) + w · mean(adv)``,
the EMA follows its recursion, and the critic's loss falls on a problem it can solve."""

import copy
import math

import pytest
import torch

from flowedu import gan, vae
from flowedu.gan import critic_loss, generator_loss, sample_latent, vae_gan_objective
from flowedu.loops import batch_cycle


def _pair(seed=0):
    torch.manual_seed(seed)
    return gan.MLPGenerator(2, 2, hidden=8, n_hidden=1), gan.MLPCritic(2, hidden=8, n_hidden=1)


def _data(n=64):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(3)) * 0.5 + 2.0


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("loss", ["jsd", "w1"])
def test_one_alternating_step_is_the_documented_algorithm(loss):
    g, d = _pair()
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    x = _data()
    lr, betas = 1e-2, (0.5, 0.999)
    history = gan.train_gan(g, d, x, 1, loss=loss, batch_size=16, lr=lr, betas=betas,
                            generator=torch.Generator().manual_seed(9), progress=False)
    # by hand: the same draws in the documented order (the batch, then the latents)
    rng = torch.Generator().manual_seed(9)
    x_real = next(batch_cycle(x, 16, rng))
    opt_d = torch.optim.Adam(d0.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(g0.parameters(), lr=lr, betas=betas)
    with torch.no_grad():
        x_fake = g0(sample_latent(16, 2, "cpu", rng))
    d_loss = critic_loss(d0(x_real), d0(x_fake), loss)  # the critic's step ...
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(d0(g0(sample_latent(16, 2, "cpu", rng))), loss)  # ... then the generator's,
    opt_g.zero_grad()  # against the updated critic
    g_loss.backward()
    opt_g.step()
    assert _same(d, d0) and _same(g, g0)
    assert history["d_loss"] == [pytest.approx(d_loss.item(), abs=1e-7)]  # the reported losses are the ones
    assert history["g_loss"] == [pytest.approx(g_loss.item(), abs=1e-7)]  # that were optimised


def test_the_ema_follows_its_recursion():
    g, d = _pair()
    beta, seen = 0.8, []

    def record(module):
        if module is g:  # called after every step on the raw generator (and on the EMA's copy)
            seen.append([p.detach().clone() for p in module.parameters()])
        return {"zero": 0.0}

    start = [p.detach().clone() for p in g.parameters()]
    history = gan.train_gan(g, d, _data(), 5, batch_size=16, lr=1e-2, ema_beta=beta, evaluate=record,
                            eval_every=1, progress=False)
    assert len(seen) == 5
    average = start  # θ̄_0 = θ_0, then θ̄_t = β θ̄_(t−1) + (1 − β) θ_t after every step
    for params in seen:
        average = [beta * a + (1 - beta) * p for a, p in zip(average, params, strict=True)]
    for a, p in zip(average, history["ema"].module.parameters(), strict=True):
        torch.testing.assert_close(p, a, rtol=1e-6, atol=1e-7)
    assert history["ema"].n_updates == 5


def test_the_critic_loss_falls_where_the_critic_can_win():
    """Data at (2, 2), a generator that cannot move (lr for it is irrelevant: its output layer is frozen at 0):
    the JSD critic loss starts at log 4 (an uninformative critic) and falls as the critic separates them."""
    g, d = _pair()
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
    for p in g.parameters():
        p.requires_grad_(False)
    history = gan.train_gan(g, d, _data(256), 60, loss="jsd", batch_size=32, lr=1e-2, progress=False)
    first, last = history["d_loss"][0], sum(history["d_loss"][-10:]) / 10
    assert abs(first - math.log(4)) < 0.3, first
    assert last < first - 0.5, (first, last)
    assert all(not p.requires_grad for p in g.parameters())


@pytest.mark.parametrize("weight", [0.0, 3.0])
def test_one_vae_gan_step_is_the_documented_algorithm(weight):
    torch.manual_seed(0)
    model = vae.make_vae(6, 2, hidden=(8,))
    critic = gan.MLPCritic(6, hidden=8, n_hidden=1)
    m0, c0 = copy.deepcopy(model), copy.deepcopy(critic)
    x = (torch.rand(48, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    lr, lr_critic = 1e-2, 2e-2
    history = gan.train_vae_gan(model, critic, x, 1, adv_weight=weight, batch_size=16, lr=lr, lr_critic=lr_critic,
                                generator=torch.Generator().manual_seed(5), progress=False)
    rng = torch.Generator().manual_seed(5)
    xb = next(batch_cycle(x, 16, rng))
    opt_vae = torch.optim.Adam(m0.parameters(), lr=lr)
    opt_d = torch.optim.Adam(c0.parameters(), lr=lr_critic, betas=(0.5, 0.999))
    fake = m0.decoder.mean(m0.prior.sample(16, generator=rng))
    d_loss = critic_loss(c0(xb), c0(fake.detach()), "jsd")
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    adv = generator_loss(c0(fake), "jsd", per_example=True)
    neg_elbo = -m0.elbo(xb, eps=torch.randn(16, 2, generator=rng))
    objective = neg_elbo.mean() + weight * adv.mean()  # mean(−ELBO) + w · mean(adv), as documented
    torch.testing.assert_close(objective, vae_gan_objective(neg_elbo, adv, weight))
    opt_vae.zero_grad()
    objective.backward()
    opt_vae.step()
    assert _same(model, m0) and _same(critic, c0)
    assert history["neg_elbo"] == [pytest.approx(neg_elbo.mean().item(), abs=1e-5)]
    assert history["d_loss"] == [pytest.approx(d_loss.item(), abs=1e-7)]
    assert history["g_loss"] == [pytest.approx(adv.mean().item(), abs=1e-7)]
