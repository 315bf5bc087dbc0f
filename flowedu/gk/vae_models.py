"""Chapter: book/gk.md — building the chapter's flow-VAEs and reading their latent spaces.

:func:`make_flow_vae` assembles :class:`flowedu.gk.FlowVAE` models from the VAE chapter's encoder and decoder
(:func:`flowedu.vae.make_vae`), a posterior flow (:func:`posterior_flow`), a posterior base and a prior;
:func:`fit_gk_prior` initialises a g-and-k prior on the aggregate posterior; :func:`latent_codes` and
:func:`active_units` (Burda, Grosse & Salakhutdinov 2016, arXiv:1509.00519) describe the latent space.
"""

from __future__ import annotations

import torch

from flowedu import data
from flowedu.flows import AffineCoupling, Permute, PlanarFlow, RadialFlow, SequentialFlow
from flowedu.flows.base import FlowLayer
from flowedu.gk.vae_flows import AmortisedPlanar, FlowVAE, GandKPosteriorBase, GandKPrior
from flowedu.vae.training import make_vae
from flowedu.validate import integer

__all__ = ["POSTERIOR_FLOWS", "active_units", "fit_gk_prior", "latent_codes", "make_flow_vae", "posterior_flow"]

POSTERIOR_FLOWS = ("planar", "amortised-planar", "radial", "realnvp", "realnvp+planar")


def posterior_flow(kind: str, latent_dim: int, n_flows: int = 8, n_couplings: int = 4,
                   coupling_hidden: int = 16) -> SequentialFlow:
    """A posterior flow for :class:`FlowVAE`.

    Args:
        kind: ``"planar"`` or ``"radial"`` (``n_flows`` global layers), ``"amortised-planar"`` (``n_flows``
            :class:`AmortisedPlanar` layers), ``"realnvp"`` (``n_couplings`` amortised affine couplings
            with a fixed random :class:`flowedu.flows.Permute` between them, so every coordinate is
            transformed), ``"realnvp+planar"`` (those couplings followed by ``n_flows`` amortised planar layers).
        latent_dim: d (≥ 2 for couplings).
        n_flows, n_couplings: numbers of layers, ≥ 1.
        coupling_hidden: width of the couplings' conditioner (one hidden layer).
    """
    if kind not in POSTERIOR_FLOWS:
        raise ValueError(f"kind must be one of {', '.join(POSTERIOR_FLOWS)}, got {kind!r}")
    d = integer(latent_dim, "latent_dim", 1)
    n_flows, n_couplings = integer(n_flows, "n_flows", 1), integer(n_couplings, "n_couplings", 1)
    if kind == "planar":
        return SequentialFlow(*[PlanarFlow(d) for _ in range(n_flows)])
    if kind == "radial":
        return SequentialFlow(*[RadialFlow(d) for _ in range(n_flows)])
    if kind == "amortised-planar":
        return SequentialFlow(*[AmortisedPlanar(d, 2 * d) for _ in range(n_flows)])
    layers: list[FlowLayer] = []
    for i in range(n_couplings):
        if i > 0:
            layers.append(Permute(d, seed=i))
        layers.append(AffineCoupling(d, hidden=coupling_hidden, n_hidden=1, context_dim=2 * d))
    if kind == "realnvp+planar":
        layers += [AmortisedPlanar(d, 2 * d) for _ in range(n_flows)]
    return SequentialFlow(*layers)


def make_flow_vae(data_shape, latent_dim: int, likelihood: str = "bernoulli", hidden=(400,), prior: str = "standard",
                  flow: str | None = None, base: str = "gaussian", n_flows: int = 8, n_couplings: int = 4,
                  coupling_hidden: int = 16, n_components: int = 10, init_scale: float = 0.1) -> FlowVAE:
    """The chapter's models: :func:`flowedu.vae.make_vae`'s encoder and decoder with a posterior flow,
    a posterior base and a prior.

    Args:
        data_shape, latent_dim, likelihood, hidden: as in :func:`flowedu.vae.make_vae`.
        prior: ``"standard"`` (N(0, I)), ``"mixture"`` (``n_components`` Gaussians, means ~ N(0, init_scale²))
            or ``"gk"`` (:class:`GandKPrior`).
        flow: ``None`` or a kind of :func:`posterior_flow` (with ``n_flows``, ``n_couplings``, ``coupling_hidden``).
        base: ``"gaussian"`` or ``"gk"`` (:class:`GandKPosteriorBase`).
    """
    if prior not in ("standard", "mixture", "gk"):
        raise ValueError(f"prior must be 'standard', 'mixture' or 'gk', got {prior!r}")
    if base not in ("gaussian", "gk"):
        raise ValueError(f"base must be 'gaussian' or 'gk', got {base!r}")
    vae = make_vae(data_shape, latent_dim, likelihood, hidden, prior="standard" if prior == "gk" else prior,
                   n_components=n_components, init_scale=init_scale)
    p = GandKPrior(latent_dim) if prior == "gk" else vae.prior
    f = None if flow is None else posterior_flow(flow, latent_dim, n_flows, n_couplings, coupling_hidden)
    q0 = GandKPosteriorBase(latent_dim) if base == "gk" else None
    return FlowVAE(vae.encoder, vae.decoder, p, f, q0)


@torch.no_grad()
def fit_gk_prior(model: FlowVAE, x: torch.Tensor, binarize: bool = False, generator: torch.Generator | None = None,
                 batch_size: int = 1000) -> list:
    """Give ``model`` a :class:`GandKPrior` initialised on its aggregate posterior q(z) = (1/N) Σ_n q(z | x_n).

    One z_M ~ q(z | x_n) is drawn for every example x_n, each coordinate's (A, B, g, k) is fitted to those
    draws by quantile Levenberg–Marquardt (:meth:`GandKPrior.fit_to`), and the prior replaces
    ``model.prior``; training then continues jointly.

    Args:
        model: a :class:`FlowVAE` (trained for a while with another prior).
        x: ``[n, ...]`` training examples (n ≥ 4) on the model's device.
        binarize: draw binary pixels from the intensities first (for dynamically binarized data).
        generator: CPU generator for the binarization and the posterior draws.
        batch_size: examples per pass.

    Returns:
        The d fits (:class:`flowedu.gk.GandKFit`).
    """
    if not isinstance(model, FlowVAE):
        raise ValueError(f"model must be a FlowVAE, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or len(x) < 4:
        raise ValueError("x must be a tensor of at least 4 examples [n, ...]")
    if binarize:
        x = data.bernoulli_binarize(x, generator)
    codes = torch.cat([model.posterior_sample(xb, 1, generator)[1][0] for xb in x.split(batch_size)])
    prior = GandKPrior(model.latent_dim).to(device=codes.device)
    fits = prior.fit_to(codes)
    model.prior = prior
    return fits


@torch.no_grad()
def latent_codes(model: FlowVAE, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None,
                 batch_size: int = 1000) -> torch.Tensor:
    """E_q[z_M | x] estimated by the mean of ``k`` posterior draws (the exact mean μ_φ(x) for a plain
    Gaussian posterior), ``[n, d]``."""
    k = integer(k, "k", 1)
    if model.flow is None and model.base is None:
        return torch.cat([model.encoder(xb)[0] for xb in x.split(batch_size)])
    return torch.cat([model.posterior_sample(xb, k, generator)[1].mean(0) for xb in x.split(batch_size)])


def active_units(codes: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Which latent coordinates are used (Burda, Grosse & Salakhutdinov 2016, arXiv:1509.00519, Sec. 5.2):
    unit u is active if A_u = Cov_x(E_q[u | x]) > ``threshold`` (0.01 in the paper).

    Args:
        codes: ``[n, d]`` posterior means, e.g. from :func:`latent_codes`.

    Returns:
        bool ``[d]``.
    """
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must have shape [n >= 2, d], got {getattr(codes, 'shape', type(codes))}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    return codes.var(0) > threshold
