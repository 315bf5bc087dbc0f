"""Small DCGAN-style generator and critic (Radford, Metz & Chintala 2016, arXiv:1511.06434).

Sizes: 8×8 (scikit-learn digits, quick mode), 28×28 (MNIST, Fashion-MNIST) and 32×32 (CIFAR-10).
Both halve/double the resolution twice with 4×4 (transposed) convolutions of stride 2. The critic has
no batch normalisation, so that gradient penalties (R1, GP), which treat examples independently,
mean what they say; ``spectral_norm=True`` wraps every layer in
``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al. 2018, arXiv:1802.05957).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

__all__ = ["DCGANGenerator", "DCGANCritic", "sample_latent"]

SIZES = (8, 28, 32)


def _check_shape(image_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2] or shape[1] not in SIZES:
        raise ValueError(f"image_shape must be (C, H, H) with C in (1, 3) and H in {SIZES}, got {tuple(image_shape)}")
    return shape


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


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
        self.latent_dim = _check_positive(latent_dim, "latent_dim")
        self.image_shape = _check_shape(image_shape)
        width = _check_positive(width, "width")
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
        width = _check_positive(width, "width")
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


def sample_latent(n: int, latent_dim: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``z ~ N(0, I)``: ``[n, latent_dim]`` float32 on ``device``, drawn from a CPU ``generator``."""
    _check_positive(n, "n")
    _check_positive(latent_dim, "latent_dim")
    return torch.randn(n, latent_dim, generator=generator, dtype=torch.float32).to(device or "cpu")
