"""Chapter: book/gan.md — a VAE-GAN: the decoder of a VAE (``flowedu.vae``) doubles as a GAN generator.

The VAE keeps its ELBO; a critic with spectral normalisation (Miyato et al. 2018,
arXiv:1802.05957) learns to tell data from decoded prior samples ``E[x | z]``, ``z ~ p(z)``, and the
decoder also receives the non-saturating generator loss, weighted by ``adv_weight``:

    loss_VAE = −ELBO(x) + adv_weight · E_z softplus(−D(E[x | z])),

both terms per example (a mean over the batch), so ``adv_weight`` means the same thing for every batch
size (:func:`vae_gan_objective`). This is simpler than Larsen et al. (2016, arXiv:1512.09300), who also
replace the pixel likelihood by a feature-matching loss in the critic's features; here the likelihood
(and so the ELBO) is untouched.

:func:`course_vae_gan_objective` is the course's version, kept WRONG on purpose: a batch-summed ELBO
plus an adversarial term averaged over every entry, whose effective weight is
:func:`effective_adversarial_weight` = ``λ / (B · P)``.
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from flowedu import data
from flowedu.gan.training import critic_loss, generator_loss
from flowedu.loops import History, LossLog, batch_cycle, seeded_generator
from flowedu.validate import integer, real

__all__ = ["train_vae_gan", "vae_gan_objective", "course_vae_gan_objective", "effective_adversarial_weight"]


def _check_terms(neg_elbo: torch.Tensor, adv: torch.Tensor) -> None:
    if neg_elbo.dim() != 1 or adv.dim() < 1 or len(adv) != len(neg_elbo) or len(neg_elbo) == 0:
        raise ValueError(f"neg_elbo must be [batch] and adv [batch, ...] with the same batch, "
                         f"got {tuple(neg_elbo.shape)} and {tuple(adv.shape)}")


def vae_gan_objective(neg_elbo: torch.Tensor, adv: torch.Tensor, adv_weight: float) -> torch.Tensor:
    """``mean_b(−ELBO_b) + w · mean_b ℓ_b``: both terms per example, ``ℓ_b`` summed over its entries.

    Args:
        neg_elbo: ``[B]``, −ELBO of each example (a sum over its pixels), nats.
        adv: ``[B]`` (one adversarial loss per image, e.g. ``softplus(−D(x̂))``) or ``[B, P...]``
            (a map, e.g. per pixel or per patch; summed per image, like the ELBO's pixels).
        adv_weight: w >= 0.
    """
    _check_terms(neg_elbo, adv)
    adv_weight = real(adv_weight, "adv_weight", at_least=0)
    return neg_elbo.mean() + adv_weight * adv.reshape(len(adv), -1).sum(1).mean()


def course_vae_gan_objective(neg_elbo: torch.Tensor, adv: torch.Tensor, adv_weight: float) -> torch.Tensor:
    """WRONG, kept as the course's mistake: ``Σ_b (−ELBO_b) + λ · mean over all B·P entries of ℓ``.

    Dividing by B (which Adam ignores: it is invariant to the scale of the loss) gives
    ``mean_b(−ELBO_b) + (λ / (B P)) · mean_b Σ_p ℓ_bp``, i.e. :func:`vae_gan_objective` with
    ``w = λ / (B P)`` (:func:`effective_adversarial_weight`): the sum over the batch multiplies the
    ELBO by B, the mean over the entries divides the adversarial term by P.

    Args:
        neg_elbo: ``[B]``; adv: ``[B]`` or ``[B, P...]``; adv_weight: λ >= 0 (as written in the code).
    """
    _check_terms(neg_elbo, adv)
    adv_weight = real(adv_weight, "adv_weight", at_least=0)
    return neg_elbo.sum() + adv_weight * adv.mean()


def effective_adversarial_weight(adv_weight: float, batch_size: int, entries_per_example: int = 1) -> float:
    """The per-example weight ``w = λ / (B · P)`` that :func:`course_vae_gan_objective` amounts to.

    Args:
        adv_weight: λ, the weight written in the code (>= 0).
        batch_size: B, examples per batch (>= 1).
        entries_per_example: P, entries of the adversarial term per example (1 for one logit per
            image; the number of pixels or patches for a per-pixel or per-patch map).
    """
    adv_weight = real(adv_weight, "adv_weight", at_least=0)
    for name, value in (("batch_size", batch_size), ("entries_per_example", entries_per_example)):
        integer(value, name, 1)
    return adv_weight / (batch_size * entries_per_example)


def train_vae_gan(
    vae: torch.nn.Module,
    critic: torch.nn.Module,
    x_train: torch.Tensor,
    steps: int,
    adv_weight: float = 1.0,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_critic: float = 1e-3,
    binarize: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> History:
    """Train a VAE (``elbo(x) [batch]``, ``prior.sample(n)``, ``decoder.mean(z)``) with an adversarial term.

    Set ``adv_weight = 0`` to get plain VAE training with the same batches and optimiser, the fair
    baseline (the critic is then still trained, but nothing flows back from it). The loss of the VAE
    is :func:`vae_gan_objective`.

    Args:
        vae: a :class:`flowedu.vae.VAE`.
        critic: ``x -> [batch]`` logits (e.g. ``DCGANCritic(..., spectral_norm=True)``).
        x_train: ``[n, ...]`` training data in the VAE's format, n >= ``batch_size``.
        steps: updates of each player (positive integer): optimiser steps of the VAE.
        adv_weight: weight w >= 0 of the generator loss in the VAE's objective (per example).
        batch_size, lr, lr_critic: mini-batch size and Adam learning rates.
        binarize: dynamic binarization for the ELBO (Bernoulli decoders); the critic always sees the
            intensities, since the decoded means it must compare them with are intensities too.
        generator: CPU generator for the batches, the binarization, the prior samples and the ELBO's ε (the global RNG
            is not used, so the VAE's path does not depend on anything else drawn before); default: a
            fresh one seeded with 0.
        seed: older spelling of ``generator=torch.Generator().manual_seed(seed)`` (kept for old calls).

    Returns:
        :class:`~flowedu.loops.History` with ``steps``, ``seconds`` and the per-step lists ``neg_elbo``,
        ``d_loss``, ``g_loss`` (read back from the device in bulk).

    Raises:
        NonFiniteLossError: at the first non-finite loss, naming its step (checked after every step on the
            CPU, every 100 steps on a GPU).
        ValueError: when ``batch_size`` is larger than the data set.
    """
    adv_weight = real(adv_weight, "adv_weight", at_least=0)
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        integer(value, name, 1)
    rng, start = seeded_generator(generator, seed), time.perf_counter()
    opt_vae = torch.optim.Adam(vae.parameters(), lr=lr)
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr_critic, betas=(0.5, 0.999))
    losses = LossLog(("neg_elbo", "d_loss", "g_loss"), steps, x_train.device)
    real_batches = batch_cycle(x_train, batch_size, rng, "x_train")
    vae.train()
    critic.train()
    for step in tqdm(range(steps), desc=f"VAE-GAN w={adv_weight:g}", disable=not progress, leave=False):
        x = next(real_batches)
        z = vae.prior.sample(batch_size, generator=rng).to(x.device)
        fake = vae.decoder.mean(z)
        # The critic: data against decoded prior samples.
        d_loss = critic_loss(critic(x), critic(fake.detach()), "jsd")
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # The VAE: its ELBO plus the weighted non-saturating generator loss, both per example.
        adv = generator_loss(critic(fake), "jsd", per_example=True)
        g_loss = adv.mean()
        eps = torch.randn(batch_size, vae.latent_dim, generator=rng).to(x.device, x.dtype)
        neg_elbo = -vae.elbo(data.bernoulli_binarize(x, rng) if binarize else x, eps=eps)
        opt_vae.zero_grad(set_to_none=True)
        vae_gan_objective(neg_elbo, adv, adv_weight).backward()
        opt_vae.step()
        losses.record(step, neg_elbo=neg_elbo.mean(), d_loss=d_loss, g_loss=g_loss)
        losses.maybe_check(step + 1, "VAE-GAN")
    losses.check(steps, "VAE-GAN")
    vae.eval()
    return History(losses.tolist(), steps=steps, seconds=time.perf_counter() - start)
