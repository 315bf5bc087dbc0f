"""Chapter: book/vae.md — the VAE, its evidence lower bound, the importance-weighted bound L_K and the
log-likelihood estimate.

ELBO (Kingma & Welling 2014, arXiv:1312.6114), for one x and z = μ + σ ⊙ ε, ε ~ N(0, I):

    L(x) = E_q[log p(x | z) + log p(z) - log q(z | x)] = E_q[log p(x | z)] - KL(q(z | x) ‖ p(z)) <= log p(x).

IWAE bound (Burda, Grosse & Salakhutdinov 2016, arXiv:1509.00519), with w_i = p(x, z_i) / q(z_i | x):

    L_K(x) = E[log (1/K) Σ_i w_i],   L_1 = L <= L_K <= L_{K+1} -> log p(x)  (K -> ∞),

the limit when L is finite and q > 0 wherever p(x, z) > 0.

L_K is an expectation; ``iwae_bound`` returns one draw of log (1/K) Σ_i w_i (with gradients), whose average
over draws estimates L_K. The same draw is the importance-sampling estimate of log p(x) (``log_likelihood``):
its exponential is an unbiased estimate of p(x), its logarithm is biased low. Derivations in ``book/vae.md``,
proofs in ``book/proofs.md``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from flowedu.distributions.elementary import kl_normal_standard
from flowedu.vae.parts import StandardNormalPrior, draw
from flowedu.validate import integer

__all__ = ["reparameterize", "VAE", "iwae_bound", "log_likelihood"]


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """The reparameterization trick: z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I).

    z is a differentiable function of (μ, log σ²), so gradients of E_q[f(z)] flow through it.

    Args:
        mean: μ, [..., d].
        log_var: log σ², [..., d] (same shape).
        eps: ε, [..., d] broadcastable to ``mean`` (e.g. [k, batch, d]); ``None`` draws one ε ~ N(0, I).

    Returns:
        z with the broadcast shape of ``eps`` and ``mean``.
    """
    if not isinstance(mean, torch.Tensor) or not isinstance(log_var, torch.Tensor) or mean.shape != log_var.shape:
        raise ValueError("mean and log_var must be tensors of the same shape, got "
                         f"{getattr(mean, 'shape', type(mean))} and {getattr(log_var, 'shape', type(log_var))}")
    if eps is None:
        eps = torch.randn_like(mean)
    elif not isinstance(eps, torch.Tensor) or eps.shape[-mean.dim():] != mean.shape:
        raise ValueError(f"eps must have shape [..., *{tuple(mean.shape)}], got {getattr(eps, 'shape', type(eps))}")
    return mean + torch.exp(0.5 * log_var) * eps


class VAE(nn.Module):
    """A variational autoencoder from its parts: encoder q_φ(z | x), decoder p_θ(x | z) and prior p(z).

    Args:
        encoder: a :class:`~flowedu.vae.GaussianEncoder` (``forward(x) -> (mean, log_var)``).
        decoder: a :class:`~flowedu.vae.BernoulliDecoder` or :class:`~flowedu.vae.CategoricalDecoder`
            (``log_prob(x, z)``, ``mean(z)``, ``sample(z)``).
        prior: a :class:`~flowedu.vae.StandardNormalPrior`, :class:`~flowedu.vae.MixturePrior`,
            :class:`~flowedu.vae.VampPrior` or any :class:`~flowedu.flows.NormalizingFlow` over ``[d]``
            (the distribution contract: ``latent_dim``, ``log_prob(z: [..., d]) -> [...]``,
            ``sample(n, generator=...)``).

    All three must share ``latent_dim``; encoder and decoder must share ``data_shape``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module):
        super().__init__()
        dims = {getattr(m, "latent_dim", None) for m in (encoder, decoder, prior)}
        if len(dims) != 1 or None in dims:
            raise ValueError("encoder, decoder and prior must have the same latent_dim, got "
                             f"{[getattr(m, 'latent_dim', None) for m in (encoder, decoder, prior)]}")
        if encoder.data_shape != decoder.data_shape:
            raise ValueError(f"encoder and decoder must have the same data_shape, got {encoder.data_shape} "
                             f"and {decoder.data_shape}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.latent_dim, self.data_shape = encoder.latent_dim, encoder.data_shape

    def elbo(self, x: torch.Tensor, eps: torch.Tensor | None = None, analytic_kl: bool | None = None) -> torch.Tensor:
        """A one-sample estimate of the ELBO, per example, in nats.

        With ``analytic_kl`` the estimate is log p(x | z) - KL(q ‖ N(0, I)) (closed-form KL, only for the
        standard normal prior; Kingma & Welling's estimator B); without it, the Monte Carlo form
        log p(x | z) + log p(z) - log q(z | x) (their estimator A). Both are unbiased for the same L(x);
        neither always has the lower variance (A has none when q is the exact posterior).

        Args:
            x: [batch, *data_shape].
            eps: optional ε [batch, d] (for reproducible checks); default a fresh N(0, I) draw.
            analytic_kl: ``None`` means "closed form whenever the prior is standard normal".

        Returns:
            [batch], nats (higher is better; the loss is ``-elbo(x).mean()``).
        """
        mean, log_var = self.encoder(x)
        z = reparameterize(mean, log_var, eps)
        if analytic_kl is None:
            analytic_kl = isinstance(self.prior, StandardNormalPrior)
        if analytic_kl:
            if not isinstance(self.prior, StandardNormalPrior):
                raise ValueError("analytic_kl=True needs a StandardNormalPrior; use analytic_kl=False")
            return self.decoder.log_prob(x, z) - kl_normal_standard(mean, log_var)
        return self.decoder.log_prob(x, z) + self.prior.log_prob(z) - self.encoder.log_prob(z, mean, log_var)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log w_i = log p(x, z_i) - log q(z_i | x) for z_1..z_k ~ q(z | x).  x: [batch, ...] -> [k, batch]."""
        k = integer(k, "k", 1)
        mean, log_var = self.encoder(x)
        eps = draw("randn", (k, *mean.shape), generator, mean.dtype, mean.device)
        z = reparameterize(mean, log_var, eps)
        return self.decoder.log_prob(x, z) + self.prior.log_prob(z) - self.encoder.log_prob(z, mean, log_var)

    @torch.no_grad()
    def sample(self, n: int, mean: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples: z ~ p(z), then E[x | z] (``mean=True``, what papers show) or x ~ p(x | z).

        Returns:
            [n, *data_shape].
        """
        z = self.prior.sample(n, generator=generator)
        return self.decoder.mean(z) if mean else self.decoder.sample(z, generator=generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = μ_φ(x)], the decoder's mean at the encoder's mean.  [batch, *data_shape] -> same."""
        return self.decoder.mean(self.encoder(x)[0])


def iwae_bound(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw of the importance-weighted bound: log (1/k) Σ_{i=1}^k w_i, differentiable.

    Its expectation is L_k (Burda et al. 2016), which rises with k towards log p(x).

    Args:
        model: any object with ``log_weights(x, k, generator) -> [k, batch]`` (e.g. :class:`VAE`).
        x: [batch, ...].
        k: number of importance samples, an integer >= 1 (k = 1 gives the ELBO's Monte Carlo form).

    Returns:
        [batch], nats.
    """
    k = integer(k, "k", 1)
    log_w = model.log_weights(x, k, generator=generator)
    return torch.logsumexp(log_w, dim=0) - math.log(k)


@torch.no_grad()
def log_likelihood(model, x: torch.Tensor, k: int = 200, chunk: int = 50, batch_size: int = 500,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) with k samples from q(z | x) (Rezende et al. 2014; Burda
    et al. 2016 use k = 5000): log (1/k) Σ_i w_i, whose exponential is unbiased for p(x).

    Memory stays bounded: at most ``chunk`` samples for ``batch_size`` examples at a time, combined with
    log-sum-exp.

    Args:
        model: any object with ``log_weights(x, k, generator) -> [k, batch]``.
        x: [n, ...].
        k: importance samples, >= 1.
        chunk: samples per pass, >= 1.
        batch_size: examples per pass, >= 1.

    Returns:
        [n], nats.
    """
    k = integer(k, "k", 1)
    for value, name in ((chunk, "chunk"), (batch_size, "batch_size")):
        integer(value, name, 1)
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        parts = []
        for done in range(0, k, chunk):
            parts.append(torch.logsumexp(model.log_weights(xb, min(chunk, k - done), generator=generator), 0))
        out.append(torch.logsumexp(torch.stack(parts), 0) - math.log(k))
    return torch.cat(out)
