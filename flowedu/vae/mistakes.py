"""Chapter: book/vae.md — mistakes found in course reports, kept runnable so that the notebooks can show
and measure each one next to the correct form.

Nothing here is for training a real model. Each function says what it computes, why it is wrong and
where the correct form lives:

* ``mixture_log_prob_jensen``: Σ_m π_m log N(z; μ_m, σ²_m) instead of log Σ_m π_m N(z; μ_m, σ²_m);
* ``mixture_log_prob_per_coordinate``: the log-sum-exp taken per latent coordinate, a product of d
  one-dimensional mixtures (M^d components on a grid) instead of one mixture of M components;
* ``mixture_sample_variance_as_std``: sampling with σ = exp(log σ²), the variance used as the standard
  deviation;
* ``BCEOnIntensities``: a binary cross-entropy "reconstruction loss" on grey intensities, optionally after
  ``transforms.Normalize((0.5,), (0.5,))``, which moves the targets to [-1, 1] and makes the loss
  unbounded below.

The correct forms: :class:`flowedu.vae.MixturePrior` and :class:`flowedu.vae.BernoulliDecoder` on binary
pixels (or :class:`flowedu.vae.CategoricalDecoder` on grey levels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.distributions.elementary import kl_normal_standard, log_normal_diag
from flowedu.vae.model import VAE, reparameterize
from flowedu.vae.parts import BernoulliDecoder, MixturePrior, StandardNormalPrior

__all__ = ["mixture_log_prob_jensen", "mixture_log_prob_per_coordinate", "mixture_sample_variance_as_std",
           "BCEOnIntensities", "binary_entropy"]


def _check_mixture(prior) -> None:
    if not isinstance(prior, MixturePrior):
        raise ValueError(f"prior must be a MixturePrior, got {type(prior).__name__}")


def mixture_log_prob_jensen(prior: MixturePrior, z: torch.Tensor) -> torch.Tensor:
    """WRONG: Σ_m π_m log N(z; μ_m, diag σ²_m), the weights outside the logarithm.

    By Jensen's inequality it is <= log p(z) for every z, and its exponential integrates to less than 1
    whenever two means differ: it is not the log-density of any mixture.

    Args:
        prior: the mixture whose parameters are used.
        z: [..., d].

    Returns:
        [...] in nats.
    """
    _check_mixture(prior)
    prior.check_latent(z)
    pi = torch.softmax(prior.logits, 0)
    return (pi * log_normal_diag(z.unsqueeze(-2), prior.means, prior.log_vars)).sum(-1)


def mixture_log_prob_per_coordinate(prior: MixturePrior, z: torch.Tensor) -> torch.Tensor:
    """WRONG: Σ_j logsumexp_m [log π_m + log N(z_j; μ_mj, σ²_mj)], the log-sum-exp per coordinate.

    This is the log-density of a *different* model: a product of d one-dimensional mixtures, whose
    components sit on the M^d points of the grid of per-coordinate means, not at the M vectors μ_m. It
    integrates to 1 (each factor does), so a normalisation test cannot catch it; comparing with the
    mixture's own ``log_prob`` can.

    Args:
        prior: the mixture whose parameters are used.
        z: [..., d].

    Returns:
        [...] in nats.
    """
    _check_mixture(prior)
    prior.check_latent(z)
    log_pi = torch.log_softmax(prior.logits, 0)[:, None]  # [M, 1]
    # [..., M, d]: one 1-D Gaussian log-density per component and coordinate (a trailing event axis of size 1)
    log_n = log_normal_diag(z[..., None, :, None], prior.means[..., None], prior.log_vars[..., None])
    return torch.logsumexp(log_pi + log_n, dim=-2).sum(-1)


@torch.no_grad()
def mixture_sample_variance_as_std(prior: MixturePrior, n: int,
                                   generator: torch.Generator | None = None) -> torch.Tensor:
    """WRONG: m ~ Categorical(π), z = μ_m + exp(log σ²_m) ε, the variance used as standard deviation.

    Component m then has variance σ⁴_m instead of σ²_m: too narrow where σ² < 1, too wide where σ² > 1,
    and right only where log σ² = 0, the usual initialisation, which is why the mistake survives a
    test at initialisation. Draws the same m and ε as ``prior.sample(n, generator)`` with the same seed.

    Returns:
        [n, d].
    """
    _check_mixture(prior)
    eps = prior.noise(n, generator)
    probs = torch.softmax(prior.logits.detach(), 0).double().cpu()
    m = torch.multinomial(probs, n, replacement=True, generator=generator).to(eps.device)
    return prior.means[m] + torch.exp(prior.log_vars[m]) * eps


def binary_entropy(t: torch.Tensor) -> torch.Tensor:
    """H(t) = -t log t - (1 - t) log(1 - t) in nats, elementwise, with 0 log 0 = 0; t in [0, 1].

    The smallest value of the binary cross-entropy -[t log p + (1 - t) log(1 - p)] over p in (0, 1),
    attained at p = t: the floor of a BCE loss on grey intensities.
    """
    if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
        raise ValueError("t must be a floating-point tensor")
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError("t must lie in [0, 1]")
    return -(torch.xlogy(t, t) + torch.xlogy(1 - t, 1 - t))


class BCEOnIntensities(nn.Module):
    """A VAE "trained with BCE" on grey intensities, as course code often does (the loss is not a likelihood).

    ``elbo(x)`` returns -Σ_j BCE(ℓ_j, t_j) - KL(q ‖ N(0, I)) per example, where ℓ = decoder logits and the
    targets (and the encoder's inputs) are

    * ``normalize=False``: t = x in [0, 1]. The BCE is >= Σ_j H(x_j) > 0 (:func:`binary_entropy`), so
      the loss is bounded below, but for grey x it is not the log-probability of anything: the Bernoulli
      is a distribution on {0, 1}.
    * ``normalize=True``: t = (x - 0.5) / 0.5 = 2x - 1 in [-1, 1], what ``transforms.Normalize((0.5,),
      (0.5,))`` does before a sigmoid/BCE decoder. For t < 0 the BCE with logits,
      softplus(ℓ) - t ℓ, tends to -∞ as ℓ -> -∞: the loss has no minimum, and training drives the
      background logits down without end. ``F.binary_cross_entropy`` on probabilities refuses such
      targets in current PyTorch; ``F.binary_cross_entropy_with_logits`` accepts them silently.

    Args:
        vae: a :class:`~flowedu.vae.VAE` with a :class:`~flowedu.vae.BernoulliDecoder` and a
            :class:`~flowedu.vae.StandardNormalPrior` (its parameters are trained in place).
        normalize: apply the (0.5, 0.5) normalisation first.
    """

    def __init__(self, vae: VAE, normalize: bool):
        super().__init__()
        if not isinstance(vae, VAE) or not isinstance(vae.decoder, BernoulliDecoder) \
                or not isinstance(vae.prior, StandardNormalPrior):
            raise ValueError("vae must be a flowedu.vae.VAE with a BernoulliDecoder and a StandardNormalPrior")
        self.vae, self.normalize = vae, bool(normalize)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The BCE targets (and encoder inputs): x, or 2x - 1 with ``normalize``.  [batch, ...] -> same."""
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError("x must hold intensities in [0, 1]")
        return 2 * x - 1 if self.normalize else x

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """-Σ_j BCE(ℓ_j, t_j) - KL, per example [batch] (what the course maximised, in nats)."""
        t = self.targets(x)
        mean, log_var = self.vae.encoder(t)
        z = reparameterize(mean, log_var)
        logits = self.vae.decoder(z)
        bce = F.binary_cross_entropy_with_logits(logits, t.reshape(len(t), -1), reduction="none").sum(-1)
        return -bce - kl_normal_standard(mean, log_var)

    @torch.no_grad()
    def mean_logit(self, x: torch.Tensor, mask: torch.Tensor) -> float:
        """The decoder's mean logit at the encoder's means, over the pixels where ``mask`` [batch, ...] is True."""
        logits = self.vae.decoder(self.vae.encoder(self.targets(x))[0])
        return logits[mask.reshape(len(x), -1)].mean().item()
