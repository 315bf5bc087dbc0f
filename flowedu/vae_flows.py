"""Flow posteriors and a learnable g-and-k prior for VAEs (``book/gk.md``, ``notebooks/vae_flows.ipynb``).

With z_0 ~ q_0(z_0 | x) = N(μ_φ(x), diag σ²_φ(x)) and z_K = f_K ∘ … ∘ f_1(z_0), the ELBO of the flow
posterior q_K is (Rezende & Mohamed 2015, arXiv:1505.05770; proof in ``book/proofs.md``,
``thm-flow-vae-elbo``)

    L(x) = E_{q_0}[log p(x | z_K) + log p(z_K) − log q_0(z_0 | x) + Σ_k log |det J_{f_k}(z_{k−1})|] ≤ log p(x).

The course evaluated the prior at z_0 instead of z_K; :meth:`FlowVAE.wrong_objective_prior_at_z0`
keeps that objective, which is not a bound, to show the difference.

Reuses the VAE chapter's parts (``flowedu.vae``) and the flow chapter's layers (``flowedu.flows``).
"""

from __future__ import annotations

import torch
from torch import nn

from flowedu.flows import SequentialFlow, StandardNormal
from flowedu.flows.base import FlowLayer, check_dim, check_input
from flowedu.flows.planar import planar_forward, planar_inverse, planar_u_hat
from flowedu.gk import GandKTransform, fit_quantiles_lm
from flowedu.vae.model import check_sample_count, reparameterize

__all__ = ["AmortisedPlanar", "FlowVAE", "GandKPrior"]


class AmortisedPlanar(FlowLayer):
    """A planar layer whose (u, w, b) are produced per example from a context (amortised flow).

    f(z) = z + û(c) tanh(w(c)ᵀ z + b(c)), with [u, w, b] = Linear(c) and û as in
    :func:`flowedu.flows.planar_u_hat` (Rezende & Mohamed 2015, Sec. 4.1: the flow parameters are
    outputs of the inference network). Uses the flow chapter's ``planar_forward``/``planar_inverse``.

    Args:
        dim: d.
        context_dim: size of the context c (e.g. 2d for the encoder's (μ, log σ²)).

    ``forward(z, context)``: z ``[batch, d]``, context ``[batch, context_dim]`` -> ``([batch, d], [batch])``.
    """

    conditional = True

    def __init__(self, dim: int, context_dim: int):
        super().__init__()
        self.dim = check_dim(dim)
        self.context_dim = check_dim(context_dim, "context_dim")
        self.net = nn.Linear(context_dim, 2 * dim + 1)
        with torch.no_grad():  # start close to the identity
            self.net.weight.mul_(0.1)
            self.net.bias.zero_()

    def _params(self, z, context):
        check_input(z, self.dim)
        if not isinstance(context, torch.Tensor) or context.shape != (len(z), self.context_dim):
            raise ValueError(f"context must have shape [{len(z)}, {self.context_dim}], "
                             f"got {None if context is None else tuple(context.shape)}")
        out = self.net(context).to(z.dtype)
        u, w, b = out[:, : self.dim], out[:, self.dim : 2 * self.dim], out[:, -1]
        return planar_u_hat(u, w), w, b

    def forward(self, z, context=None):
        return planar_forward(z, *self._params(z, context))

    def inverse(self, z, context=None):
        return planar_inverse(z, *self._params(z, context))


class GandKPrior(nn.Module):
    """Learnable prior p(z) = g-and-k with independent margins: z = Q(ε) elementwise, ε ~ N(0, I).

    log p(z) = log N(Q⁻¹(z); 0, I) − Σ_j log Q_j′(Q⁻¹(z_j)), via :class:`flowedu.gk.GandKTransform`
    (k ≥ 0, so every parameter value is valid). Same interface as the VAE chapter's priors.

    Args:
        latent_dim: d.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_dim(latent_dim, "latent_dim")
        self.transform = GandKTransform(latent_dim, a=0.0, b=1.0, g=0.0, k=0.01)
        self.base = StandardNormal(latent_dim)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """z: ``[..., d]`` -> ``[...]``."""
        if not isinstance(z, torch.Tensor) or z.shape[-1:] != (self.latent_dim,):
            raise ValueError(f"z must have shape [..., {self.latent_dim}], got {getattr(z, 'shape', type(z))}")
        flat = z.reshape(-1, self.latent_dim)
        eps, log_det = self.transform.inverse(flat)
        return (self.base.log_prob(eps) + log_det).reshape(z.shape[:-1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, d]``."""
        n = check_dim(n, "n")
        p = self.transform.a
        eps = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype).to(p.device)
        return self.transform(eps)[0]

    @torch.no_grad()
    def fit_to(self, z: torch.Tensor) -> list:
        """Initialise each margin by the quantile LM fit (:func:`flowedu.gk.fit_quantiles_lm`) to ``z: [n, d]``,
        e.g. samples of the aggregate posterior. k is raised to ``k_min + 0.01`` where the fit asks for
        lighter-than-Gaussian tails (this layer keeps k ≥ k_min). Returns the fits."""
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim or len(z) < 4:
            raise ValueError(f"z must have shape [n >= 4, {self.latent_dim}], got {getattr(z, 'shape', type(z))}")
        fits = [fit_quantiles_lm(z[:, j]) for j in range(self.latent_dim)]
        k_floor = self.transform.k_min + 0.01
        self.transform.set_params([f.a for f in fits], [f.b for f in fits], [f.g for f in fits],
                                  [max(f.k, k_floor) for f in fits])
        return fits


class FlowVAE(nn.Module):
    """A VAE whose posterior is a flow: z_0 ~ N(μ_φ(x), diag σ²_φ(x)), z_K = f(z_0) (Rezende & Mohamed 2015).

    Args:
        encoder: ``forward(x) -> (mean, log_var)`` and ``log_prob(z, mean, log_var)``
            (:class:`flowedu.vae.GaussianEncoder`).
        decoder: ``log_prob(x, z)``, ``mean(z)`` (:class:`flowedu.vae.BernoulliDecoder` or
            :class:`flowedu.vae.CategoricalDecoder`).
        prior: ``log_prob(z)`` and ``sample(n, generator=...)`` (a VAE-chapter prior or :class:`GandKPrior`).
        flow: a :class:`flowedu.flows.SequentialFlow` (or one layer) applied to z_0, or ``None`` for a
            plain Gaussian posterior. Global layers share their parameters across x; conditional
            layers (``AmortisedPlanar``, couplings with ``context_dim = 2d``) receive the context
            c = [μ_φ(x), log σ²_φ(x)], so their parameters are amortised.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module, flow: nn.Module | None = None):
        super().__init__()
        if flow is not None and not isinstance(flow, FlowLayer):
            raise ValueError(f"flow must be a FlowLayer (e.g. flowedu.flows.SequentialFlow), got {type(flow).__name__}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        if flow is not None and not isinstance(flow, SequentialFlow):
            flow = SequentialFlow(flow)
        self.flow = flow
        self.latent_dim = encoder.latent_dim

    def posterior_sample(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None):
        """Draw z_0 ~ q_0 and push it through the flow.

        Args:
            x: ``[batch, ...]``.
            k: samples per example.

        Returns:
            ``(z0, zK, log_q0, sum_log_det)`` with shapes ``[k, batch, d]``, ``[k, batch, d]``,
            ``[k, batch]``, ``[k, batch]``; log q_K(z_K | x) = log_q0 − sum_log_det.
        """
        k = check_sample_count(k)
        mean, log_var = self.encoder(x)
        eps = torch.randn((k, *mean.shape), generator=generator, dtype=mean.dtype).to(mean.device)
        z0 = reparameterize(mean, log_var, eps)
        log_q0 = self.encoder.log_prob(z0, mean, log_var)
        if self.flow is None:
            return z0, z0, log_q0, torch.zeros_like(log_q0)
        batch, d = mean.shape
        context = torch.cat([mean, log_var], dim=-1).expand(k, batch, 2 * d).reshape(k * batch, 2 * d)
        zk, log_det = self.flow(z0.reshape(k * batch, d), context)
        return z0, zk.reshape(k, batch, d), log_q0, log_det.reshape(k, batch)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = log p(x | z_K) + log p(z_K) − log q_0(z_0 | x) + Σ log|det J|, ``[k, batch]``
        (what :func:`flowedu.vae.iwae_bound` and :func:`flowedu.vae.log_likelihood` need)."""
        _, zk, log_q0, log_det = self.posterior_sample(x, k, generator)
        return self.decoder.log_prob(x, zk) + self.prior.log_prob(zk) - log_q0 + log_det

    def elbo(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The flow-posterior ELBO estimated with ``k`` samples, ``[batch]`` nats (a bound on log p(x))."""
        return self.log_weights(x, k, generator).mean(0)

    def wrong_objective_prior_at_z0(self, x: torch.Tensor, k: int = 1,
                                    generator: torch.Generator | None = None) -> torch.Tensor:
        """WRONG (the course's loss, kept for comparison): the prior evaluated at z_0 instead of z_K,
        E[log p(x | z_K) + log p(z_0) − log q_0(z_0 | x) + Σ log|det J|]. Not a bound on log p(x):
        it differs from the ELBO by E[log p(z_0) − log p(z_K)], which has no sign. ``[batch]``."""
        z0, zk, log_q0, log_det = self.posterior_sample(x, k, generator)
        return (self.decoder.log_prob(x, zk) + self.prior.log_prob(z0) - log_q0 + log_det).mean(0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples E[x | z], z ~ p(z): ``[n, *data_shape]``."""
        return self.decoder.mean(self.prior.sample(n, generator=generator))
