"""A VAE-GAN: the decoder of a VAE (``flowedu.vae``) doubles as a GAN generator.

The VAE keeps its ELBO; a critic with spectral normalisation (Miyato et al. 2018,
arXiv:1802.05957) learns to tell data from decoded prior samples ``E[x | z]``, ``z ~ p(z)``, and the
decoder also receives the non-saturating generator loss, weighted by ``adv_weight``:

    loss_VAE = −ELBO(x) + adv_weight · E_z softplus(−D(E[x | z])).

This is simpler than Larsen et al. (2016, arXiv:1512.09300), who also replace the pixel likelihood by
a feature-matching loss in the critic's features; here the likelihood (and so the ELBO) is untouched.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from flowedu import data
from flowedu.gan.penalties import _check_coefficient
from flowedu.gan.training import critic_loss, generator_loss

__all__ = ["train_vae_gan"]


def train_vae_gan(
    vae: torch.nn.Module,
    critic: torch.nn.Module,
    x_train: torch.Tensor,
    n_steps: int,
    adv_weight: float = 1.0,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_critic: float = 1e-3,
    binarize: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train a VAE (``elbo(x) [batch]``, ``prior.sample(n)``, ``decoder.mean(z)``) with an adversarial term.

    Set ``adv_weight = 0`` to get plain VAE training with the same batches and optimiser, the fair
    baseline (the critic is then still trained, but nothing flows back from it).

    Args:
        vae: a :class:`flowedu.vae.VAE`.
        critic: ``x -> [batch]`` logits (e.g. ``DCGANCritic(..., spectral_norm=True)``).
        x_train: ``[n, ...]`` training data in the VAE's format.
        n_steps: updates of each player (positive integer).
        adv_weight: weight >= 0 of the generator loss in the VAE's objective.
        batch_size, lr, lr_critic: mini-batch size and Adam learning rates.
        binarize: dynamic binarization for the ELBO (Bernoulli decoders); the critic always sees the
            intensities, since the decoded means it must compare them with are intensities too.
        seed: seeds the batches, the binarization and the prior samples.

    Returns:
        dict with per-step lists ``neg_elbo``, ``d_loss``, ``g_loss``.
    """
    adv_weight = _check_coefficient(adv_weight, "adv_weight")
    for name, value in (("n_steps", n_steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = torch.Generator().manual_seed(seed)
    opt_vae = torch.optim.Adam(vae.parameters(), lr=lr)
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr_critic, betas=(0.5, 0.999))
    history = {"neg_elbo": [], "d_loss": [], "g_loss": []}

    def batches():
        while True:
            yield from data.batches(x_train, batch_size, generator=rng, drop_last=True)

    real = batches()
    vae.train()
    critic.train()
    for _ in tqdm(range(n_steps), desc=f"VAE-GAN w={adv_weight:g}", disable=not progress, leave=False):
        x = next(real)
        z = vae.prior.sample(batch_size, generator=rng).to(x.device)
        fake = vae.decoder.mean(z)
        d_loss = critic_loss(critic(x), critic(fake.detach()), "jsd")
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(critic(fake), "jsd")
        neg_elbo = -vae.elbo(data.bernoulli_binarize(x, rng) if binarize else x).mean()
        opt_vae.zero_grad(set_to_none=True)
        (neg_elbo + adv_weight * g_loss).backward()
        opt_vae.step()
        for key, value in (("neg_elbo", neg_elbo), ("d_loss", d_loss), ("g_loss", g_loss)):
            history[key].append(value.item())
        if not torch.isfinite(neg_elbo + g_loss):
            raise FloatingPointError("the VAE-GAN losses became non-finite (lower lr)")
    vae.eval()
    return history
