"""Chapter: book/vae.md — the parts of a VAE: a Gaussian encoder q(z | x), a pixel likelihood p(x | z), a prior p(z).

Kingma & Welling (2014, arXiv:1312.6114); Rezende, Mohamed & Wierstra (2014, arXiv:1401.4082). Every
``log_prob`` returns one value per example in nats, summed over pixels or latent coordinates, so the
numbers compare with the papers' tables. Latent codes may carry leading sample dimensions
(``z: [k, batch, latent_dim]``), which the importance-weighted bound needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from flowedu import validate
from flowedu.distributions.elementary import (
    checking_values,
    log_bernoulli,
    log_categorical,
    log_normal_diag,
)
from flowedu.distributions.standard_normal import StandardNormal, draw
from flowedu.nets import mlp
from flowedu.validate import integer

__all__ = ["GaussianEncoder", "BernoulliDecoder", "CategoricalDecoder", "StandardNormalPrior", "MixturePrior",
           "VampPrior", "mlp"]


class GaussianEncoder(nn.Module):
    """Amortized posterior q_φ(z | x) = N(z; μ_φ(x), diag σ²_φ(x)), an MLP that outputs (μ, log σ²).

    Args:
        data_shape: shape of one example, e.g. ``(1, 28, 28)`` or ``784``; inputs are flattened.
        latent_dim: d, the size of z.
        hidden: sizes of the hidden layers, e.g. ``(400,)`` (the 784-400-20 VAE of Kingma & Welling).

    ``forward(x)``: x [batch, *data_shape] -> (mean [batch, d], log_var [batch, d]).
    """

    def __init__(self, data_shape, latent_dim: int, hidden: Sequence[int] = (400,)):
        super().__init__()
        self.data_shape = validate.data_shape(data_shape)
        self.data_dim = math.prod(self.data_shape)
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        self.net = mlp([self.data_dim, *hidden, 2 * self.latent_dim])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x[0].numel() != self.data_dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [batch, *{self.data_shape}], got {got}")
        mean, log_var = self.net(x.reshape(len(x), -1)).chunk(2, dim=-1)
        return mean, log_var

    def log_prob(self, z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """log q(z | x) for the (mean, log_var) that ``forward(x)`` returned.  z: [..., batch, d] -> [..., batch]."""
        return log_normal_diag(z, mean, log_var)


class _Decoder(nn.Module):
    def __init__(self, latent_dim: int, data_shape, hidden: Sequence[int], out_per_pixel: int):
        super().__init__()
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        self.data_shape = validate.data_shape(data_shape)
        self.data_dim = math.prod(self.data_shape)
        self.net = mlp([self.latent_dim, *hidden, self.data_dim * out_per_pixel])

    def _check(self, x: torch.Tensor | None, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() < 2 or z.shape[-1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape [..., batch, {self.latent_dim}], got {got}")
        if x is not None and (not isinstance(x, torch.Tensor) or x.dim() < 1 or x[0].numel() != self.data_dim
                              or len(x) != z.shape[-2]):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [batch, *{self.data_shape}] with batch = {z.shape[-2]}, got {got}")

    def check_data(self, x: torch.Tensor) -> None:
        """Check a whole data set [n, *data_shape] once (a training loop then skips the per-batch checks)."""
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or (len(x) and x[0].numel() != self.data_dim):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [n, *{self.data_shape}], got {got}")


class BernoulliDecoder(_Decoder):
    """p_θ(x | z) = Π_j Bernoulli(x_j; sigmoid(ℓ_θ(z)_j)) for binary pixels, an MLP that outputs logits ℓ.

    Args:
        latent_dim: d.
        data_shape: shape of one example, e.g. ``(1, 28, 28)``.
        hidden: sizes of the hidden layers.

    ``forward(z)``: z [..., d] -> logits [..., data_dim].
    """

    def __init__(self, latent_dim: int, data_shape, hidden: Sequence[int] = (400,)):
        super().__init__(latent_dim, data_shape, hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def check_data(self, x: torch.Tensor) -> None:
        """Check that x [n, *data_shape] holds only 0 and 1 (binary pixels)."""
        super().check_data(x)
        if x.numel() and ((x != 0) & (x != 1)).any():
            raise ValueError("x must hold only 0 and 1 (binary pixels); binarize intensities first")

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z).  x: [batch, *data_shape] binary, z: [..., batch, d] -> [..., batch] in nats."""
        self._check(x, z)
        return log_bernoulli(x.reshape(len(x), -1), self(z))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] = sigmoid(ℓ).  z: [n, d] -> [n, *data_shape] in [0, 1]."""
        self._check(None, z)
        return torch.sigmoid(self(z)).reshape(*z.shape[:-1], *self.data_shape)

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ p(x | z).  z: [n, d] -> [n, *data_shape] of zeros and ones."""
        p = self.mean(z)
        return (draw("rand", p.shape, generator, p.dtype, p.device) < p).to(p.dtype)


class CategoricalDecoder(_Decoder):
    """p_θ(x | z) = Π_j Categorical(x_j; softmax(ℓ_θ(z)_j)) over ``n_levels`` grey levels.

    Pixels are intensities on the grid {0, 1/(L-1), ..., 1} (the 8x8 digits have L = 17 levels, as in
    Tomczak's course notebooks); level c of pixel j has probability softmax(ℓ_j)_c.

    Args:
        latent_dim: d.
        data_shape: shape of one example, e.g. ``(1, 8, 8)``.
        n_levels: L >= 2.
        hidden: sizes of the hidden layers.

    ``forward(z)``: z [..., d] -> logits [..., data_dim, n_levels].
    """

    def __init__(self, latent_dim: int, data_shape, n_levels: int = 17, hidden: Sequence[int] = (256,)):
        n_levels = integer(n_levels, "n_levels", 2)
        super().__init__(latent_dim, data_shape, hidden, n_levels)
        self.n_levels = n_levels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(*z.shape[:-1], self.data_dim, self.n_levels)

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Intensities on the grid -> integer levels [batch, data_dim]."""
        scaled = x.reshape(len(x), -1) * (self.n_levels - 1)
        levels = scaled.round()
        if checking_values() and x.numel() and (
                (scaled - levels).abs().max() > 1e-3 or levels.min() < 0 or levels.max() > self.n_levels - 1):
            raise ValueError(f"x must hold intensities on the grid {{0, 1/{self.n_levels - 1}, ..., 1}}")
        return levels.long()

    def check_data(self, x: torch.Tensor) -> None:
        """Check that x [n, *data_shape] holds intensities on the grid {0, 1/(L-1), ..., 1}."""
        super().check_data(x)
        scaled = x.reshape(len(x), -1) * (self.n_levels - 1)
        if x.numel() and ((scaled - scaled.round()).abs().max() > 1e-3 or scaled.min() < -1e-3
                          or scaled.max() > self.n_levels - 1 + 1e-3):
            raise ValueError(f"x must hold intensities on the grid {{0, 1/{self.n_levels - 1}, ..., 1}}")

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z).  x: [batch, *data_shape] on the grid, z: [..., batch, d] -> [..., batch] in nats."""
        self._check(x, z)
        return log_categorical(self.levels(x), self(z))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] = Σ_c softmax(ℓ)_c c/(L-1).  z: [n, d] -> [n, *data_shape] in [0, 1]."""
        self._check(None, z)
        grid = torch.linspace(0, 1, self.n_levels, device=z.device, dtype=z.dtype)
        return (torch.softmax(self(z), -1) @ grid).reshape(*z.shape[:-1], *self.data_shape)

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ p(x | z).  z: [n, d] -> [n, *data_shape] on the grid."""
        self._check(None, z)
        probs = torch.softmax(self(z), -1)  # [n, D, L]
        u = draw("rand", (*probs.shape[:-1], 1), generator, probs.dtype, probs.device)
        # the level whose cumulative probability first exceeds u (inverse CDF, on the model's device)
        idx = (probs.cumsum(-1) <= u).sum(-1).clamp_max(self.n_levels - 1)
        return (idx.to(z.dtype) / (self.n_levels - 1)).reshape(*z.shape[:-1], *self.data_shape)


class _Prior(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device, dtype)

    def check_latent(self, z: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``z`` has shape ``[..., latent_dim]``."""
        if not isinstance(z, torch.Tensor) or z.dim() < 1 or z.shape[-1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape [..., {self.latent_dim}], got {got}")

    @property
    def dim(self) -> int:
        return self.latent_dim

    def noise(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """ε ~ N(0, I): ``[*sample_shape, d]`` on the prior's device and dtype (what its ``sample`` transforms)."""
        a = self._anchor
        return draw("randn", (*validate.sample_shape(sample_shape), self.latent_dim), generator, a.dtype, a.device)


StandardNormalPrior = StandardNormal
"""p(z) = N(z; 0, I_d): the package's one standard normal, :class:`flowedu.distributions.StandardNormal`
(``StandardNormalPrior(d)``; ``log_prob(z)``: ``[..., d] -> [...]``; ``sample(n, generator)``: ``[n, d]``)."""


class MixturePrior(_Prior):
    """A learnable mixture of M diagonal Gaussians over the whole latent vector:

        p(z) = Σ_m π_m N(z; μ_m, diag exp(log σ²_m)),   π = softmax(w),
        log p(z) = logsumexp_m [log π_m + log N(z; μ_m, diag σ²_m)]

    (one log-sum-exp over components, never a log of a sum of densities, nor a product over coordinates).
    Sampling: m ~ Categorical(π), z = μ_m + exp(½ log σ²_m) ε with ε ~ N(0, I): the standard deviation is
    exp(½ log σ²), not exp(log σ²). See Tomczak (2022), ch. 4; the wrong forms are in
    :mod:`flowedu.vae.mistakes`.

    Args:
        n_components: M.
        latent_dim: d.
        init_scale: spread of the initial means μ_m ~ N(0, init_scale² I) (>= 0).
    """

    def __init__(self, n_components: int, latent_dim: int, init_scale: float = 1.0):
        super().__init__(latent_dim)
        self.n_components = integer(n_components, "n_components", 1)
        if not math.isfinite(init_scale) or init_scale < 0:
            raise ValueError(f"init_scale must be a finite number >= 0, got {init_scale}")
        self.means = nn.Parameter(init_scale * torch.randn(n_components, latent_dim))
        self.log_vars = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """z: [..., d] -> [...] in nats."""
        self.check_latent(z)
        log_pi = torch.log_softmax(self.logits, 0)
        return torch.logsumexp(log_pi + log_normal_diag(z.unsqueeze(-2), self.means, self.log_vars), dim=-1)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """``[*sample_shape, d]`` from the mixture: m ~ Categorical(π), then z = μ_m + exp(½ log σ²_m) ε."""
        shape = validate.sample_shape(sample_shape)
        eps = self.noise(shape, generator)
        probs = torch.softmax(self.logits.detach(), 0).double().cpu()
        m = torch.multinomial(probs, math.prod(shape), replacement=True, generator=generator).to(eps.device)
        m = m.reshape(shape)
        return self.means[m] + torch.exp(0.5 * self.log_vars[m]) * eps


class VampPrior(_Prior):
    """The VampPrior (Tomczak & Welling 2018, arXiv:1705.07120): p(z) = (1/M) Σ_m q_φ(z | u_m), a
    mixture of the encoder's posteriors at M learnable pseudo-inputs u_m.

    Args:
        encoder: the VAE's :class:`GaussianEncoder` (shared, so the prior follows it).
        n_pseudo: M.
        init: optional [M, *data_shape] starting pseudo-inputs (e.g. training images); default N(0.5, 0.1²).
    """

    def __init__(self, encoder: GaussianEncoder, n_pseudo: int, init: torch.Tensor | None = None):
        super().__init__(encoder.latent_dim)
        self.n_pseudo = integer(n_pseudo, "n_pseudo", 1)
        if init is None:
            init = 0.5 + 0.1 * torch.randn(n_pseudo, *encoder.data_shape)
        if init.shape != (n_pseudo, *encoder.data_shape):
            raise ValueError(f"init must have shape {(n_pseudo, *encoder.data_shape)}, got {tuple(init.shape)}")
        self.pseudo_inputs = nn.Parameter(init.detach().clone().float())
        self._encoder = [encoder]  # a list, so the encoder's parameters are not registered twice

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        self.check_latent(z)
        mean, log_var = self._encoder[0](self.pseudo_inputs)
        return torch.logsumexp(log_normal_diag(z.unsqueeze(-2), mean, log_var), -1) - math.log(self.n_pseudo)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """``[*sample_shape, d]``: m uniform among the pseudo-inputs, then z ~ q_φ(z | u_m)."""
        shape = validate.sample_shape(sample_shape)
        eps = self.noise(shape, generator)
        m = torch.randint(self.n_pseudo, shape, generator=generator).to(eps.device)
        mean, log_var = self._encoder[0](self.pseudo_inputs)
        return mean[m] + torch.exp(0.5 * log_var[m]) * eps
