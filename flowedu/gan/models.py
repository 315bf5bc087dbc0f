"""Chapter: book/gan.md — GAN generators and critics: small DCGAN-style networks for images, MLPs for 2-D data.

DCGAN-style (Radford, Metz & Chintala 2016, arXiv:1511.06434) sizes: 8×8 (scikit-learn digits, quick
mode), 28×28 (MNIST, Fashion-MNIST) and 32×32 (CIFAR-10). Both halve/double the resolution twice with
4×4 (transposed) convolutions of stride 2. The critics have no batch normalisation, so that gradient
penalties (R1, GP), which treat examples independently, mean what they say; ``spectral_norm=True``
wraps every layer in ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al. 2018,
arXiv:1802.05957).

:class:`RewrappedSpectralNorm` is the course's hand-written spectral norm, kept WRONG on purpose so that
the notebook can measure what it does (only the biases train).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from flowedu.validate import integer

__all__ = [
    "DCGANGenerator",
    "DCGANCritic",
    "MLPGenerator",
    "MLPCritic",
    "RewrappedSpectralNorm",
    "rewrapped_spectral_norm",
    "sample_latent",
]

SIZES = (8, 28, 32)


def _check_shape(image_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2] or shape[1] not in SIZES:
        raise ValueError(f"image_shape must be (C, H, H) with C in (1, 3) and H in {SIZES}, got {tuple(image_shape)}")
    return shape


class DCGANGenerator(nn.Module):
    """``G_θ: z [batch, latent_dim] -> x [batch, C, H, H]`` with intensities in (0, 1) (sigmoid output).

    Linear → (2w, H/4, H/4) → ConvT → (w, H/2, H/2) → ConvT → (C, H, H), batch norm and ReLU between.

    Args:
        latent_dim: dimension of z ~ N(0, I).
        image_shape: (C, H, H), H in (8, 28, 32).
        width: w, the channels of the last hidden layer.
    """

    def __init__(self, latent_dim: int = 32, image_shape=(1, 8, 8), width: int = 32):
        super().__init__()
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        self.image_shape = _check_shape(image_shape)
        width = integer(width, "width", 1)
        c, h, _ = self.image_shape
        self.s0 = h // 4
        n_hidden = 2 * width * self.s0**2
        self.project = nn.Sequential(nn.Linear(latent_dim, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1),
        )
        self.width = width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [batch, {self.latent_dim}], got {tuple(z.shape)}")
        h = self.project(z).view(len(z), 2 * self.width, self.s0, self.s0)
        return torch.sigmoid(self.body(h))


class DCGANCritic(nn.Module):
    """``D_ψ: x [batch, C, H, H] -> score [batch]`` (a logit for the JSD loss, a critic value for W1).

    Conv → LeakyReLU(0.2) → Conv → LeakyReLU(0.2) → Linear; no batch norm.

    Args:
        image_shape: (C, H, H), H in (8, 28, 32).
        width: w, the channels of the first convolution (the second has 2w).
        spectral_norm: wrap every layer in spectral normalisation (each weight, reshaped to a matrix,
            then has spectral norm ≈ 1; for convolutions that bounds the Lipschitz constant only
            approximately).
    """

    def __init__(self, image_shape=(1, 8, 8), width: int = 32, spectral_norm: bool = False):
        super().__init__()
        self.image_shape = _check_shape(image_shape)
        width = integer(width, "width", 1)
        c, h, _ = self.image_shape
        wrap = _sn if spectral_norm else (lambda layer: layer)
        self.net = nn.Sequential(
            wrap(nn.Conv2d(c, width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            wrap(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            wrap(nn.Linear(2 * width * (h // 4) ** 2, 1)),
        )
        self.spectral_norm = bool(spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            shape = ", ".join(map(str, self.image_shape))
            raise ValueError(f"x must have shape [batch, {shape}], got {tuple(x.shape)}")
        return self.net(x).squeeze(1)


class MLPGenerator(nn.Module):
    """``G_θ: z [batch, latent_dim] -> x [batch, data_dim]``, an MLP with ReLU (for 2-D toy data).

    Args:
        latent_dim: dimension of z ~ N(0, I).
        data_dim: dimension of x.
        hidden: width of each hidden layer.
        n_hidden: number of hidden layers (>= 1).
    """

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, n_hidden: int = 2):
        super().__init__()
        self.latent_dim = integer(latent_dim, "latent_dim", 1)
        self.data_dim = integer(data_dim, "data_dim", 1)
        sizes = [latent_dim] + [integer(hidden, "hidden", 1)] * integer(n_hidden, "n_hidden", 1)
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], data_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [batch, {self.latent_dim}], got {tuple(z.shape)}")
        return self.net(z)


class MLPCritic(nn.Module):
    """``D_ψ: x [batch, data_dim] -> score [batch]``, an MLP with LeakyReLU(0.2), no normalisation.

    Args:
        data_dim: dimension of x.
        hidden: width of each hidden layer.
        n_hidden: number of hidden layers (>= 1).
        spectral_norm: wrap every linear layer in ``torch.nn.utils.parametrizations.spectral_norm``.
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, n_hidden: int = 2, spectral_norm: bool = False):
        super().__init__()
        self.data_dim = integer(data_dim, "data_dim", 1)
        wrap = _sn if spectral_norm else (lambda layer: layer)
        sizes = [data_dim] + [integer(hidden, "hidden", 1)] * integer(n_hidden, "n_hidden", 1)
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [wrap(nn.Linear(a, b)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, wrap(nn.Linear(sizes[-1], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"x must have shape [batch, {self.data_dim}], got {tuple(x.shape)}")
        return self.net(x).squeeze(1)


class RewrappedSpectralNorm(nn.Module):
    """WRONG, kept as the course's mistake: a hand-written spectral norm that trains only the bias.

    Each forward pass estimates σ(W) by one power-iteration step and then *replaces* the layer's
    weight by a new parameter, ``layer.weight = nn.Parameter(W / σ)``. A new ``nn.Parameter`` is a
    fresh leaf: the optimiser, built before the forward pass, holds the old weight tensor, which no
    longer takes part in the computation and never receives a gradient. So the weights keep their
    (normalised) initial values for ever, and only the biases learn. The right way is a
    parametrization, ``torch.nn.utils.parametrizations.spectral_norm``, which recomputes ``W / σ(W)``
    from the trained tensor in every pass (``DCGANCritic(spectral_norm=True)``).

    Args:
        layer: an ``nn.Linear`` or ``nn.Conv2d`` (its weight reshaped to ``[out, -1]``).
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise ValueError(f"layer must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        self.layer = layer
        u = torch.randn(layer.weight.shape[0], generator=torch.Generator().manual_seed(0))
        self.register_buffer("u", F.normalize(u, dim=0).to(layer.weight.device, layer.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.layer.weight
        matrix = weight.detach().reshape(weight.shape[0], -1)
        with torch.no_grad():  # one power-iteration step: v = Wᵀu/‖Wᵀu‖, u = Wv/‖Wv‖, σ = uᵀWv
            v = F.normalize(matrix.T @ self.u, dim=0)
            self.u.copy_(F.normalize(matrix @ v, dim=0))
        sigma = self.u @ matrix @ v
        self.layer.weight = nn.Parameter(weight / sigma)  # BUG: a fresh leaf, unknown to the optimiser
        return self.layer(x)


def rewrapped_spectral_norm(module: nn.Module) -> nn.Module:
    """WRONG on purpose: wrap every ``nn.Linear``/``nn.Conv2d`` of ``module`` in :class:`RewrappedSpectralNorm`.

    Returns the same module, changed in place (for the notebook's measurement of the course's bug).
    """
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, RewrappedSpectralNorm(child))
        else:
            rewrapped_spectral_norm(child)
    return module


def sample_latent(n: int, latent_dim: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``z ~ N(0, I)``: ``[n, latent_dim]`` float32 on ``device``, drawn from a CPU ``generator``."""
    integer(n, "n", 1)
    integer(latent_dim, "latent_dim", 1)
    return torch.randn(n, latent_dim, generator=generator, dtype=torch.float32).to(device or "cpu")
