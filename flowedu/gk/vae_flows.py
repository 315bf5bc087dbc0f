"""Chapter: book/gk.md — flow posteriors, a g-and-k posterior base and a learnable g-and-k prior for VAEs.

With z_0 ~ q_0(z_0 | x) and z_M = f_M ∘ … ∘ f_1(z_0), the ELBO of the flow posterior q_M is
(Rezende & Mohamed 2015, arXiv:1505.05770; proof in ``book/proofs.md``, ``thm-flow-vae-elbo``)

    L(x) = E_{q_0}[log p(x | z_M) + log p(z_M) − log q_0(z_0 | x) + Σ_j log |det J_{f_j}(z_{j−1})|] ≤ log p(x).

q_0 is the encoder's Gaussian N(μ_φ(x), diag σ²_φ(x)) or, with :class:`GandKPosteriorBase`, a product
of g-and-k margins with location μ_φ(x) and scale σ_φ(x). The prior p(z) is a VAE-chapter prior or
:class:`GandKPrior`, the flow N(0, I) → g-and-k. The flow-VAE course project (``book/intro.md``, "About
the sources") evaluated the prior at z_0 instead of z_M;
:meth:`FlowVAE.wrong_objective_prior_at_z0` keeps that objective, which is not a bound, to show the
difference. Models are built by :func:`flowedu.gk.vae_models.make_flow_vae` from the VAE chapter's parts
(``flowedu.vae``) and the flow chapter's layers (``flowedu.flows``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flowedu.distributions.elementary import log_standard_normal
from flowedu.flows import NormalizingFlow, SequentialFlow, StandardNormal
from flowedu.flows.base import FlowLayer, check_input
from flowedu.flows.planar import planar_forward, planar_inverse, planar_u_hat
from flowedu.gk.core import C_DEFAULT, gk_quantile_derivative, gk_transform
from flowedu.gk.fit import fit_quantiles_lm
from flowedu.gk.transform import GandKTransform
from flowedu.vae.model import reparameterize
from flowedu.validate import integer

__all__ = ["AmortisedPlanar", "FlowVAE", "GandKPosteriorBase", "GandKPrior", "PriorAtZ0Objective"]


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
        self.dim = integer(dim, "dim", 1)
        self.context_dim = integer(context_dim, "context_dim", 1)
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


class GandKPrior(NormalizingFlow):
    """Learnable prior p(z) = g-and-k with independent margins: the flow z = Q(ε) elementwise, ε ~ N(0, I).

    Exactly ``NormalizingFlow(StandardNormal(d), GandKTransform(d))`` (nothing overridden but the start
    values): log p(z) = log N(Q⁻¹(z); 0, I) − Σ_j log Q_j′(Q⁻¹(z_j)) for z ``[..., d]``, and
    ``sample(n, generator=...)``/``rsample`` push ε ~ N(0, I) through Q, as the flow contract says.
    k ≥ 0 (:class:`flowedu.gk.GandKTransform`), so every parameter value is a valid distribution.
    Sampling from it means pushing ε ~ N(0, I) through the flow: decoding ε itself ignores the prior.

    Args:
        latent_dim: d.
    """

    def __init__(self, latent_dim: int):
        latent_dim = integer(latent_dim, "latent_dim", 1)
        super().__init__(StandardNormal(latent_dim), GandKTransform(latent_dim, a=0.0, b=1.0, g=0.0, k=0.01))

    @property
    def transform(self) -> GandKTransform:
        """The g-and-k layer (its ``params()`` are (A, B, g, k), each ``[d]``)."""
        return self.flow.layers[0]

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


class GandKPosteriorBase(nn.Module):
    """The g-and-k as the base of the posterior flow: q_0(z_0 | x) = Π_j gk(z_0j; A = μ_j(x), B = σ_j(x), g_j, k_j).

    Reparameterised: ε ~ N(0, I), z_0 = μ + σ ⊙ Q(ε; 0, 1, g, k) elementwise, so

        log q_0(z_0 | x) = Σ_j [log φ(ε_j) − log Q′(ε_j; 0, 1, g_j, k_j) − ½ log σ_j²],

    which needs no inversion of Q (the ELBO and importance weights only evaluate q_0 at its own draws).
    The encoder gives location and scale per example; skewness g and tail weight k = softplus(·) ≥ 0
    are learned per coordinate (global), so Q is increasing for every value (c = 0.8 ≤ 0.83). With
    g = k = 0 it is the Gaussian posterior.

    Args:
        latent_dim: d.
        k_init: starting tail weight, > 0 (small: close to the Gaussian).
    """

    def __init__(self, latent_dim: int, k_init: float = 0.01, c: float = C_DEFAULT):
        super().__init__()
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        if not (isinstance(k_init, (int, float)) and 0 < k_init < 10):
            raise ValueError(f"k_init must be a number in (0, 10), got {k_init!r}")
        if not 0 <= c <= 0.83:
            raise ValueError(f"c must be in [0, 0.83] (monotone for k >= 0), got {c}")
        self.c = float(c)
        self.g = nn.Parameter(torch.zeros(latent_dim))
        self.k_raw = nn.Parameter(torch.full((latent_dim,), math.log(math.expm1(k_init))))  # softplus⁻¹(k_init)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, k), each ``[d]``, differentiable."""
        return self.g, F.softplus(self.k_raw)

    def forward(self, eps: torch.Tensor, mean: torch.Tensor,
                log_var: torch.Tensor):
        """z_0 and log q_0(z_0 | x) from ε ``[..., batch, d]`` and the encoder's (μ, log σ²) ``[batch, d]``.

        Returns:
            ``(z0 [..., batch, d], log_q0 [..., batch])``.
        """
        eps = eps.to(mean.dtype)
        g, k = (p.to(mean.dtype) for p in self.params())
        # Q(ε; 0, 1, g, k) and Q′(ε), elementwise
        u = gk_transform(eps, 0, 1, g, k, self.c, validate=False)
        slope = gk_quantile_derivative(eps, 0, 1, g, k, self.c, validate=False)
        z0 = reparameterize(mean, log_var, u)  # μ + σ ⊙ Q(ε)
        # change of variables ε -> z_0, derivative σ_j Q′(ε_j) per coordinate
        log_sigma = 0.5 * log_var.sum(-1)
        log_q0 = log_standard_normal(eps) - slope.log().sum(-1) - log_sigma
        return z0, log_q0


class FlowVAE(nn.Module):
    """A VAE whose posterior is a flow: z_0 ~ q_0(z_0 | x), z_M = f(z_0) (Rezende & Mohamed 2015).

    Args:
        encoder: ``forward(x) -> (mean, log_var)`` and ``log_prob(z, mean, log_var)``
            (:class:`flowedu.vae.GaussianEncoder`).
        decoder: ``log_prob(x, z)``, ``mean(z)`` (:class:`flowedu.vae.BernoulliDecoder` or
            :class:`flowedu.vae.CategoricalDecoder`).
        prior: ``log_prob(z)`` and ``sample(n, generator=...)`` (a VAE-chapter prior or :class:`GandKPrior`).
        flow: a :class:`flowedu.flows.SequentialFlow` (or one layer) applied to z_0, or ``None`` for a
            plain posterior. Global layers share their parameters across x; conditional
            layers (``AmortisedPlanar``, couplings with ``context_dim = 2d``) receive the context
            c = [μ_φ(x), log σ²_φ(x)], so their parameters are amortised.
        base: ``None`` for the Gaussian q_0 = N(μ_φ(x), diag σ²_φ(x)), a :class:`GandKPosteriorBase`, or
            any :class:`flowedu.flows.NormalizingFlow` p_u over ``[d]``: z_0 = μ_φ(x) + σ_φ(x) ⊙ u with
            u = f(ε), so log q_0(z_0 | x) = log p_u(u) − ½ Σ_j log σ_j² (a flow with no layers is the
            Gaussian q_0 again).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module, flow: nn.Module | None = None,
                 base: GandKPosteriorBase | NormalizingFlow | None = None):
        super().__init__()
        if flow is not None and not isinstance(flow, FlowLayer):
            raise ValueError(f"flow must be a FlowLayer (e.g. flowedu.flows.SequentialFlow), got {type(flow).__name__}")
        if base is not None and not isinstance(base, (GandKPosteriorBase, NormalizingFlow)):
            raise ValueError("base must be None (Gaussian), a GandKPosteriorBase or a NormalizingFlow, "
                             f"got {type(base).__name__}")
        dims = [getattr(m, "latent_dim", None) for m in (encoder, decoder, prior, base) if m is not None]
        if len(set(dims)) != 1 or None in dims:
            raise ValueError(f"encoder, decoder, prior (and base) must have the same latent_dim, got {dims}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        if flow is not None and not isinstance(flow, SequentialFlow):
            flow = SequentialFlow(flow)
        self.flow, self.base = flow, base
        self.latent_dim = encoder.latent_dim

    def _base_sample(self, eps, mean, log_var):
        if isinstance(self.base, GandKPosteriorBase):
            return self.base(eps, mean, log_var)  # z_0 = μ + σ ⊙ Q(ε)
        # a NormalizingFlow base: u = f(ε) with log p_u(u) = log p_ε(ε) − log|det J_f(ε)|, then z_0 = μ + σ ⊙ u
        u, log_p_u = self.base.push_forward(eps.to(mean.dtype))
        return reparameterize(mean, log_var, u), log_p_u - 0.5 * log_var.sum(-1)

    def posterior_sample(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None):
        """Draw z_0 ~ q_0 and push it through the flow.

        Args:
            x: ``[batch, ...]``.
            k: samples per example.

        Returns:
            ``(z0, zM, log_q0, sum_log_det)`` with shapes ``[k, batch, d]``, ``[k, batch, d]``,
            ``[k, batch]``, ``[k, batch]``; log q_M(z_M | x) = log_q0 − sum_log_det.
        """
        k = integer(k, "k", 1)
        mean, log_var = self.encoder(x)
        eps = torch.randn((k, *mean.shape), generator=generator, dtype=mean.dtype).to(mean.device)
        if self.base is None:
            z0 = reparameterize(mean, log_var, eps)  # z_0 = μ + σ ⊙ ε
            log_q0 = self.encoder.log_prob(z0, mean, log_var)
        else:
            z0, log_q0 = self._base_sample(eps, mean, log_var)
        if self.flow is None:
            return z0, z0, log_q0, torch.zeros_like(log_q0)
        batch, d = mean.shape
        context = torch.cat([mean, log_var], dim=-1).expand(k, batch, 2 * d).reshape(k * batch, 2 * d)
        zm, log_det = self.flow(z0.reshape(k * batch, d), context)  # z_M = f_M ∘ … ∘ f_1(z_0)
        return z0, zm.reshape(k, batch, d), log_q0, log_det.reshape(k, batch)

    def log_weights(self, x: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = log p(x | z_M) + log p(z_M) − log q_0(z_0 | x) + Σ_j log|det J_{f_j}|, ``[k, batch]``
        (what :func:`flowedu.vae.iwae_bound` and :func:`flowedu.vae.log_likelihood` need)."""
        _, zm, log_q0, sum_log_det = self.posterior_sample(x, k, generator)
        # the decoder and the prior both see z_M
        log_joint = self.decoder.log_prob(x, zm) + self.prior.log_prob(zm)
        log_q = log_q0 - sum_log_det  # log q_M(z_M | x): change of variables
        return log_joint - log_q

    def elbo(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The flow-posterior ELBO estimated with ``k`` samples, ``[batch]`` nats (a bound on log p(x))."""
        return self.log_weights(x, k, generator).mean(0)

    def wrong_objective_prior_at_z0(self, x: torch.Tensor, k: int = 1,
                                    generator: torch.Generator | None = None) -> torch.Tensor:
        """WRONG (the flow-VAE course project's loss, kept for comparison): the prior evaluated at z_0
        instead of z_M, E[log p(x | z_M) + log p(z_0) − log q_0(z_0 | x) + Σ_j log|det J_{f_j}|]. Not a
        bound on log p(x): it differs from the ELBO by E[log p(z_0) − log p(z_M)], which has no sign.
        ``[batch]``."""
        z0, zm, log_q0, log_det = self.posterior_sample(x, k, generator)
        return (self.decoder.log_prob(x, zm) + self.prior.log_prob(z0) - log_q0 + log_det).mean(0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples E[x | z], z ~ p(z) (through the prior's flow, if it has one): ``[n, *data_shape]``."""
        return self.decoder.mean(self.prior.sample(n, generator=generator))


class PriorAtZ0Objective(nn.Module):
    """Presents :meth:`FlowVAE.wrong_objective_prior_at_z0` as ``elbo``, so that
    :func:`flowedu.vae.train_vae` maximises the flow-VAE course project's loss (to measure what it costs).

    Args:
        vae: a :class:`FlowVAE` (its parameters are the ones trained).
    """

    def __init__(self, vae: FlowVAE):
        super().__init__()
        if not isinstance(vae, FlowVAE):
            raise ValueError(f"vae must be a FlowVAE, got {type(vae).__name__}")
        self.vae = vae

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The flow-VAE course project's objective, ``[batch]`` (not a bound)."""
        return self.vae.wrong_objective_prior_at_z0(x)
